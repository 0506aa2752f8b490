/**
 * Whether the product's pod is the pod a recording ran: the test server replays a recording only for
 * a pod of the same shape. The shape is what changes how the kubelet runs it — which containers, in
 * which phase (init or main), which take stdin, how privileged they are, what kinds of volumes they
 * have. Not the shape: images, commands and args, env, mount paths, resources (a builder's flags and
 * where the context lands may move without a new recording).
 */

/** One flat entry per property of the shape: "containers[build].securityContext.runAsUser" → 1000. */
export type PodShape = Map<string, string>;

const CONTAINER_FIELDS = ["stdin", "stdinOnce", "tty"] as const;
const SECURITY_FIELDS = [
  "privileged",
  "runAsUser",
  "runAsGroup",
  "runAsNonRoot",
  "allowPrivilegeEscalation",
  "readOnlyRootFilesystem",
  "procMount",
] as const;
const POD_SECURITY_FIELDS = ["runAsUser", "runAsGroup", "runAsNonRoot", "fsGroup"] as const;
const POD_FIELDS = ["restartPolicy", "hostNetwork", "hostPID", "hostIPC"] as const;

function put(shape: PodShape, key: string, value: unknown): void {
  if (value === undefined || value === null) return;
  shape.set(key, typeof value === "string" ? value : JSON.stringify(value));
}

function sorted(values: unknown): string[] | undefined {
  return Array.isArray(values) && values.length ? [...values].map(String).sort() : undefined;
}

function securityShape(shape: PodShape, prefix: string, sc: any, fields: readonly string[]): void {
  if (!sc) return;
  for (const f of fields) put(shape, `${prefix}.${f}`, sc[f]);
  put(shape, `${prefix}.capabilities.add`, sorted(sc.capabilities?.add));
  put(shape, `${prefix}.capabilities.drop`, sorted(sc.capabilities?.drop));
  put(shape, `${prefix}.seccompProfile.type`, sc.seccompProfile?.type);
  put(shape, `${prefix}.appArmorProfile.type`, sc.appArmorProfile?.type);
}

/** The kind of a volume: its one source field (emptyDir, secret, configMap, hostPath, …). */
export function volumeKind(volume: any): string {
  return Object.keys(volume).find((k) => k !== "name") ?? "unknown";
}

/** AppArmor before 1.30 was an annotation per container; the field that replaced it means the same. */
const APPARMOR_ANNOTATION = "container.apparmor.security.beta.kubernetes.io/";

function appArmorFromAnnotation(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (value === "unconfined") return "Unconfined";
  if (value === "runtime/default") return "RuntimeDefault";
  return value.startsWith("localhost/") ? "Localhost" : value;
}

/** The shape of a pod (metadata for the pre-1.30 AppArmor annotations, and its spec). */
export function podShape(pod: { metadata?: any; spec: any }): PodShape {
  const spec = pod.spec;
  const annotations: Record<string, string> = pod.metadata?.annotations ?? {};
  const shape: PodShape = new Map();
  for (const f of POD_FIELDS) put(shape, f, spec[f]);
  securityShape(shape, "securityContext", spec.securityContext, POD_SECURITY_FIELDS);
  for (const [phase, list] of [
    ["initContainers", spec.initContainers ?? []],
    ["containers", spec.containers ?? []],
  ] as const) {
    put(shape, phase, list.map((c: any) => c.name).join(","));
    for (const c of list) {
      const prefix = `${phase}[${c.name}]`;
      for (const f of CONTAINER_FIELDS)
        put(shape, `${prefix}.${f}`, c[f] === false ? undefined : c[f]);
      securityShape(shape, `${prefix}.securityContext`, c.securityContext, SECURITY_FIELDS);
      const annotated = appArmorFromAnnotation(annotations[`${APPARMOR_ANNOTATION}${c.name}`]);
      if (annotated && !c.securityContext?.appArmorProfile)
        put(shape, `${prefix}.securityContext.appArmorProfile.type`, annotated);
    }
  }
  put(shape, "volumes", sorted((spec.volumes ?? []).map(volumeKind)));
  return shape;
}

