import type { V1Container, V1PodSecurityContext, V1Volume } from "@kubernetes/client-node";
import type { BuilderName, BuildSpec } from "../types.js";

/** Pod Security Admission levels, least to most restrictive. */
export type PodSecurityLevel = "privileged" | "baseline" | "restricted";

/** Volumes that manifests.ts always provides, by name, for the builder to mount. */
export const WORKSPACE_VOLUME = "workspace";
/**
 * Where the build context is unpacked (the receiver's `tar -xzf - -C`) and read by every builder:
 * one convention for all engines. Kaniko builds the image by snapshotting the build container's
 * filesystem and leaves every mount point out of its snapshots (kaniko#2021): with the context
 * mounted at /workspace — Kaniko's own default WORKDIR, used by many Dockerfiles — whatever a RUN
 * step wrote under /workspace was missing from the pushed image. /kaniko is Kaniko's own directory,
 * on its default ignore list and never part of an image, so nothing a Dockerfile writes can land
 * under this mount (Skaffold uses the same path). For the other engines the path is neutral: they
 * build in their own root filesystems and only read the context from here.
 */
export const CONTEXT_DIR = "/kaniko/buildcontext";
/** Present only when the spec has registry credentials: one key, `config.json`. */
export const REGISTRY_CREDENTIALS_VOLUME = "registry-credentials";
/** Present only when the spec has build secrets: one file per secret id. */
export const BUILD_SECRETS_VOLUME = "build-secrets";
export const BUILD_SECRETS_DIR = "/run/secrets/k8s-image-build";
/** Name of the builder container; the receiver init container is "context". */
export const BUILD_CONTAINER = "build";
export const CONTEXT_CONTAINER = "context";

export interface RenderEnvironment {
  hasRegistryCredentials: boolean;
  hasBuildSecrets: boolean;
  /** Kubernetes minor version of the API server ("1.26" → 26), when the builder asked for it. */
  serverMinorVersion?: number;
}

/** What a builder adds to the pod. */
export interface BuilderPod {
  container: V1Container;
  /** Extra volumes the builder needs besides the ones manifests.ts provides. */
  volumes: V1Volume[];
  podSecurityContext?: V1PodSecurityContext;
  podAnnotations?: Record<string, string>;
}

export interface Builder {
  readonly name: BuilderName;
  readonly defaultImage: string;
  /** The least permissive Pod Security level whose namespaces admit this builder's pod. */
  readonly podSecurityLevel: PodSecurityLevel;
  /**
   * The pod runs a `privileged` container: refused unless the user sets `allow-privileged: true`
   * (builders/index.ts, unsupportedInput), with `privilegedRisk` as the reason.
   */
  readonly privileged: boolean;
  /** Why the privileged container is a risk, in a few words (privileged builders only). */
  readonly privilegedRisk?: string;
  /** Whether render() needs the API server's version (asked once, before rendering). */
  readonly needsServerVersion: boolean;
  /** The user the builder reads CONTEXT_DIR as, when not root: the context is unpacked as theirs. */
  readonly workspaceOwner?: { uid: number; gid: number };
  /** Input combinations this engine cannot honour: one line naming the input, or undefined. */
  unsupported(spec: BuildSpec): { input: string; detail: string } | undefined;
  /** The build container (name BUILD_CONTAINER) and what it needs. Pure. */
  render(spec: BuildSpec, env: RenderEnvironment): BuilderPod;
  /** Log lines worth a warning in the CI log (e.g. a cache export that failed but was ignored). */
  warningFor?(line: string): string | undefined;
}
