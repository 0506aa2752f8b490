/**
 * Buildah, daemonless and not privileged: `buildah bud` then `buildah push` of each tag, the
 * first push's `--digestfile` being the termination log.
 *
 * The pod shape is the one measured on a real cluster (fixtures/k8s/buildah-*, whose README lists
 * the failure of every weaker shape): root in the container, capabilities dropped to SETUID, SETGID
 * and SETFCAP (Buildah re-executes itself in a user namespace and writes its uid/gid maps), seccomp
 * Unconfined (RuntimeDefault refuses `unshare(CLONE_NEWUSER)`), AppArmor unconfined,
 * `--isolation=chroot`, the vfs storage driver on an emptyDir. Unconfined seccomp puts the pod at
 * Pod Security level `privileged`; the README shows how to run it under `baseline` with a Localhost
 * profile.
 */
import { posix } from "node:path";
import type { V1Container, V1EnvVar, V1Volume, V1VolumeMount } from "@kubernetes/client-node";
import type { BuildSpec } from "../types.js";
import { appArmorUnconfined, buildxCacheInput, containerResources } from "./container.js";
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

/** Pinned release of the Buildah project's own image (quay.io/containers/buildah = quay.io/buildah/stable). */
export const BUILDAH_IMAGE = "quay.io/containers/buildah:v1.46.1";

/** Container storage (images, layers, the working container) on an emptyDir. */
export const BUILDAH_STORAGE_VOLUME = "containers";
export const BUILDAH_STORAGE_DIR = "/var/lib/containers";
/** The registry Secret's directory; REGISTRY_AUTH_FILE names its config.json (Docker's format). */
export const BUILDAH_AUTH_DIR = "/run/containers/k8s-image-build";
export const BUILDAH_AUTH_FILE = `${BUILDAH_AUTH_DIR}/config.json`;
/** A registries.conf drop-in, read after the image's own (so mirrors baked into it still apply). */
const REGISTRIES_CONF_DIR = "/etc/containers/registries.conf.d";
export const BUILDAH_REGISTRIES_DROP_IN = `${REGISTRIES_CONF_DIR}/zz-k8s-image-build.conf`;

/**
 * The container's `sh -c` script; "$@" is `bud …`. It writes the registries.conf drop-in, builds,
 * then pushes each tag (plain HTTP and no TLS check for a tag on an insecure registry): the first
 * push writes its digest to the termination log and nothing else goes there. Any failing step ends
 * the script with that step's exit code. No command echoes its arguments (no `set -x`).
 */
export const BUILDAH_SCRIPT = `set -u
mkdir -p ${REGISTRIES_CONF_DIR}
printf '%s\\n' "$KIB_REGISTRIES_CONF" > ${BUILDAH_REGISTRIES_DROP_IN}
buildah "$@" || exit $?
if [ "$KIB_PUSH" != true ]; then
  buildah images --storage-driver=vfs --no-trunc --format '{{.Digest}}' "\${KIB_TAGS%% *}" | head -n 1 | tr -d '\\n' > /dev/termination-log
  exit 0
fi
digestfile=/dev/termination-log
for tag in $KIB_TAGS; do
  tls=
  for registry in $KIB_INSECURE_REGISTRIES; do
    case "$tag" in "$registry"/*) tls=--tls-verify=false ;; esac
  done
  buildah push --storage-driver=vfs $tls --digestfile="$digestfile" "$tag" "docker://$tag" || exit $?
  digestfile=/tmp/digest
done
`;

/** `sh -c SCRIPT NAME args…`: NAME is $0, what sh prints in its own error messages. */
const COMMAND = ["sh", "-c", BUILDAH_SCRIPT, "buildah"];

/** Dockerfiles build as with Docker: a short name (`FROM node:22`) means docker.io. */
export function buildahRegistriesConf(insecureRegistries: string[]): string {
  const lines = ['unqualified-search-registries = ["docker.io"]'];
  for (const registry of insecureRegistries)
    lines.push("", "[[registry]]", `location = "${registry}"`, "insecure = true");
  return lines.join("\n");
}

