/**
 * What the watches say about the build pod, and what it means: the receiver and builder
 * container states, Pending problems (image pull, scheduling, mounts, container config) and when
 * a problem has lasted long enough to fail the build. Fed by the pod and event watches; no I/O.
 */
import type {
  CoreV1Event,
  V1ContainerStatus,
  V1ContainerStateTerminated,
  V1Pod,
} from "@kubernetes/client-node";
import { BuildFailure, type FailureKind } from "../errors.js";

export interface PendingProblem {
  kind: FailureKind;
  /** Stable key: one warning per key. */
  key: string;
  message: string;
  /** Fail at once (a missing image), or only after the grace period (may clear by itself). */
  immediate: boolean;
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
    problems.push({
      kind: "unschedulable",
      key: "unschedulable",
      message: `the build pod cannot be scheduled: ${scheduled.message ?? "no node fits"} (check node-selector, tolerations and resources)`,
      immediate: false,
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
      return {
        kind: podSecurity ? "pod-security" : "api",
        key: "pod-create",
        message: `the Job cannot create its pod: ${detail}`,
        // Admission will refuse the same pod again; a quota may free up.
        immediate: podSecurity,
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

type Waiter = () => boolean;

export interface PodTrackerOptions {
  /** How long a Pending problem may last before the build fails. */
  pendingGraceMs: number;
  onProblem(problem: PendingProblem): void;
  now?: () => number;
}

export class PodTracker {
  pod: V1Pod | undefined;
  /** The pod was deleted (DELETED event) or is being deleted (deletionTimestamp). */
  deleting = false;
  gone = false;
  /** The containers that had not ended when the pod's deletion was first seen (deletion stopped them). */
  runningAtDeletion: ReadonlySet<string> | undefined;
  failure: BuildFailure | undefined;
  private scaleUpTriggered = false;
  private readonly problems = new Map<
    string,
    { problem: PendingProblem; since: number; timer?: NodeJS.Timeout }
  >();
  private readonly reported = new Set<string>();
  private readonly waiters = new Set<Waiter>();
  private readonly now: () => number;

  constructor(private readonly options: PodTrackerOptions) {
    this.now = options.now ?? (() => performance.now());
  }

  podUpdated(pod: V1Pod, deleted = false): void {
    if (this.pod?.metadata?.uid && pod.metadata?.uid && pod.metadata.uid !== this.pod.metadata.uid)
      return;
    // The first sight of the deletion: what still ran then did not end on its own.
    if (!this.deleting && (pod.metadata?.deletionTimestamp || deleted)) {
      const statuses = [
        ...(this.pod?.status?.initContainerStatuses ?? []),
        ...(this.pod?.status?.containerStatuses ?? []),
      ];
      this.runningAtDeletion = new Set(
        statuses.filter((status) => !status.state?.terminated).map((status) => status.name),
      );
    }
    this.pod = pod;
    if (pod.metadata?.deletionTimestamp) this.deleting = true;
    if (deleted) {
      this.deleting = true;
      this.gone = true;
    }
    if (this.isPending()) {
      const current = podProblems(pod);
      const keys = new Set(current.map((problem) => problem.key));
      // A problem of the pod's status that cleared (an image that finally pulled) is forgotten.
      for (const [key, entry] of this.problems) {
        if (!key.startsWith("mount") && !keys.has(key) && !this.isEventOnly(key)) {
          clearTimeout(entry.timer);
          this.problems.delete(key);
        }
      }
      for (const problem of current) this.noteProblem(problem);
    } else {
      this.clearProblems();
    }
    this.notify();
  }

  eventSeen(event: CoreV1Event): void {
    if (event.reason === "TriggeredScaleUp") this.scaleUpTriggered = true;
    const problem = eventProblem(event);
    if (problem && this.isPending()) {
      const existing = this.problems.get(problem.key);
      if (existing && problem.kind === "image-pull") {
        // The event names the registry's answer; keep the first-seen time.
        existing.problem = {
          ...problem,
          immediate: problem.immediate || existing.problem.immediate,
        };
        if (existing.problem.immediate) this.fail(existing.problem);
      } else {
        this.noteProblem(problem);
      }
    }
    this.notify();
  }

  /** Fails the build from outside (a watch that cannot go on, cancellation). */
  fail(problemOrFailure: PendingProblem | BuildFailure): void {
    if (this.failure) return;
    this.failure =
      problemOrFailure instanceof BuildFailure
        ? problemOrFailure
        : new BuildFailure(problemOrFailure.kind, problemOrFailure.message);
    this.clearProblems();
    this.notify();
  }

  /** Resolves when check() holds; rejects with the failure if one comes first. */
  until(check: () => boolean, timeoutMs?: number): Promise<boolean> {
    return new Promise<boolean>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const waiter: Waiter = () => {
        if (this.failure) {
          clearTimeout(timer);
          reject(this.failure);
          return true;
        }
        if (check()) {
          clearTimeout(timer);
          resolve(true);
          return true;
        }
        return false;
      };
      if (waiter()) return;
      this.waiters.add(waiter);
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => {
          this.waiters.delete(waiter);
          resolve(false);
        }, timeoutMs);
      }
    });
  }

