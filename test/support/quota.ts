/**
 * ResourceQuota admission's constraint check, as the API server applies it to a pod
 * (kubernetes pkg/quota/v1/evaluator/core/pods.go `Constraints`, plugin/pkg/admission/resourcequota):
 * once a quota in the namespace names cpu or memory (requests or limits), every container and
 * init container must state that resource, or the pod is refused with
 * `failed quota: <name>: must specify limits.cpu for: context; …`.
 * Usage accounting (exceeded quota) is not modelled: a build pod is one pod.
 */

/** The resources whose presence the evaluator checks on every container. */
const VALIDATED = [
  "cpu",
  "memory",
  "requests.cpu",
  "requests.memory",
  "limits.cpu",
  "limits.memory",
];

export interface ResourceQuota {
  name: string;
  /** spec.hard, e.g. { "limits.cpu": "4", "requests.memory": "8Gi" }. */
  hard: Record<string, string>;
}

/** What one container's resources count towards (podComputeUsageHelper). */
function usageOf(container: any): Set<string> {
  const limits: Record<string, string> = container.resources?.limits ?? {};
  // API defaulting runs before admission: a limit without a request becomes the request.
  const requests: Record<string, string> = { ...limits, ...(container.resources?.requests ?? {}) };
  const out = new Set<string>();
  if (requests.cpu !== undefined) out.add("cpu").add("requests.cpu");
  if (requests.memory !== undefined) out.add("memory").add("requests.memory");
  if (limits.cpu !== undefined) out.add("limits.cpu");
  if (limits.memory !== undefined) out.add("limits.memory");
  return out;
}

/** The refusal the quota admission writes for this pod, or undefined when every quota admits it. */
export function quotaRefusal(
  quotas: ResourceQuota[],
  podName: string,
  pod: any,
): string | undefined {
  for (const quota of quotas) {
    const required = Object.keys(quota.hard).filter((r) => VALIDATED.includes(r));
    const missing = new Map<string, Set<string>>();
    for (const container of [...(pod.spec.containers ?? []), ...(pod.spec.initContainers ?? [])]) {
      const usage = usageOf(container);
      for (const resource of required) {
        if (usage.has(resource)) continue;
        if (!missing.has(resource)) missing.set(resource, new Set());
        missing.get(resource)!.add(container.name);
      }
    }
    if (missing.size === 0) continue;
    const parts = [...missing.keys()]
      .sort()
      .map((r) => `${r} for: ${[...missing.get(r)!].sort().join(",")}`);
    return `pods "${podName}" is forbidden: failed quota: ${quota.name}: must specify ${parts.join("; ")}`;
  }
  return undefined;
}
