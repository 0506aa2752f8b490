/**
 * Every way the build pod can stall or die before (or instead of) building, against the test
 * server replaying real recordings (kaniko-kubelet-rejects, kaniko-evicted, kaniko-unschedulable)
 * and scenarios composed from them with the autoscalers' own events (test/support/composed.ts).
 * Time is scaled by the test server's timeScale (0.05: a recorded minute is 3 s); the product's
 * grace is scaled the same way through its pendingGraceMs option, never its logic.
 */
import { readFileSync } from "node:fs";
import { build } from "../../src/core/build.js";
import { BuildFailure } from "../../src/core/errors.js";
import { parseBuildSpec, type RawInputs } from "../../src/core/spec/spec.js";
import { startTestCluster, type TestCluster } from "../support/cluster.js";
import {
  CLUSTER_AUTOSCALER_DECLINED,
  CLUSTER_AUTOSCALER_TRIGGERED,
  EKS_AUTO_MODE_NOMINATED,
  KARPENTER_NOMINATED,
} from "../support/composed.js";
import { makeContext, NOTHING_LEFT, recordingReporter, waitForEmpty } from "./helpers.js";

/** The test server's default timeScale: recorded milliseconds × 0.05. */
const TIME_SCALE = 0.05;
/** The product's default grace (30 s) on the same scale. */
const GRACE_MS = 30_000 * TIME_SCALE;
const DIGEST = "sha256:8c1c626558915ecba14a9b1f8b20dce4ba869984d4032c592d4dd6c67d8aab84";

let cluster: TestCluster;
beforeAll(async () => {
  cluster = await startTestCluster({ timeScale: TIME_SCALE });
  cluster.createNamespace("ci-builds");
});
afterAll(async () => {
  await cluster?.close();
});

function specFor(inputs: RawInputs = {}) {
  return parseBuildSpec(
    {
      context: ".",
      tags: "registry.example:5000/acme/web:1.0",
      namespace: "ci-builds",
      kubeconfig: cluster.kubeconfig(),
      ...inputs,
    },
    { workspace: makeContext(), kubeconfigPaths: [] },
  );
}

async function buildFails(inputs: RawInputs, options: { pendingGraceMs?: number } = {}) {
  const reporter = recordingReporter();
  try {
    await build(specFor(inputs), {
      reporter,
      runId: "test",
      pendingGraceMs: options.pendingGraceMs ?? GRACE_MS,
      deadlineSlackMs: 1000,
    });
  } catch (error) {
    return { error: error as BuildFailure, reporter };
  }
  throw new Error("the build was expected to fail");
}

function recordedBuildLog(): string[] {
  return readFileSync("test/support/recordings/kaniko-success-cold/log-build.txt", "utf8")
    .split("\n")
    .filter(Boolean)
    .map((line) => line.slice(line.indexOf(" ") + 1));
}

describe("the node ends the pod", () => {
  test("a pod the kubelet rejects at admission (OutOfcpu) ends at once with the kubelet's words", async () => {
    cluster.useScenario("kaniko-kubelet-rejects");
    // A timeout far longer than the test: a build that waited for its deadline would not end here.
    const { error, reporter } = await buildFails({ timeout: "20s" });
    expect(error).toBeInstanceOf(BuildFailure);
    expect(error.kind).toBe("pod-rejected");
    expect(error.message).toBe(
      "the node's kubelet rejected the build pod (OutOfcpu): Node didn't have enough resource: cpu, requested: 64000, used: 100, capacity: 2000; lower the cpu request in resources, or choose nodes that have it with node-selector",
    );
    expect(reporter.lines.join("\n")).not.toMatch(/BackoffLimitExceeded|DeadlineExceeded/);
    expect(reporter.buildLines).toEqual([]);
    expect(await waitForEmpty(cluster)).toEqual(NOTHING_LEFT);
  }, 40_000);

  test("an evicted pod is named with the kubelet's message and the input that fixes it", async () => {
    cluster.useScenario("kaniko-evicted");
    cluster.resetRequests();
    const { error, reporter } = await buildFails({
      resources: "limits: {ephemeral-storage: 2Mi}",
    });
    expect(error.kind).toBe("evicted");
    expect(error.message).toBe(
      'the build pod was evicted by its node: Pod ephemeral local storage usage exceeds the total limit of containers 2Mi.; give the build more local disk with ephemeral-storage in resources, e.g. "requests: {ephemeral-storage: 10Gi}" and "limits: {ephemeral-storage: 20Gi}"',
    );
    // The containers are gone with the pod: pods/log answers "unable to retrieve container logs
    // for containerd://…", which is the API's error, not the build's output.
    const everything = [
      ...reporter.lines,
      ...reporter.buildLines.map((line) => line.text),
      ...error.logTail,
    ].join("\n");
    expect(everything).not.toContain("unable to retrieve container logs");
    expect(everything).not.toMatch(/exit code 2/);
    // The follower did meet the vanished log (a 400), and let it be.
    const logAnswers = cluster.requests.filter((r) => r.path.endsWith("/log"));
    expect(logAnswers.map((r) => r.status)).toContain(400);
    expect(logAnswers.length).toBeLessThanOrEqual(3);
    expect(await waitForEmpty(cluster)).toEqual(NOTHING_LEFT);
  }, 60_000);
});

