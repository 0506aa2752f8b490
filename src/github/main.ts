/** The action's main step: inputs → build() → outputs, summary; cancellation deletes what was created. */
import * as core from "@actions/core";
import { build, renderBuildManifests } from "../core/build.js";
import type { CreatedObjects } from "../core/job/cleanup.js";
import { BuildFailure, isUserFacing } from "../core/errors.js";
import { manifestsToYaml } from "../core/job/manifests.js";
import { rawSecretValues, secretsOf } from "../core/spec/masking.js";
import {
  INPUT_NAMES,
  parseBuildSpec,
  parseRegistryInputs,
  type RawInputs,
} from "../core/spec/spec.js";
import type { BuildResult } from "../core/types.js";
import { parseEnvironment, runId } from "./environment.js";
import { maskOnce } from "./mask.js";
import { parseBoolean } from "../core/spec/parse.js";
import { createGitHubReporter } from "./reporter.js";
import { STATE_OBJECTS, saveObjects } from "./state.js";
import { writeStepSummary } from "./summary.js";

export const FAILURE_PREFIX = "k8s-image-build failed: ";

/**
 * Whether the preview inputs ask for anything. The preview flow (with @actions/github and
 * Octokit) is loaded only then: a plain build starts without it. A value that is not a boolean
 * loads it too, so that it reports the bad input as before.
 */
function previewRequested(): boolean {
  for (const name of ["preview", "allow-fork-builds"]) {
    const value = core.getInput(name);
    if (value === "") continue;
    try {
      if (parseBoolean(value)) return true;
    } catch {
      return true;
    }
  }
  return false;
}

export function readRawInputs(): RawInputs {
  const raw: RawInputs = {};
  for (const name of INPUT_NAMES) {
    const value = core.getInput(name);
    if (value !== "") raw[name] = value;
  }
  // Whole values now; the parts that are secret (a kubeconfig's token, each build secret's value)
  // once parsed (secretsOf). Masking every line would hide "apiVersion: v1" everywhere.
  for (const value of rawSecretValues(raw)) maskOnce(value);
  return raw;
}

export function metadataOf(result: BuildResult): string {
  return JSON.stringify({
    builder: result.builder,
    digest: result.digest,
    image: result.image,
    tags: result.tags,
    namespace: result.namespace,
    job: result.job,
    durations: result.durations,
    context: result.context,
    reused: result.reused,
    ...(result.builtAt !== undefined ? { builtAt: result.builtAt } : {}),
    ...(result.buildKey !== undefined ? { buildKey: result.buildKey } : {}),
  });
}

export function setOutputs(result: BuildResult): void {
  core.setOutput("digest", result.digest);
  core.setOutput("image", result.image);
  core.setOutput("tags", result.tags.join("\n"));
  core.setOutput("metadata", metadataOf(result));
}

/** Ends the step with one line; the log tail, when there is one, goes in a group before it. */
export function reportFailure(error: unknown): void {
  if (isUserFacing(error)) {
    if (error instanceof BuildFailure && error.logTail.length > 0) {
      core.startGroup("Last lines of the build log");
      for (const line of error.logTail) core.info(line);
      core.endGroup();
    }
    core.setFailed(`${FAILURE_PREFIX}${error.message}`);
    return;
  }
  const message = error instanceof Error ? error.message : String(error);
  core.debug(error instanceof Error && error.stack ? error.stack : message);
  core.setFailed(`${FAILURE_PREFIX}${message.split("\n")[0]}`);
}

export async function runActionMain(): Promise<void> {
  const controller = new AbortController();
  const cancel = (signal: string) => {
    if (controller.signal.aborted) return;
    core.warning(`Received ${signal}: cancelling the build and deleting its Job`);
    controller.abort();
  };
  process.once("SIGINT", () => cancel("SIGINT"));
  process.once("SIGTERM", () => cancel("SIGTERM"));
  try {
    const raw = readRawInputs();
    const preview = previewRequested() ? await import("./preview-flow.js") : undefined;
    // readPreviewInputs masks the token; without the preview flow it is masked here.
    const previewInputs = preview?.readPreviewInputs();
    const token = preview ? "" : core.getInput("github-token");
    if (token) core.setSecret(token);
    // Preview: tags derived from the PR, fork builds refused — all before the cluster is touched.
    const plan = preview && previewInputs ? preview.planPreview(previewInputs, raw) : undefined;
    if (plan?.mode === "refuse") {
      core.setFailed(`${FAILURE_PREFIX}${plan.message}`);
      return;
    }
    if (plan?.mode === "skip") return;
    if (plan?.mode === "cleanup" && preview && previewInputs) {
      // Nothing is built: the registry inputs are all it takes (a closed PR may have no checkout).
      const card = await preview.cleanUpPreview(plan, previewInputs, parseRegistryInputs(raw));
      if (process.env.GITHUB_STEP_SUMMARY && card) await core.summary.addRaw(card, true).write();
      return;
    }
    const spec = parseBuildSpec(raw, parseEnvironment());
    for (const value of secretsOf(spec)) maskOnce(value);

    if (spec.dryRun) {
      const manifests = renderBuildManifests(spec, runId());
      core.info(manifestsToYaml(manifests, { redactSecrets: true }));
      core.info("Dry run: nothing was submitted.");
      return;
    }

    const reporter = createGitHubReporter();
    const result = await build(spec, {
      reporter,
      runId: runId(),
      signal: controller.signal,
      onSubmitted: (objects: CreatedObjects) => saveObjects(objects),
      onCleanedUp: () => core.saveState(STATE_OBJECTS, ""),
    });
    setOutputs(result);
    const previewCard =
      plan?.mode === "build" && preview && previewInputs
        ? await preview.reportPreviewBuild(plan, previewInputs, result)
        : undefined;
    await writeStepSummary(result, previewCard);
  } catch (error) {
    reportFailure(error);
  }
  if (controller.signal.aborted) process.exitCode = 1;
}
