/**
 * The one orchestrator: BuildSpec in, BuildResult out, in phases — plan (nothing touches the
 * cluster), reuse (an image with this build key is tagged and returned: no Job), submit, run and
 * follow, read back, record the key — and clean up on every path.
 */
import { getBuilder } from "./builders/index.js";
import { cleanUp } from "./build/clean-up.js";
import { runAndFollow } from "./build/follow.js";
import { checkSupported, planBuild } from "./build/plan.js";
import { readBack } from "./build/read-back.js";
import { findReusable, recordBuild } from "./build/reuse.js";
import type { BuildOptions } from "./build/run.js";
import { submitBuild } from "./build/submit.js";
import { BuildFailure } from "./errors.js";
import { newBuildIdentity, renderManifests, type RenderedManifests } from "./job/manifests.js";
import type { BuildIdentity, BuildResult, BuildSpec } from "./types.js";

export type { BuildOptions } from "./build/run.js";

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

/** Runs one build in the cluster. Rejects with InputError or BuildFailure, always one line. */
export async function build(spec: BuildSpec, options: BuildOptions): Promise<BuildResult> {
  const run = await planBuild(spec, options);
  const { abort, tracker } = run;
  const onOuterAbort = () => abort.abort();
  options.signal?.addEventListener("abort", onOuterAbort, { once: true });
  if (options.signal?.aborted) abort.abort();
  const onCancel = () => tracker.fail(new BuildFailure("cancelled", "the build was cancelled"));
  abort.signal.addEventListener("abort", onCancel, { once: true });

  try {
    const reused = await findReusable(run);
    if (reused) {
      await cleanUp(run);
      reused.durations.totalMs = Math.round(performance.now() - run.started);
      return reused;
    }
    await submitBuild(run);
    const terminated = await runAndFollow(run);
    const result = readBack(run, terminated);
    await cleanUp(run);
    if (run.reuse) {
      result.buildKey = run.reuse.key;
      await recordBuild(run, result);
    }
    result.durations.totalMs = Math.round(performance.now() - run.started);
    return result;
  } catch (error) {
    await cleanUp(run);
    if (abort.signal.aborted) {
      const { created } = run;
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
}
