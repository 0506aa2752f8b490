/**
 * Scenarios composed from real recordings where no single recording shows the case: a pod that
 * waits for a node an autoscaler is adding. Every object is a recorded one (the unschedulable pod,
 * the scheduler's FailedScheduling event, the kubelet's legacy-recorder event shape, the cold
 * build from the moment it was scheduled); what is added are the autoscalers' events as they
 * write them — reason, type, source component and message — and the times between them.
 *
 * - Karpenter (also EKS Auto Mode and AKS node autoprovisioning): `Normal Nominated`, source
 *   `karpenter` (EKS Auto Mode: `eks-auto-mode/compute`), "Pod should schedule on: nodeclaim/<name>";
 *   its node registers with the `karpenter.sh/unregistered` taint, so the scheduler's message
 *   changes before the pod is bound; nodes take 30–90 s.
 * - cluster-autoscaler (also GKE's): `Normal TriggeredScaleUp` "pod triggered scale-up: [{<group>
 *   <from>-><to> (max: <max>)}]", or `Normal NotTriggerScaleUp` "pod didn't trigger scale-up: …"
 *   when no node group would help; its new node is first `node.kubernetes.io/not-ready`.
 */
import type { LogLine, Recording, RecordingParts, WatchLine } from "./recordings.js";

type Load = (name: string) => Recording;
type Assemble = (parts: RecordingParts) => Recording;

/** When the added node is ready and the scheduler binds the pod, after the pod's creation. */
export const NODE_READY_AFTER_MS = 60_000;

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;

function isoSeconds(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace(".000Z", "Z");
}

/** Deep copy with every string rewritten (names, uids) and every timestamp moved by offsetMs. */
function rewrite(o: any, replace: Array<[string, string]>, offsetMs: number): any {
  if (typeof o === "string") {
    if (ISO.test(o)) {
      const frac = /\.(\d+)Z$/.exec(o)?.[1];
      const ms = Date.parse(o) + offsetMs;
      if (!frac) return isoSeconds(ms);
      // Whole milliseconds moved; the recorded sub-millisecond digits kept.
      return new Date(ms).toISOString().replace(/Z$/, `${frac.slice(3)}Z`);
    }
    let s = o;
    for (const [from, to] of replace) s = s.split(from).join(to);
    return s;
  }
  if (Array.isArray(o)) return o.map((x) => rewrite(x, replace, offsetMs));
  if (o && typeof o === "object") {
    const out: any = {};
    for (const [k, v] of Object.entries(o)) out[k] = rewrite(v, replace, offsetMs);
    return out;
  }
  return o;
}

function clone<T>(o: T): T {
  return JSON.parse(JSON.stringify(o)) as T;
}

let eventSeq = 0;

/** An event on the pod as a legacy recorder (kubelet, cluster-autoscaler, Karpenter) writes it. */
function legacyEvent(
  base: Recording,
  at: number,
  e: { reason: string; message: string; type: string; component: string; count?: number },
  name?: string,
): any {
  const pod = base.pods[0]!.object;
  const stamp = isoSeconds(at);
  return {
    kind: "Event",
    apiVersion: "v1",
    metadata: {
      name: name ?? `${pod.metadata.name}.18edf${(0xa000000 + ++eventSeq).toString(16)}`,
      namespace: pod.metadata.namespace,
      creationTimestamp: stamp,
    },
    involvedObject: {
      kind: "Pod",
      namespace: pod.metadata.namespace,
      name: pod.metadata.name,
      uid: pod.metadata.uid,
      apiVersion: "v1",
      resourceVersion: pod.metadata.resourceVersion,
    },
    reason: e.reason,
    message: e.message,
    source: { component: e.component },
    firstTimestamp: stamp,
    lastTimestamp: stamp,
    count: e.count ?? 1,
    type: e.type,
    eventTime: null,
    reportingComponent: "",
    reportingInstance: "",
  };
}

/** The unschedulable recording up to (not including) its delete: a pod no node fits. */
function unschedulableStart(load: Load): {
  base: Recording;
  pods: WatchLine[];
  events: WatchLine[];
} {
  const base = load("kaniko-unschedulable");
  const pods = base.pods.filter((p) => p.t < base.deletionT && p.type !== "DELETED");
  const events = base.events.filter((e) => e.t < base.deletionT);
  return { base, pods: clone(pods), events: clone(events) };
}

/** The scheduler's recorded FailedScheduling event and the pod's condition, with a new message. */
function schedulerSays(
  base: Recording,
  pods: WatchLine[],
  events: WatchLine[],
  at: number,
  message: string,
): void {
  const recordedEvent = base.events.find((e) => e.object.reason === "FailedScheduling")!;
  const event = clone(recordedEvent.object);
  event.metadata.name = `${event.metadata.name}-${++eventSeq}`;
  event.message = message;
  events.push({ t: at, type: "ADDED", object: event });
  const frame = clone(pods[pods.length - 1]!);
  const condition = frame.object.status.conditions.find((c: any) => c.type === "PodScheduled");
  condition.message = message;
  condition.lastProbeTime = null;
  pods.push({ t: at, type: "MODIFIED", object: frame.object });
}

interface CapacitySignal {
  reason: string;
  component: string;
  message: string;
  /** The taint the scheduler sees on the new node before it is ready. */
  notReadyTaint: string;
}

