/**
 * The run id a CLI build labels its objects with (k8s-image-build/run-id), and the one
 * `k8s-image-build cleanup` selects them by: one GitLab job, one GitHub workflow run, or "local".
 */
export function runIdOf(env: NodeJS.ProcessEnv): string {
  if (env.CI_JOB_ID) return `gitlab-${env.CI_JOB_ID}`;
  if (env.GITHUB_RUN_ID) return env.GITHUB_RUN_ID;
  return "local";
}
