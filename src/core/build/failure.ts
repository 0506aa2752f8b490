/**
 * Why a build ended without a result, in the cluster's own words: the Job's failure condition
 * (DeadlineExceeded above all), else the pod's status.
 */
import { BuildFailure } from "../errors.js";
import { formatDuration } from "../spec/parse.js";
import { LOG_TAIL_LINES, type BuildRun } from "./run.js";

/** Why the Job failed, when it says so (DeadlineExceeded above all). */
export async function jobFailure(run: BuildRun): Promise<BuildFailure | undefined> {
  try {
    const job = await run.clients.batch.readNamespacedJob({
      name: run.created.job ?? run.identity.jobName,
      namespace: run.namespace,
    });
    const failed = job.status?.conditions?.find(
      // From 1.31 the Job controller sets FailureTarget (with the reason) first and Failed only
      // once its pods are gone: either one says why.
      (condition) =>
        (condition.type === "Failed" || condition.type === "FailureTarget") &&
        condition.status === "True",
    );
    // Before 1.31 the Job controller deletes the pods at its deadline first and writes the Failed
    // condition after: a pod gone in between, with the deadline already past, went for it.
    const deadline = job.spec?.activeDeadlineSeconds;
    const startTime = job.status?.startTime;
    const pastDeadline =
      !failed &&
      deadline !== undefined &&
      startTime !== undefined &&
      Date.now() >= new Date(startTime).getTime() + deadline * 1000;
    if (failed?.reason === "DeadlineExceeded" || pastDeadline) {
      return new BuildFailure(
        "deadline-exceeded",
        `the build exceeded its timeout of ${formatDuration(run.spec.timeoutSeconds)} (the Job's activeDeadlineSeconds) and was stopped`,
        [...run.logTail],
      );
    }
    if (failed) {
      return new BuildFailure(
        "pod-deleted",
        `the Job failed: ${failed.reason ?? ""} ${failed.message ?? ""}`.trim(),
        [...run.logTail],
      );
    }
  } catch {
    // The Job is gone or unreadable: the pod's own state has to do.
  }
  return undefined;
}

/**
 * The pod was deleted while `container` still ran (no one in this build deletes it before the end):
 * the Job's deadline when the Job says so, else someone or something else (kubectl delete, a node
 * drain, an eviction) — not a build failure, whatever exit code the stopped container left.
 */
export async function deletedWhileRunning(
  run: BuildRun,
  container: string,
  exitCode: number | undefined,
): Promise<BuildFailure> {
  const failure = await jobFailure(run);
  if (failure?.kind === "deadline-exceeded") return failure;
  const stopped =
    exitCode === undefined ? "" : ` (${container} was stopped, exit code ${exitCode})`;
  return new BuildFailure(
    "pod-deleted",
    `the build pod was deleted before the build finished${stopped}`,
    [...run.logTail],
  );
}

/** The pod ended or is being deleted without a result: find out why. */
export async function failFromPod(run: BuildRun): Promise<never> {
  const { tracker } = run;
  if (tracker.failure) throw tracker.failure;
  const failure = await jobFailure(run);
  if (failure?.kind === "deadline-exceeded") throw failure;
  const reason = tracker.pod?.status?.reason;
  const message = tracker.pod?.status?.message;
  // The pod's own reason (a kubelet that refused or evicted it) says more than the Job's backoff.
  if (failure && !reason) throw failure;
  throw new BuildFailure(
    "pod-deleted",
    reason
      ? `the build pod ended: ${reason}${message ? `: ${message}` : ""}`
      : "the build pod was deleted before the build finished",
    [...run.logTail],
  );
}

/** The last lines a container logged, for a failure message; none when they cannot be read. */
export async function readLogTail(run: BuildRun, container: string): Promise<string[]> {
  try {
    const text = await run.clients.core.readNamespacedPodLog({
      name: run.tracker.pod?.metadata?.name ?? "",
      namespace: run.namespace,
      container,
      tailLines: LOG_TAIL_LINES,
    });
    return text.split("\n").filter((line) => line.length > 0);
  } catch {
    return [];
  }
}
