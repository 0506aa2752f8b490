/**
 * Run and follow: wait for the pod to be scheduled and start, send the context into the receiver,
 * then stream the builder's log until it ends. The pod watch (through the tracker) decides every
 * wait; nothing polls.
 */
import type { CoreV1Event, V1ContainerStateTerminated } from "@kubernetes/client-node";
import { BUILD_CONTAINER, CONTEXT_CONTAINER } from "../builders/types.js";
import { followLog } from "../cluster/log-follower.js";
import type { WatchStream } from "../cluster/watch-stream.js";
import { tarContext, uploadContext, type ContextPlan } from "../context/index.js";
import { BuildFailure } from "../errors.js";
import type { LogLine } from "../reporter.js";
import { deletedWhileRunning, failFromPod, jobFailure, readLogTail } from "./failure.js";
import { formatBytes, formatCount } from "./format.js";
import { LOG_TAIL_LINES, type BuildRun } from "./run.js";
import { watchEvents } from "./watches.js";

/**
 * The builder container's final state; rejects with the cause when the pod ends without one. An
 * upload or log stream ended by the Job's deadline rejects with the deadline's failure.
 */
export async function runAndFollow(run: BuildRun): Promise<V1ContainerStateTerminated> {
  try {
    return await runThenFollow(run);
  } catch (error) {
    const { signal } = run.streams;
    if (signal.aborted && !run.abort.signal.aborted && signal.reason instanceof BuildFailure)
      throw signal.reason;
    throw error;
  }
}

async function runThenFollow(run: BuildRun): Promise<V1ContainerStateTerminated> {
  const scheduleStarted = performance.now();
  const podEvents = await waitForStart(run);
  run.timings.scheduleMs = performance.now() - scheduleStarted;

  if (run.contextPlan) {
    const uploadStarted = performance.now();
    await sendContext(run, run.contextPlan);
    run.timings.uploadMs = performance.now() - uploadStarted;
  }

  const buildStarted = performance.now();
  const terminated = await followBuilder(run, podEvents);
  run.timings.buildMs = performance.now() - buildStarted;
  return terminated;
}

/** Until the pod's first container starts; returns the watch on the pod's events (Pending problems). */
async function waitForStart(run: BuildRun): Promise<WatchStream<CoreV1Event>> {
  const { reporter, tracker } = run;
  let podEvents: WatchStream<CoreV1Event> | undefined;
  await reporter.group("Schedule", async () => {
    // Until the pod exists, only the Job's events can say why it does not (admission refused it).
    const jobEvents = watchEvents(run, `involvedObject.uid=${run.submitted?.metadata?.uid ?? ""}`);
    await tracker.until(() => tracker.pod !== undefined);
    jobEvents.stop();
    const podName = tracker.pod?.metadata?.name ?? "";
    reporter.info(`Pod ${podName} created; waiting for it to start`);
    podEvents = watchEvents(run, `involvedObject.name=${podName}`);
    const firstContainer = run.contextPlan ? CONTEXT_CONTAINER : BUILD_CONTAINER;
    await tracker.until(() => tracker.started(firstContainer) || tracker.deleting || tracker.ended);
    // Failed before anything ran (refused where it was placed): the pod's status says why.
    if (tracker.ended && !tracker.started(firstContainer)) await failFromPod(run);
    const node = tracker.pod?.spec?.nodeName;
    if (node) reporter.info(`Scheduled on ${node}`);
  });
  return podEvents!;
}

