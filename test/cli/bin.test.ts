/**
 * dist/cli.js as people run it: built fresh by scripts/build.mjs into a temporary directory (the
 * committed dist/ is rebuilt by CI), run directly through its shebang, on Node 24 and on older ones.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, dirname, join } from "node:path";
import { nodeVersionProblem } from "../../src/cli/node-version.js";

const ROOT = join(import.meta.dirname, "../..");
const VERSION = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")).version as string;
/** Node 24, which runs the tests. */
const NODE = process.execPath;
const PATH_WITH_NODE = `${dirname(NODE)}${delimiter}${process.env.PATH ?? ""}`;

let outdir: string;
beforeAll(() => {
  outdir = mkdtempSync(join(tmpdir(), "kib-dist-"));
  execFileSync(NODE, ["scripts/build.mjs", "--outdir", outdir], { cwd: ROOT });
  // As in the job image: the bundle's directory says it holds ES modules.
  writeFileSync(join(outdir, "package.json"), '{"type":"module"}\n');
}, 120_000);

function runCli(command: string, args: string[], env: NodeJS.ProcessEnv = {}) {
  const result = spawnSync(command, args, {
    cwd: ROOT,
    encoding: "utf8",
    env: { PATH: PATH_WITH_NODE, HOME: tmpdir(), ...env },
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

test("cli.js starts with a shebang, is executable and runs by itself", () => {
  const cli = join(outdir, "cli.js");
  expect(readFileSync(cli, "utf8").split("\n")[0]).toBe("#!/usr/bin/env node");
  expect(statSync(cli).mode & 0o111).toBe(0o111);
  expect(runCli(cli, ["--version"])).toEqual({
    code: 0,
    stdout: `k8s-image-build ${VERSION}\n`,
    stderr: "",
  });
});

test("git records dist/cli.js as executable, so a clone can run it", () => {
  const entry = execFileSync("git", ["ls-files", "-s", "dist/cli.js"], {
    cwd: ROOT,
    encoding: "utf8",
  });
  expect(entry.split(" ")[0]).toBe("100755");
});

test("the README's first command renders the Job through cli.js", () => {
  const { code, stdout, stderr } = runCli(NODE, [
    join(outdir, "cli.js"),
    "build",
    "--dry-run",
    "--context",
    "examples/hello",
    "--tags",
    "registry.example.com/hello:dev",
  ]);
  expect(stderr).toBe("");
  expect(code).toBe(0);
  expect(stdout).toMatch(/^kind: Job$/m);
});

describe("on a Node.js older than 24", () => {
  test("one line says what is needed, before the bundle loads", () => {
    // Node 24 told it is 22.11.0: the check reads process.versions.node as it would there.
    const fake =
      'data:text/javascript,Object.defineProperty(process.versions,"node",{value:"22.11.0"})';
    const { code, stdout, stderr } = runCli(NODE, [
      "--import",
      fake,
      join(outdir, "cli.js"),
      "build",
    ]);
    expect({ code, stdout, stderr }).toEqual({
      code: 1,
      stdout: "",
      stderr: `error: k8s-image-build needs Node.js 24 or later; this is Node.js 22.11.0 (${NODE})\n`,
    });
  });

  // The machine's own Node (Debian's, 20.x here), where the bundle itself fails to load.
  const systemNode = ["/usr/bin/node", "/usr/local/bin/node"].find((path) => {
    const version = spawnSync(path, ["--version"], { encoding: "utf8" }).stdout ?? "";
    return /^v(\d+)\./.test(version) && Number(/^v(\d+)\./.exec(version)![1]) < 24;
  });
  (systemNode ? test : test.skip)(
    `a real old Node (${systemNode ?? "none on this machine"})`,
    () => {
      const version = execFileSync(systemNode!, ["-p", "process.versions.node"], {
        encoding: "utf8",
      }).trim();
      const { code, stderr } = runCli(systemNode!, [join(outdir, "cli.js"), "build", "--dry-run"]);
      expect({ code, stderr }).toEqual({
        code: 1,
        stderr: `error: k8s-image-build needs Node.js 24 or later; this is Node.js ${version} (${systemNode})\n`,
      });
    },
  );

  test.each([
    ["20.20.2", false],
    ["22.19.0", false],
    ["24.0.0", true],
    ["25.1.0", true],
  ])("Node %s is enough: %s", (version, enough) => {
    expect(nodeVersionProblem(version, "/usr/bin/node") === undefined).toBe(enough);
  });
});

test("lib.js is ASCII only, so V8 holds its source at one byte per character", () => {
  const source = readFileSync(join(outdir, "lib.js"), "latin1");
  const outside = source.match(/[\u0080-\u00ff]/g) ?? [];
  expect(outside).toEqual([]);
  // The dependencies' comments that held such characters are still there, escaped.
  expect(source).toContain("request\\u{2019}s");
});
