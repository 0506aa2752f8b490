/** Pieces of the build container that several builders share. */
import type { V1ResourceRequirements, V1SecurityContext } from "@kubernetes/client-node";
import type { BuildSpec } from "../types.js";
import { BUILD_CONTAINER, type RenderEnvironment } from "./types.js";

/** The `resources` input as the container's requests and limits; undefined when none is given. */
export function containerResources(spec: BuildSpec): V1ResourceRequirements | undefined {
  const { requests, limits } = spec.resources;
  if (Object.keys(requests).length === 0 && Object.keys(limits).length === 0) return undefined;
  return {
    ...(Object.keys(requests).length > 0 ? { requests: { ...requests } } : {}),
    ...(Object.keys(limits).length > 0 ? { limits: { ...limits } } : {}),
  };
}

/** First Kubernetes minor with the securityContext.appArmorProfile field (GA in 1.30). */
const APPARMOR_FIELD_MINOR = 30;

/**
 * AppArmor `unconfined` for the build container: the securityContext field from 1.30, the pod
 * annotation before (and when the server version is unknown: every version honours it).
 */
export function appArmorUnconfined(env: RenderEnvironment): {
  securityContext: Pick<V1SecurityContext, "appArmorProfile">;
  podAnnotations?: Record<string, string>;
} {
  if (env.serverMinorVersion !== undefined && env.serverMinorVersion >= APPARMOR_FIELD_MINOR) {
    return { securityContext: { appArmorProfile: { type: "Unconfined" } } };
  }
  return {
    securityContext: {},
    podAnnotations: {
      [`container.apparmor.security.beta.kubernetes.io/${BUILD_CONTAINER}`]: "unconfined",
    },
  };
}

/** The buildx-style cache input a spec uses (only BuildKit reads those), if any. */
export function buildxCacheInput(spec: BuildSpec): "cache-from" | "cache-to" | undefined {
  if (spec.cacheFrom.length > 0) return "cache-from";
  if (spec.cacheTo.length > 0) return "cache-to";
  return undefined;
}
