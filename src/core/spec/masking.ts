/** The values of a build request that must never be printed, for an adapter to mask. */
import type { InputName } from "./spec.js";
import type { BuildSpec } from "../types.js";

/** Inputs whose raw values are secrets: adapters mask them before anything else happens. */
export const SECRET_INPUTS: readonly InputName[] = [
  "kubeconfig",
  "registry-password",
  "docker-config-json",
  "secrets",
];

/** A kubeconfig input that names a file: one line, a path's shape. The file's secrets are masked once read. */
const KUBECONFIG_PATH = /^(\/|\.{1,2}\/|~\/|[A-Za-z]:\\)[^\s]*$/;

/** The raw values of SECRET_INPUTS to mask whole, before parsing: a kubeconfig path is not one. */
export function rawSecretValues(raw: Partial<Record<InputName, string>>): string[] {
  return SECRET_INPUTS.flatMap((name) => {
    const value = raw[name];
    if (!value) return [];
    if (name === "kubeconfig" && KUBECONFIG_PATH.test(value.trim())) return [];
    return [value];
  });
}

const KUBECONFIG_SECRET_FIELDS =
  /^\s*-?\s*(token|client-key-data|client-certificate-data|password|id-token|refresh-token|client-secret|access-token)\s*:\s*["']?([^"'\s]+)/;

/** Secret values in a kubeconfig, line by line: CI masks match single lines. */
export function kubeconfigSecrets(content: string): string[] {
  const values: string[] = [];
  for (const line of content.split(/\r?\n/)) {
    const match = KUBECONFIG_SECRET_FIELDS.exec(line);
    if (match && match[2].length >= 4) values.push(match[2]);
  }
  return values;
}

/** The password in a proxy URL (http://user:password@proxy:3128), decoded as it is sent. */
function proxyPassword(value: string | undefined): string | undefined {
  if (!value) return undefined;
  try {
    const url = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(value) ? value : `http://${value}`);
    return url.password ? decodeURIComponent(url.password) : undefined;
  } catch {
    return undefined;
  }
}

export function secretsOf(spec: BuildSpec): string[] {
  const values: string[] = [];
  if (spec.cluster.kubeconfigContent)
    values.push(...kubeconfigSecrets(spec.cluster.kubeconfigContent));
  for (const proxy of [spec.cluster.proxy?.httpsProxy, spec.cluster.proxy?.httpProxy]) {
    const password = proxyPassword(proxy);
    if (password) values.push(password);
  }
  if (spec.registryAuth?.kind === "basic") {
    values.push(spec.registryAuth.password);
    values.push(
      Buffer.from(`${spec.registryAuth.username}:${spec.registryAuth.password}`).toString("base64"),
    );
  }
  if (spec.registryAuth?.kind === "docker-config-json") {
    for (const match of spec.registryAuth.json.matchAll(
      /"(?:auth|password|identitytoken|registrytoken)"\s*:\s*"([^"]+)"/g,
    )) {
      values.push(match[1]);
    }
  }
  for (const secret of spec.secrets) {
    for (const line of secret.value.toString("utf8").split(/\r?\n/)) {
      if (line.trim().length >= 3) values.push(line.trim());
    }
  }
  return values.filter((value) => value.length > 0);
}
