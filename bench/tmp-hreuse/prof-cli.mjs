// run the CLI build under --cpu-prof against the test server
import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync, mkdirSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { build } from "esbuild";
const repo = "/work/wt/h-reuse";
await build({
  stdin: {
    contents: `export { startTestCluster } from "./test/support/cluster.ts";`,
    resolveDir: repo,
    loader: "ts",
    sourcefile: "s.ts",
  },
  bundle: true,
  platform: "node",
  format: "esm",
  outfile: "/tmp/hreuse-b/support.mjs",
  logLevel: "warning",
  define: {
    "import.meta.url": JSON.stringify(pathToFileURL(repo + "/test/support/recordings.ts").href),
  },
  banner: {
    js: "import { createRequire as __k } from 'node:module'; const require = __k(import.meta.url);",
  },
});
const { startTestCluster } = await import("/tmp/hreuse-b/support.mjs");
const cluster = await startTestCluster();
cluster.createNamespace("ci-builds");
const ctx = mkdtempSync("/tmp/hreuse-b/ctx-");
writeFileSync(ctx + "/Dockerfile", "FROM busybox\n");
let first;
const push = cluster.requests.push.bind(cluster.requests);
cluster.requests.push = (...r) => {
  first ??= performance.now();
  return push(...r);
};
const t0 = performance.now();
const child = spawn(
  process.execPath,
  [
    "--cpu-prof",
    "--cpu-prof-dir=/tmp/hreuse-b/prof",
    "--cpu-prof-interval",
    "250",
    repo + "/dist/cli.js",
    "build",
  ],
  {
    cwd: ctx,
    env: {
      PATH: process.env.PATH,
      HOME: ctx,
      KIB_TAGS: "r.example/a/b:1",
      KIB_NAMESPACE: "ci-builds",
      KIB_KUBECONFIG: cluster.kubeconfig(),
    },
    stdio: "inherit",
  },
);
await new Promise((r) => child.on("close", r));
console.log("first request", (first - t0).toFixed(0), "ms");
await cluster.close();
