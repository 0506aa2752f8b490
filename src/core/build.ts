/**
 * The one orchestrator: BuildSpec in, BuildResult out. Submits the Secrets and the Job, uploads the
 * context when the receiver runs, follows the build's log, reads the digest back, and deletes what
 * it created on every path.
 */
import type { CoreV1Event, V1Job, V1Pod } from "@kubernetes/client-node";
import { apiFailure, apiStatus, withRetry } from "./api-errors.js";
import { getBuilder } from "./builders/index.js";
import {
  BUILD_CONTAINER,
  CONTEXT_CONTAINER,
  type Builder,
  type RenderEnvironment,
} from "./builders/types.js";
import { deleteBuildObjects, type CreatedObjects } from "./cleanup.js";
import { connect, createClients, type ClusterClients } from "./cluster.js";
import { planContext, tarContext, type ContextPlan } from "./context.js";
import { BuildFailure, InputError } from "./errors.js";
import { followLog } from "./log-follower.js";
import { secretsOf } from "./masking.js";
import { submitManifests } from "./submit.js";
import { digestOf } from "./outcome.js";
import {
  LABEL_BUILD_ID,
  newBuildIdentity,
  renderManifests,
  type RenderedManifests,
} from "./manifests.js";
import { formatDuration } from "./parse.js";
import { PodTracker } from "./pod-tracker.js";
import { podSecurityRefusal } from "./preflight.js";
import type { LogLine, Reporter } from "./reporter.js";
import type { BuildIdentity, BuildResult, BuildSpec } from "./types.js";
import { uploadContext } from "./upload.js";
import { WatchStream } from "./watch-stream.js";

export interface BuildOptions {
  reporter: Reporter;
  /** Identifies the CI run in labels ("local" when none). */
  runId: string;
  /** Aborting cancels the build; what was created is deleted before build() rejects. */
  signal?: AbortSignal;
  /** Called once the objects exist, so an adapter can save them for a later cleanup step. */
  onSubmitted?(objects: CreatedObjects): void;
  /** Called after the build's own cleanup ran (the saved state can be dropped). */
  onCleanedUp?(objects: CreatedObjects): void;
  /** How long a Pending problem (unschedulable, image pull, mount) may last; default 30 s. */
  pendingGraceMs?: number;
  /** For tests: a fixed identity instead of a random one. */
  identity?: BuildIdentity;
  /** Time allowed for cleanup (the runner's cancellation grace is 7.5 s). */
  cleanupTimeoutMs?: number;
  /**
   * How long past the Job's deadline to wait before asking the Job itself (default 15 s): the pod
   * watch normally reports the end, but a Job whose pod was never created has none to report.
   */
  deadlineSlackMs?: number;
}

const LOG_TAIL_LINES = 20;

function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

function repositoryOf(reference: string): string {
  const withoutDigest = reference.split("@")[0];
  const lastSlash = withoutDigest.lastIndexOf("/");
  const lastColon = withoutDigest.lastIndexOf(":");
  return lastColon > lastSlash ? withoutDigest.slice(0, lastColon) : withoutDigest;
}

/** The manifests a build would submit, for --dry-run: needs no cluster. */
export function renderBuildManifests(
  spec: BuildSpec,
  runId: string,
  identity?: BuildIdentity,
): RenderedManifests {
  const builder = getBuilder(spec.builder);
  checkSupported(builder, spec);
  return renderManifests(
    { ...spec, namespace: spec.namespace ?? "default" },
    identity ?? newBuildIdentity(runId),
    {
      hasRegistryCredentials: spec.registryAuth !== undefined,
      hasBuildSecrets: spec.secrets.length > 0,
      serverMinorVersion: undefined,
    },
  );
}

function checkSupported(builder: Builder, spec: BuildSpec): void {
  const unsupported = builder.unsupported(spec);
  if (unsupported) throw new InputError(unsupported.input, unsupported.detail);
}

async function serverMinorVersion(
  clients: ClusterClients,
  signal: AbortSignal,
): Promise<number | undefined> {
  const info = await withRetry(() => clients.version.getCode(), { signal });
  const minor = Number.parseInt(info.minor.replace(/\D+$/, ""), 10);
  return Number.isFinite(minor) ? minor : undefined;
}

