/**
 * What `preview: true` means for the event that started the workflow: build the PR's preview,
 * clean it up (PR closed), refuse (fork gating), or nothing special (not a PR event).
 * Decided from the webhook payload alone, before anything touches the cluster.
 */

import type { context as actionsContext } from "@actions/github";

import {
  previewLabels,
  previewTags,
  validatePreviewRepositories,
} from "../../core/spec/preview-tags.js";
import type { KeyValue } from "../../core/types.js";

/** The parts of `@actions/github`'s `context` this module reads (plain objects work in tests). */
export type PreviewEventContext = Pick<
  typeof actionsContext,
  "eventName" | "payload" | "serverUrl"
>;

export interface PullRequestInfo {
  number: number;
  /** The PR head commit (not the merge commit `github.sha` points to under pull_request). */
  headSha: string;
  /** `owner/name` of the repository the PR is against. */
  baseRepository: string;
  /** `owner/name` the head branch lives in; undefined when the fork was deleted. */
  headRepository: string | undefined;
  isFork: boolean;
  /** Web URL of the PR. */
  url: string;
}

export type PreviewPlan =
  /** Build with these tags and labels (instead of the `tags` input's repositories). */
  | {
      mode: "build";
      pr: PullRequestInfo;
      repositories: string[];
      tags: string[];
      labels: KeyValue[];
      notes: string[];
    }
  /** PR closed: do not build; delete the PR's preview tags from these repositories, update the comment. */
  | { mode: "cleanup"; pr: PullRequestInfo; repositories: string[]; notes: string[] }
  /** Fork gating: end the step with `message` before any cluster call. */
  | { mode: "refuse"; pr: PullRequestInfo; message: string }
  /** Not a PR event: `note` says so once; build as without preview. */
  | { mode: "none"; note: string }
  /** Nothing to build and nothing to clean up (a closed fork PR): `note` says so; the step ends green. */
  | { mode: "skip"; note: string };

export interface DetectPreviewOptions {
  /** The `tags` input: image repositories only (validated here; InputError otherwise). */
  repositories: string[];
  /** The `allow-fork-builds` input. */
  allowForkBuilds?: boolean;
  /** Build time for `org.opencontainers.image.created`; default now. */
  now?: Date;
}

const PR_EVENTS = new Set(["pull_request", "pull_request_target"]);

interface RepoPayload {
  full_name?: unknown;
}
interface PullRequestPayload {
  number?: unknown;
  html_url?: unknown;
  head?: { sha?: unknown; repo?: RepoPayload | null };
  base?: { repo?: RepoPayload | null };
}

function pullRequestInfo(context: PreviewEventContext): PullRequestInfo | string {
  const pr = context.payload.pull_request as PullRequestPayload | undefined;
  if (!pr) return `the ${context.eventName} payload has no pull_request`;
  const number = typeof pr.number === "number" ? pr.number : Number(context.payload.number);
  const headSha = pr.head?.sha;
  if (!Number.isSafeInteger(number) || number <= 0 || typeof headSha !== "string") {
    return `the ${context.eventName} payload lacks the PR number or head SHA`;
  }
  const baseName = pr.base?.repo?.full_name ?? context.payload.repository?.full_name;
  const baseRepository = typeof baseName === "string" ? baseName : "";
  const headName = pr.head?.repo?.full_name;
  const headRepository = typeof headName === "string" ? headName : undefined;
  // A deleted fork has head.repo null: treat as a fork (untrusted, and not this repository).
  const isFork =
    headRepository === undefined || headRepository.toLowerCase() !== baseRepository.toLowerCase();
  const url =
    typeof pr.html_url === "string"
      ? pr.html_url
      : `${context.serverUrl}/${baseRepository}/pull/${number}`;
  return { number, headSha, baseRepository, headRepository, isFork, url };
}

/** Why a pull_request run from a fork cannot build: one line. */
export function forkPullRequestMessage(pr: PullRequestInfo): string {
  return (
    `preview: PR #${pr.number} comes from the fork ${pr.headRepository ?? "(deleted fork)"}; workflows triggered by pull_request from forks get no secrets and a read-only token, ` +
    `so the cluster and registry credentials are empty and the build would end in an authentication failure — nothing was submitted ` +
    `(run previews only for same-repository PRs: if: github.event.pull_request.head.repo.full_name == github.repository)`
  );
}

/** Why building a fork's head under pull_request_target is refused: one line. */
export function forkTargetMessage(pr: PullRequestInfo): string {
  return (
    `preview: refusing to build the head of fork PR #${pr.number} (${pr.headRepository ?? "deleted fork"}) under pull_request_target: ` +
    `that workflow runs with this repository's secrets and a write token, and building the PR's Dockerfile runs the fork's code next to them ` +
    `(RUN steps can exfiltrate credentials and push images as you); set allow-fork-builds: true only if you accept that, ideally behind a label or environment approval`
  );
}

/**
 * Decides what `preview: true` does for this event.
 *
 * - pull_request / pull_request_target, any action but `closed` → build `<repo>:pr-<N>` and
 *   `<repo>:pr-<N>-<short head sha>` with OCI labels (fork gating first);
 * - `closed` → cleanup (never for a fork under pull_request: nothing was built, no credentials);
 * - any other event → none, with a note.
 *
 * Throws InputError when `repositories` are not repositories only.
 */
export function detectPreviewEvent(
  context: PreviewEventContext,
  options: DetectPreviewOptions,
): PreviewPlan {
  if (!PR_EVENTS.has(context.eventName)) {
    return {
      mode: "none",
      note: `preview: true has no effect on ${context.eventName} events (only pull_request and pull_request_target); building with the tags as given`,
    };
  }
  const repositories = validatePreviewRepositories(options.repositories);
  const info = pullRequestInfo(context);
  if (typeof info === "string")
    return { mode: "none", note: `preview: ${info}; building with the tags as given` };
  const pr = info;
  const target = context.eventName === "pull_request_target";

  if (context.payload.action === "closed") {
    if (pr.isFork && !target) {
      return {
        mode: "skip",
        note: `preview: PR #${pr.number} from a fork was closed; fork previews are not built under pull_request, so there is nothing to clean up`,
      };
    }
    return { mode: "cleanup", pr, repositories, notes: [] };
  }

  if (pr.isFork && !target) return { mode: "refuse", pr, message: forkPullRequestMessage(pr) };
  if (pr.isFork && target && options.allowForkBuilds !== true)
    return { mode: "refuse", pr, message: forkTargetMessage(pr) };

  const notes: string[] = [];
  if (target) {
    notes.push(
      `preview: under pull_request_target actions/checkout checks out the base branch unless given ref: \${{ github.event.pull_request.head.sha }}; the image is labelled with the PR head ${pr.headSha.slice(0, 7)}`,
    );
  }
  if (pr.isFork) {
    notes.push(
      `preview: building the head of fork PR #${pr.number} (${pr.headRepository ?? "deleted fork"}) because allow-fork-builds is true`,
    );
  }
  const tags = repositories.flatMap((repo) => previewTags(repo, "pr", pr.number, pr.headSha));
  const labels = previewLabels({
    sourceUrl: `${context.serverUrl}/${pr.baseRepository}`,
    revision: pr.headSha,
    preview: `${pr.baseRepository}#${pr.number}`,
    created: options.now,
  });
  return { mode: "build", pr, repositories, tags, labels, notes };
}
