/** What the GitHub runner's environment says about the cluster and the run, read in one place. */
import { homedir } from "node:os";
import { delimiter, join } from "node:path";
import type { ParseEnvironment } from "../core/spec.js";

export function parseEnvironment(env: NodeJS.ProcessEnv = process.env): ParseEnvironment {
  const kubeconfigPaths = env.KUBECONFIG
    ? env.KUBECONFIG.split(delimiter).filter((path) => path.length > 0)
    : [join(homedir(), ".kube", "config")];
  const inCluster =
    env.KUBERNETES_SERVICE_HOST && env.KUBERNETES_SERVICE_PORT
      ? {
          host: env.KUBERNETES_SERVICE_HOST,
          port: env.KUBERNETES_SERVICE_PORT,
          serviceAccountDir: "/var/run/secrets/kubernetes.io/serviceaccount",
        }
      : undefined;
  return { workspace: env.GITHUB_WORKSPACE || process.cwd(), kubeconfigPaths, inCluster };
}

export function runId(env: NodeJS.ProcessEnv = process.env): string {
  if (env.GITHUB_RUN_ID) return `${env.GITHUB_RUN_ID}-${env.GITHUB_RUN_ATTEMPT ?? "1"}`;
  return "local";
}
