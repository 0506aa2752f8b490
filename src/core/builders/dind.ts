/**
 * Docker-in-Docker: the path for Dockerfiles and habits from `services: docker:dind`. One
 * privileged container runs the official `docker:<version>-dind` image: its script starts dockerd,
 * reports how long it took to answer, runs `docker build` (BuildKit, plain progress) and
 * `docker push` of each tag, and writes the first push's digest to the termination log.
 *
 * Measured on a real cluster (fixtures/k8s/dind-*): with only SYS_ADMIN and NET_ADMIN dockerd
 * starts but the first RUN fails on cgroups, so the container is `privileged` — root on the node
 * for anything that escapes the build. It is refused unless the user sets `allow-privileged: true`,
 * and it needs a namespace at Pod Security level `privileged`.
 */
import { posix } from "node:path";
import type { V1Container, V1EnvVar, V1Volume, V1VolumeMount } from "@kubernetes/client-node";
import type { BuildSpec } from "../types.js";
import { cacheEntry, registryCacheEntries, warningFor } from "./buildkit.js";
import { containerResources } from "./container.js";
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

/**
 * Pinned release of the official image. From Docker 29 the containerd image store is the default
 * on a fresh /var/lib/docker, which the registry cache (`--cache-to type=registry`) needs.
 */
export const DIND_IMAGE = "docker.io/library/docker:29.9.2-dind";

/** dockerd's data (images, containerd's snapshots, build cache) on an emptyDir. */
export const DIND_STORAGE_VOLUME = "docker";
export const DIND_STORAGE_DIR = "/var/lib/docker";
/** The Docker CLI's config: the registry Secret's config.json is mounted into it as one file. */
export const DIND_DOCKER_CONFIG_DIR = "/root/.docker";
/** How long the script waits for dockerd to answer before it gives up with dockerd's last lines. */
export const DIND_DOCKERD_WAIT_SECONDS = 60;

/**
 * The container's `sh -c` script; "$@" is `build …`. dockerd starts through the image's own
 * entrypoint, as `services: docker:dind` starts it: that picks legacy or nft iptables, runs dockerd
 * under docker-init and the `dind` wrapper, and on cgroup v2 gives it a cgroup namespace so the
 * build's containers stay inside the pod's cgroup (and its limits). Naming `dockerd` first skips the
 * entrypoint's TLS certificates and TCP listener: only the local socket. `docker info` answers once
 * dockerd is ready and the time it took is the first log line. The push output is printed, and the first tag's `digest: sha256:…` is the
 * only thing written to the termination log. Any failing step ends the script with its exit code;
 * no command echoes its arguments (no `set -x`).
 */
export const DIND_SCRIPT = `set -u
now_ms() { awk '{ printf "%d\\n", $1 * 1000 }' /proc/uptime; }
started=$(now_ms)
dockerd-entrypoint.sh dockerd --host=unix:///var/run/docker.sock $KIB_DOCKERD_FLAGS > /var/log/dockerd.log 2>&1 &
dockerd_pid=$!
until docker info > /dev/null 2>&1; do
  if ! kill -0 "$dockerd_pid" 2> /dev/null || [ $(( $(now_ms) - started )) -ge ${DIND_DOCKERD_WAIT_SECONDS * 1000} ]; then
    echo "dockerd did not start; the end of its log:"
    tail -n 20 /var/log/dockerd.log
    exit 1
  fi
  sleep 0.1
done
echo "dockerd ready after $(( $(now_ms) - started )) ms"
docker "$@" || exit $?
first=\${KIB_TAGS%% *}
if [ "$KIB_PUSH" != true ]; then
  docker image inspect --format '{{.Id}}' "$first" | tr -d '\\n' > /dev/termination-log
  exit 0
fi
for tag in $KIB_TAGS; do
  docker push "$tag" > /tmp/push.out 2>&1
  status=$?
  cat /tmp/push.out
  [ "$status" = 0 ] || exit "$status"
  if [ "$tag" = "$first" ]; then
    sed -n 's/.*digest: \\(sha256:[0-9a-f]\\{64\\}\\).*/\\1/p' /tmp/push.out | head -n 1 | tr -d '\\n' > /dev/termination-log
  fi
done
`;