describe("waiting for capacity", () => {
  test.each([
    ["Karpenter", "composed-karpenter-nominated-then-scheduled", KARPENTER_NOMINATED],
    ["EKS Auto Mode", "composed-eks-auto-mode-nominated-then-scheduled", EKS_AUTO_MODE_NOMINATED],
    [
      "cluster-autoscaler",
      "composed-cluster-autoscaler-scale-up-then-scheduled",
      CLUSTER_AUTOSCALER_TRIGGERED,
    ],
  ])(
    "%s adds a node: the pod is scheduled after 60 s and the build succeeds, each of the cluster's words printed once",
    async (_name, scenario, signal) => {
      cluster.useScenario(scenario);
      const reporter = recordingReporter();
      const result = await build(specFor(), {
        reporter,
        runId: "test",
        pendingGraceMs: GRACE_MS,
      });
      expect(result.digest).toBe(DIGEST);
      expect(reporter.buildLines.map((line) => line.text)).toEqual(recordedBuildLog());

      const said = (text: string) => reporter.lines.filter((line) => line.includes(text));
      // The autoscaler's words once, though its event was updated (count 2) later.
      expect(said(signal.message)).toEqual([
        `${signal.component} (${signal.reason}): ${signal.message}`,
      ]);
      // The scheduler's words each time they changed, once each.
      expect(said("0/1 nodes are available")).toHaveLength(1);
      expect(said("0/2 nodes are available: 1 node(s) had untolerated taint")).toHaveLength(1);
      expect(said("schedule-timeout")).toEqual([
        "A node is being added: waiting up to 10m (schedule-timeout) for the pod to be scheduled and start",
      ]);
      expect(await waitForEmpty(cluster)).toEqual(NOTHING_LEFT);
    },
    60_000,
  );

  test("a node that never comes fails at schedule-timeout with the cluster's last words", async () => {
    cluster.useScenario("composed-karpenter-nominated-never-scheduled");
    const { error } = await buildFails({ "schedule-timeout": "3s" });
    expect(error.kind).toBe("schedule-timeout");
    expect(error.message).toBe(
      `the build pod did not start within schedule-timeout (3s): karpenter (Nominated): ${KARPENTER_NOMINATED.message}; the scheduler: 0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector. preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling..`,
    );
    expect(await waitForEmpty(cluster)).toEqual(NOTHING_LEFT);
  }, 40_000);

  test("cluster-autoscaler saying NotTriggerScaleUp fails after the grace, with its words", async () => {
    cluster.useScenario("composed-cluster-autoscaler-declines");
    const { error, reporter } = await buildFails({});
    expect(error.kind).toBe("unschedulable");
    expect(error.message).toBe(
      `the build pod cannot be scheduled: 0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector. preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling..; cluster-autoscaler (NotTriggerScaleUp): ${CLUSTER_AUTOSCALER_DECLINED.message} (check node-selector, tolerations and resources)`,
    );
    expect(reporter.warnings).toContain(
      `cluster-autoscaler (NotTriggerScaleUp): ${CLUSTER_AUTOSCALER_DECLINED.message}`,
    );
    expect(await waitForEmpty(cluster)).toEqual(NOTHING_LEFT);
  }, 40_000);

  test("an unschedulable pod with no autoscaler fails after the grace", async () => {
    cluster.useScenario("kaniko-unschedulable");
    const { error } = await buildFails({});
    expect(error.kind).toBe("unschedulable");
    expect(error.message).toBe(
      "the build pod cannot be scheduled: 0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector. preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling..; no node autoscaler said it is adding a node (check node-selector, tolerations and resources)",
    );
    expect(await waitForEmpty(cluster)).toEqual(NOTHING_LEFT);
  }, 40_000);
});
