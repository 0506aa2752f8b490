/**
 * Context tar throughput: planContext + tarContext against `tar czf` over the same generated
 * directory, alternated in one run, medians reported with their ratio (not an assertion).
 *
 *   node bench/upload.mjs [--mb 80] [--rounds 3]
 *
 * src/core/context/index.ts is bundled on the fly with esbuild (a devDependency) into a temp dir.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { performance } from "node:perf_hooks";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { build } from "esbuild";
import { writeBenchContext } from "./context-fixture.mjs";

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const totalMb = option("mb", 80);
const rounds = option("rounds", 3);

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const work = mkdtempSync(path.join(tmpdir(), "k8sib-bench-upload-"));

try {
  // 1. The code under test.
  const bundle = path.join(work, "context.mjs");
  await build({
    entryPoints: [path.join(repo, "src/core/context/index.ts")],
    bundle: true,
    platform: "node",
    format: "esm",
    outfile: bundle,
    logLevel: "warning",
    banner: {
      js: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);",
    },
  });
  const { planContext, tarContext } = await import(pathToFileURL(bundle).href);

  // 2. A context shaped like a real one (bench/context-fixture.mjs).
  const dir = writeBenchContext(path.join(work, "ctx"), totalMb);

  const ours = async () => {
    const t0 = performance.now();
    const plan = await planContext(dir, { dockerfile: "Dockerfile" });
    const planned = performance.now();
    let out = 0;
    for await (const chunk of tarContext(plan)) out += chunk.length;
    return {
      ms: performance.now() - t0,
      planMs: planned - t0,
      out,
      files: plan.files,
      bytes: plan.bytes,
    };
  };
  const theirs = () =>
    new Promise((resolve, reject) => {
      const t0 = performance.now();
      let out = 0;
      const child = spawn("tar", ["czf", "-", "-C", dir, "."], {
        stdio: ["ignore", "pipe", "inherit"],
      });
      child.stdout.on("data", (c) => (out += c.length));
      child.on("error", reject);
      child.on("close", (code) =>
        code === 0
          ? resolve({ ms: performance.now() - t0, out })
          : reject(new Error(`tar exited ${code}`)),
      );
    });

  await ours(); // warm the page cache and the JIT
  const a = [];
  const b = [];
  for (let r = 0; r < rounds; r++) {
    a.push(await ours());
    b.push(await theirs());
  }
  const median = (xs) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
  const oursMs = median(a.map((x) => x.ms));
  const tarMs = median(b.map((x) => x.ms));
  const { files, bytes, out } = a[0];
  const mbps = (ms) => (bytes / 1e6 / (ms / 1000)).toFixed(1);
  console.log(
    `context: ${files} files, ${(bytes / 1e6).toFixed(1)} MB (gzip level 6 both sides; ${rounds} rounds, medians)`,
  );
  console.log(
    `  planContext+tarContext: ${(oursMs / 1000).toFixed(2)} s  ${mbps(oursMs)} MB/s  → ${(out / 1e6).toFixed(1)} MB  (walk ${median(a.map((x) => x.planMs)).toFixed(0)} ms)`,
  );
  console.log(
    `  tar czf:                ${(tarMs / 1000).toFixed(2)} s  ${mbps(tarMs)} MB/s  → ${(b[0].out / 1e6).toFixed(1)} MB`,
  );
  console.log(`  ratio (tar czf time / ours): ${(tarMs / oursMs).toFixed(2)}×`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
