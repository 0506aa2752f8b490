/** A minimal valid BuildSpec for unit tests that render from a spec without parsing inputs. */
import { KANIKO_IMAGE } from "../../src/core/builders/kaniko.js";
import type { BuildSpec } from "../../src/core/types.js";

export function specOf(over: Partial<BuildSpec> = {}): BuildSpec {
  return {
    context: { kind: "dir", dir: "/src" },
    dockerfile: "Dockerfile",
    tags: ["ghcr.io/acme/web:1"],
    buildArgs: [],
    labels: [],
    push: true,
    platforms: [],
    cacheFrom: [],
    cacheTo: [],
    secrets: [],
    cluster: { kubeconfigPaths: [] },
    builder: "kaniko",
    builderImage: KANIKO_IMAGE,
    contextImage: "docker.io/library/busybox:1.37.0",
    nodeSelector: {},
    tolerations: [],
    resources: { requests: {}, limits: {} },
    timeoutSeconds: 1800,
    scheduleTimeoutSeconds: 600,
    ttlSeconds: 600,
    keepJob: false,
    reuse: false,
    insecureRegistries: [],
    allowPrivileged: false,
    dryRun: false,
    ...over,
  };
}