/** `sh -c SCRIPT NAME args…`: NAME is $0, what sh prints in its own error messages. */
const COMMAND = ["sh", "-c", DIND_SCRIPT, "dind"];

/** dockerd's flags: plain HTTP for the insecure registries. */
export function dockerdFlags(spec: BuildSpec): string[] {
  return spec.insecureRegistries.map((registry) => `--insecure-registry=${registry}`);
}

/** `docker` arguments (`build …`). Pure; exported for tests and dry runs. */
export function dockerArgs(spec: BuildSpec): string[] {
  const args = ["build", "--progress=plain"];
  const dockerfile = posix.normalize(spec.dockerfile);
  args.push("-f", spec.context.kind === "git" ? dockerfile : posix.join(CONTEXT_DIR, dockerfile));
  for (const tag of spec.tags) args.push("-t", tag);
  if (spec.target !== undefined) args.push("--target", spec.target);
  if (spec.platforms.length > 0) args.push("--platform", spec.platforms.join(","));
  for (const { key, value } of spec.buildArgs) args.push("--build-arg", `${key}=${value}`);
  for (const { key, value } of spec.labels) args.push("--label", `${key}=${value}`);
  for (const { id } of spec.secrets)
    args.push("--secret", `id=${id},src=${posix.join(BUILD_SECRETS_DIR, id)}`);

  const insecure = spec.insecureRegistries;
  const registryCache = registryCacheEntries(spec);
  if (registryCache) {
    args.push("--cache-from", registryCache.from);
    args.push("--cache-to", registryCache.to);
  }
  for (const entry of spec.cacheFrom) args.push("--cache-from", cacheEntry(entry, insecure, false));
  for (const entry of spec.cacheTo) args.push("--cache-to", cacheEntry(entry, insecure, true));

  args.push(spec.context.kind === "git" ? spec.context.url : CONTEXT_DIR);
  return args;
}

function render(spec: BuildSpec, env: RenderEnvironment): BuilderPod {
  const volumeMounts: V1VolumeMount[] = [
    { name: WORKSPACE_VOLUME, mountPath: CONTEXT_DIR },
    { name: DIND_STORAGE_VOLUME, mountPath: DIND_STORAGE_DIR },
  ];
  if (env.hasRegistryCredentials) {
    // One file, so the CLI can still write its own state (buildx) beside it.
    volumeMounts.push({
      name: REGISTRY_CREDENTIALS_VOLUME,
      mountPath: `${DIND_DOCKER_CONFIG_DIR}/config.json`,
      subPath: "config.json",
      readOnly: true,
    });
  }
  if (env.hasBuildSecrets) {
    volumeMounts.push({ name: BUILD_SECRETS_VOLUME, mountPath: BUILD_SECRETS_DIR, readOnly: true });
  }
  const containerEnv: V1EnvVar[] = [
    { name: "KIB_DOCKERD_FLAGS", value: dockerdFlags(spec).join(" ") },
    { name: "KIB_TAGS", value: spec.tags.join(" ") },
    { name: "KIB_PUSH", value: String(spec.push) },
    { name: "DOCKER_CONFIG", value: DIND_DOCKER_CONFIG_DIR },
  ];
  const container: V1Container = {
    name: BUILD_CONTAINER,
    image: spec.builderImage,
    command: [...COMMAND],
    args: dockerArgs(spec),
    env: containerEnv,
    securityContext: { privileged: true },
    volumeMounts,
  };
  const resources = containerResources(spec);
  if (resources) container.resources = resources;
  const volumes: V1Volume[] = [{ name: DIND_STORAGE_VOLUME, emptyDir: {} }];
  return { container, volumes };
}

export const dind: Builder = {
  name: "dind",
  defaultImage: DIND_IMAGE,
  podSecurityLevel: "privileged",
  privileged: true,
  privilegedRisk: "root on the node for anything that escapes the build",
  needsServerVersion: false,
  unsupported(spec) {
    if (spec.cacheTtl !== undefined) {
      return {
        input: "cache-ttl",
        detail:
          "is for Kaniko and Buildah; BuildKit's registry cache in dockerd has no TTL (remove it, or use builder: kaniko or buildah)",
      };
    }
    return undefined;
  },
  render,
  warningFor,
};
