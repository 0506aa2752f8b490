/** kube-controller-manager's parts that matter here: the Job controller, the garbage collector, the TTL controller. */
import { randomBytes } from "node:crypto";
import { involvedOf, recordEvent } from "./events.js";
import { podSecurityMessage, podSecurityViolations } from "./pod-security.js";
import { quotaRefusal, type ResourceQuota } from "./quota.js";
import type { Kubelet, ScenarioOverrides } from "./kubelet.js";
import { clone, nowIso, type Resource, type Store, type StoreEvent } from "./store.js";

export const JOB_TRACKING_FINALIZER = "batch.kubernetes.io/job-tracking";
const ALNUM = "bcdfghjklmnpqrstvwxz2456789";

/** utilrand.String(5) as names.SimpleNameGenerator uses it. */
export function randomSuffix(n = 5): string {
  const b = randomBytes(n);
  return [...b].map((x) => ALNUM[x % ALNUM.length]).join("");
}

export interface ControllerOptions {
  timeScale: number;
  minor: number;
  pickScenario: (job: any) => { scenario: string; overrides: ScenarioOverrides };
  /** Fills pod defaults the API server applies on create. */
  defaultPod: (pod: any) => any;
  /**
   * Why the recording cannot be replayed for this pod (its shape differs), or undefined when it can.
   * A pod that may not be replayed fails at once, its status naming the differences.
   */
  /**
   * Whether the picked recording may be replayed for this pod: a refusal (the pod fails loudly), or
   * another recording that shows what a real cluster does with it, or undefined to go ahead.
   */
  replayRefusal?: (
    pod: any,
    scenario: string,
  ) => { refusal: string } | { replayInstead: string } | undefined;
}

interface JobState {
  counted: Set<string>;
  deadlineTimer?: NodeJS.Timeout;
  ttlTimer?: NodeJS.Timeout;
  finished: boolean;
  pods: string[];
}

export class Controllers {
  private readonly jobs = new Map<string, JobState>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private closed = false;
  private readonly unsubscribe: () => void;
  /** Every pod name ever created, per namespace, in creation order. */
  readonly podHistory = new Map<string, string[]>();
  /** ResourceQuotas by namespace (admission only: the API does not serve them). */
  readonly quotas = new Map<string, ResourceQuota[]>();

  constructor(
    private readonly store: Store,
    private readonly kubelet: Kubelet,
    private readonly opts: ControllerOptions,
  ) {
    this.unsubscribe = store.subscribe((e) => this.onEvent(e));
  }

  close(): void {
    this.closed = true;
    this.unsubscribe();
    for (const t of this.timers) clearTimeout(t);
    for (const j of this.jobs.values()) {
      if (j.deadlineTimer) clearTimeout(j.deadlineTimer);
      if (j.ttlTimer) clearTimeout(j.ttlTimer);
    }
  }

