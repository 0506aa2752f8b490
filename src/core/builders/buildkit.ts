/**
 * Rootless BuildKit, daemonless: `buildctl-daemonless.sh` starts a private buildkitd under
 * rootlesskit inside the build container, runs one `buildctl build`, and the wrapper script copies
 * `containerimage.digest` from the metadata file into the termination log.
 *
 * The pod shape is the one verified on a real cluster (fixtures/k8s/buildkit-rootless-*): uid/gid
 * 1000, seccomp Unconfined, AppArmor unconfined, `--oci-worker-no-process-sandbox`, an emptyDir for
 * BuildKit's state. allowPrivilegeEscalation stays unset: no_new_privs stops newuidmap from
 * writing the uid map, and rootless BuildKit then cannot start.
 */
import { posix } from "node:path";
import type { V1Container, V1EnvVar, V1Volume, V1VolumeMount } from "@kubernetes/client-node";
import type { BuildSpec } from "../types.js";
import {
  BUILD_CONTAINER,
  BUILD_SECRETS_DIR,
  BUILD_SECRETS_VOLUME,
  REGISTRY_CREDENTIALS_VOLUME,
  CONTEXT_DIR,
  WORKSPACE_VOLUME,
  type Builder,
  type BuilderPod,
  type RenderEnvironment,
} from "./types.js";
import { appArmorUnconfined, containerResources } from "./container.js";

export const BUILDKIT_IMAGE = "moby/buildkit:v0.33.0-rootless";

/** The rootless image's user (adduser -u 1000 user) and its home. */
const BUILDKIT_UID = 1000;
const HOME = "/home/user";
export const BUILDKIT_STATE_VOLUME = "buildkitd";
export const BUILDKIT_STATE_DIR = `${HOME}/.local/share/buildkit`;
export const BUILDKIT_DOCKER_CONFIG_DIR = `${HOME}/.docker`;
/** Written by buildctl through a rename, so it cannot be /dev/termination-log itself. */
export const BUILDKIT_METADATA_FILE = `${HOME}/metadata.json`;
/** Tag the `cache-repo` input's cache is stored under (same repository Kaniko would use). */
export const BUILDKIT_CACHE_TAG = "buildcache";

/**
 * The container's `sh -c` script. "$@" is `build …`; `&&` keeps buildctl's exit code when it
 * fails. The rootless image is Alpine (BusyBox sh, sed, head; no jq): sed takes the digest out
 * of the metadata JSON (`"containerimage.digest": "sha256:…"`, indented or not), and only the
 * digest goes to the termination log (Kubernetes truncates it at 4096 bytes).
 */
export const BUILDKIT_SCRIPT =
  `buildctl-daemonless.sh "$@" && ` +
  `sed -n 's/.*"containerimage\\.digest": *"\\(sha256:[0-9a-f]*\\)".*/\\1/p' ${BUILDKIT_METADATA_FILE}` +
  ` | head -n 1 > /dev/termination-log`;

/** `sh -c SCRIPT NAME args…`: NAME is $0, what sh prints in its own error messages. */
const COMMAND = ["sh", "-c", BUILDKIT_SCRIPT, "buildkit"];

/**
 * Rootless buildkitd's own config file (its default place, ~/.config/buildkit/buildkitd.toml,
 * also given with --config). The stock image has none, so BuildKit pulls base images over HTTPS
 * whatever buildctl's push flags say.
 */
export const BUILDKITD_CONFIG_FILE = "$HOME/.config/buildkit/buildkitd.toml";
/** The generated config travels in the pod spec as this variable: no secret, no extra object. */
export const BUILDKITD_CONFIG_ENV = "BUILDKITD_TOML";

/** Writes $BUILDKITD_TOML where buildkitd reads it and names it in BUILDKITD_FLAGS, then the build. */
export const BUILDKITD_CONFIG_SCRIPT =
  `mkdir -p "$HOME/.config/buildkit" && ` +
  `printf '%s\\n' "$${BUILDKITD_CONFIG_ENV}" > "${BUILDKITD_CONFIG_FILE}" && ` +
  `export BUILDKITD_FLAGS="$BUILDKITD_FLAGS --config=${BUILDKITD_CONFIG_FILE}" && `;

/**
 * buildkitd.toml for the registries spoken to over plain HTTP: pulls (FROM, cache imports) as
 * well as pushes. Undefined when there are none.
 */
export function buildkitdConfig(spec: BuildSpec): string | undefined {
  if (spec.insecureRegistries.length === 0) return undefined;
  return spec.insecureRegistries
    .map((host) => `[registry."${host}"]\n  http = true\n  insecure = true\n`)
    .join("\n");
}

const POD_SECURITY_LEVEL = "privileged";

/** The registry host of an image reference, as Docker decides it (docker.io when implicit). */
export function registryOf(reference: string): string {
  const slash = reference.indexOf("/");
  if (slash < 0) return "docker.io";
  const first = reference.slice(0, slash);
  if (first.includes(".") || first.includes(":") || first === "localhost")
    return first.toLowerCase();
  return "docker.io";
}

