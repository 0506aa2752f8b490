/**
 * Kaniko (the maintained fork, ghcr.io/osscontainertools/kaniko): runs as uid 0 without
 * `privileged`, so its pod fits Pod Security `baseline`. Flags checked against the fork's
 * cmd/executor/cmd/root.go and pkg/config/options.go:
 *
 * - `--context=dir:///kaniko/buildcontext` (LocalDirBuildContextPrefix; CONTEXT_DIR, under Kaniko's
 *   own /kaniko so that no mount lies where a Dockerfile writes) or `git://host/path#ref`
 *   (pkg/buildcontext/git.go clones `https://host/path`, fetching `ref` — a commit hash or a
 *   `refs/…` name); a branch or tag name goes through `--git=branch=<name>`, a subdirectory through
 *   `--context-sub-path`.
 * - `--digest-file=/dev/termination-log`: DoPush writes the image digest there (and last).
 * - `--insecure-registry=<host>` (repeatable): plain HTTP for push, pull and cache on that host.
 *
 * Build secrets are refused: whether a given Kaniko image takes `--secret` (and with which
 * feature flag) differs between releases of the fork, and a flag it does not know would fail the
 * build after the Job started; BuildKit takes them.
 */
import type { V1Container, V1EnvVar, V1VolumeMount } from "@kubernetes/client-node";
import { posix } from "node:path";
import type { BuildSpec } from "../types.js";
import {
  BUILD_CONTAINER,
  REGISTRY_CREDENTIALS_VOLUME,
  CONTEXT_DIR,
  WORKSPACE_VOLUME,
  type Builder,
  type BuilderPod,
  type RenderEnvironment,
} from "./types.js";
import { buildxCacheInput, containerResources } from "./container.js";

/** Pinned release of the maintained fork (upstream gcr.io/kaniko-project was archived 2025-06-03). */
export const KANIKO_IMAGE = "ghcr.io/osscontainertools/kaniko:v1.28.2";

/** Kaniko's own directory: excluded from every snapshot, so mounts here never reach the image. */
export const KANIKO_DOCKER_CONFIG_DIR = "/kaniko/.docker";
const HASH = /^[0-9a-f]{40}([0-9a-f]{24})?$/;

/** Kaniko's form of a git context: `git://host/path[#ref]` plus the flags it needs. */
export function kanikoGitContext(url: string): { context: string; flags: string[] } {
  const hash = url.indexOf("#");
  const base = hash < 0 ? url : url.slice(0, hash);
  const fragment = hash < 0 ? "" : url.slice(hash + 1);
  const colon = fragment.indexOf(":");
  const ref = colon < 0 ? fragment : fragment.slice(0, colon);
  const subdir = colon < 0 ? "" : fragment.slice(colon + 1);
  // Kaniko prefixes what follows git:// with https:// (GIT_PULL_METHOD unset).
  const hostAndPath = base.replace(/^(?:git|https):\/\//, "");
  const flags: string[] = [];
  let context = `git://${hostAndPath}`;
  if (ref !== "") {
    if (HASH.test(ref) || ref.startsWith("refs/")) context += `#${ref}`;
    else flags.push(`--git=branch=${ref}`);
  }
  if (subdir !== "" && subdir !== "/" && subdir !== ".") flags.push(`--context-sub-path=${subdir}`);
  return { context, flags };
}

/** The executor's arguments. Pure; exported for tests and dry runs. */
export function kanikoArgs(spec: BuildSpec): string[] {
  const args: string[] = [];
  const dockerfile = posix.normalize(spec.dockerfile);
  if (spec.context.kind === "git") {
    const git = kanikoGitContext(spec.context.url);
    args.push(`--context=${git.context}`, ...git.flags, `--dockerfile=${dockerfile}`);
  } else {
    args.push(
      `--context=dir://${CONTEXT_DIR}`,
      `--dockerfile=${posix.join(CONTEXT_DIR, dockerfile)}`,
    );
  }
  for (const tag of spec.tags) args.push(`--destination=${tag}`);
  if (!spec.push) args.push("--no-push");
  args.push("--digest-file=/dev/termination-log");
  if (spec.target !== undefined) args.push(`--target=${spec.target}`);
  for (const { key, value } of spec.buildArgs) args.push(`--build-arg=${key}=${value}`);
  for (const { key, value } of spec.labels) args.push(`--label=${key}=${value}`);
  if (spec.cacheRepo !== undefined) {
    args.push("--cache=true", `--cache-repo=${spec.cacheRepo}`);
    if (spec.cacheTtl !== undefined) args.push(`--cache-ttl=${spec.cacheTtl}`);
  }
  for (const registry of spec.insecureRegistries) args.push(`--insecure-registry=${registry}`);
  return args;
}

function render(spec: BuildSpec, env: RenderEnvironment): BuilderPod {
  // Every mount stays under /kaniko: Kaniko leaves mount points out of the image it snapshots.
  // A git context is cloned by Kaniko itself (into its own /kaniko/buildcontext): nothing to mount.
  const volumeMounts: V1VolumeMount[] =
    spec.context.kind === "dir" ? [{ name: WORKSPACE_VOLUME, mountPath: CONTEXT_DIR }] : [];
  const containerEnv: V1EnvVar[] = [];
  if (env.hasRegistryCredentials) {
    volumeMounts.push({
      name: REGISTRY_CREDENTIALS_VOLUME,
      mountPath: KANIKO_DOCKER_CONFIG_DIR,
      readOnly: true,
    });
    containerEnv.push({ name: "DOCKER_CONFIG", value: KANIKO_DOCKER_CONFIG_DIR });
  }
  const container: V1Container = {
    name: BUILD_CONTAINER,
    image: spec.builderImage,
    args: kanikoArgs(spec),
    ...(containerEnv.length > 0 ? { env: containerEnv } : {}),
    ...(volumeMounts.length > 0 ? { volumeMounts } : {}),
    terminationMessagePath: "/dev/termination-log",
    terminationMessagePolicy: "File",
  };
  const resources = containerResources(spec);
  if (resources) container.resources = resources;
  return { container, volumes: [] };
}

export const kaniko: Builder = {
  name: "kaniko",
  defaultImage: KANIKO_IMAGE,
  podSecurityLevel: "baseline",
  privileged: false,
  needsServerVersion: false,
  unsupported(spec) {
    if (spec.platforms.length > 0) {
      return {
        input: "platforms",
        detail:
          "Kaniko builds for the node it runs on and cannot build several platforms; use builder: buildkit for multi-platform images",
      };
    }
    const buildxCache = buildxCacheInput(spec);
    if (buildxCache) {
      return {
        input: buildxCache,
        detail:
          'is BuildKit-only; Kaniko takes its registry cache from "cache-repo" (or use builder: buildkit)',
      };
    }
    if (spec.secrets.length > 0) {
      return {
        input: "secrets",
        detail:
          "build secrets (secrets, secret-files) need builder: buildkit; Kaniko images differ in whether they take --secret",
      };
    }
    return undefined;
  },
  render,
};
