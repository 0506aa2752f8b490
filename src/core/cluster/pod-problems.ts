/**
 * What the cluster's objects say about a build pod that has not built yet, read without state:
 * Pending problems in the pod (scheduling, image pulls, container config) and in its events
 * (mounts, admission), what a node autoscaler says about capacity, and a pod its node rejected,
 * evicted or stopped. The tracker (pod-tracker.ts) decides when each ends the build.
 */
import type { CoreV1Event, V1ContainerStatus, V1Pod } from "@kubernetes/client-node";
import type { FailureKind } from "../errors.js";

export interface PendingProblem {
  kind: FailureKind;
  /** Stable key: one warning per key. */
  key: string;
  message: string;
  /** Fail at once (a missing image), or only after the grace period (may clear by itself). */
  immediate: boolean;
  /** The cluster's own words, where the message wraps them (the scheduler's, for unschedulable). */
  detail?: string;
}

/** What a node autoscaler's event on the pod says: a node is coming, or none will. */
export interface CapacitySignal {
  adding: boolean;
  /** "<component> (<reason>): <message>", e.g. "karpenter (Nominated): Pod should schedule on: nodeclaim/default-x7k2p". */
  words: string;
}

const IMAGE_NOT_FOUND = /not found|notfound|manifest unknown|name unknown|InvalidImageName/i;

function containerStatuses(pod: V1Pod): V1ContainerStatus[] {
  return [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])];
}

export function findContainer(pod: V1Pod | undefined, name: string): V1ContainerStatus | undefined {
  return pod ? containerStatuses(pod).find((status) => status.name === name) : undefined;
}

/** Problems visible in the pod object itself. */
export function podProblems(pod: V1Pod): PendingProblem[] {
  const problems: PendingProblem[] = [];
  const scheduled = pod.status?.conditions?.find((condition) => condition.type === "PodScheduled");
  if (scheduled?.status === "False" && scheduled.reason === "Unschedulable") {
    const words = scheduled.message ?? "no node fits";
    problems.push({
      kind: "unschedulable",
      key: "unschedulable",
      message: `the build pod cannot be scheduled: ${words}`,
      immediate: false,
      detail: words,
    });
  }
  for (const status of containerStatuses(pod)) {
    const waiting = status.state?.waiting;
    if (!waiting?.reason) continue;
    const where = `container "${status.name}"`;
    switch (waiting.reason) {
      case "ErrImagePull":
      case "ImagePullBackOff":
      case "InvalidImageName":
        problems.push({
          kind: "image-pull",
          key: `image-pull:${status.name}`,
          message: `image "${status.image}" for ${where} cannot be pulled: ${waiting.message ?? waiting.reason}`,
          immediate:
            waiting.reason === "InvalidImageName" || IMAGE_NOT_FOUND.test(waiting.message ?? ""),
        });
        break;
      case "CreateContainerConfigError":
      case "CreateContainerError":
      case "RunContainerError":
        problems.push({
          kind: "container-config",
          key: `config:${status.name}`,
          message: `${where} cannot start: ${waiting.message ?? waiting.reason}`,
          immediate: false,
        });
        break;
      default:
        break;
    }
  }
  return problems;
}

/** Problems only events tell (volume mounts), and better wording for image pulls. */
export function eventProblem(event: CoreV1Event): PendingProblem | undefined {
  if (event.type !== "Warning") return undefined;
  const message = event.message ?? event.reason ?? "";
  switch (event.reason) {
    case "FailedMount":
    case "FailedAttachVolume":
      return {
        kind: "mount",
        key: "mount",
        message: `a volume cannot be mounted: ${message}`,
        immediate: false,
      };
    case "FailedCreate": {
      // On the Job: the pod itself was refused (Pod Security admission, quota, LimitRange).
      const detail = message.replace(/^Error creating: /, "");
      const podSecurity = /violates PodSecurity/.test(detail);
      // A quota that needs requests or limits the pod does not state refuses the same pod every
      // time; one whose room is used up ("exceeded quota") may free up.
      const quotaNeedsResources = /failed quota: .*must specify /.test(detail);
      return {
        kind: podSecurity ? "pod-security" : "api",
        key: "pod-create",
        message: `the Job cannot create its pod: ${detail}`,
        // Admission will refuse the same pod again.
        immediate: podSecurity || quotaNeedsResources,
      };
    }
    case "Failed":
      if (/^Failed to pull image/.test(message)) {
        const container = /\{(.+)\}/.exec(event.involvedObject?.fieldPath ?? "")?.[1] ?? "build";
        return {
          kind: "image-pull",
          key: `image-pull:${container}`,
          message: `${message}`,
          immediate: IMAGE_NOT_FOUND.test(message),
        };
      }
      return undefined;
    default:
      return undefined;
  }
}