export function isInsecure(reference: string, insecureRegistries: string[]): boolean {
  const registry = registryOf(reference);
  return insecureRegistries.some((r) => r.toLowerCase() === registry);
}

/** Splits a buildx/buildctl CSV entry (`type=registry,"ref=…",mode=max`) into its fields. */
function csvFields(entry: string): string[] {
  const fields: string[] = [];
  let field = "";
  let quoted = false;
  for (const ch of entry) {
    if (ch === '"') quoted = !quoted;
    else if (ch === "," && !quoted) {
      fields.push(field);
      field = "";
    } else field += ch;
  }
  fields.push(field);
  return fields.map((f) => f.trim()).filter((f) => f !== "");
}

function fieldKey(field: string): string {
  const eq = field.indexOf("=");
  return (eq < 0 ? field : field.slice(0, eq)).trim().toLowerCase();
}

function fieldValue(fields: string[], key: string): string | undefined {
  const field = fields.find((f) => fieldKey(f) === key);
  return field === undefined ? undefined : field.slice(field.indexOf("=") + 1);
}

/**
 * The registry cache that `cache-repo` means for BuildKit (and BuildKit in dockerd):
 * `<cache-repo>:buildcache`, every layer exported (mode=max), a failed export only warned about.
 */
export function registryCacheEntries(spec: BuildSpec): { from: string; to: string } | undefined {
  if (spec.cacheRepo === undefined) return undefined;
  const ref = `${spec.cacheRepo}:${BUILDKIT_CACHE_TAG}`;
  const flag = isInsecure(ref, spec.insecureRegistries) ? ["registry.insecure=true"] : [];
  return {
    from: ["type=registry", `ref=${ref}`, ...flag].join(","),
    to: ["type=registry", `ref=${ref}`, "mode=max", ...flag, "ignore-error=true"].join(","),
  };
}

/**
 * One `cache-from`/`cache-to` entry as buildctl takes it. A bare reference (buildx accepts
 * `user/app:cache`) means `type=registry,ref=…`; a registry ref on an insecure registry gets
 * `registry.insecure=true`; a cache export gets `ignore-error=true` unless it says otherwise.
 */
export function cacheEntry(
  entry: string,
  insecureRegistries: string[],
  exporting: boolean,
): string {
  let fields = csvFields(entry);
  if (!fields.some((f) => f.includes("="))) fields = ["type=registry", `ref=${entry.trim()}`];
  const type = fieldValue(fields, "type");
  const ref = fieldValue(fields, "ref");
  if (
    type === "registry" &&
    ref !== undefined &&
    isInsecure(ref, insecureRegistries) &&
    fieldValue(fields, "registry.insecure") === undefined
  ) {
    fields.push("registry.insecure=true");
  }
  if (exporting && fieldValue(fields, "ignore-error") === undefined)
    fields.push("ignore-error=true");
  return fields.map((f) => (f.includes(",") ? `"${f}"` : f)).join(",");
}

function imageOutput(spec: BuildSpec): string {
  const names = spec.tags.join(",");
  // buildctl reads --output as CSV: several names need the quoted field.
  const name = spec.tags.length > 1 ? `"name=${names}"` : `name=${names}`;
  const fields = ["type=image", name, `push=${spec.push}`];
  if (spec.tags.some((t) => isInsecure(t, spec.insecureRegistries)))
    fields.push("registry.insecure=true");
  return fields.join(",");
}

/** `buildctl` arguments, after `buildctl-daemonless.sh`. Pure; exported for tests and dry runs. */
export function buildctlArgs(spec: BuildSpec): string[] {
  const args = ["build", "--frontend", "dockerfile.v0"];
  const dockerfile = posix.normalize(spec.dockerfile);
  if (spec.context.kind === "git") {
    // The frontend fetches the repository and reads the Dockerfile from it.
    args.push("--opt", `context=${spec.context.url}`, "--opt", `filename=${dockerfile}`);
  } else {
    const dir = posix.dirname(dockerfile);
    const dockerfileDir = dir === "." ? CONTEXT_DIR : posix.join(CONTEXT_DIR, dir);
    args.push(
      "--local",
      `context=${CONTEXT_DIR}`,
      "--local",
      `dockerfile=${dockerfileDir}`,
      "--opt",
      `filename=${posix.basename(dockerfile)}`,
    );
  }
  if (spec.target !== undefined) args.push("--opt", `target=${spec.target}`);
  if (spec.platforms.length > 0) args.push("--opt", `platform=${spec.platforms.join(",")}`);
  for (const { key, value } of spec.buildArgs) args.push("--opt", `build-arg:${key}=${value}`);
  for (const { key, value } of spec.labels) args.push("--opt", `label:${key}=${value}`);
  for (const { id } of spec.secrets)
    args.push("--secret", `id=${id},src=${posix.join(BUILD_SECRETS_DIR, id)}`);

  const insecure = spec.insecureRegistries;
  const registryCache = registryCacheEntries(spec);
  if (registryCache) {
    args.push("--import-cache", registryCache.from);
    args.push("--export-cache", registryCache.to);
  }
  for (const entry of spec.cacheFrom)
    args.push("--import-cache", cacheEntry(entry, insecure, false));
  for (const entry of spec.cacheTo) args.push("--export-cache", cacheEntry(entry, insecure, true));

  args.push("--output", imageOutput(spec));
  args.push("--progress=plain", "--metadata-file", BUILDKIT_METADATA_FILE);
  return args;
}

