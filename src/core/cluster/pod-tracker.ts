/**
 * What the watches say about the build pod, and what it means over time: the receiver and builder
 * container states, when a Pending problem (pod-problems.ts) has lasted long enough to fail the
 * build, a pod its node rejected or evicted, and whether a node autoscaler is adding capacity for
 * it (then the pod may wait up to schedule-timeout). Fed by the pod and event watches; no I/O.
 */
import type {
  CoreV1Event,
  V1ContainerStatus,
  V1ContainerStateTerminated,
  V1Pod,
} from "@kubernetes/client-node";
import { BuildFailure } from "../errors.js";
import {
  anyContainerStarted,
  capacitySignal,
  eventProblem,
  findContainer,
  podEndedByNode,
  podProblems,
  type CapacitySignal,
  type PendingProblem,
} from "./pod-problems.js";

type Waiter = () => boolean;

export interface PodTrackerOptions {
  /** How long a Pending problem may last before the build fails. */
  pendingGraceMs: number;
  /**
   * How long the pod may take from its creation until its first container runs (scheduling, a
   * node being added, image pulls): the schedule-timeout input. Unset: no limit here.
   */
  scheduleTimeoutMs?: number;
  /** schedule-timeout as the user wrote it, for messages ("10m"). */
  scheduleTimeoutText?: string;
  /** A problem, once per problem (the scheduler's words once per distinct message). */
  onProblem(problem: PendingProblem): void;
  /** What the cluster says about capacity, once per distinct message. */
  onNotice?(message: string, level: "info" | "warn"): void;
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
  /** The last thing a node autoscaler said about this pod (the latest event wins). */
  private capacity: CapacitySignal | undefined;
  private announcedWaiting = false;
  private scheduleTimer: NodeJS.Timeout | undefined;
  private podStarted = false;
  /** The kubelet's last word while Pending (e.g. "Pulling image …"), for a schedule-timeout. */
  private lastKubeletWords: string | undefined;
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
    const ended = podEndedByNode(pod);
    if (ended) {
      this.fail(ended);
      return;
    }
    if (!this.podStarted && (anyContainerStarted(pod) || !this.isPending())) {
      this.podStarted = true;
      clearTimeout(this.scheduleTimer);
    } else if (!this.podStarted && !this.scheduleTimer) {
      this.armScheduleTimeout();
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
    const signal = this.isPending() ? capacitySignal(event) : undefined;
    if (signal) this.capacityChanged(signal);
    if (event.source?.component === "kubelet" && event.type === "Normal" && event.message)
      this.lastKubeletWords = `kubelet (${event.reason ?? ""}): ${event.message}`;
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
    clearTimeout(this.scheduleTimer);
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
    clearTimeout(this.scheduleTimer);
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
    // The scheduler's words are printed each time they change (a node being added changes them).
    const reportKey =
      problem.kind === "unschedulable" ? `${problem.key}\n${problem.message}` : problem.key;
    if (!this.reported.has(reportKey)) {
      this.reported.add(reportKey);
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
        if (current.problem.kind === "unschedulable") {
          // A node autoscaler is adding a node: scheduling may still succeed; schedule-timeout bounds it.
          if (this.capacity?.adding) return;
          this.fail(this.unschedulableFailure(current.problem));
          return;
        }
        this.fail(current.problem);
      },
      Math.max(remaining, 1),
    );
    entry.timer.unref?.();
  }

  /** A node autoscaler spoke: print its words once, and fail an unschedulable pod it will not help. */
  private capacityChanged(signal: CapacitySignal): void {
    this.capacity = signal;
    if (!this.reported.has(`capacity\n${signal.words}`)) {
      this.reported.add(`capacity\n${signal.words}`);
      this.options.onNotice?.(signal.words, signal.adding ? "info" : "warn");
    }
    if (signal.adding && !this.announcedWaiting) {
      this.announcedWaiting = true;
      const limit = this.options.scheduleTimeoutText;
      this.options.onNotice?.(
        `A node is being added: waiting${limit ? ` up to ${limit} (schedule-timeout)` : ""} for the pod to be scheduled and start`,
        "info",
      );
    }
    if (signal.adding || this.failure) return;
    // Nothing is coming: an unschedulable pod past its grace fails now, within it at its end.
    const entry = this.problems.get("unschedulable");
    if (entry && this.now() - entry.since >= this.options.pendingGraceMs)
      this.fail(this.unschedulableFailure(entry.problem));
  }

  /** The scheduler's words, what the autoscaler said (or that none spoke), and what to check. */
  private unschedulableFailure(problem: PendingProblem): PendingProblem {
    const autoscaler = this.capacity?.words ?? "no node autoscaler said it is adding a node";
    return {
      ...problem,
      message: `the build pod cannot be scheduled: ${problem.detail ?? "no node fits"}; ${autoscaler} (check node-selector, tolerations and resources)`,
    };
  }

  /** schedule-timeout, from the first sight of the pod until its first container runs. */
  private armScheduleTimeout(): void {
    const limit = this.options.scheduleTimeoutMs;
    if (limit === undefined) return;
    const started = this.now();
    const fire = () => {
      if (this.failure || this.podStarted) return;
      const remaining = limit - (this.now() - started);
      if (remaining > 0) {
        this.scheduleTimer = setTimeout(fire, Math.max(remaining, 1));
        this.scheduleTimer.unref?.();
        return;
      }
      this.fail({
        kind: "schedule-timeout",
        key: "schedule-timeout",
        message: `the build pod did not start within schedule-timeout (${this.options.scheduleTimeoutText ?? `${Math.round(limit / 1000)}s`}): ${this.lastWords()}`,
        immediate: true,
      });
    };
    this.scheduleTimer = setTimeout(fire, Math.max(limit, 1));
    this.scheduleTimer.unref?.();
  }

  /** What the cluster said last about the waiting pod. */
  private lastWords(): string {
    const words: string[] = [];
    if (this.capacity) words.push(this.capacity.words);
    const scheduler = this.problems.get("unschedulable")?.problem.detail;
    if (scheduler) words.push(`the scheduler: ${scheduler}`);
    else if (this.lastKubeletWords) words.push(this.lastKubeletWords);
    return words.length ? words.join("; ") : "the pod is still Pending";
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