/** `buildah` arguments (`bud …`). Pure; exported for tests and dry runs. */
export function buildahArgs(spec: BuildSpec): string[] {
  const args = ["bud", "--isolation=chroot", "--storage-driver=vfs", "--format=docker"];
  const dockerfile = posix.normalize(spec.dockerfile);
  args.push("-f", spec.context.kind === "git" ? dockerfile : posix.join(CONTEXT_DIR, dockerfile));
  for (const tag of spec.tags) args.push("-t", tag);
  if (spec.target !== undefined) args.push(`--target=${spec.target}`);
  if (spec.platforms.length === 1) args.push(`--platform=${spec.platforms[0]}`);
  for (const { key, value } of spec.buildArgs) args.push(`--build-arg=${key}=${value}`);
  for (const { key, value } of spec.labels) args.push(`--label=${key}=${value}`);
  for (const { id } of spec.secrets)
    args.push(`--secret=id=${id},src=${posix.join(BUILD_SECRETS_DIR, id)}`);
  if (spec.cacheRepo !== undefined) {
    args.push("--layers", `--cache-from=${spec.cacheRepo}`, `--cache-to=${spec.cacheRepo}`);
    if (spec.cacheTtl !== undefined) args.push(`--cache-ttl=${spec.cacheTtl}`);
  }
  args.push(spec.context.kind === "git" ? spec.context.url : CONTEXT_DIR);
  return args;
}

function render(spec: BuildSpec, env: RenderEnvironment): BuilderPod {
  const volumeMounts: V1VolumeMount[] = [
    { name: WORKSPACE_VOLUME, mountPath: CONTEXT_DIR },
    { name: BUILDAH_STORAGE_VOLUME, mountPath: BUILDAH_STORAGE_DIR },
  ];
  const containerEnv: V1EnvVar[] = [
    { name: "STORAGE_DRIVER", value: "vfs" },
    { name: "BUILDAH_ISOLATION", value: "chroot" },
    { name: "KIB_TAGS", value: spec.tags.join(" ") },
    { name: "KIB_PUSH", value: String(spec.push) },
    { name: "KIB_INSECURE_REGISTRIES", value: spec.insecureRegistries.join(" ") },
    { name: "KIB_REGISTRIES_CONF", value: buildahRegistriesConf(spec.insecureRegistries) },
  ];
  if (env.hasRegistryCredentials) {
    volumeMounts.push({
      name: REGISTRY_CREDENTIALS_VOLUME,
      mountPath: BUILDAH_AUTH_DIR,
      readOnly: true,
    });
    containerEnv.push({ name: "REGISTRY_AUTH_FILE", value: BUILDAH_AUTH_FILE });
  }
  if (env.hasBuildSecrets) {
    volumeMounts.push({ name: BUILD_SECRETS_VOLUME, mountPath: BUILD_SECRETS_DIR, readOnly: true });
  }
  const appArmor = appArmorUnconfined(env);
  const container: V1Container = {
    name: BUILD_CONTAINER,
    image: spec.builderImage,
    command: [...COMMAND],
    args: buildahArgs(spec),
    env: containerEnv,
    securityContext: {
      runAsUser: 0,
      capabilities: { drop: ["ALL"], add: ["SETUID", "SETGID", "SETFCAP"] },
      seccompProfile: { type: "Unconfined" },
      ...appArmor.securityContext,
    },
    volumeMounts,
  };
  const resources = containerResources(spec);
  if (resources) container.resources = resources;

  const volumes: V1Volume[] = [{ name: BUILDAH_STORAGE_VOLUME, emptyDir: {} }];
  const pod: BuilderPod = { container, volumes };
  if (appArmor.podAnnotations) pod.podAnnotations = appArmor.podAnnotations;
  return pod;
}

export const buildah: Builder = {
  name: "buildah",
  defaultImage: BUILDAH_IMAGE,
  podSecurityLevel: "privileged",
  privileged: false,
  needsServerVersion: true,
  unsupported(spec) {
    if (spec.platforms.length > 1) {
      return {
        input: "platforms",
        detail:
          "Buildah builds one platform per build here (several need a manifest list and emulators on the node); give one, or use builder: buildkit for multi-platform images",
      };
    }
    const buildxCache = buildxCacheInput(spec);
    if (buildxCache) {
      return {
        input: buildxCache,
        detail:
          'takes buildx-style cache entries, which only BuildKit reads (builder: buildkit or dind); Buildah takes its registry cache from "cache-repo"',
      };
    }
    return undefined;
  },
  render,
};
