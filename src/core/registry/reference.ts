/** Splitting an image repository into the registry host and the repository name the API uses. */

/** The registry Docker means when a reference names no host. */
export const DOCKER_HUB = "docker.io";

export interface RepositoryParts {
  /** Registry host as written (`ghcr.io`, `localhost:5000`, `docker.io`). */
  registry: string;
  /** Repository name inside the registry (`acme/web`, `library/nginx`). */
  name: string;
}

/**
 * Docker's rule: the first path component is a registry host when it contains "." or ":" or is
 * "localhost"; otherwise the reference is on Docker Hub (and a single component gets `library/`).
 * A `:tag` or `@digest` suffix is ignored.
 */
export function splitRepository(reference: string): RepositoryParts {
  let ref = reference.trim();
  const at = ref.indexOf("@");
  if (at >= 0) ref = ref.slice(0, at);
  const lastSlash = ref.lastIndexOf("/");
  const colon = ref.indexOf(":", lastSlash + 1);
  if (colon >= 0) ref = ref.slice(0, colon);
  const slash = ref.indexOf("/");
  const first = slash >= 0 ? ref.slice(0, slash) : "";
  if (slash >= 0 && (first.includes(".") || first.includes(":") || first === "localhost")) {
    const registry = first === "index.docker.io" ? DOCKER_HUB : first;
    const name = ref.slice(slash + 1);
    return {
      registry,
      name: registry === DOCKER_HUB && !name.includes("/") ? `library/${name}` : name,
    };
  }
  return { registry: DOCKER_HUB, name: ref.includes("/") ? ref : `library/${ref}` };
}

/** The host that serves the distribution API for a registry (Docker Hub's differs from its name). */
export function apiHost(registry: string): string {
  return registry === DOCKER_HUB ? "registry-1.docker.io" : registry;
}

/**
 * True when `registry` is in the insecure list (plain HTTP). Entries may be `host`, `host:port`
 * or carry an `http://` prefix.
 */
export function isInsecureRegistry(
  registry: string,
  insecureRegistries: readonly string[],
): boolean {
  return insecureRegistries
    .map((r) =>
      r
        .trim()
        .replace(/^https?:\/\//, "")
        .replace(/\/+$/, ""),
    )
    .some((r) => r === registry);
}