/** Runs one build in the cluster. Rejects with InputError or BuildFailure, always one line. */
export async function build(spec: BuildSpec, options: BuildOptions): Promise<BuildResult> {
  const reporter = options.reporter;
  const started = performance.now();
  const builder = getBuilder(spec.builder);
  checkSupported(builder, spec);
  for (const secret of secretsOf(spec)) reporter.mask(secret);

  // Everything that can be checked locally is checked before the cluster is touched.
  const contextPlan: ContextPlan | undefined =
    spec.context.kind === "dir"
      ? await planContext(spec.context.dir, { dockerfile: spec.dockerfile })
      : undefined;
  const connection = connect(spec.cluster);
  const clients = createClients(connection.kubeConfig);
  const namespace = spec.namespace ?? connection.contextNamespace;
  const identity = options.identity ?? newBuildIdentity(options.runId);

  const abort = new AbortController();
  const onOuterAbort = () => abort.abort();
  options.signal?.addEventListener("abort", onOuterAbort, { once: true });
  if (options.signal?.aborted) abort.abort();
  const retry = { signal: abort.signal, onRetry: (message: string) => reporter.warn(message) };

  await reporter.group("Plan", async () => {
    reporter.info(`Builder: ${builder.name} (${spec.builderImage})`);
    reporter.info(`Cluster: ${connection.server} (${connection.origin})`);
    reporter.info(`Namespace: ${namespace}`);
    reporter.info(`Job: ${identity.jobName}`);
    reporter.info(`Tags: ${spec.tags.join(", ")}${spec.push ? "" : " (not pushed)"}`);
    if (spec.cacheRepo) reporter.info(`Cache: ${spec.cacheRepo}`);
    if (contextPlan) {
      reporter.info(
        `Context: ${contextPlan.dir} (${contextPlan.files.toLocaleString("en-US")} files, ${formatBytes(contextPlan.bytes)}), Dockerfile ${spec.dockerfile}`,
      );
    } else if (spec.context.kind === "git") {
      reporter.info(`Context: ${spec.context.url} (fetched by the builder)`);
    }
  });

  const created: CreatedObjects = { namespace, secrets: [] };
  const timings = { submitMs: 0, scheduleMs: 0, uploadMs: 0, buildMs: 0 };
  const tracker = new PodTracker({
    pendingGraceMs: options.pendingGraceMs ?? 30_000,
    onProblem: (problem) => reporter.warn(problem.message),
  });
  const watches: WatchStream<{ metadata?: { resourceVersion?: string } }>[] = [];
  let eventWatch: WatchStream<CoreV1Event> | undefined;
  let submitted: V1Job | undefined;
  const logTail: string[] = [];
  let cleanedUp = false;

  let deadlineTimer: NodeJS.Timeout | undefined;
  const cleanup = async () => {
    if (cleanedUp) return;
    cleanedUp = true;
    clearTimeout(deadlineTimer);
    for (const watch of watches) watch.stop();
    tracker.stop();
    if (spec.keepJob) {
      if (created.job)
        reporter.info(
          `Kept Job ${created.job} in ${namespace} (keep-job); its TTL removes it later`,
        );
      return;
    }
    if (!created.job && created.secrets.length === 0) return;
    const { deleted, complete } = await deleteBuildObjects(clients, created, {
      timeoutMs: options.cleanupTimeoutMs,
      onWarning: (message) => reporter.warn(message),
    });
    if (deleted.length > 0) reporter.debug(`Deleted ${deleted.join(", ")}`);
    // What could not be deleted stays in the saved state, for the post step to try again.
    if (complete) options.onCleanedUp?.(created);
  };

  const onCancel = () => tracker.fail(new BuildFailure("cancelled", "the build was cancelled"));
  abort.signal.addEventListener("abort", onCancel, { once: true });

  try {
    const submitStarted = performance.now();
    // Preflight: a namespace whose Pod Security level refuses this builder's pod fails here, not as a
    // cryptic admission error later. Namespaces are cluster-scoped: a namespaced Role cannot read them,
    // so a 403 only skips the check.
    try {
      const ns = await withRetry(() => clients.core.readNamespace({ name: namespace }), retry);
      const refusal = podSecurityRefusal(namespace, ns.metadata?.labels, builder);
      if (refusal) throw new BuildFailure("pod-security", refusal);
    } catch (error) {
      if (error instanceof BuildFailure) throw error;
      const status = apiStatus(error);
      if (status?.code === 404) {
        throw new BuildFailure("api", `namespace "${namespace}" does not exist`);
      }
      if (status?.code !== 403)
        throw apiFailure(error, `read namespace ${namespace}`, connection.server);
      reporter.debug(`Pod Security preflight skipped: cannot read namespace ${namespace} (403)`);
    }

    const env: RenderEnvironment = {
      hasRegistryCredentials: spec.registryAuth !== undefined,
      hasBuildSecrets: spec.secrets.length > 0,
      serverMinorVersion: builder.needsServerVersion
        ? await serverMinorVersion(clients, abort.signal)
        : undefined,
    };
    const manifests = renderManifests({ ...spec, namespace }, identity, env);

    await reporter.group("Submit", async () => {
      submitted = await submitManifests(manifests, {
        clients,
        namespace,
        server: connection.server,
        retry,
        created,
        onSubmitted: options.onSubmitted,
      });
      reporter.info(
        `Created Job ${created.job}${created.secrets.length ? ` and Secret ${created.secrets.join(", ")}` : ""} in ${namespace}`,
      );
    });
    timings.submitMs = performance.now() - submitStarted;
    deadlineTimer = setTimeout(
      () => {
        void jobFailure().then((failure) =>
          tracker.fail(
            failure ??
              new BuildFailure(
                "deadline-exceeded",
                `the build did not finish within its timeout of ${formatDuration(spec.timeoutSeconds)}`,
              ),
          ),
        );
      },
      spec.timeoutSeconds * 1000 + (options.deadlineSlackMs ?? 15_000),
    );
    deadlineTimer.unref();

    // One watch on the pod drives everything; one on its events surfaces Pending problems.
    const podPath = `/api/v1/namespaces/${namespace}/pods`;
    const selector = `${LABEL_BUILD_ID}=${identity.buildId}`;
    const podWatch = new WatchStream<V1Pod>({
      kubeConfig: connection.kubeConfig,
      path: podPath,
      query: { labelSelector: selector },
      onEvent: (type, pod) => tracker.podUpdated(pod, type === "DELETED"),
      relist: async () => {
        const list = await clients.core.listNamespacedPod({ namespace, labelSelector: selector });
        if (
          tracker.pod &&
          !list.items.some((pod) => pod.metadata?.uid === tracker.pod?.metadata?.uid)
        ) {
          tracker.podUpdated(tracker.pod, true);
        }
        return { items: list.items, resourceVersion: list.metadata?.resourceVersion };
      },
      onFatal: (error) =>
        tracker.fail(apiFailure(watchError(error), "watch the build pod", connection.server)),
      onRetry: (message) => reporter.debug(message),
    });
    watches.push(podWatch);
    podWatch.start();

    const scheduleStarted = performance.now();
    await reporter.group("Schedule", async () => {
      // Until the pod exists, only the Job's events can say why it does not (admission refused it).
      const jobEvents = watchEvents(`involvedObject.uid=${submitted?.metadata?.uid ?? ""}`);
      await tracker.until(() => tracker.pod !== undefined);
      jobEvents.stop();
      const podName = tracker.pod?.metadata?.name ?? "";
      reporter.info(`Pod ${podName} created; waiting for it to start`);
      eventWatch = watchEvents(`involvedObject.name=${podName}`);
      const firstContainer = contextPlan ? CONTEXT_CONTAINER : BUILD_CONTAINER;
      await tracker.until(() => tracker.started(firstContainer) || tracker.deleting);
      const node = tracker.pod?.spec?.nodeName;
      if (node) reporter.info(`Scheduled on ${node}`);
    });
    timings.scheduleMs = performance.now() - scheduleStarted;
    const podName = tracker.pod?.metadata?.name ?? "";

    if (contextPlan) {
      const uploadStarted = performance.now();
      await reporter.group("Upload context", async () => {
        if (!tracker.running(CONTEXT_CONTAINER)) await failFromPod();
        let files = 0;
        let bytes = 0;
        const result = await uploadContext(
          {
            kubeConfig: connection.kubeConfig,
            namespace,
            pod: podName,
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
            signal: abort.signal,
            onProgress: (sentBytes, elapsedMs) =>
              reporter.upload({ files, bytes, sentBytes, elapsedMs, done: false }),
          },
        );
        reporter.upload({
          files: contextPlan.files,
          bytes: contextPlan.bytes,
          sentBytes: result.sentBytes,
          elapsedMs: result.elapsedMs,
          done: true,
        });
        const seconds = Math.max(result.elapsedMs / 1000, 0.001);
        reporter.info(
          `Sent context: ${contextPlan.files.toLocaleString("en-US")} files, ${formatBytes(contextPlan.bytes)} (${formatBytes(result.sentBytes)} compressed) in ${seconds.toFixed(1)} s, ${formatBytes(contextPlan.bytes / seconds)}/s`,
        );
        await tracker.until(
          () => Boolean(tracker.terminated(CONTEXT_CONTAINER)) || tracker.deleting,
        );
        const receiver = tracker.terminated(CONTEXT_CONTAINER);
        if (!receiver || receiver.exitCode !== 0) {
          const tail = await readLogTail(CONTEXT_CONTAINER);
          throw new BuildFailure(
            "upload-failed",
            receiver
              ? `the build context did not arrive whole: the receiver exited with code ${receiver.exitCode}${tail.length ? ` (${tail[tail.length - 1]})` : ""}`
              : "the build context did not arrive: the pod ended before the receiver finished",
            tail,
          );
        }
      });
      timings.uploadMs = performance.now() - uploadStarted;
    }

    const buildStarted = performance.now();
    const terminated = await reporter.group(`Build (${builder.name})`, async () => {
      await tracker.until(() => tracker.started(BUILD_CONTAINER) || tracker.deleting);
      if (tracker.deleting && !tracker.started(BUILD_CONTAINER)) await failFromPod();
      // Pending problems are over once the builder runs: the events have nothing more to say.
      eventWatch?.stop();
      await followLog({
        kubeConfig: connection.kubeConfig,
        namespace,
        pod: podName,
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
        podGone: () => tracker.gone,
        signal: abort.signal,
        onRetry: (message) => reporter.debug(message),
      });
      await tracker.until(() => Boolean(tracker.terminated(BUILD_CONTAINER)) || tracker.deleting);
      if (!tracker.terminated(BUILD_CONTAINER)) {
        // A pod being deleted (the deadline) still reports how its builder ended: wait for it briefly.
        await tracker.until(
          () => Boolean(tracker.terminated(BUILD_CONTAINER)) || tracker.gone,
          5000,
        );
      }
      const state = tracker.terminated(BUILD_CONTAINER);
      // A builder that finished with its digest stands, whatever deletes the pod afterwards.
      if (state?.exitCode === 0) return state;
      if (tracker.deleting) {
        const failure = await jobFailure();
        if (failure) throw failure;
      }
      if (!state) await failFromPod();
      return state!;
    });
    timings.buildMs = performance.now() - buildStarted;

    const digest = digestOf(terminated, { memoryLimit: spec.resources.limits.memory, logTail });
    reporter.info(`Digest: ${digest}`);
    const result: BuildResult = {
      digest,
      image: `${repositoryOf(spec.tags[0])}@${digest}`,
      tags: [...spec.tags],
      builder: builder.name,
      namespace,
      job: created.job ?? identity.jobName,
      context: { files: contextPlan?.files ?? 0, bytes: contextPlan?.bytes ?? 0 },
      durations: { ...roundTimings(timings), totalMs: 0 },
    };
    await cleanup();
    result.durations.totalMs = Math.round(performance.now() - started);
    return result;
  } catch (error) {
    await cleanup();
    if (abort.signal.aborted) {
      const what = created.job
        ? `; deleted Job ${created.job}${created.secrets.length ? " and its Secrets" : ""}`
        : "";
      throw new BuildFailure("cancelled", `the build was cancelled${spec.keepJob ? "" : what}`);
    }
    throw error;
  } finally {
    options.signal?.removeEventListener("abort", onOuterAbort);
    abort.signal.removeEventListener("abort", onCancel);
  }

  /** A watch on the events matching the field selector, fed to the tracker; events only explain, so it never fails the build. */
  function watchEvents(fieldSelector: string): WatchStream<CoreV1Event> {
    const watch = new WatchStream<CoreV1Event>({
      kubeConfig: connection.kubeConfig,
      path: `/api/v1/namespaces/${namespace}/events`,
      query: { fieldSelector },
      onEvent: (type, event) => {
        if (type !== "DELETED") tracker.eventSeen(event);
      },
      relist: async () => {
        const list = await clients.core.listNamespacedEvent({ namespace, fieldSelector });
        return { items: list.items, resourceVersion: list.metadata?.resourceVersion };
      },
      onFatal: (error) => reporter.debug(`event watch stopped: ${error.message}`),
      onRetry: (message) => reporter.debug(message),
    });
    watches.push(watch);
    watch.start();
    return watch;
  }

  async function readLogTail(container: string): Promise<string[]> {
    try {
      const text = await clients.core.readNamespacedPodLog({
        name: tracker.pod?.metadata?.name ?? "",
        namespace,
        container,
        tailLines: LOG_TAIL_LINES,
      });
      return text.split("\n").filter((line) => line.length > 0);
    } catch {
      return [];
    }
  }

  /** The pod ended or is being deleted without a result: find out why (the Job says DeadlineExceeded). */
  /** Why the Job failed, when it says so (DeadlineExceeded above all). */
  async function jobFailure(): Promise<BuildFailure | undefined> {
    try {
      const job = await clients.batch.readNamespacedJob({
        name: created.job ?? identity.jobName,
        namespace,
      });
      const failed = job.status?.conditions?.find(
        // From 1.31 the Job controller sets FailureTarget (with the reason) first and Failed only
        // once its pods are gone: either one says why.
        (condition) =>
          (condition.type === "Failed" || condition.type === "FailureTarget") &&
          condition.status === "True",
      );
      if (failed?.reason === "DeadlineExceeded") {
        return new BuildFailure(
          "deadline-exceeded",
          `the build exceeded its timeout of ${formatDuration(spec.timeoutSeconds)} (the Job's activeDeadlineSeconds) and was stopped`,
          [...logTail],
        );
      }
      if (failed) {
        return new BuildFailure(
          "pod-deleted",
          `the Job failed: ${failed.reason ?? ""} ${failed.message ?? ""}`.trim(),
          [...logTail],
        );
      }
    } catch {
      // The Job is gone or unreadable: the pod's own state has to do.
    }
    return undefined;
  }

  /** The pod ended or is being deleted without a result: find out why. */
  async function failFromPod(): Promise<never> {
    if (tracker.failure) throw tracker.failure;
    const failure = await jobFailure();
    if (failure) throw failure;
    const reason = tracker.pod?.status?.reason;
    const message = tracker.pod?.status?.message;
    throw new BuildFailure(
      "pod-deleted",
      reason
        ? `the build pod ended: ${reason}${message ? `: ${message}` : ""}`
        : "the build pod was deleted before the build finished",
      [...logTail],
    );
  }
}

/** client-node's Watch reports a refused watch as an Error carrying statusCode, not an ApiException. */
function watchError(error: Error & { statusCode?: number }): unknown {
  if (error.statusCode === 403)
    return new BuildFailure(
      "forbidden",
      `watching pods is forbidden (403); grant the Role in deploy/rbac.yaml`,
    );
  if (error.statusCode === 401)
    return new BuildFailure(
      "kubeconfig",
      "the API server rejected the credentials (401 Unauthorized)",
    );
  return error;
}

function roundTimings(
  timings: Omit<BuildResult["durations"], "totalMs">,
): Omit<BuildResult["durations"], "totalMs"> {
  return {
    submitMs: Math.round(timings.submitMs),
    scheduleMs: Math.round(timings.scheduleMs),
    uploadMs: Math.round(timings.uploadMs),
    buildMs: Math.round(timings.buildMs),
  };
}