export interface ShapeOptions {
  /** Whether a Secret exists now in the pod's namespace. */
  secretExists(name: string): boolean;
}

/**
 * A git context: the builder fetches the context itself, so the product's pod has no receiver init
 * container (and Kaniko's no context volume). No recording has such a pod; it is replayed from a
 * recording with a receiver, the receiver phase left out (kubelet.ts starts the builder at once
 * when the pod has no init container). So the recorded pod is compared without its stdin receiver
 * and without the emptyDir the submitted pod does not have.
 */
function withoutReceiverForGitContext(
  submittedPod: { metadata?: any; spec: any },
  recordedPod: { metadata?: any; spec: any },
): { metadata?: any; spec: any } {
  const recordedInit: any[] = recordedPod.spec.initContainers ?? [];
  if ((submittedPod.spec.initContainers ?? []).length > 0) return recordedPod;
  if (recordedInit.length !== 1 || !recordedInit[0].stdin) return recordedPod;
  const submittedEmptyDirs = (submittedPod.spec.volumes ?? []).filter(
    (v: any) => volumeKind(v) === "emptyDir",
  ).length;
  let emptyDirsToKeep = submittedEmptyDirs;
  const volumes = (recordedPod.spec.volumes ?? []).filter((v: any) => {
    if (volumeKind(v) !== "emptyDir") return true;
    return emptyDirsToKeep-- > 0;
  });
  const spec = { ...recordedPod.spec, volumes };
  delete spec.initContainers;
  return { ...recordedPod, spec };
}

/**
 * The differences between the submitted pod and the recorded one, one line each; empty when the
 * recording may be replayed for it. One allowance: a Secret volume the recording lacks is accepted
 * when its Secret exists, since the kubelet mounts it before any container starts and its only other
 * behaviour (FailedMount for a missing Secret) has its own recording, kaniko-missing-secret. And an
 * emptyDir (without sizeLimit) the recording lacks, e.g. Buildah's container storage: a directory the
 * kubelet makes on the node's disk before any container starts, which cannot make the node refuse
 * or end the pod (a sizeLimit could: eviction has its own recording, kaniko-evicted). What a mount
 * point means to Kaniko's snapshots is held by test/unit/kaniko-mounts.test.ts, not here.
 */
export function shapeDifferences(
  submittedPod: { metadata?: any; spec: any },
  recordedPod: { metadata?: any; spec: any },
  options: ShapeOptions,
): string[] {
  const submitted = submittedPod.spec;
  recordedPod = withoutReceiverForGitContext(submittedPod, recordedPod);
  const recorded = recordedPod.spec;
  const out: string[] = [];
  const volumes = (spec: any) => (spec.volumes ?? []) as any[];
  const recordedKinds = volumes(recorded).map(volumeKind);
  const extraSecrets = volumes(submitted).filter(
    (v) => volumeKind(v) === "secret" && !recordedKinds.includes("secret"),
  );
  for (const v of extraSecrets) {
    if (!v.secret.optional && !options.secretExists(v.secret.secretName))
      out.push(
        `volume ${v.name} mounts Secret ${v.secret.secretName}, which does not exist (a kubelet would not start the pod: FailedMount)`,
      );
  }
  const recordedEmptyDirs = recordedKinds.filter((kind) => kind === "emptyDir").length;
  const extraEmptyDirs = volumes(submitted)
    .filter((v) => volumeKind(v) === "emptyDir" && v.emptyDir?.sizeLimit === undefined)
    .slice(recordedEmptyDirs);
  const extra = new Set([...extraSecrets, ...extraEmptyDirs].map((v) => v.name));
  const mine = podShape({
    metadata: submittedPod.metadata,
    spec: { ...submitted, volumes: volumes(submitted).filter((v) => !extra.has(v.name)) },
  });
  const theirs = podShape(recordedPod);
  for (const key of [...new Set([...mine.keys(), ...theirs.keys()])].sort()) {
    const a = mine.get(key);
    const b = theirs.get(key);
    if (a !== b) out.push(`${key}: submitted ${a ?? "(unset)"}, recorded ${b ?? "(unset)"}`);
  }
  return out;
}
