/** What the GitHub runner's environment says about the workspace and the run. */
import type { ParseEnvironment } from "../core/spec/spec.js";
import { clusterEnvironment } from "../environment.js";

export function parseEnvironment(env: NodeJS.ProcessEnv = process.env): ParseEnvironment {
  return clusterEnvironment(env, env.GITHUB_WORKSPACE || process.cwd());
}

export function runId(env: NodeJS.ProcessEnv = process.env): string {
  if (env.GITHUB_RUN_ID) return `${env.GITHUB_RUN_ID}-${env.GITHUB_RUN_ATTEMPT ?? "1"}`;
  return "local";
}
