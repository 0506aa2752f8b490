/**
 * Plan: everything that can be decided without the cluster — the builder, the context walked with
 * .dockerignore, the connection, the Job's identity — checked and reported before anything is
 * created.
 */
import { getBuilder, unsupportedInput } from "../builders/index.js";
import type { Builder } from "../builders/types.js";
import { connect, createClients } from "../cluster/connection.js";
import { PodTracker } from "../cluster/pod-tracker.js";
import { planContext } from "../context/index.js";
import { InputError } from "../errors.js";
import { newBuildIdentity } from "../job/manifests.js";
import { secretsOf } from "../spec/masking.js";
import { displayProxyUrl } from "../proxy.js";
import { formatDuration } from "../spec/parse.js";
import type { BuildSpec } from "../types.js";
import { formatBytes, formatCount } from "./format.js";
import type { BuildOptions, BuildRun } from "./run.js";

/** An input this builder cannot honour is one line naming the input. */
export function checkSupported(builder: Builder, spec: BuildSpec): void {
  const unsupported = unsupportedInput(builder, spec);
  if (unsupported) throw new InputError(unsupported.input, unsupported.detail);
}

export async function planBuild(spec: BuildSpec, options: BuildOptions): Promise<BuildRun> {
  const reporter = options.reporter;
  const started = performance.now();
  const builder = getBuilder(spec.builder);
  checkSupported(builder, spec);
  for (const secret of secretsOf(spec)) reporter.mask(secret);

  // Everything that can be checked locally is checked before the cluster is touched.
  const contextPlan =
    spec.context.kind === "dir"
      ? await planContext(spec.context.dir, { dockerfile: spec.dockerfile })
      : undefined;
  const connection = connect(spec.cluster);
  const clients = createClients(connection.kubeConfig);
  const namespace = spec.namespace ?? connection.contextNamespace;
  const identity = options.identity ?? newBuildIdentity(options.runId);
  const abort = new AbortController();
  const streams = new AbortController();
  abort.signal.addEventListener("abort", () => streams.abort(abort.signal.reason), { once: true });

  const run: BuildRun = {
    spec,
    options,
    reporter,
    builder,
    started,
    contextPlan,
    connection,
    clients,
    namespace,
    identity,
    abort,
    streams,
    retry: {
      signal: abort.signal,
      onRetry: (message: string) => reporter.warn(message),
      baseDelayMs: options.retryBaseDelayMs,
    },
    created: { namespace, secrets: [] },
    timings: { submitMs: 0, scheduleMs: 0, uploadMs: 0, buildMs: 0 },
    tracker: new PodTracker({
      pendingGraceMs: options.pendingGraceMs ?? 30_000,
      // A schedule-timeout as long as the Job's own deadline adds nothing: the deadline ends the
      // build at that moment, in its own words.
      scheduleTimeoutMs:
        spec.scheduleTimeoutSeconds < spec.timeoutSeconds
          ? spec.scheduleTimeoutSeconds * 1000
          : undefined,
      scheduleTimeoutText: formatDuration(spec.scheduleTimeoutSeconds),
      onProblem: (problem) => reporter.warn(problem.message),
      onNotice: (message, level) =>
        level === "warn" ? reporter.warn(message) : reporter.info(message),
    }),
    watches: [],
    logTail: [],
    cleanedUp: false,
  };

  await reporter.group("Plan", async () => {
    reporter.info(`Builder: ${builder.name} (${spec.builderImage})`);
    reporter.info(`Cluster: ${connection.server} (${connection.origin})`);
    if (connection.proxy) {
      reporter.info(
        `Proxy: ${displayProxyUrl(connection.proxy.url)} (${connection.proxy.from}) for the API server`,
      );
    } else {
      const secure = connection.server.startsWith("https:");
      const variable = secure ? "HTTPS_PROXY" : "HTTP_PROXY";
      if (secure ? spec.cluster.proxy?.httpsProxy : spec.cluster.proxy?.httpProxy) {
        reporter.info(
          `Proxy: none for the API server (${variable} is set; NO_PROXY or a loopback address excludes the server)`,
        );
      }
    }
    reporter.info(`Namespace: ${namespace}`);
    reporter.info(`Job: ${identity.jobName}`);
    reporter.info(`Tags: ${spec.tags.join(", ")}${spec.push ? "" : " (not pushed)"}`);
    if (spec.cacheRepo) reporter.info(`Cache: ${spec.cacheRepo}`);
    if (contextPlan) {
      reporter.info(
        `Context: ${contextPlan.dir} (${formatCount(contextPlan.files)} files, ${formatBytes(contextPlan.bytes)}), Dockerfile ${spec.dockerfile}`,
      );
    } else if (spec.context.kind === "git") {
      reporter.info(`Context: ${spec.context.url} (fetched by the builder)`);
    }
  });
  return run;
}
