/**
 * What the benchmarks share: their numeric `--name value` options, the median, a reporter that
 * keeps a build quiet, and the Kubernetes API test server replaying `kaniko-success-cold` in the
 * bench's own process.
 */
import path from "node:path";
import { bundleSources } from "./bundle-sources.mjs";

const args = process.argv.slice(2);

/** The number after `--name` on the command line, else `fallback`. */
export function numberOption(name, fallback) {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
}

export const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** The engine's Reporter with nothing printed but warnings. */
export const quietReporter = {
  info() {},
  warn: (m) => console.log(`  warning: ${m}`),
  debug() {},
  group: (_t, fn) => fn(),
  buildLog() {},
  upload() {},
  mask() {},
};

/**
 * The test server (test/support/cluster.ts, bundled into `work`), with the namespace ci-builds
 * and the real cluster's kaniko-success-cold recording for every pod.
 */
export async function startReplayCluster(work, options = {}) {
  const { startTestCluster } = await bundleSources(
    `export { startTestCluster } from "./test/support/cluster.ts";`,
    path.join(work, "support.mjs"),
  );
  const cluster = await startTestCluster(options);
  cluster.createNamespace("ci-builds");
  cluster.useScenario("kaniko-success-cold");
  return cluster;
}
