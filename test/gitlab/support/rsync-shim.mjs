// A minimal rsync for gitlab-ci-local's shell executor, used only where the machine has no rsync.
// It covers the forms gitlab-ci-local runs: `-a [--delete…] [--exclude P] [--exclude-from=F] src/ dest/`,
// `-Ra ./file dest/.`, and `-rRa --files-from=F . dest/.`. Deletion options are accepted and ignored:
// the destinations are fresh directories in a test.
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, statSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";

const args = process.argv.slice(2);
const excludes = [];
let filesFrom;
let relative = false;
const paths = [];
for (let i = 0; i < args.length; i++) {
  const arg = args[i];
  if (arg === "--exclude") excludes.push(args[++i]);
  else if (arg.startsWith("--exclude=")) excludes.push(arg.slice("--exclude=".length));
  else if (arg.startsWith("--exclude-from=")) {
    excludes.push(...readFileSync(arg.slice("--exclude-from=".length), "utf8").split("\n").filter((l) => l.trim() !== "" && !l.startsWith("#")));
  } else if (arg.startsWith("--files-from=")) filesFrom = arg.slice("--files-from=".length);
  else if (arg.startsWith("--")) continue;
  else if (arg.startsWith("-")) relative ||= arg.includes("R");
  else paths.push(arg);
}
const dest = paths.pop();
if (dest === undefined || paths.length === 0) {
  process.stderr.write("rsync shim: need a source and a destination\n");
  process.exit(1);
}
const patterns = excludes.map((p) => p.replace(/^\.?\//, "").replace(/\/\*\*$/, "").replace(/\/$/, ""));
const excluded = (rel) => patterns.some((p) => p !== "" && (rel === p || rel.startsWith(`${p}/`)));

function copy(source, target, rel) {
  if (excluded(rel)) return;
  if (!existsSync(source)) {
    process.stderr.write(`rsync shim: ${source} does not exist\n`);
    process.exitCode = 23;
    return;
  }
  mkdirSync(dirname(target), { recursive: true });
  cpSync(source, target, {
    recursive: true,
    force: true,
    filter: (from) => !excluded(join(rel, from.slice(resolve(source).length + 1)).replace(/^\.\//, "")),
  });
}

if (filesFrom !== undefined) {
  const base = paths[0];
  for (const line of readFileSync(filesFrom, "utf8").split("\n")) {
    const rel = line.trim().replace(/^\.\//, "");
    if (rel === "" || !existsSync(join(base, rel))) continue;
    copy(resolve(base, rel), join(dest, rel), rel);
  }
} else {
  for (const source of paths) {
    const contents = source.endsWith("/") || source.endsWith("/.") || source === ".";
    if (contents) {
      mkdirSync(dest, { recursive: true });
      for (const name of readdirSync(source)) copy(resolve(source, name), join(dest, name), name);
    } else if (relative) {
      const rel = source.replace(/^\.\//, "");
      copy(resolve(source), join(dest, rel), rel);
    } else {
      const target = existsSync(dest) && statSync(dest).isDirectory() ? join(dest, basename(source)) : dest;
      copy(resolve(source), target, basename(source));
    }
  }
}
