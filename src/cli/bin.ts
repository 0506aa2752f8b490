/**
 * dist/cli.js: checks the Node.js version, then loads the bundle (dist/lib.js) and runs the CLI.
 * The check must come first: the bundle does not load on an older Node. Keep this file free of
 * imports other than ./node-version.js, which is plain code.
 */
import { nodeVersionProblem } from "./node-version.js";

const problem = nodeVersionProblem(process.versions.node, process.execPath);
if (problem !== undefined) {
  process.stderr.write(`error: ${problem}\n`);
  process.exitCode = 1;
} else {
  // Resolved at run time, beside this file: the bundle is built separately (scripts/build.mjs).
  const bundle = new URL("./lib.js", import.meta.url).href;
  const lib = (await import(bundle)) as { runCli: () => Promise<void> };
  await lib.runCli();
}