  private later(ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      if (!this.closed) fn();
    }, ms);
    this.timers.add(t);
  }

  /** Controller latency: recorded milliseconds × timeScale. */
  private soon(recordedMs: number, fn: () => void): void {
    this.later(Math.max(1, recordedMs * this.opts.timeScale), fn);
  }

  private onEvent(e: StoreEvent): void {
    if (e.resource === "pods" && e.type === "ADDED") {
      const list = this.podHistory.get(e.object.metadata.namespace) ?? [];
      list.push(e.object.metadata.name);
      this.podHistory.set(e.object.metadata.namespace, list);
    }
    if (e.resource === "jobs") this.onJob(e);
    if (e.resource === "pods" && e.type !== "DELETED") this.onPod(e.object);
    this.gc(e);
  }

  // ---------------------------------------------------------------- Job controller

  private onJob(e: StoreEvent): void {
    const job = e.object;
    const uid = job.metadata.uid;
    if (e.type === "ADDED") {
      this.jobs.set(uid, { counted: new Set(), finished: false, pods: [] });
      if (!job.spec.suspend) this.soon(12, () => this.createPod(uid));
      return;
    }
    const st = this.jobs.get(uid);
    if (e.type === "DELETED" || job.metadata.deletionTimestamp) {
      if (st?.deadlineTimer) clearTimeout(st.deadlineTimer);
      if (st?.ttlTimer) clearTimeout(st.ttlTimer);
      // Pods of a Job that is going away lose the tracking finalizer (the controller won't count them).
      this.soon(3, () => {
        for (const p of this.store.list("pods", job.metadata.namespace)) {
          if (
            p.metadata.ownerReferences?.some((o: any) => o.uid === uid) ||
            p.metadata.labels?.["controller-uid"] === uid
          )
            this.removeFinalizer(p);
        }
      });
      if (e.type === "DELETED") this.jobs.delete(uid);
    }
  }

  private findJob(uid: string): any | undefined {
    const hit = this.store.findByUid(uid);
    return hit?.resource === "jobs" ? hit.object : undefined;
  }

  private createPod(jobUid: string, attempt = 0): void {
    const job = this.findJob(jobUid);
    const st = this.jobs.get(jobUid);
    if (!job || !st || st.finished || job.metadata.deletionTimestamp) return;
    const ns = job.metadata.namespace;
    const tmpl = clone(job.spec.template);
    let name = `${job.metadata.name}-${randomSuffix()}`;
    while (this.store.get("pods", ns, name)) name = `${job.metadata.name}-${randomSuffix()}`;
    const pod = this.opts.defaultPod({
      metadata: {
        name,
        generateName: `${job.metadata.name}-`,
        namespace: ns,
        labels: { ...(tmpl.metadata?.labels ?? {}) },
        ...(tmpl.metadata?.annotations ? { annotations: { ...tmpl.metadata.annotations } } : {}),
        ownerReferences: [
          {
            apiVersion: "batch/v1",
            kind: "Job",
            name: job.metadata.name,
            uid: jobUid,
            controller: true,
            blockOwnerDeletion: true,
          },
        ],
        finalizers: [JOB_TRACKING_FINALIZER],
      },
      spec: tmpl.spec,
    });
    if (attempt === 0) {
      // The first sync starts the Job, whether or not its pod can be created; activeDeadlineSeconds
      // runs in real wall time from that startTime.
      this.store.mutate("jobs", ns, job.metadata.name, (j) => {
        j.status ??= {};
        j.status.startTime ??= nowIso();
      });
      if (job.spec.activeDeadlineSeconds && !st.deadlineTimer) {
        st.deadlineTimer = setTimeout(
          () => this.deadline(jobUid),
          job.spec.activeDeadlineSeconds * 1000,
        );
      }
    }
    // Pod Security or ResourceQuota admission refuses the pod: the Job controller records FailedCreate on the Job
    // and tries again with a growing back-off, as kube-controller-manager does.
    const namespace = this.store.get("namespaces", undefined, ns);
    const admission = podSecurityViolations(namespace?.metadata?.labels, pod);
    const refusal = admission.violations.length
      ? podSecurityMessage(name, admission.level, admission.violations)
      : quotaRefusal(this.quotas.get(ns) ?? [], name, pod);
    if (refusal !== undefined) {
      recordEvent(this.store, involvedOf(job), {
        reason: "FailedCreate",
        message: `Error creating: ${refusal}`,
        type: "Warning",
        component: "job-controller",
      });
      this.soon(Math.min(1000 * 2 ** attempt, 60_000), () => this.createPod(jobUid, attempt + 1));
      return;
    }
    const created = this.store.create("pods", pod);
    st.pods.push(created.metadata.uid);
    recordEvent(this.store, involvedOf(job), {
      reason: "SuccessfulCreate",
      message: `Created pod: ${name}`,
      type: "Normal",
      component: "job-controller",
    });
    const picked = this.opts.pickScenario(job);
    const overrides = picked.overrides;
    let scenario = picked.scenario;
    this.store.mutate("jobs", ns, job.metadata.name, (j) => {
      j.status ??= {};
      j.status.startTime ??= nowIso();
      j.status.active = (j.status.active ?? 0) + 1;
      j.status.uncountedTerminatedPods ??= {};
      j.status.ready ??= 0;
    });
    const verdict = this.opts.replayRefusal?.(created, scenario);
    if (verdict && "refusal" in verdict) {
      this.store.mutate("pods", ns, name, (p) => {
        p.status = {
          ...p.status,
          phase: "Failed",
          reason: "RecordingMismatch",
          message: verdict.refusal,
        };
      });
      return;
    }
    if (verdict) scenario = verdict.replayInstead;
    this.kubelet.start(created, job, scenario, overrides);
  }

  private removeFinalizer(p: any): void {
    if (!p.metadata.finalizers?.includes(JOB_TRACKING_FINALIZER)) return;
    this.store.mutate("pods", p.metadata.namespace, p.metadata.name, (x) => {
      x.metadata.finalizers = (x.metadata.finalizers ?? []).filter(
        (f: string) => f !== JOB_TRACKING_FINALIZER,
      );
    });
  }

  private onPod(pod: any): void {
    const ref = pod.metadata.ownerReferences?.find((o: any) => o.controller && o.kind === "Job");
    if (!ref) return;
    const st = this.jobs.get(ref.uid);
    const job = this.findJob(ref.uid);
    if (!st || !job) return;
    const ns = job.metadata.namespace;
    const phase = pod.status?.phase;
    const uid = pod.metadata.uid;
    if ((phase === "Succeeded" || phase === "Failed") && !st.counted.has(uid)) {
      st.counted.add(uid);
      const kind = phase === "Succeeded" ? "succeeded" : "failed";
      if (st.finished) {
        this.soon(5, () => this.removeFinalizer(pod));
        return;
      }
      this.soon(1010, () => {
        this.store.mutate("jobs", ns, job.metadata.name, (j) => {
          j.status.active = Math.max(0, (j.status.active ?? 1) - 1);
          if (j.status.active === 0) delete j.status.active;
          j.status.uncountedTerminatedPods = { [kind]: [uid] };
        });
        this.soon(3, () => {
          const p = this.store.get("pods", ns, pod.metadata.name);
          if (p) this.removeFinalizer(p);
          this.soon(9, () => this.finishCount(ref.uid, kind));
        });
      });
      return;
    }
    // Ready pods.
    const ready =
      (pod.status?.conditions ?? []).some((c: any) => c.type === "Ready" && c.status === "True") &&
      !pod.metadata.deletionTimestamp
        ? 1
        : 0;
    if (
      !st.finished &&
      !st.counted.has(uid) &&
      (job.status?.ready ?? 0) !== ready &&
      job.status?.active
    ) {
      this.soon(18, () =>
        this.store.mutate("jobs", ns, job.metadata.name, (j) => {
          if (j.status?.active) j.status.ready = ready;
        }),
      );
    }
  }

  private finishCount(jobUid: string, kind: "succeeded" | "failed"): void {
    const job = this.findJob(jobUid);
    const st = this.jobs.get(jobUid);
    if (!job || !st) return;
    const ns = job.metadata.namespace;
    const failed = (job.status.failed ?? 0) + (kind === "failed" ? 1 : 0);
    const succeeded = (job.status.succeeded ?? 0) + (kind === "succeeded" ? 1 : 0);
    const completions = job.spec.completions ?? 1;
    const now = nowIso();
    let outcome: "Complete" | "Failed" | "retry" | "running" = "running";
    if (succeeded >= completions) outcome = "Complete";
    else if (kind === "failed" && failed > (job.spec.backoffLimit ?? 6)) outcome = "Failed";
    else if (kind === "failed") outcome = "retry";
    if (outcome === "Complete")
      recordEvent(this.store, involvedOf(job), {
        reason: "Completed",
        message: "Job completed",
        type: "Normal",
        component: "job-controller",
      });
    if (outcome === "Failed")
      recordEvent(this.store, involvedOf(job), {
        reason: "BackoffLimitExceeded",
        message: "Job has reached the specified backoff limit",
        type: "Warning",
        component: "job-controller",
      });
    this.store.mutate("jobs", ns, job.metadata.name, (j) => {
      j.status.uncountedTerminatedPods = {};
      if (kind === "failed") j.status.failed = failed;
      else j.status.succeeded = succeeded;
      if (outcome === "Complete") {
        j.status.conditions = [
          ...(j.status.conditions ?? []),
          { type: "Complete", status: "True", lastProbeTime: now, lastTransitionTime: now },
        ];
        j.status.completionTime = now;
      } else if (outcome === "Failed") {
        j.status.conditions = [
          ...(j.status.conditions ?? []),
          {
            type: "Failed",
            status: "True",
            lastProbeTime: now,
            lastTransitionTime: now,
            reason: "BackoffLimitExceeded",
            message: "Job has reached the specified backoff limit",
          },
        ];
      }
      // Status fields in the order the real controller serialises them.
      j.status = orderStatus(j.status);
    });
    if (outcome === "Complete" || outcome === "Failed") this.finished(jobUid);
    if (outcome === "retry") {
      // Pod failure backoff: 10s, 20s, … (scaled like the recordings' delays).
      this.later(10000 * 2 ** (failed - 1) * this.opts.timeScale, () =>
        this.createPod(jobUid, failed),
      );
    }
  }

  private finished(jobUid: string): void {
    const st = this.jobs.get(jobUid);
    const job = this.findJob(jobUid);
    if (!st || !job) return;
    st.finished = true;
    if (st.deadlineTimer) clearTimeout(st.deadlineTimer);
    const ttl = job.spec.ttlSecondsAfterFinished;
    if (ttl !== undefined && ttl !== null) {
      // The TTL controller deletes finished Jobs with foreground propagation, in real time.
      st.ttlTimer = setTimeout(() => {
        const j = this.findJob(jobUid);
        if (j) this.deleteWithPropagation("jobs", j, "Foreground");
      }, ttl * 1000);
    }
  }

  private deadline(jobUid: string): void {
    const st = this.jobs.get(jobUid);
    const job = this.findJob(jobUid);
    if (!st || !job || st.finished || this.closed) return;
    st.finished = true;
    if (this.opts.minor >= 31) {
      // 1.31+: FailureTarget at once, with the reason; Failed only once the pods are gone.
      const now = nowIso();
      this.store.mutate("jobs", job.metadata.namespace, job.metadata.name, (j) => {
        j.status ??= {};
        j.status.conditions = [
          ...(j.status.conditions ?? []),
          {
            type: "FailureTarget",
            status: "True",
            lastProbeTime: now,
            lastTransitionTime: now,
            reason: "DeadlineExceeded",
            message: "Job was active longer than specified deadline",
          },
        ];
      });
    }
    const ns = job.metadata.namespace;
    const active = this.store
      .list("pods", ns)
      .filter(
        (p) =>
          p.metadata.ownerReferences?.some((o: any) => o.uid === jobUid) &&
          !st.counted.has(p.metadata.uid) &&
          p.status?.phase !== "Succeeded" &&
          p.status?.phase !== "Failed",
      );
    for (const p of active) {
      st.counted.add(p.metadata.uid);
      this.store.delete("pods", ns, p.metadata.name, {});
      recordEvent(this.store, involvedOf(job), {
        reason: "SuccessfulDelete",
        message: `Deleted pod: ${p.metadata.name}`,
        type: "Normal",
        component: "job-controller",
      });
    }
    this.soon(5, () => {
      for (const p of active) {
        const cur = this.store.get("pods", ns, p.metadata.name);
        if (cur) this.removeFinalizer(cur);
      }
      this.soon(4, () => {
        this.store.mutate("jobs", ns, job.metadata.name, (j) => {
          delete j.status.active;
          j.status.uncountedTerminatedPods = active.length
            ? { failed: active.map((p) => p.metadata.uid) }
            : {};
        });
        const j2 = this.findJob(jobUid);
        if (j2)
          recordEvent(this.store, involvedOf(j2), {
            reason: "DeadlineExceeded",
            message: "Job was active longer than specified deadline",
            type: "Warning",
            component: "job-controller",
          });
        const podsGone = () => active.every((p) => !this.store.get("pods", ns, p.metadata.name));
        const whenReady = (fn: () => void) => {
          if (this.opts.minor < 31 || podsGone() || this.closed) return this.soon(4, fn);
          setTimeout(() => whenReady(fn), 50);
        };
        whenReady(() => {
          const now = nowIso();
          this.store.mutate("jobs", ns, job.metadata.name, (j) => {
            j.status.conditions = [
              ...(j.status.conditions ?? []),
              {
                type: "Failed",
                status: "True",
                lastProbeTime: now,
                lastTransitionTime: now,
                reason: "DeadlineExceeded",
                message: "Job was active longer than specified deadline",
              },
            ];
            j.status.failed = (j.status.failed ?? 0) + active.length;
            j.status.uncountedTerminatedPods = {};
            j.status = orderStatus(j.status);
          });
          this.finished(jobUid);
        });
      });
    });
  }

  // ---------------------------------------------------------------- garbage collector

  /** Deletes an object as the API does for a propagation policy (used by the TTL controller and the API). */
  deleteWithPropagation(
    resource: Resource,
    obj: any,
    policy: "Background" | "Foreground" | "Orphan",
    gracePeriodSeconds?: number,
  ): { object: any; deleted: boolean } | undefined {
    const addFinalizer =
      policy === "Orphan" ? "orphan" : policy === "Foreground" ? "foregroundDeletion" : undefined;
    if (addFinalizer && !this.dependents(obj.metadata.uid).length && policy === "Foreground") {
      return this.store.delete(resource, obj.metadata.namespace, obj.metadata.name, {
        gracePeriodSeconds,
      });
    }
    return this.store.delete(resource, obj.metadata.namespace, obj.metadata.name, {
      gracePeriodSeconds,
      addFinalizer,
    });
  }

  private dependents(uid: string): Array<{ resource: Resource; object: any }> {
    const out: Array<{ resource: Resource; object: any }> = [];
    for (const r of ["pods", "secrets", "jobs", "events"] as Resource[]) {
      for (const o of this.store.list(r))
        if (o.metadata.ownerReferences?.some((x: any) => x.uid === uid))
          out.push({ resource: r, object: o });
    }
    return out;
  }

  private gc(e: StoreEvent): void {
    const o = e.object;
    const md = o.metadata;
    if (e.type === "DELETED") {
      // Dependents of a deleted owner: background-delete those with no other live owner.
      const uid = md.uid;
      this.soon(100, () => {
        for (const d of this.dependents(uid)) this.collect(d.resource, d.object);
      });
      // A foreground-deleting owner waits for this dependent.
      for (const ref of md.ownerReferences ?? [])
        this.soon(20, () => this.foregroundCheck(ref.uid));
      return;
    }
    if (md.deletionTimestamp && md.finalizers?.includes("orphan")) {
      this.soon(20, () => {
        for (const d of this.dependents(md.uid)) {
          this.store.mutate(
            d.resource,
            d.object.metadata.namespace,
            d.object.metadata.name,
            (x) => {
              x.metadata.ownerReferences = x.metadata.ownerReferences.filter(
                (r: any) => r.uid !== md.uid,
              );
              if (!x.metadata.ownerReferences.length) delete x.metadata.ownerReferences;
            },
          );
        }
        this.store.mutate(e.resource, md.namespace, md.name, (x) => {
          x.metadata.finalizers = (x.metadata.finalizers ?? []).filter(
            (f: string) => f !== "orphan",
          );
        });
      });
    }
    if (
      md.deletionTimestamp &&
      md.finalizers?.includes("foregroundDeletion") &&
      e.prev &&
      !e.prev.metadata.finalizers?.includes("foregroundDeletion")
    ) {
      this.soon(20, () => {
        const deps = this.dependents(md.uid);
        for (const d of deps) this.deleteWithPropagation(d.resource, d.object, "Background");
        this.foregroundCheck(md.uid);
      });
    }
    // Dangling owner references: the owner does not exist (any more) → the dependent goes.
    if (md.ownerReferences?.length && !md.deletionTimestamp) {
      const before = JSON.stringify(e.prev?.metadata?.ownerReferences ?? []);
      if (e.type === "ADDED" || before !== JSON.stringify(md.ownerReferences)) {
        this.soon(100, () => {
          const cur = this.store.get(e.resource, md.namespace, md.name);
          if (cur && !cur.metadata.deletionTimestamp) this.collect(e.resource, cur);
        });
      }
    }
  }

  private collect(resource: Resource, obj: any): void {
    const refs: any[] = obj.metadata.ownerReferences ?? [];
    const alive = refs.filter((r) => {
      const owner = this.store.findByUid(r.uid);
      return owner && owner.object.metadata.name === r.name;
    });
    if (alive.length === refs.length) return;
    if (alive.length > 0) {
      this.store.mutate(resource, obj.metadata.namespace, obj.metadata.name, (x) => {
        x.metadata.ownerReferences = alive;
      });
      return;
    }
    this.deleteWithPropagation(resource, obj, "Background");
  }

  private foregroundCheck(ownerUid: string): void {
    const owner = this.store.findByUid(ownerUid);
    if (!owner || !owner.object.metadata.finalizers?.includes("foregroundDeletion")) return;
    const blocking = this.dependents(ownerUid).filter((d) =>
      d.object.metadata.ownerReferences.some(
        (r: any) => r.uid === ownerUid && r.blockOwnerDeletion,
      ),
    );
    if (blocking.length) return;
    this.store.mutate(
      owner.resource,
      owner.object.metadata.namespace,
      owner.object.metadata.name,
      (x) => {
        x.metadata.finalizers = (x.metadata.finalizers ?? []).filter(
          (f: string) => f !== "foregroundDeletion",
        );
      },
    );
  }
}

function orderStatus(s: any): any {
  const keys = [
    "conditions",
    "startTime",
    "completionTime",
    "active",
    "succeeded",
    "failed",
    "uncountedTerminatedPods",
    "ready",
  ];
  const out: any = {};
  for (const k of keys) if (s[k] !== undefined) out[k] = s[k];
  for (const [k, v] of Object.entries(s)) if (!(k in out)) out[k] = v;
  return out;
}
