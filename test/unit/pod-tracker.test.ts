/** Pending problems: which fail at once, which after the grace period, which not at all. */
import type { CoreV1Event, V1Pod } from "@kubernetes/client-node";
import { BuildFailure } from "../../src/core/errors.js";
import {
  capacitySignal,
  podEndedByNode,
  type PendingProblem,
} from "../../src/core/cluster/pod-problems.js";
import { PodTracker } from "../../src/core/cluster/pod-tracker.js";

function pendingPod(over: Partial<NonNullable<V1Pod["status"]>> = {}): V1Pod {
  return { metadata: { name: "kib-x-abcde", uid: "u1" }, status: { phase: "Pending", ...over } };
}

function waitingBuild(reason: string, message: string): V1Pod {
  return pendingPod({
    containerStatuses: [
      {
        name: "build",
        image: "ghcr.io/acme/kaniko:nope",
        imageID: "",
        ready: false,
        restartCount: 0,
        state: { waiting: { reason, message } },
      },
    ],
  });
}

const unschedulable = pendingPod({
  conditions: [
    {
      type: "PodScheduled",
      status: "False",
      reason: "Unschedulable",
      message: "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector.",
    },
  ],
});

function tracker(graceMs: number, now?: () => number) {
  const problems: PendingProblem[] = [];
  const t = new PodTracker({ pendingGraceMs: graceMs, onProblem: (p) => problems.push(p), now });
  return { t, problems };
}

async function failureOf(t: PodTracker, ms: number): Promise<BuildFailure | undefined> {
  return t
    .until(() => false, ms)
    .then(
      () => undefined,
      (error: unknown) => error as BuildFailure,
    );
}

test("an image that does not exist fails at once, with the kubelet's words", async () => {
  const { t, problems } = tracker(60_000);
  t.podUpdated(
    waitingBuild(
      "ErrImagePull",
      'rpc error: code = NotFound desc = failed to pull and unpack image "ghcr.io/acme/kaniko:nope": not found',
    ),
  );
  const failure = await failureOf(t, 100);
  expect(failure?.kind).toBe("image-pull");
  expect(failure?.message).toMatch(
    /image "ghcr.io\/acme\/kaniko:nope" for container "build" cannot be pulled: .*not found/,
  );
  expect(problems).toHaveLength(1);
  t.stop();
});

test("an image pull that may clear (rate limit) waits out the grace period, reported once", async () => {
  const { t, problems } = tracker(150);
  t.podUpdated(waitingBuild("ErrImagePull", "429 Too Many Requests"));
  t.podUpdated(waitingBuild("ImagePullBackOff", "Back-off pulling image"));
  expect(await failureOf(t, 50)).toBeUndefined();
  const failure = await failureOf(t, 500);
  expect(failure?.kind).toBe("image-pull");
  expect(problems).toHaveLength(1);
  t.stop();
});

test("a problem that clears is forgotten: the pod goes on", async () => {
  const { t } = tracker(100);
  t.podUpdated(waitingBuild("ErrImagePull", "429 Too Many Requests"));
  t.podUpdated(pendingPod({ containerStatuses: [] }));
  expect(await failureOf(t, 250)).toBeUndefined();
  t.stop();
});

test("unschedulable fails after the grace period, unless the cluster autoscaler is adding a node", async () => {
  const plain = tracker(100);
  plain.t.podUpdated(unschedulable);
  expect((await failureOf(plain.t, 400))?.message).toMatch(
    /cannot be scheduled: 0\/1 nodes are available/,
  );
  plain.t.stop();

  const scaling = tracker(100);
  scaling.t.podUpdated(unschedulable);
  scaling.t.eventSeen({
    reason: "TriggeredScaleUp",
    type: "Normal",
    involvedObject: {},
    metadata: {},
  } as CoreV1Event);
  expect(await failureOf(scaling.t, 400)).toBeUndefined();
  scaling.t.stop();
});

test("a timer that fires before the clock agrees is re-armed, not lost", async () => {
  // The clock falls 40 ms behind the timers while the grace timer is due, then catches up:
  // the first firing finds the grace not yet over.
  let lag = 0;
  const start = performance.now();
  const { t } = tracker(100, () => performance.now() - lag);
  t.podUpdated(unschedulable);
  setTimeout(() => (lag = 40), 50);
  setTimeout(() => (lag = 0), 120);
  const failure = await failureOf(t, 1000);
  expect(failure?.kind).toBe("unschedulable");
  expect(performance.now() - start).toBeLessThan(1000);
  t.stop();
});

