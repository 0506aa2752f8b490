/**
 * Submit: the Pod Security preflight, the manifests rendered for this cluster, the Secrets and the
 * Job created, the deadline armed, and the pod watch started.
 */
import { apiFailure, apiStatus, withRetry } from "../cluster/api-errors.js";
import type { ClusterClients } from "../cluster/connection.js";
import { BuildFailure } from "../errors.js";
import { renderManifests } from "../job/manifests.js";
import { podSecurityRefusal } from "../job/preflight.js";
import { submitManifests } from "../job/submit.js";
import type { RenderEnvironment } from "../builders/types.js";
import { formatDuration } from "../spec/parse.js";
import { jobFailure } from "./failure.js";
import type { BuildRun } from "./run.js";
import { watchPod } from "./watches.js";

export async function submitBuild(run: BuildRun): Promise<void> {
  const { spec, reporter, clients, namespace, builder, created, options } = run;
  const submitStarted = performance.now();
  await preflightPodSecurity(run);

  const env: RenderEnvironment = {
    hasRegistryCredentials: spec.registryAuth !== undefined,
    hasBuildSecrets: spec.secrets.length > 0,
    serverMinorVersion: builder.needsServerVersion
      ? await serverMinorVersion(clients, run.abort.signal)
      : undefined,
  };
  const manifests = renderManifests({ ...spec, namespace }, run.identity, env);

  await reporter.group("Submit", async () => {
    options.onSubmitting?.();
    run.submitted = await submitManifests(manifests, {
      clients,
      namespace,
      server: run.connection.server,
      retry: run.retry,
      created,
      onSubmitted: options.onSubmitted,
    });
    reporter.info(
      `Created Job ${created.job}${created.secrets.length ? ` and Secret ${created.secrets.join(", ")}` : ""} in ${namespace}`,
    );
  });
  run.timings.submitMs = performance.now() - submitStarted;
  armDeadline(run);
  // One watch on the pod drives everything from here.
  watchPod(run);
}

/**
 * A namespace whose Pod Security level refuses this builder's pod fails here, not as a cryptic
 * admission error later. Namespaces are cluster-scoped: a namespaced Role cannot read them, so a 403
 * only skips the check.
 */
async function preflightPodSecurity(run: BuildRun): Promise<void> {
  const { clients, namespace, builder, reporter } = run;
  try {
    const ns = await withRetry(() => clients.core.readNamespace({ name: namespace }), run.retry);
    const refusal = podSecurityRefusal(namespace, ns.metadata?.labels, builder);
    if (refusal) throw new BuildFailure("pod-security", refusal);
  } catch (error) {
    if (error instanceof BuildFailure) throw error;
    const status = apiStatus(error);
    if (status?.code === 404) {
      throw new BuildFailure("api", `namespace "${namespace}" does not exist`);
    }
    if (status?.code !== 403)
      throw apiFailure(error, `read namespace ${namespace}`, run.connection.server);
    reporter.debug(`Pod Security preflight skipped: cannot read namespace ${namespace} (403)`);
  }
}

async function serverMinorVersion(
  clients: ClusterClients,
  signal: AbortSignal,
): Promise<number | undefined> {
  const info = await withRetry(() => clients.version.getCode(), { signal });
  const minor = Number.parseInt(info.minor.replace(/\D+$/, ""), 10);
  return Number.isFinite(minor) ? minor : undefined;
}

/**
 * Past the Job's deadline (plus slack), the Job itself is asked why (a pod watch normally says
 * first), and the upload or log stream still in flight is ended with that failure.
 */
function armDeadline(run: BuildRun): void {
  const { spec, tracker } = run;
  run.deadlineTimer = setTimeout(
    () => {
      void jobFailure(run).then((failure) => {
        const reason =
          failure ??
          new BuildFailure(
            "deadline-exceeded",
            `the build did not finish within its timeout of ${formatDuration(spec.timeoutSeconds)}`,
          );
        tracker.fail(reason);
        run.streams.abort(tracker.failure ?? reason);
      });
    },
    spec.timeoutSeconds * 1000 + (run.options.deadlineSlackMs ?? 15_000),
  );
  run.deadlineTimer.unref();
}
