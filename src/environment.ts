/**
 * What the process environment says about the cluster, read in one place for every adapter:
 * $KUBECONFIG (or ~/.kube/config) and the in-cluster service account. The engine gets the result.
 */
import { homedir } from "node:os";
import { delimiter, join } from "node:path";
import type { ParseEnvironment } from "./core/spec/spec.js";

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
  return { workspace, kubeconfigPaths, inCluster };
}
