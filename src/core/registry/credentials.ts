/** Picking registry credentials for one registry out of the build's RegistryAuth. */

import type { RegistryAuth } from "../types.js";
import type { RegistryCredentials } from "./client.js";
import { DOCKER_HUB } from "./reference.js";

function normalizeHost(key: string): string {
  let host = key.trim().replace(/^https?:\/\//, "");
  host = host.split("/")[0] ?? host;
  return host === "index.docker.io" || host === "registry-1.docker.io" ? DOCKER_HUB : host;
}

/**
 * The username/password for `registry` from the build's RegistryAuth: a basic entry listing the
 * registry, or the `auths` entry of a docker config JSON (`auth` base64 or username/password;
 * `https://index.docker.io/v1/` counts as docker.io). Undefined when none applies.
 */
export function credentialsForRegistry(
  auth: RegistryAuth | undefined,
  registry: string,
): RegistryCredentials | undefined {
  if (!auth) return undefined;
  const want = normalizeHost(registry);
  if (auth.kind === "basic") {
    return auth.registries.some((r) => normalizeHost(r) === want)
      ? { username: auth.username, password: auth.password }
      : undefined;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(auth.json);
  } catch {
    return undefined;
  }
  const auths =
    (parsed as { auths?: Record<string, { auth?: string; username?: string; password?: string }> })
      .auths ?? {};
  for (const [key, entry] of Object.entries(auths)) {
    if (normalizeHost(key) !== want) continue;
    if (entry.username !== undefined && entry.password !== undefined)
      return { username: entry.username, password: entry.password };
    if (entry.auth) {
      const decoded = Buffer.from(entry.auth, "base64").toString("utf8");
      const colon = decoded.indexOf(":");
      if (colon > 0)
        return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
    }
  }
  return undefined;
}
