/**
 * What the process environment says about the cluster, read in one place for every adapter:
 * $KUBECONFIG (or ~/.kube/config), the in-cluster service account and the proxy variables. The
 * engine gets the result.
 */
import { homedir } from "node:os";
import { delimiter, join } from "node:path";
import type { ParseEnvironment } from "./core/spec/spec.js";
import type { ProxySettings } from "./core/types.js";

export const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

export function clusterEnvironment(env: NodeJS.ProcessEnv, workspace: string): ParseEnvironment {
  const kubeconfigPaths = env.KUBECONFIG
    ? env.KUBECONFIG.split(delimiter).filter((path) => path.length > 0)
    : [join(homedir(), ".kube", "config")];
  const inCluster =
    env.KUBERNETES_SERVICE_HOST && env.KUBERNETES_SERVICE_PORT
      ? {
          host: env.KUBERNETES_SERVICE_HOST,
          port: env.KUBERNETES_SERVICE_PORT,
          serviceAccountDir: SERVICE_ACCOUNT_DIR,
        }
      : undefined;
  const proxy = proxyEnvironment(env);
  return { workspace, kubeconfigPaths, inCluster, home: homedir(), ...(proxy ? { proxy } : {}) };
}

/** The first of the names that is set and not empty (kubectl reads the upper-case form first). */
function firstSet(env: NodeJS.ProcessEnv, ...names: string[]): string | undefined {
  for (const name of names) {
    const value = env[name]?.trim();
    if (value) return value;
  }
  return undefined;
}

/** HTTPS_PROXY, HTTP_PROXY and NO_PROXY (or lower case), as kubectl and docker read them. */
export function proxyEnvironment(env: NodeJS.ProcessEnv): ProxySettings | undefined {
  const httpsProxy = firstSet(env, "HTTPS_PROXY", "https_proxy");
  const httpProxy = firstSet(env, "HTTP_PROXY", "http_proxy");
  const noProxy = firstSet(env, "NO_PROXY", "no_proxy");
  if (!httpsProxy && !httpProxy) return undefined;
  return {
    ...(httpsProxy ? { httpsProxy } : {}),
    ...(httpProxy ? { httpProxy } : {}),
    ...(noProxy ? { noProxy } : {}),
  };
}
