/** Pending problems: which fail at once, which after the grace period, which not at all. */
import type { CoreV1Event, V1Pod } from "@kubernetes/client-node";
import { BuildFailure } from "../../src/core/errors.js";
import { PodTracker, type PendingProblem } from "../../src/core/cluster/pod-tracker.js";

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