  container(name: string): V1ContainerStatus | undefined {
    return findContainer(this.pod, name);
  }

  running(name: string): boolean {
    return Boolean(this.container(name)?.state?.running);
  }

  terminated(name: string): V1ContainerStateTerminated | undefined {
    return this.container(name)?.state?.terminated;
  }

  /** The pod reached a final phase (Failed or Succeeded), whether or not its containers ran. */
  get ended(): boolean {
    const phase = this.pod?.status?.phase;
    return phase === "Failed" || phase === "Succeeded";
  }

  started(name: string): boolean {
    return this.running(name) || Boolean(this.terminated(name));
  }

  stop(): void {
    this.clearProblems();
    this.waiters.clear();
  }

  private isPending(): boolean {
    return !this.deleting && (this.pod?.status?.phase ?? "Pending") === "Pending";
  }

  private isEventOnly(key: string): boolean {
    return key === "mount";
  }

  private noteProblem(problem: PendingProblem): void {
    if (this.failure) return;
    if (!this.reported.has(problem.key)) {
      this.reported.add(problem.key);
      this.options.onProblem(problem);
    }
    if (problem.immediate) {
      this.fail(problem);
      return;
    }
    const existing = this.problems.get(problem.key);
    if (existing) {
      existing.problem = problem;
      return;
    }
    const entry: { problem: PendingProblem; since: number; timer?: NodeJS.Timeout } = {
      problem,
      since: this.now(),
    };
    this.problems.set(problem.key, entry);
    this.armTimer(problem.key);
  }

  /** Re-armed for the remainder when a timer fires early: Node's timers and the clock can disagree by a few ms. */
  private armTimer(key: string): void {
    const entry = this.problems.get(key);
    if (!entry) return;
    const remaining = this.options.pendingGraceMs - (this.now() - entry.since);
    entry.timer = setTimeout(
      () => {
        const current = this.problems.get(key);
        if (!current || this.failure) return;
        if (this.now() - current.since < this.options.pendingGraceMs) {
          this.armTimer(key);
          return;
        }
        // The cluster autoscaler is adding a node: scheduling may still succeed; the deadline bounds it.
        if (current.problem.kind === "unschedulable" && this.scaleUpTriggered) return;
        this.fail(current.problem);
      },
      Math.max(remaining, 1),
    );
    entry.timer.unref?.();
  }

  private clearProblems(): void {
    for (const entry of this.problems.values()) clearTimeout(entry.timer);
    this.problems.clear();
  }

  private notify(): void {
    for (const waiter of [...this.waiters]) {
      if (waiter()) this.waiters.delete(waiter);
    }
  }
}