function render(spec: BuildSpec, env: RenderEnvironment): BuilderPod {
  const appArmor = appArmorUnconfined(env);

  const volumeMounts: V1VolumeMount[] = [
    { name: WORKSPACE_VOLUME, mountPath: CONTEXT_DIR },
    { name: BUILDKIT_STATE_VOLUME, mountPath: BUILDKIT_STATE_DIR },
  ];
  if (env.hasRegistryCredentials) {
    volumeMounts.push({
      name: REGISTRY_CREDENTIALS_VOLUME,
      mountPath: BUILDKIT_DOCKER_CONFIG_DIR,
      readOnly: true,
    });
  }
  if (env.hasBuildSecrets) {
    volumeMounts.push({ name: BUILD_SECRETS_VOLUME, mountPath: BUILD_SECRETS_DIR, readOnly: true });
  }

  const containerEnv: V1EnvVar[] = [
    // RUN steps cannot mount a fresh /proc in an unprivileged pod without it.
    { name: "BUILDKITD_FLAGS", value: "--oci-worker-no-process-sandbox" },
    { name: "DOCKER_CONFIG", value: BUILDKIT_DOCKER_CONFIG_DIR },
    // buildctl-daemonless.sh waits ~2 s for buildkitd by default; ~30 s on a busy node.
    { name: "BUILDCTL_CONNECT_RETRIES_MAX", value: "50" },
  ];
  const daemonConfig = buildkitdConfig(spec);
  if (daemonConfig !== undefined)
    containerEnv.push({ name: BUILDKITD_CONFIG_ENV, value: daemonConfig });

  const container: V1Container = {
    name: BUILD_CONTAINER,
    image: spec.builderImage,
    command:
      daemonConfig === undefined
        ? [...COMMAND]
        : ["sh", "-c", BUILDKITD_CONFIG_SCRIPT + BUILDKIT_SCRIPT, "buildkit"],
    args: buildctlArgs(spec),
    env: containerEnv,
    securityContext: {
      runAsUser: BUILDKIT_UID,
      runAsGroup: BUILDKIT_UID,
      seccompProfile: { type: "Unconfined" },
      ...appArmor.securityContext,
    },
    volumeMounts,
  };
  const resources = containerResources(spec);
  if (resources) container.resources = resources;

  const volumes: V1Volume[] = [{ name: BUILDKIT_STATE_VOLUME, emptyDir: {} }];
  const pod: BuilderPod = { container, volumes };
  if (appArmor.podAnnotations) pod.podAnnotations = appArmor.podAnnotations;
  return pod;
}

/**
 * Plain progress prints, after the build, one block per step that ended in error:
 * `------` / ` > <step name>:` / its logs / `------`. A cache export step that failed with
 * ignore-error=true is printed that way and the build still succeeds. Its name is the exporter's:
 * "exporting content cache" (≤ v0.11), "exporting cache to registry" (later), "exporting cache to
 * <Amazon S3|Azure Blob Storage|client directory>", "exporting to GitHub Actions Cache".
 */
const FAILED_CACHE_EXPORT =
  /^ > (exporting (?:content cache|cache to .+|to GitHub Actions Cache)):$/;
/** `#4 ERROR: failed to configure registry cache importer: <ref>: <cause>` */
const FAILED_CACHE_IMPORT = /^#\d+ ERROR: failed to configure registry cache importer: (.*)$/;

export function warningFor(line: string): string | undefined {
  const text = line.trimEnd();
  const exported = FAILED_CACHE_EXPORT.exec(text);
  if (exported) {
    return (
      `BuildKit step "${exported[1]}" failed and was ignored (ignore-error=true): the image is built, ` +
      `but the next build will not find this cache; its ERROR line is above`
    );
  }
  const imported = FAILED_CACHE_IMPORT.exec(text);
  // "<ref>: not found" is the first build against an empty cache repository: expected, no warning.
  if (imported && !/: not found$/.test(imported[1] ?? "")) {
    return `BuildKit could not import the registry cache, building without it: ${imported[1]}`;
  }
  return undefined;
}

export const buildkit: Builder = {
  name: "buildkit",
  defaultImage: BUILDKIT_IMAGE,
  podSecurityLevel: POD_SECURITY_LEVEL,
  privileged: false,
  needsServerVersion: true,
  // Rootless: a context file with mode 0600 must still be readable by the builder.
  workspaceOwner: { uid: BUILDKIT_UID, gid: BUILDKIT_UID },
  unsupported(spec) {
    if (spec.cacheTtl !== undefined) {
      return {
        input: "cache-ttl",
        detail:
          "is Kaniko-only; BuildKit's registry cache has no TTL (remove it, or use builder: kaniko)",
      };
    }
    return undefined;
  },
  render,
  warningFor,
};
