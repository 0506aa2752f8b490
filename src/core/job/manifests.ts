/**
 * BuildSpec → the Job and its Secrets (pure). The Secrets are created first and owner-referenced
 * to the Job once it exists (build.ts patches that); `dry-run` prints these objects as YAML.
 */
import { randomBytes } from "node:crypto";
import type { V1Container, V1Job, V1ObjectMeta, V1Secret, V1Volume } from "@kubernetes/client-node";
import { stringify } from "yaml";
import { getBuilder } from "../builders/index.js";
import {
  BUILD_SECRETS_VOLUME,
  CONTEXT_CONTAINER,
  REGISTRY_CREDENTIALS_VOLUME,
  CONTEXT_DIR,
  WORKSPACE_VOLUME,
  type RenderEnvironment,
} from "../builders/types.js";
import type { BuildIdentity, BuildSpec, RegistryAuth } from "../types.js";

export const TOOL_NAME = "k8s-image-build";
export const LABEL_NAME = "app.kubernetes.io/name";
export const LABEL_MANAGED_BY = "app.kubernetes.io/managed-by";
export const LABEL_COMPONENT = "app.kubernetes.io/component";
export const LABEL_RUN_ID = "k8s-image-build/run-id";
export const LABEL_BUILD_ID = "k8s-image-build/build-id";
export const JOB_NAME_PREFIX = "kib-";
/** Key of the registry Secret, as type kubernetes.io/dockerconfigjson requires. */
export const DOCKER_CONFIG_KEY = ".dockerconfigjson";
export const REDACTED = "<redacted>";

export interface RenderedManifests {
  job: V1Job;
  /** Registry credentials, build secrets; owner refs patched after the Job exists. */
  secrets: V1Secret[];
}

export function registrySecretName(jobName: string): string {
  return `${jobName}-registry`;
}

export function buildSecretsName(jobName: string): string {
  return `${jobName}-secrets`;
}

const ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789";

function randomSuffix(): string {
  const bytes = randomBytes(8);
  let out = "";
  // 256 % 36 = 4: the bias is < 2 % per character, irrelevant for a name.
  for (const b of bytes) out += ALPHABET[b % ALPHABET.length];
  return out;
}

/** A label value from an arbitrary run id: [A-Za-z0-9._-], ≤ 63, alphanumeric at both ends. */
export function labelSafe(value: string): string {
  let v = value.replace(/[^A-Za-z0-9._-]/g, "-").slice(0, 63);
  v = v.replace(/^[^A-Za-z0-9]+/, "").replace(/[^A-Za-z0-9]+$/, "");
  return v === "" ? "unknown" : v;
}

/** jobName "kib-<8 lowercase alnum>"; `random` (for tests) must return 8 such characters. */
export function newBuildIdentity(
  runId: string,
  random: () => string = randomSuffix,
): BuildIdentity {
  const suffix = random();
  if (!/^[a-z0-9]{8}$/.test(suffix))
    throw new Error(`build id "${suffix}" is not 8 lowercase letters or digits`);
  return { jobName: `${JOB_NAME_PREFIX}${suffix}`, runId: labelSafe(runId), buildId: suffix };
}

export function buildLabels(spec: BuildSpec, id: BuildIdentity): Record<string, string> {
  return {
    [LABEL_NAME]: TOOL_NAME,
    [LABEL_MANAGED_BY]: TOOL_NAME,
    [LABEL_COMPONENT]: spec.builder,
    [LABEL_RUN_ID]: id.runId,
    [LABEL_BUILD_ID]: id.buildId,
  };
}

/** config.json for the registry Secret: `auths` with user, password and the legacy `auth`. */
export function dockerConfigJson(auth: RegistryAuth): string {
  if (auth.kind === "docker-config-json") return auth.json;
  const entry = {
    username: auth.username,
    password: auth.password,
    auth: Buffer.from(`${auth.username}:${auth.password}`, "utf8").toString("base64"),
  };
  const auths: Record<string, typeof entry> = {};
  for (const registry of auth.registries) auths[registry] = { ...entry };
  return JSON.stringify({ auths });
}

function metadata(name: string, spec: BuildSpec, labels: Record<string, string>): V1ObjectMeta {
  const meta: V1ObjectMeta = { name, labels: { ...labels } };
  if (spec.namespace !== undefined) meta.namespace = spec.namespace;
  return meta;
}

const TERMINATION_GRACE_SECONDS = 5;

/**
 * The receiver's requests and limits. Every one is stated, so that a namespace whose ResourceQuota
 * covers cpu or memory (which makes every container state them) admits the pod. BusyBox 1.37
 * `tar -xzf -` of a 210 MB context (20,000 files, half incompressible; 156 MB gzipped) measured
 * 1.7 s user + 1.4-6.2 s system CPU and 1.7 MB RSS, while `gzip -6` of it on the client took 5 s of
 * CPU: with a 1-CPU limit the receiver keeps pace with the upload; at 500m it would need 6-16 s and
 * become the bottleneck. As an init container it adds nothing to the pod's quota usage unless these
 * exceed the builder's own (the pod counts the larger of the init container and the app containers).
 */
export const CONTEXT_RESOURCES = {
  requests: { cpu: "100m", memory: "32Mi" },
  limits: { cpu: "1", memory: "128Mi" },
} as const satisfies { requests: Record<string, string>; limits: Record<string, string> };

