/**
 * Clean up, on every path: stop the watches and the deadline, then delete the Job (its pods go with
 * it) and the Secrets, unless keep-job asks to leave them. Runs once.
 */
import { deleteBuildObjects } from "../job/cleanup.js";
import type { BuildRun } from "./run.js";

export async function cleanUp(run: BuildRun): Promise<void> {
  if (run.cleanedUp) return;
  run.cleanedUp = true;
  const { created, reporter, namespace } = run;
  clearTimeout(run.deadlineTimer);
  for (const watch of run.watches) watch.stop();
  run.tracker.stop();
  if (run.spec.keepJob) {
    if (created.job)
      reporter.info(`Kept Job ${created.job} in ${namespace} (keep-job); its TTL removes it later`);
    return;
  }
  if (!created.job && created.secrets.length === 0) {
    run.options.onCleanedUp?.(created);
    return;
  }
  const { deleted, complete } = await deleteBuildObjects(run.clients, created, {
    timeoutMs: run.options.cleanupTimeoutMs,
    onWarning: (message) => reporter.warn(message),
  });
  if (deleted.length > 0) reporter.debug(`Deleted ${deleted.join(", ")}`);
  // What could not be deleted stays in the saved state, for the post step to try again.
  if (complete) run.options.onCleanedUp?.(created);
}
