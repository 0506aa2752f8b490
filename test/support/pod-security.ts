/**
 * Pod Security admission as the API server enforces it, for the checks a build pod can trip:
 * the namespace's `pod-security.kubernetes.io/enforce` level, and the violation text the real
 * admission plugin writes (k8s.io/pod-security-admission, policy checks).
 */
const LEVELS = ["privileged", "baseline", "restricted"] as const;
type Level = (typeof LEVELS)[number];

function levelOf(labels: Record<string, string> | undefined): Level {
  const value = labels?.["pod-security.kubernetes.io/enforce"];
  return (LEVELS as readonly string[]).includes(value ?? "")
    ? (value as Level)
    : value
      ? "restricted"
      : "privileged";
}

function containersOf(spec: any): any[] {
  return [...(spec.initContainers ?? []), ...(spec.containers ?? [])];
}

function quoted(names: string[]): string {
  return names.map((n) => `"${n}"`).join(", ");
}

function plural(names: string[]): string {
  return names.length === 1 ? "container" : "containers";
}

/** The violations of the namespace's level, worded as the admission plugin words them. */
export function podSecurityViolations(
  namespaceLabels: Record<string, string> | undefined,
  pod: any,
): { level: Level; violations: string[] } {
  const level = levelOf(namespaceLabels);
  const violations: string[] = [];
  if (level === "privileged") return { level, violations };
  const spec = pod.spec ?? {};
  const containers = containersOf(spec);
  const annotations: Record<string, string> = pod.metadata?.annotations ?? {};

  const privileged = containers
    .filter((c) => c.securityContext?.privileged === true)
    .map((c) => c.name);
  if (privileged.length)
    violations.push(
      `privileged (${plural(privileged)} ${quoted(privileged)} must not set securityContext.privileged=true)`,
    );

  for (const [key, value] of Object.entries(annotations)) {
    if (
      key.startsWith("container.apparmor.security.beta.kubernetes.io/") &&
      value !== "runtime/default" &&
      !value.startsWith("localhost/")
    ) {
      violations.push(`forbidden AppArmor profile (annotation "${key}"="${value}")`);
    }
  }
  const apparmor = containers
    .filter((c) => c.securityContext?.appArmorProfile?.type === "Unconfined")
    .map((c) => c.name);
  if (apparmor.length)
    violations.push(
      `forbidden AppArmor profile (${plural(apparmor)} ${quoted(apparmor)} must not set securityContext.appArmorProfile.type to "Unconfined")`,
    );

  const unconfined = containers
    .filter((c) => c.securityContext?.seccompProfile?.type === "Unconfined")
    .map((c) => c.name);
  const podUnconfined = spec.securityContext?.seccompProfile?.type === "Unconfined";
  if (podUnconfined || unconfined.length) {
    violations.push(
      `seccompProfile (pod or ${plural(unconfined)} ${quoted(unconfined)} must not set securityContext.seccompProfile.type to "Unconfined")`,
    );
  }
  if (level === "baseline") return { level, violations };

  const escalation = containers
    .filter((c) => c.securityContext?.allowPrivilegeEscalation !== false)
    .map((c) => c.name);
  if (escalation.length)
    violations.push(
      `allowPrivilegeEscalation != false (${plural(escalation)} ${quoted(escalation)} must set securityContext.allowPrivilegeEscalation=false)`,
    );
  const caps = containers
    .filter((c) => !(c.securityContext?.capabilities?.drop ?? []).includes("ALL"))
    .map((c) => c.name);
  if (caps.length)
    violations.push(
      `unrestricted capabilities (${plural(caps)} ${quoted(caps)} must set securityContext.capabilities.drop=["ALL"])`,
    );
  const podNonRoot = spec.securityContext?.runAsNonRoot === true;
  const root = containers
    .filter(
      (c) =>
        c.securityContext?.runAsNonRoot !== true &&
        !(podNonRoot && c.securityContext?.runAsNonRoot !== false),
    )
    .map((c) => c.name);
  if (root.length)
    violations.push(
      `runAsNonRoot != true (pod or ${plural(root)} ${quoted(root)} must set securityContext.runAsNonRoot=true)`,
    );
  const podSeccomp = spec.securityContext?.seccompProfile?.type;
  const noSeccomp = containers
    .filter((c) => {
      const type = c.securityContext?.seccompProfile?.type ?? podSeccomp;
      return type !== "RuntimeDefault" && type !== "Localhost";
    })
    .map((c) => c.name);
  if (noSeccomp.length && !podUnconfined && !unconfined.length) {
    violations.push(
      `seccompProfile (pod or ${plural(noSeccomp)} ${quoted(noSeccomp)} must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")`,
    );
  }
  return { level, violations };
}

/** `pods "x" is forbidden: violates PodSecurity "baseline:latest": …` */
export function podSecurityMessage(podName: string, level: string, violations: string[]): string {
  return `pods "${podName}" is forbidden: violates PodSecurity "${level}:latest": ${violations.join(", ")}`;
}