/** The receiver: reads a gzip tar from stdin (attach), unpacks it into the workspace, exits. */
function contextContainer(spec: BuildSpec): V1Container {
  return {
    name: CONTEXT_CONTAINER,
    image: spec.contextImage,
    command: ["tar", "-xzf", "-", "-C", CONTEXT_DIR],
    stdin: true,
    stdinOnce: true,
    resources: {
      requests: { ...CONTEXT_RESOURCES.requests },
      limits: { ...CONTEXT_RESOURCES.limits },
    },
    volumeMounts: [{ name: WORKSPACE_VOLUME, mountPath: CONTEXT_DIR }],
  };
}

export function renderManifests(
  spec: BuildSpec,
  id: BuildIdentity,
  env: RenderEnvironment,
): RenderedManifests {
  const builder = getBuilder(spec.builder);
  const hasRegistryCredentials = spec.registryAuth !== undefined;
  const hasBuildSecrets = spec.secrets.length > 0;
  const pod = builder.render(spec, { ...env, hasRegistryCredentials, hasBuildSecrets });
  const labels = buildLabels(spec, id);

  const volumes: V1Volume[] = [{ name: WORKSPACE_VOLUME, emptyDir: {} }];
  const secrets: V1Secret[] = [];
  if (spec.registryAuth !== undefined) {
    const name = registrySecretName(id.jobName);
    volumes.push({
      name: REGISTRY_CREDENTIALS_VOLUME,
      secret: { secretName: name, items: [{ key: DOCKER_CONFIG_KEY, path: "config.json" }] },
    });
    secrets.push({
      apiVersion: "v1",
      kind: "Secret",
      metadata: metadata(name, spec, labels),
      type: "kubernetes.io/dockerconfigjson",
      data: {
        [DOCKER_CONFIG_KEY]: Buffer.from(dockerConfigJson(spec.registryAuth), "utf8").toString(
          "base64",
        ),
      },
    });
  }
  if (hasBuildSecrets) {
    const name = buildSecretsName(id.jobName);
    volumes.push({ name: BUILD_SECRETS_VOLUME, secret: { secretName: name } });
    const data: Record<string, string> = {};
    for (const s of spec.secrets) data[s.id] = s.value.toString("base64");
    secrets.push({
      apiVersion: "v1",
      kind: "Secret",
      metadata: metadata(name, spec, labels),
      type: "Opaque",
      data,
    });
  }
  volumes.push(...pod.volumes);

  const podSpec: NonNullable<NonNullable<V1Job["spec"]>["template"]["spec"]> = {
    restartPolicy: "Never",
    automountServiceAccountToken: false,
    // A cancelled or timed-out build has nothing to finish: the receiver (tar as PID 1) ignores
    // SIGTERM, so the default 30 s would keep the pod Terminating after the Job is gone.
    terminationGracePeriodSeconds: TERMINATION_GRACE_SECONDS,
    ...(spec.context.kind === "dir" ? { initContainers: [contextContainer(spec)] } : {}),
    containers: [pod.container],
    volumes,
  };
  if (spec.serviceAccount !== undefined) podSpec.serviceAccountName = spec.serviceAccount;
  if (Object.keys(spec.nodeSelector).length > 0) podSpec.nodeSelector = { ...spec.nodeSelector };
  if (spec.tolerations.length > 0) podSpec.tolerations = spec.tolerations.map((t) => ({ ...t }));
  if (pod.podSecurityContext !== undefined) podSpec.securityContext = pod.podSecurityContext;

  const templateMeta: V1ObjectMeta = { labels: { ...labels } };
  if (pod.podAnnotations !== undefined && Object.keys(pod.podAnnotations).length > 0) {
    templateMeta.annotations = { ...pod.podAnnotations };
  }

  const job: V1Job = {
    apiVersion: "batch/v1",
    kind: "Job",
    metadata: metadata(id.jobName, spec, labels),
    spec: {
      backoffLimit: 0,
      activeDeadlineSeconds: spec.timeoutSeconds,
      ttlSecondsAfterFinished: spec.ttlSeconds,
      template: { metadata: templateMeta, spec: podSpec },
    },
  };
  return { job, secrets };
}

/**
 * Multi-document YAML of the Secrets then the Job. Redacted, each Secret carries `stringData` with
 * "<redacted>" for every value instead of `data`: the API server accepts it as it is (`data` must
 * be base64), and the registry Secret keeps the shape of its config.json (the registries, every
 * value redacted), which a `kubernetes.io/dockerconfigjson` Secret must hold.
 */
export function manifestsToYaml(m: RenderedManifests, opts: { redactSecrets: boolean }): string {
  const docs: unknown[] = m.secrets.map((s) =>
    opts.redactSecrets && s.data !== undefined ? redactedSecret(s) : s,
  );
  docs.push(m.job);
  return docs.map((d) => stringify(d, { lineWidth: 0 })).join("---\n");
}

function redactedSecret(secret: V1Secret): V1Secret {
  const stringData: Record<string, string> = {};
  for (const [key, value] of Object.entries(secret.data ?? {})) {
    stringData[key] = key === DOCKER_CONFIG_KEY ? redactedDockerConfig(value) : REDACTED;
  }
  const redacted: V1Secret = { ...secret, stringData };
  delete redacted.data;
  return redacted;
}

/** The config.json with every string in it replaced: the registry names stay, no credential does. */
function redactedDockerConfig(base64: string): string {
  let config: unknown;
  try {
    config = JSON.parse(Buffer.from(base64, "base64").toString("utf8"));
  } catch {
    config = { auths: {} };
  }
  const redact = (value: unknown): unknown => {
    if (typeof value === "string") return REDACTED;
    if (Array.isArray(value)) return value.map(redact);
    if (value !== null && typeof value === "object") {
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redact(v)]));
    }
    return value;
  };
  return JSON.stringify(redact(config));
}