/** Components that write Karpenter's events: Karpenter itself (also AKS node autoprovisioning) and EKS Auto Mode. */
const KARPENTER_COMPONENT = /karpenter|eks-auto-mode/i;

/**
 * Node autoscalers' events on a pod. A node is coming: cluster-autoscaler's (and GKE's)
 * `TriggeredScaleUp` "pod triggered scale-up: […]", Karpenter's, EKS Auto Mode's and AKS node
 * autoprovisioning's `Nominated` "Pod should schedule on: nodeclaim/…". None is: cluster-autoscaler's
 * `NotTriggerScaleUp` "pod didn't trigger scale-up: …", GKE's `FailedScaleUp` (e.g. "GCE out of
 * resources"), and Karpenter's own `FailedScheduling` ("Failed to schedule pod, …" — the
 * scheduler's FailedScheduling is not an autoscaler's verdict and is read from the pod instead).
 */
export function capacitySignal(event: CoreV1Event): CapacitySignal | undefined {
  const component =
    event.source?.component || event.reportingComponent || "the cluster's node autoscaler";
  const words = `${component} (${event.reason ?? ""}): ${event.message ?? ""}`.trim();
  switch (event.reason) {
    case "TriggeredScaleUp":
    case "Nominated":
      return { adding: true, words };
    case "NotTriggerScaleUp":
    case "FailedScaleUp":
      return { adding: false, words };
    case "FailedScheduling":
      return KARPENTER_COMPONENT.test(component) ? { adding: false, words } : undefined;
    default:
      return undefined;
  }
}

export function anyContainerStarted(pod: V1Pod): boolean {
  return containerStatuses(pod).some((status) =>
    Boolean(status.state?.running || status.state?.terminated),
  );
}

/** What to change when the kubelet refused the pod for a resource (reason OutOf<resource>). */
function rejectionHint(reason: string): string {
  if (reason === "NodeAffinity")
    return "the node's labels no longer match the pod's; check node-selector";
  const resource = /^OutOf(.+)$/.exec(reason)?.[1];
  if (resource === "pods")
    return "the node runs all the pods it may; choose other nodes with node-selector";
  if (resource)
    return `lower the ${resource} request in resources, or choose nodes that have it with node-selector`;
  return "";
}

/** What to change after an eviction, by the resource the kubelet names. */
function evictionHint(message: string): string {
  if (/ephemeral|nodefs|imagefs|disk/i.test(message))
    return 'give the build more local disk with ephemeral-storage in resources, e.g. "requests: {ephemeral-storage: 10Gi}" and "limits: {ephemeral-storage: 20Gi}"';
  if (/memory/i.test(message))
    return 'request the memory the build needs in resources, e.g. "requests: {memory: 4Gi}", so it lands on a node that has it';
  return "";
}

/**
 * A pod its node ended, in the kubelet's words: `status.reason` is set only when the node (not a
 * container's exit) ended the pod. Admission rejections (OutOfcpu, OutOfmemory, NodeAffinity,
 * UnexpectedAdmissionError, …) fail the pod before any container ran; an eviction (Evicted) stops
 * it wherever it was, and its containers — with their logs — are removed with it.
 */
export function podEndedByNode(pod: V1Pod): PendingProblem | undefined {
  const reason = pod.status?.reason;
  if (pod.status?.phase !== "Failed" || !reason) return undefined;
  const message = (pod.status?.message ?? "").trim();
  const withHint = (text: string, hint: string) => (hint ? `${text}; ${hint}` : text);
  if (reason === "Evicted") {
    return {
      kind: "evicted",
      key: "ended",
      message: withHint(
        `the build pod was evicted by its node: ${message || reason}`,
        evictionHint(message),
      ),
      immediate: true,
    };
  }
  if (!anyContainerStarted(pod)) {
    const words = message.replace(/^Pod was rejected: /, "") || reason;
    return {
      kind: "pod-rejected",
      key: "ended",
      message: withHint(
        `the node's kubelet rejected the build pod (${reason}): ${words}`,
        rejectionHint(reason),
      ),
      immediate: true,
    };
  }
  return {
    kind: "pod-deleted",
    key: "ended",
    message: `the build pod was stopped by its node (${reason})${message ? `: ${message}` : ""}`,
    immediate: true,
  };
}