/** Streams the context into the receiver and waits for it to unpack all of it. */
async function sendContext(run: BuildRun, contextPlan: ContextPlan): Promise<void> {
  const { reporter, tracker, builder } = run;
  await reporter.group("Upload context", async () => {
    if (!tracker.running(CONTEXT_CONTAINER)) await failFromPod(run);
    let files = 0;
    let bytes = 0;
    // The receiver's end (or the pod's) ends the upload: a node need not close the attach stream
    // when the container it feeds is killed, and an upload waiting on a socket nobody reads would
    // wait for the Job's deadline.
    const receiverEnded = new AbortController();
    void tracker
      .until(() => Boolean(tracker.terminated(CONTEXT_CONTAINER)) || tracker.gone)
      .then(
        () => receiverEnded.abort(),
        () => receiverEnded.abort(),
      );
    const result = await uploadContext(
      {
        kubeConfig: run.connection.kubeConfig,
        namespace: run.namespace,
        pod: tracker.pod?.metadata?.name ?? "",
        container: CONTEXT_CONTAINER,
      },
      () =>
        tarContext(contextPlan, {
          owner: builder.workspaceOwner,
          onProgress: (progress) => {
            files = progress.files;
            bytes = progress.bytes;
          },
        }),
      {
        signal: AbortSignal.any([run.streams.signal, receiverEnded.signal]),
        onProgress: (sentBytes, elapsedMs) =>
          reporter.upload({ files, bytes, sentBytes, elapsedMs, done: false }),
      },
    ).catch(async (error: unknown) => {
      if (run.streams.signal.aborted) throw error;
      // The stream ends when the receiver does: when the pod is being deleted, that is the news.
      await tracker.until(
        () => tracker.deleting || Boolean(tracker.terminated(CONTEXT_CONTAINER)),
        2000,
      );
      if (!tracker.runningAtDeletion?.has(CONTEXT_CONTAINER)) throw error;
      await tracker.until(
        () => Boolean(tracker.terminated(CONTEXT_CONTAINER)) || tracker.gone,
        5000,
      );
      throw await deletedWhileRunning(
        run,
        CONTEXT_CONTAINER,
        tracker.terminated(CONTEXT_CONTAINER)?.exitCode,
      );
    });
    reporter.upload({
      files: contextPlan.files,
      bytes: contextPlan.bytes,
      sentBytes: result.sentBytes,
      elapsedMs: result.elapsedMs,
      done: true,
    });
    const seconds = Math.max(result.elapsedMs / 1000, 0.001);
    reporter.info(
      `Sent context: ${formatCount(contextPlan.files)} files, ${formatBytes(contextPlan.bytes)} (${formatBytes(result.sentBytes)} compressed) in ${seconds.toFixed(1)} s, ${formatBytes(contextPlan.bytes / seconds)}/s`,
    );
    await tracker.until(() => Boolean(tracker.terminated(CONTEXT_CONTAINER)) || tracker.deleting);
    if (tracker.runningAtDeletion?.has(CONTEXT_CONTAINER)) {
      // Deleted while unpacking: the receiver's end says little (a SIGKILL after the grace period).
      await tracker.until(
        () => Boolean(tracker.terminated(CONTEXT_CONTAINER)) || tracker.gone,
        5000,
      );
      throw await deletedWhileRunning(
        run,
        CONTEXT_CONTAINER,
        tracker.terminated(CONTEXT_CONTAINER)?.exitCode,
      );
    }
    const receiver = tracker.terminated(CONTEXT_CONTAINER);
    if (!receiver || receiver.exitCode !== 0) {
      const tail = await readLogTail(run, CONTEXT_CONTAINER);
      throw new BuildFailure(
        "upload-failed",
        receiver
          ? `the build context did not arrive whole: the receiver exited with code ${receiver.exitCode}${tail.length ? ` (${tail[tail.length - 1]})` : ""}`
          : "the build context did not arrive: the pod ended before the receiver finished",
        tail,
      );
    }
  });
}

/** Streams the builder's log into the CI log and returns how the builder ended. */
async function followBuilder(
  run: BuildRun,
  podEvents: WatchStream<CoreV1Event>,
): Promise<V1ContainerStateTerminated> {
  const { reporter, tracker, builder, logTail } = run;
  return reporter.group(`Build (${builder.name})`, async () => {
    await tracker.until(() => tracker.started(BUILD_CONTAINER) || tracker.deleting);
    if (tracker.deleting && !tracker.started(BUILD_CONTAINER)) await failFromPod(run);
    // Pending problems are over once the builder runs: the events have nothing more to say.
    podEvents.stop();
    const { requests } = await followLog({
      kubeConfig: run.connection.kubeConfig,
      namespace: run.namespace,
      pod: tracker.pod?.metadata?.name ?? "",
      container: BUILD_CONTAINER,
      onLine: (line: LogLine) => {
        logTail.push(line.text);
        if (logTail.length > LOG_TAIL_LINES) logTail.shift();
        reporter.buildLog(line);
        const warning = builder.warningFor?.(line.text);
        if (warning) reporter.warn(warning);
      },
      waitForTermination: (ms) =>
        tracker
          .until(() => Boolean(tracker.terminated(BUILD_CONTAINER)) || tracker.gone, ms)
          .catch(() => true),
      isTerminated: () => Boolean(tracker.terminated(BUILD_CONTAINER)),
      // A pod the node ended (an eviction) has no log left to read: pods/log answers 400
      // "unable to retrieve container logs …", which must not be retried nor shown.
      podGone: () => tracker.gone || tracker.failure !== undefined,
      terminated: tracker.until(() => Boolean(tracker.terminated(BUILD_CONTAINER)) || tracker.gone),
      signal: run.streams.signal,
      onRetry: (message) => reporter.debug(message),
      onGiveUp: (message) => reporter.warn(message),
      streamTimeoutMs: run.options.logStreamTimeoutMs,
      retryDelayMs: run.options.logRetryDelayMs,
    });
    reporter.debug(`log of ${BUILD_CONTAINER} read in ${requests} request(s)`);
    await tracker.until(() => Boolean(tracker.terminated(BUILD_CONTAINER)) || tracker.deleting);
    const stoppedByDeletion = tracker.runningAtDeletion?.has(BUILD_CONTAINER) ?? false;
    if (!tracker.terminated(BUILD_CONTAINER)) {
      // A pod being deleted (the deadline) still reports how its builder ended: wait for it briefly.
      await tracker.until(() => Boolean(tracker.terminated(BUILD_CONTAINER)) || tracker.gone, 5000);
    }
    const state = tracker.terminated(BUILD_CONTAINER);
    // A builder that finished with its digest stands, whatever deletes the pod afterwards.
    if (state?.exitCode === 0) return state;
    if (stoppedByDeletion) throw await deletedWhileRunning(run, BUILD_CONTAINER, state?.exitCode);
    if (tracker.deleting) {
      const failure = await jobFailure(run);
      if (failure) throw failure;
    }
    if (!state) return failFromPod(run);
    return state;
  });
}
