/**
 * dist/cli.js: checks the Node.js version, then turns on Node's compile cache and loads the CLI's
 * bundle (dist/lib.js) and runs the CLI. The check must come first: that code does not load on an
 * older Node. Keep this file free of imports other than ./node-version.js (plain code) and Node's
 * own modules, read as a namespace (a named import that an old Node lacks would fail to link).
 */
import * as nodeModule from "node:module";
import { nodeVersionProblem } from "./node-version.js";

const problem = nodeVersionProblem(process.versions.node, process.execPath);
if (problem !== undefined) {
  process.stderr.write(`error: ${problem}\n`);
  process.exitCode = 1;
} else {
  (nodeModule as { enableCompileCache?: () => unknown }).enableCompileCache?.();
  // Resolved at run time, beside this file: the bundle is built separately (scripts/build.mjs).
  const bundle = new URL("./lib.js", import.meta.url).href;
  const lib = (await import(bundle)) as { runCli: () => Promise<void> };
  await lib.runCli();
}