test("volume mount failures come from events; unknown warnings are not failures", async () => {
  const { t, problems } = tracker(100);
  t.podUpdated(pendingPod());
  t.eventSeen({
    type: "Warning",
    reason: "MissingClusterDNS",
    message: "kubelet does not have ClusterDNS IP configured",
    involvedObject: {},
    metadata: {},
  } as CoreV1Event);
  expect(problems).toEqual([]);
  t.eventSeen({
    type: "Warning",
    reason: "FailedMount",
    message:
      'MountVolume.SetUp failed for volume "registry-credentials" : secret "kib-x-registry" not found',
    involvedObject: {},
    metadata: {},
  } as CoreV1Event);
  const failure = await failureOf(t, 400);
  expect(failure?.kind).toBe("mount");
  expect(failure?.message).toMatch(/a volume cannot be mounted: MountVolume.SetUp failed/);
  t.stop();
});

function autoscalerEvent(reason: string, component: string, message: string): CoreV1Event {
  return {
    reason,
    type: "Normal",
    message,
    source: { component },
    involvedObject: {},
    metadata: {},
  } as CoreV1Event;
}

function noticing(graceMs: number, scheduleTimeoutMs?: number) {
  const notices: string[] = [];
  const problems: PendingProblem[] = [];
  const t = new PodTracker({
    pendingGraceMs: graceMs,
    scheduleTimeoutMs,
    scheduleTimeoutText: scheduleTimeoutMs === undefined ? undefined : `${scheduleTimeoutMs}ms`,
    onProblem: (p) => problems.push(p),
    onNotice: (message, level) => notices.push(`${level}: ${message}`),
  });
  return { t, notices, problems };
}

describe("capacity signals", () => {
  test.each([
    ["TriggeredScaleUp", "cluster-autoscaler", true],
    ["Nominated", "karpenter", true],
    ["Nominated", "eks-auto-mode/compute", true],
    ["NotTriggerScaleUp", "cluster-autoscaler", false],
    ["FailedScaleUp", "cluster-autoscaler", false],
    ["FailedScheduling", "karpenter", false],
  ])("%s from %s: adding=%s", (reason, component, adding) => {
    expect(capacitySignal(autoscalerEvent(reason, component, "words"))).toEqual({
      adding,
      words: `${component} (${reason}): words`,
    });
  });

  test("the scheduler's FailedScheduling and other events are not an autoscaler's verdict", () => {
    expect(capacitySignal(autoscalerEvent("FailedScheduling", "default-scheduler", "0/3"))).toBe(
      undefined,
    );
    expect(capacitySignal(autoscalerEvent("Pulling", "kubelet", "Pulling image"))).toBe(undefined);
  });

  test("a Nominated pod waits past the grace; its words are printed once however often the event repeats", async () => {
    const { t, notices } = noticing(50, 10_000);
    t.podUpdated(unschedulable);
    const nominated = autoscalerEvent(
      "Nominated",
      "karpenter",
      "Pod should schedule on: nodeclaim/a",
    );
    t.eventSeen(nominated);
    t.eventSeen({ ...nominated, count: 2 } as CoreV1Event);
    expect(await failureOf(t, 200)).toBeUndefined();
    expect(notices).toEqual([
      "info: karpenter (Nominated): Pod should schedule on: nodeclaim/a",
      "info: A node is being added: waiting up to 10000ms (schedule-timeout) for the pod to be scheduled and start",
    ]);
    t.stop();
  });

  test("NotTriggerScaleUp after the grace fails at once, naming the autoscaler's words", async () => {
    const { t } = noticing(50, 10_000);
    t.podUpdated(unschedulable);
    t.eventSeen(
      autoscalerEvent("TriggeredScaleUp", "cluster-autoscaler", "pod triggered scale-up"),
    );
    expect(await failureOf(t, 150)).toBeUndefined();
    t.eventSeen(
      autoscalerEvent(
        "NotTriggerScaleUp",
        "cluster-autoscaler",
        "pod didn't trigger scale-up: max",
      ),
    );
    const failure = await failureOf(t, 10);
    expect(failure?.kind).toBe("unschedulable");
    expect(failure?.message).toMatch(
      /cannot be scheduled: 0\/1 nodes .*; cluster-autoscaler \(NotTriggerScaleUp\): pod didn't trigger scale-up: max \(check/,
    );
    t.stop();
  });

  test("schedule-timeout bounds the wait, with the cluster's last words", async () => {
    const { t } = noticing(20, 150);
    t.podUpdated(unschedulable);
    t.eventSeen(autoscalerEvent("Nominated", "karpenter", "Pod should schedule on: nodeclaim/a"));
    const failure = await failureOf(t, 1000);
    expect(failure?.kind).toBe("schedule-timeout");
    expect(failure?.message).toBe(
      "the build pod did not start within schedule-timeout (150ms): karpenter (Nominated): Pod should schedule on: nodeclaim/a; the scheduler: 0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector.",
    );
    t.stop();
  });

  test("a pod whose first container runs is past schedule-timeout", async () => {
    const { t } = noticing(20, 100);
    t.podUpdated(pendingPod());
    t.podUpdated(
      pendingPod({
        initContainerStatuses: [
          {
            name: "context",
            image: "busybox",
            imageID: "",
            ready: false,
            restartCount: 0,
            state: { running: { startedAt: new Date() } },
          },
        ],
      }),
    );
    expect(await failureOf(t, 300)).toBeUndefined();
    t.stop();
  });
});

