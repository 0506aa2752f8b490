#!/usr/bin/env node

// src/cli/bin.ts
import * as nodeModule from "node:module";

// src/cli/node-version.ts
var REQUIRED_NODE_MAJOR = 24;
function nodeVersionProblem(version, executable) {
  const major = Number.parseInt(version.split(".")[0] ?? "", 10);
  if (Number.isFinite(major) && major >= REQUIRED_NODE_MAJOR) return void 0;
  return `k8s-image-build needs Node.js ${REQUIRED_NODE_MAJOR} or later; this is Node.js ${version} (${executable})`;
}

// src/cli/bin.ts
var problem = nodeVersionProblem(process.versions.node, process.execPath);
if (problem !== void 0) {
  process.stderr.write(`error: ${problem}
`);
  process.exitCode = 1;
} else {
  nodeModule.enableCompileCache?.();
  const bundle = new URL("./lib.js", import.meta.url).href;
  const lib = await import(bundle);
  await lib.runCli();
}