/** Unschedulable, the autoscaler says a node is coming, the node registers, the pod is bound and builds. */
function capacityThenScheduled(signal: CapacitySignal) {
  return (load: Load, assemble: Assemble): Recording => {
    const { base, pods, events } = unschedulableStart(load);
    const t0 = base.t0;
    const nominated = legacyEvent(base, t0 + 1_100, { ...signal, type: "Normal" });
    events.push({ t: t0 + 1_100, type: "ADDED", object: nominated });
    // The same words again later: an event update (count 2), not a new message.
    const again = clone(nominated);
    again.count = 2;
    again.lastTimestamp = isoSeconds(t0 + 21_100);
    events.push({ t: t0 + 21_100, type: "MODIFIED", object: again });
    const scheduledMessage = `0/2 nodes are available: 1 node(s) had untolerated taint {${signal.notReadyTaint}: }, 1 node(s) didn't match Pod's node affinity/selector. preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling..`;
    schedulerSays(base, pods, events, t0 + 45_000, scheduledMessage);

    // From here the recorded cold build, from the frame where the scheduler bound it.
    const cold = load("kaniko-success-cold");
    const boundIdx = cold.pods.findIndex((p) =>
      (p.object.status?.conditions ?? []).some(
        (c: any) => c.type === "PodScheduled" && c.status === "True",
      ),
    );
    const bound = cold.pods[boundIdx]!;
    const offset = t0 + NODE_READY_AFTER_MS - bound.t;
    const replace: Array<[string, string]> = [
      [cold.podName, base.podName],
      [cold.podUid, base.podUid],
      [cold.jobName, base.jobName],
      [cold.jobUid, base.jobUid],
    ];
    for (const p of cold.pods.slice(boundIdx)) {
      pods.push({ t: p.t + offset, type: p.type, object: rewrite(p.object, replace, offset) });
    }
    for (const e of cold.events) {
      if (e.t < bound.t) continue;
      events.push({ t: e.t + offset, type: e.type, object: rewrite(e.object, replace, offset) });
    }
    const logs: Record<string, LogLine[]> = {};
    for (const [container, lines] of Object.entries(cold.logs))
      logs[container] = lines.map((l) => ({ ...l, t: l.t + offset }));
    events.sort((a, b) => a.t - b.t);
    return assemble({
      name: `composed: ${signal.reason} then scheduled`,
      job: base.job,
      pods,
      events,
      logs,
      logsRemoved: false,
    });
  };
}

/** Unschedulable, with one autoscaler event at `at` ms after creation, and nothing ever after. */
function unschedulableWith(
  event: { reason: string; component: string; message: string },
  atMs: number,
) {
  return (load: Load, assemble: Assemble): Recording => {
    const { base, pods, events } = unschedulableStart(load);
    events.push({
      t: base.t0 + atMs,
      type: "ADDED",
      object: legacyEvent(base, base.t0 + atMs, { ...event, type: "Normal" }),
    });
    events.sort((a, b) => a.t - b.t);
    return assemble({
      name: `composed: unschedulable with ${event.reason}`,
      job: base.job,
      pods,
      events,
      logs: Object.fromEntries(Object.keys(base.logs).map((c) => [c, []])),
      logsRemoved: false,
    });
  };
}

export const KARPENTER_NOMINATED = {
  reason: "Nominated",
  component: "karpenter",
  message: "Pod should schedule on: nodeclaim/default-x7k2p",
};
export const EKS_AUTO_MODE_NOMINATED = {
  reason: "Nominated",
  component: "eks-auto-mode/compute",
  message: "Pod should schedule on: nodeclaim/general-purpose-q9wzt",
};
export const CLUSTER_AUTOSCALER_TRIGGERED = {
  reason: "TriggeredScaleUp",
  component: "cluster-autoscaler",
  message: "pod triggered scale-up: [{builds-pool 1->2 (max: 5)}]",
};
export const CLUSTER_AUTOSCALER_DECLINED = {
  reason: "NotTriggerScaleUp",
  component: "cluster-autoscaler",
  message: "pod didn't trigger scale-up: 1 node(s) didn't match Pod's node affinity/selector",
};

/** Composed scenarios by name, built from the recordings they start from. */
export const COMPOSED: Record<string, (load: Load, assemble: Assemble) => Recording> = {
  "composed-karpenter-nominated-then-scheduled": capacityThenScheduled({
    ...KARPENTER_NOMINATED,
    notReadyTaint: "karpenter.sh/unregistered",
  }),
  "composed-eks-auto-mode-nominated-then-scheduled": capacityThenScheduled({
    ...EKS_AUTO_MODE_NOMINATED,
    notReadyTaint: "karpenter.sh/unregistered",
  }),
  "composed-cluster-autoscaler-scale-up-then-scheduled": capacityThenScheduled({
    ...CLUSTER_AUTOSCALER_TRIGGERED,
    notReadyTaint: "node.kubernetes.io/not-ready",
  }),
  // Karpenter nominated a node claim that never becomes a node (e.g. the instance never joins).
  "composed-karpenter-nominated-never-scheduled": unschedulableWith(KARPENTER_NOMINATED, 1_100),
  // cluster-autoscaler's scan (every 10 s) finds no node group that would fit the pod.
  "composed-cluster-autoscaler-declines": unschedulableWith(CLUSTER_AUTOSCALER_DECLINED, 8_000),
};
