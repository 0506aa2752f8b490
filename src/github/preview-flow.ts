/**
 * Pull-request previews in the action: derive tags before the build, refuse fork builds, keep one
 * sticky comment per PR and repository, delete the preview tags when the PR closes.
 */
import * as core from "@actions/core";
import * as github from "@actions/github";
import { InputError } from "../core/errors.js";
import { parseBoolean, splitList } from "../core/spec/parse.js";
import { credentialsForRegistry } from "../core/registry/index.js";
import type { RawInputs } from "../core/spec/spec.js";
import type { BuildResult, BuildSpec } from "../core/types.js";
import { proxyEnvironment } from "../environment.js";
import {
  cleanupPreviewImages,
  detectPreviewEvent,
  removalCard,
  renderPreviewCard,
  renderPreviewComment,
  runUrl,
  upsertPreviewComment,
  type GitHubClient,
  type PreviewPlan,
} from "./preview/index.js";
import { maskOnce } from "./mask.js";

export interface PreviewInputs {
  enabled: boolean;
  githubToken?: string;
  allowForkBuilds: boolean;
}

function booleanInput(name: string): boolean {
  const value = core.getInput(name);
  if (value === "") return false;
  try {
    return parseBoolean(value);
  } catch {
    throw new InputError(name, `must be true or false, got "${value}"`);
  }
}

export function readPreviewInputs(): PreviewInputs {
  const token = core.getInput("github-token");
  if (token) maskOnce(token);
  return {
    enabled: booleanInput("preview"),
    githubToken: token || undefined,
    allowForkBuilds: booleanInput("allow-fork-builds"),
  };
}

/** Decides what the run does; with preview off, nothing changes. Tags and labels go into `raw`. */
export function planPreview(inputs: PreviewInputs, raw: RawInputs): PreviewPlan | undefined {
  if (!inputs.enabled) return undefined;
  const repositories = splitList(raw.tags ?? "", { comma: true });
  const plan = detectPreviewEvent(github.context, {
    repositories,
    allowForkBuilds: inputs.allowForkBuilds,
  });
  if (plan.mode === "build") {
    raw.tags = plan.tags.join("\n");
    const labels = plan.labels.map((label) => `${label.key}=${label.value}`);
    raw.labels = [raw.labels ?? "", ...labels].filter((line) => line !== "").join("\n");
    for (const note of plan.notes) core.info(note);
  } else if (plan.mode === "none" || plan.mode === "skip") {
    core.info(plan.note);
  }
  return plan;
}

function octokitFor(inputs: PreviewInputs): GitHubClient | undefined {
  return inputs.githubToken
    ? github.getOctokit(inputs.githubToken, { baseUrl: github.context.apiUrl })
    : undefined;
}

function currentRunUrl(): string | undefined {
  const { serverUrl, runId, runAttempt } = github.context;
  const repository = `${github.context.repo.owner}/${github.context.repo.repo}`;
  return runId ? runUrl(serverUrl, repository, runId, runAttempt) : undefined;
}

/** After a successful preview build: the card in the summary, the sticky comment on the PR. */
export async function reportPreviewBuild(
  plan: Extract<PreviewPlan, { mode: "build" }>,
  inputs: PreviewInputs,
  result: BuildResult,
): Promise<string> {
  const cards: string[] = [];
  const octokit = octokitFor(inputs);
  if (!octokit) core.warning("preview: no github-token, so the pull request gets no comment");
  for (const repository of plan.repositories) {
    const card = {
      repository,
      prNumber: plan.pr.number,
      headSha: plan.pr.headSha,
      state: "built" as const,
      digest: result.digest,
      tags: result.tags.filter((tag) => tag.startsWith(`${repository}:`)),
      builder: result.builder,
      durationMs: result.durations.totalMs,
      runUrl: currentRunUrl(),
    };
    cards.push(renderPreviewCard(card));
    if (octokit) {
      const outcome = await upsertPreviewComment(
        octokit,
        { ...github.context.repo, issueNumber: plan.pr.number },
        repository,
        renderPreviewComment(card),
      );
      if (outcome.status === "warning") core.warning(outcome.warning);
      else if (outcome.status !== "absent")
        core.info(`preview: ${outcome.status} the pull request comment for ${repository}`);
    }
  }
  return cards.join("\n\n");
}

/** PR closed: delete the preview tags, say so in the comment; never fails the step. */
export async function cleanUpPreview(
  plan: Extract<PreviewPlan, { mode: "cleanup" }>,
  inputs: PreviewInputs,
  spec: Pick<BuildSpec, "registryAuth" | "insecureRegistries">,
): Promise<string> {
  const octokit = octokitFor(inputs);
  const cleanup = await cleanupPreviewImages({
    repositories: plan.repositories,
    number: plan.pr.number,
    octokit,
    credentialsFor: (registry) => credentialsForRegistry(spec.registryAuth, registry),
    insecureRegistries: spec.insecureRegistries,
    proxy: proxyEnvironment(process.env),
  });
  for (const warning of cleanup.warnings) core.warning(warning);
  const cards: string[] = [];
  for (const repository of cleanup.repositories) {
    const card = removalCard(repository, plan.pr.number, plan.pr.headSha, currentRunUrl());
    cards.push(renderPreviewCard(card));
    if (octokit) {
      const outcome = await upsertPreviewComment(
        octokit,
        { ...github.context.repo, issueNumber: plan.pr.number },
        repository.repository,
        renderPreviewComment(card),
        { createIfMissing: false },
      );
      if (outcome.status === "warning") core.warning(outcome.warning);
    }
  }
  return cards.join("\n\n");
}
