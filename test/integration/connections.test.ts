/**
 * One build's API requests share connections: client-node 2.0 alone opens a new TCP and TLS
 * connection for every request (a new undici Agent each time); PooledKubeConfig keeps one pool.
 * Connections are counted on undici's own diagnostics channel, in the client.
 */
import { subscribe, unsubscribe } from "node:diagnostics_channel";
import { build } from "../../src/core/build.js";
import { parseBuildSpec } from "../../src/core/spec/spec.js";
import { startTestCluster, type TestCluster } from "../support/cluster.js";
import { makeContext, NOTHING_LEFT, recordingReporter, waitForEmpty } from "./helpers.js";

let cluster: TestCluster;
beforeAll(async () => {
  cluster = await startTestCluster();
  cluster.createNamespace("ci-builds");
  cluster.useScenario("kaniko-success-cold");
});
afterAll(async () => cluster?.close());

test("a build's requests reuse connections instead of opening one each", async () => {
  let connections = 0;
  let requests = 0;
  const onConnected = () => connections++;
  const onRequest = () => requests++;
  subscribe("undici:client:connected", onConnected);
  subscribe("undici:client:sendHeaders", onRequest);
  try {
    const spec = parseBuildSpec(
      {
        context: ".",
        tags: "registry.example:5000/acme/web:1.0",
        namespace: "ci-builds",
        kubeconfig: cluster.kubeconfig(),
      },
      { workspace: makeContext(), kubeconfigPaths: [] },
    );
    const result = await build(spec, { reporter: recordingReporter(), runId: "test" });
    expect(result.digest).toMatch(/^sha256:/);
  } finally {
    unsubscribe("undici:client:connected", onConnected);
    unsubscribe("undici:client:sendHeaders", onRequest);
  }
  // The pod watch, the events watches and the log reads are open side by side (how many at once
  // depends on timing); the short requests after the first (Job create, Job delete) take a free
  // connection from the pool. Without the pool, every request opens its own.
  expect(requests).toBeGreaterThanOrEqual(7);
  expect(connections).toBeLessThanOrEqual(requests - 2);
  expect(await waitForEmpty(cluster)).toEqual(NOTHING_LEFT);
});
