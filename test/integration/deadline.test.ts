/**
 * The Job's deadline ends the build even when a stream in flight would not: an upload whose
 * connection stalls, a log stream that stays open and silent after the pod is gone (connections
 * black-holed between the API server and the node). build() then fails with the deadline's words
 * and deletes what it created. And the receiver's end stops an upload whose stream stays open.
 */
import { randomBytes } from "node:crypto";
import { build } from "../../src/core/build.js";
import { BuildFailure } from "../../src/core/errors.js";
import { parseBuildSpec, type RawInputs } from "../../src/core/spec/spec.js";
import { startTestCluster, type TestCluster } from "../support/cluster.js";
import {
  makeContext,
  NOTHING_LEFT,
  recordingReporter,
  serverRequest,
  waitForEmpty,
} from "./helpers.js";

let cluster: TestCluster;
beforeAll(async () => {
  cluster = await startTestCluster();
  cluster.createNamespace("ci-builds");
});
afterAll(async () => {
  await cluster?.close();
});

function specFor(context: string, inputs: RawInputs = {}) {
  return parseBuildSpec(
    {
      context: ".",
      tags: "registry.example:5000/acme/web:1.0",
      namespace: "ci-builds",
      kubeconfig: cluster.kubeconfig(),
      ...inputs,
    },
    { workspace: context, kubeconfigPaths: [] },
  );
}

async function failure(spec: ReturnType<typeof specFor>) {
  const reporter = recordingReporter();
  const error = await build(spec, { reporter, runId: "test", deadlineSlackMs: 300 }).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(BuildFailure);
  return { error: error as BuildFailure, reporter };
}

test("an upload whose connection stalls ends at the Job's deadline, with the deadline's words", async () => {
  cluster.useScenario("kaniko-success-cold");
  const context = makeContext({ "big.txt": randomBytes(1_500_000).toString("base64") });
  const stalled = cluster.faults.stallNextAttach({ afterBytes: 64 * 1024 });
  const { error, reporter } = await failure(specFor(context, { timeout: "1s" }));
  await stalled;
  expect(reporter.groups).toContain("Upload context");
  expect(error.kind).toBe("deadline-exceeded");
  expect(error.message).toBe(
    "the build exceeded its timeout of 1s (the Job's activeDeadlineSeconds) and was stopped",
  );
  expect(await waitForEmpty(cluster)).toEqual(NOTHING_LEFT);
}, 30_000);

test("a log stream that stays open past the deadline ends with it, with the deadline's words", async () => {
  cluster.useScenario("kaniko-deadline");
  const open = cluster.faults.stallNextLog();
  const { error, reporter } = await failure(specFor(makeContext(), { timeout: "2s" }));
  await open;
  expect(reporter.groups).toContain("Build (kaniko)");
  expect(error.kind).toBe("deadline-exceeded");
  expect(error.message).toBe(
    "the build exceeded its timeout of 2s (the Job's activeDeadlineSeconds) and was stopped",
  );
  expect(await waitForEmpty(cluster)).toEqual(NOTHING_LEFT);
}, 30_000);

test("an upload whose connection stalls ends when its receiver is killed (the pod deleted), not at the deadline", async () => {
  cluster.useScenario("kaniko-success-cold");
  const context = makeContext({ "big.txt": randomBytes(1_500_000).toString("base64") });
  const earlier = new Set(cluster.podNames("ci-builds"));
  const stalled = cluster.faults.stallNextAttach({ afterBytes: 64 * 1024 }).then(async () => {
    const pod = cluster.podNames("ci-builds").find((name) => !earlier.has(name))!;
    await serverRequest(cluster, `/api/v1/namespaces/ci-builds/pods/${pod}`, {
      method: "DELETE",
    });
  });
  // A deadline far away: only the receiver's end can stop this upload in time.
  const { error } = await failure(specFor(context, { timeout: "10m" }));
  await stalled;
  expect(error.kind).toBe("pod-deleted");
  expect(error.message).toMatch(
    /^the build pod was deleted before the build finished \(context was stopped, exit code 137\)$/,
  );
  expect(await waitForEmpty(cluster)).toEqual(NOTHING_LEFT);
}, 20_000);
