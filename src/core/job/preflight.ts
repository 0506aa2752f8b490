/**
 * Checks made before anything is submitted. Pure: the caller reads the namespace.
 */
import type { Builder, PodSecurityLevel } from "../builders/types.js";

export const POD_SECURITY_ENFORCE_LABEL = "pod-security.kubernetes.io/enforce";

const STRICTNESS: Record<PodSecurityLevel, number> = { privileged: 0, baseline: 1, restricted: 2 };

/** The Kaniko builder's pod (uid 0, no `privileged`) is admitted from `baseline` down. */
const KANIKO_POD_SECURITY_LEVEL: PodSecurityLevel = "baseline";

function isLevel(value: string): value is PodSecurityLevel {
  return Object.hasOwn(STRICTNESS, value);
}

/**
 * One line explaining why the namespace's Pod Security `enforce` level would reject the
 * builder's pod, and the ways out; undefined when the pod is admitted. No label means
 * `privileged` (the default of a cluster without PSA configuration); a value Pod Security does
 * not know is enforced as `restricted`, as the admission controller does.
 */
export function podSecurityRefusal(
  namespace: string,
  labels: Record<string, string> | undefined,
  builder: Builder,
): string | undefined {
  const raw = labels?.[POD_SECURITY_ENFORCE_LABEL];
  const level: PodSecurityLevel =
    raw === undefined ? "privileged" : isLevel(raw) ? raw : "restricted";
  const needed = builder.podSecurityLevel;
  if (STRICTNESS[level] <= STRICTNESS[needed]) return undefined;

  const shown =
    raw !== undefined && !isLevel(raw)
      ? `"${raw}" (not a level: enforced as restricted)`
      : `"${level}"`;
  const ways = [
    `label the namespace ${POD_SECURITY_ENFORCE_LABEL}=${needed} ` +
      `(kubectl label namespace ${namespace} ${POD_SECURITY_ENFORCE_LABEL}=${needed} --overwrite)`,
  ];
  if (builder.name !== "kaniko" && STRICTNESS[level] <= STRICTNESS[KANIKO_POD_SECURITY_LEVEL]) {
    ways.push(`use builder: kaniko (its pod fits "${KANIKO_POD_SECURITY_LEVEL}")`);
  } else {
    ways.push("build in a namespace that admits it");
  }
  return (
    `namespace "${namespace}" enforces Pod Security level ${shown} (label ${POD_SECURITY_ENFORCE_LABEL}), ` +
    `but the ${builder.name} builder's pod needs "${needed}": ${ways.join(", or ")}`
  );
}
