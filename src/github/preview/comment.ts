/**
 * The preview card (markdown, shared by the sticky PR comment and the step summary) and the
 * sticky comment itself: one per PR and image repository, found again by a hidden marker,
 * updated in place, never duplicated. Comment failures are warnings, never build failures.
 */

import type { getOctokit } from "@actions/github";

/** The client `getOctokit(token, { baseUrl })` returns. */
export type GitHubClient = ReturnType<typeof getOctokit>;

export interface PreviewCardInput {
  /** Image repository (`ghcr.io/acme/web`). */
  repository: string;
  prNumber: number;
  headSha: string;
  state: "built" | "removed";
  /** built: the pushed digest. */
  digest?: string;
  /** built: full tag references. */
  tags?: string[];
  builder?: string;
  durationMs?: number;
  /** Link to the workflow run. */
  runUrl?: string;
  /** removed: what the cleanup did. */
  removal?: {
    deletedTags: string[];
    kept: { tags: string[]; sharedWith: string[] }[];
    warnings: string[];
  };
}

/** The hidden marker that finds a repository's comment again. */
export function previewCommentMarker(repository: string): string {
  return `<!-- k8s-image-build:preview:${repository} -->`;
}

/** `1m 23s`, `45s`, `1h 2m 3s`. */
export function formatDuration(ms: number): string {
  const total = Math.max(0, Math.round(ms / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  return [h ? `${h}h` : "", h || m ? `${m}m` : "", `${s}s`].filter((x) => x !== "").join(" ");
}

const code = (s: string): string => `\`${s.replace(/`/g, "'")}\``;

/** `https://github.com/acme/web/actions/runs/123` (with `/attempts/N` after the first attempt). */
export function runUrl(
  serverUrl: string,
  repository: string,
  runId: number,
  runAttempt?: number,
): string {
  return `${serverUrl}/${repository}/actions/runs/${runId}${runAttempt && runAttempt > 1 ? `/attempts/${runAttempt}` : ""}`;
}

/** The card as markdown; the step summary uses it as it is, the comment prefixes the marker. */
export function renderPreviewCard(card: PreviewCardInput): string {
  const short = card.headSha.slice(0, 7);
  const lines: string[] = [];
  if (card.state === "built") {
    const ref = card.digest ? `${card.repository}@${card.digest}` : card.repository;
    lines.push(`### Preview image for #${card.prNumber}: ${code(card.repository)}`, "");
    lines.push("| | |", "|---|---|");
    lines.push(`| Image | ${code(ref)} |`);
    if (card.tags?.length) lines.push(`| Tags | ${card.tags.map(code).join("<br>")} |`);
    lines.push(`| Commit | ${code(short)} |`);
    if (card.builder) lines.push(`| Builder | ${card.builder} |`);
    if (card.durationMs !== undefined)
      lines.push(`| Build time | ${formatDuration(card.durationMs)} |`);
    if (card.runUrl)
      lines.push(`| Run | [${card.runUrl.replace(/^.*\/runs\//, "run ")}](${card.runUrl}) |`);
    lines.push("", "```sh", `docker pull ${ref}`, "```");
  } else {
    lines.push(`### Preview image for #${card.prNumber} removed: ${code(card.repository)}`, "");
    const removal = card.removal;
    if (removal) {
      lines.push(
        removal.deletedTags.length
          ? `The pull request was closed; deleted preview tags ${removal.deletedTags.map(code).join(", ")}.`
          : "The pull request was closed; no preview tags were deleted.",
      );
      for (const k of removal.kept) {
        lines.push(
          k.sharedWith.length
            ? `- Kept ${k.tags.map(code).join(", ")}: the image is also tagged ${k.sharedWith.map(code).join(", ")}.`
            : `- Kept ${k.tags.map(code).join(", ")}.`,
        );
      }
      for (const w of removal.warnings) lines.push(`> [!WARNING]`, `> ${w}`);
    } else {
      lines.push("The pull request was closed; the preview image was removed.");
    }
    if (card.runUrl) lines.push("", `[Cleanup run](${card.runUrl}) · last commit ${code(short)}`);
  }
  return lines.join("\n");
}

/** The full comment body: marker line, then the card. */
export function renderPreviewComment(card: PreviewCardInput): string {
  return `${previewCommentMarker(card.repository)}\n${renderPreviewCard(card)}\n`;
}

export interface CommentTarget {
  owner: string;
  repo: string;
  /** The PR number (PR comments are issue comments). */
  issueNumber: number;
}

export type UpsertCommentResult =
  | { status: "created" | "updated"; commentId: number; url?: string }
  /** No comment existed and `createIfMissing` was false (e.g. the "removed" card after a build that never commented). */
  | { status: "absent" }
  | { status: "warning"; warning: string };

function statusOf(error: unknown): number | undefined {
  const s = (error as { status?: unknown } | null)?.status;
  return typeof s === "number" ? s : undefined;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message.split("\n")[0]! : String(error);
}

/**
 * Creates the repository's preview comment on the PR, or updates it in place when a comment
 * starting with its marker exists (the whole comment list is paged through; the oldest match wins).
 * Never throws: a token without `pull-requests: write` (403/404) or any API failure → warning.
 */
export async function upsertPreviewComment(
  octokit: GitHubClient,
  target: CommentTarget,
  repository: string,
  body: string,
  options: { createIfMissing?: boolean } = {},
): Promise<UpsertCommentResult> {
  const marker = previewCommentMarker(repository);
  const text = body.trimStart().startsWith(marker) ? body : `${marker}\n${body}`;
  const where = `${target.owner}/${target.repo}#${target.issueNumber}`;
  try {
    let existing: number | undefined;
    for await (const page of octokit.paginate.iterator(octokit.rest.issues.listComments, {
      owner: target.owner,
      repo: target.repo,
      issue_number: target.issueNumber,
      per_page: 100,
    })) {
      const found = page.data.find((c) => (c.body ?? "").trimStart().startsWith(marker));
      if (found) {
        existing = found.id;
        break;
      }
    }
    if (existing !== undefined) {
      const res = await octokit.rest.issues.updateComment({
        owner: target.owner,
        repo: target.repo,
        comment_id: existing,
        body: text,
      });
      return { status: "updated", commentId: res.data.id, url: res.data.html_url };
    }
    if (options.createIfMissing === false) return { status: "absent" };
    const res = await octokit.rest.issues.createComment({
      owner: target.owner,
      repo: target.repo,
      issue_number: target.issueNumber,
      body: text,
    });
    return { status: "created", commentId: res.data.id, url: res.data.html_url };
  } catch (error) {
    const status = statusOf(error);
    if (status === 403 || status === 404) {
      return {
        status: "warning",
        warning: `preview: could not write the preview comment on ${where} (HTTP ${status}): the github-token lacks pull-requests: write — add "permissions: { pull-requests: write }" to the job; the image was handled all the same`,
      };
    }
    return {
      status: "warning",
      warning: `preview: could not write the preview comment on ${where}: ${messageOf(error)}`,
    };
  }
}