describe("pods the node ended", () => {
  function failedPod(reason: string, message: string, started = false): V1Pod {
    return {
      metadata: { name: "kib-x-abcde", uid: "u1" },
      status: {
        phase: "Failed",
        reason,
        message,
        ...(started
          ? {
              containerStatuses: [
                {
                  name: "build",
                  image: "kaniko",
                  imageID: "",
                  ready: false,
                  restartCount: 0,
                  state: { terminated: { exitCode: 2, reason: "Error" } },
                },
              ],
            }
          : {}),
      },
    };
  }

  test.each<[string, V1Pod, string, string]>([
    [
      "OutOfmemory at admission",
      failedPod(
        "OutOfmemory",
        "Pod was rejected: Node didn't have enough resource: memory, requested: 68719476736, used: 0, capacity: 8227614720",
      ),
      "pod-rejected",
      "the node's kubelet rejected the build pod (OutOfmemory): Node didn't have enough resource: memory, requested: 68719476736, used: 0, capacity: 8227614720; lower the memory request in resources, or choose nodes that have it with node-selector",
    ],
    [
      "NodeAffinity at admission",
      failedPod("NodeAffinity", "Pod was rejected: Predicate NodeAffinity failed"),
      "pod-rejected",
      "the node's kubelet rejected the build pod (NodeAffinity): Predicate NodeAffinity failed; the node's labels no longer match the pod's; check node-selector",
    ],
    [
      "UnexpectedAdmissionError",
      failedPod(
        "UnexpectedAdmissionError",
        "Pod was rejected: Allocate failed due to no healthy devices present; cannot allocate unhealthy devices nvidia.com/gpu, which is unexpected",
      ),
      "pod-rejected",
      "the node's kubelet rejected the build pod (UnexpectedAdmissionError): Allocate failed due to no healthy devices present; cannot allocate unhealthy devices nvidia.com/gpu, which is unexpected",
    ],
    [
      "evicted under memory pressure",
      failedPod("Evicted", "The node was low on resource: memory. ", true),
      "evicted",
      'the build pod was evicted by its node: The node was low on resource: memory.; request the memory the build needs in resources, e.g. "requests: {memory: 4Gi}", so it lands on a node that has it',
    ],
    [
      "a graceful node shutdown",
      failedPod("Terminated", "Pod was terminated in response to imminent node shutdown.", true),
      "pod-deleted",
      "the build pod was stopped by its node (Terminated): Pod was terminated in response to imminent node shutdown.",
    ],
  ])("%s", async (_name, pod, kind, message) => {
    const { t } = tracker(60_000);
    t.podUpdated(pod);
    const failure = await failureOf(t, 10);
    expect(failure?.kind).toBe(kind);
    expect(failure?.message).toBe(message);
  });

  test("a failed pod without a reason (a container exited) is not the node's doing", () => {
    const pod = failedPod("", "", true);
    delete pod.status!.reason;
    expect(podEndedByNode(pod)).toBeUndefined();
  });
});
