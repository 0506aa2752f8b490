/** The defaults the API server fills in on create (SetObjectDefaults_*), as the recordings show them. */
import { randomUUID } from "node:crypto";

function defaultContainer(c: any): void {
  const tag = /[:@]/.test(c.image?.split("/").pop() ?? "")
    ? c.image.split("/").pop().split(/[:@]/)[1]
    : "latest";
  c.imagePullPolicy ??=
    tag === "latest" && !String(c.image).includes("@") ? "Always" : "IfNotPresent";
  c.resources ??= {};
  c.terminationMessagePath ??= "/dev/termination-log";
  c.terminationMessagePolicy ??= "File";
}

export function defaultPodSpec(spec: any): void {
  for (const c of spec.initContainers ?? []) defaultContainer(c);
  for (const c of spec.containers ?? []) defaultContainer(c);
  spec.restartPolicy ??= "Always";
  spec.terminationGracePeriodSeconds ??= 30;
  spec.dnsPolicy ??= "ClusterFirst";
  spec.securityContext ??= {};
  spec.schedulerName ??= "default-scheduler";
  for (const v of spec.volumes ?? []) {
    if (v.secret) v.secret.defaultMode ??= 420;
    if (v.configMap) v.configMap.defaultMode ??= 420;
  }
}

/** Pod-only defaults and admission (ServiceAccount, DefaultTolerationSeconds, Priority). */
export function defaultPod(pod: any): any {
  defaultPodSpec(pod.spec);
  const s = pod.spec;
  s.serviceAccountName ??= "default";
  s.serviceAccount ??= s.serviceAccountName;
  s.enableServiceLinks ??= true;
  s.preemptionPolicy ??= "PreemptLowerPriority";
  s.priority ??= 0;
  const tol: any[] = s.tolerations ?? [];
  for (const key of ["node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"]) {
    if (!tol.some((t) => t.key === key))
      tol.push({ key, operator: "Exists", effect: "NoExecute", tolerationSeconds: 300 });
  }
  s.tolerations = tol;
  pod.status ??= { phase: "Pending", qosClass: qosClass(s) };
  return pod;
}

function qosClass(spec: any): string {
  const all = [...(spec.initContainers ?? []), ...(spec.containers ?? [])];
  const any = all.some(
    (c) =>
      Object.keys(c.resources?.requests ?? {}).length ||
      Object.keys(c.resources?.limits ?? {}).length,
  );
  if (!any) return "BestEffort";
  const guaranteed = all.every((c) =>
    ["cpu", "memory"].every(
      (r) =>
        c.resources?.limits?.[r] &&
        (c.resources?.requests?.[r] ?? c.resources.limits[r]) === c.resources.limits[r],
    ),
  );
  return guaranteed ? "Guaranteed" : "Burstable";
}

export function defaultJob(job: any, minor: number): void {
  const uid = (job.metadata.uid ??= randomUUID());
  job.metadata.generation = 1;
  if (minor < 27)
    job.metadata.annotations = {
      ...(job.metadata.annotations ?? {}),
      "batch.kubernetes.io/job-tracking": "",
    };
  const spec = job.spec ?? (job.spec = {});
  spec.parallelism ??= 1;
  spec.completions ??= 1;
  spec.backoffLimit ??= 6;
  spec.completionMode ??= "NonIndexed";
  spec.suspend ??= false;
  if (minor >= 28) spec.podReplacementPolicy ??= "TerminatingOrFailed";
  const extra: Record<string, string> = { "controller-uid": uid, "job-name": job.metadata.name };
  if (minor >= 27) {
    extra["batch.kubernetes.io/controller-uid"] = uid;
    extra["batch.kubernetes.io/job-name"] = job.metadata.name;
  }
  if (!spec.manualSelector)
    spec.selector = {
      matchLabels:
        minor >= 27 ? { "batch.kubernetes.io/controller-uid": uid } : { "controller-uid": uid },
    };
  spec.template ??= {};
  spec.template.metadata = { creationTimestamp: null, ...(spec.template.metadata ?? {}) };
  spec.template.metadata.labels = { ...(spec.template.metadata.labels ?? {}), ...extra };
  if (spec.template.spec) defaultPodSpec(spec.template.spec);
  job.status = {};
}
