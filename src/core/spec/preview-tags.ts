/**
 * Preview-image tag and label derivation, shared by the GitHub face (`pr-<N>`) and the GitLab
 * face (`mr-<iid>`). Pure: no environment, no CI knowledge.
 */

import { InputError } from "../errors.js";
import type { KeyValue } from "../types.js";

/** "pr" for GitHub pull requests, "mr" for GitLab merge requests. */
export type PreviewKind = "pr" | "mr";

/**
 * Length of the short head SHA in the `<kind>-<N>-<sha>` tag: each CI system's own short SHA, so a
 * later job can name the tag from its variables — GitHub's 7 characters, GitLab's
 * `$CI_COMMIT_SHORT_SHA` (8).
 */
export const SHORT_SHA_LENGTH: Record<PreviewKind, number> = { pr: 7, mr: 8 };

/** OCI label (not an OCI standard key) that marks an image as a preview and names its PR/MR. */
export const PREVIEW_LABEL = "k8s-image-build.preview";

const COMPONENT = "[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*";
const HOST_COMPONENT = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
const HOST = `(?:${HOST_COMPONENT}(?:\\.${HOST_COMPONENT})*|\\[[0-9a-fA-F:]+\\])(?::[0-9]+)?`;
const REPOSITORY_RE = new RegExp(`^(?:${HOST}/)?${COMPONENT}(?:/${COMPONENT})*$`);

function checkNumber(number: number): void {
  if (!Number.isSafeInteger(number) || number <= 0) {
    throw new InputError(
      "preview",
      `pull/merge request number must be a positive integer, got ${String(number)}`,
    );
  }
}

function checkSha(headSha: string): void {
  if (!/^[0-9a-f]{7,64}$/.test(headSha)) {
    throw new InputError(
      "preview",
      `head commit SHA must be 7-64 lowercase hex characters, got "${headSha}"`,
    );
  }
}

/** The tag names (without repository) of one PR/MR's preview: `pr-<N>`, `pr-<N>-<short sha>`. */
export function previewTagNames(
  kind: PreviewKind,
  number: number,
  headSha: string,
): [string, string] {
  checkNumber(number);
  checkSha(headSha);
  return [`${kind}-${number}`, `${kind}-${number}-${headSha.slice(0, SHORT_SHA_LENGTH[kind])}`];
}

/**
 * Full references of one PR/MR's preview tags:
 * `previewTags("ghcr.io/acme/web", "pr", 12, "0123456789…")` →
 * `["ghcr.io/acme/web:pr-12", "ghcr.io/acme/web:pr-12-0123456"]`.
 */
export function previewTags(
  repository: string,
  kind: PreviewKind,
  number: number,
  headSha: string,
): string[] {
  const repo = validatePreviewRepository(repository, "tags");
  return previewTagNames(kind, number, headSha).map((tag) => `${repo}:${tag}`);
}

/**
 * True when `tag` (a tag name, no repository) is one of this PR/MR's preview tags from any push:
 * `pr-12` and `pr-12-<hex sha>`, not `pr-123` nor `pr-12-final`.
 */
export function isPreviewTagOf(tag: string, kind: PreviewKind, number: number): boolean {
  checkNumber(number);
  return new RegExp(`^${kind}-${number}(?:-[0-9a-f]{${SHORT_SHA_LENGTH[kind]}})?$`).test(tag);
}

/** A predicate form of isPreviewTagOf, for the registry and GHCR cleanups. */
export function previewTagMatcher(kind: PreviewKind, number: number): (tag: string) => boolean {
  checkNumber(number);
  return (tag) => isPreviewTagOf(tag, kind, number);
}

export interface PreviewLabelInput {
  /** Web URL of the source repository (`https://github.com/acme/web`). */
  sourceUrl: string;
  /** The PR/MR head commit SHA (full). */
  revision: string;
  /** Names the PR/MR: `acme/web#12` (GitHub) or `group/project!5` (GitLab). */
  preview: string;
  /** Build time; default now. */
  created?: Date;
}

/**
 * OCI labels for a preview image: `org.opencontainers.image.source`, `…revision`, `…created`
 * (RFC 3339) and `k8s-image-build.preview` naming the PR/MR.
 */
export function previewLabels(input: PreviewLabelInput): KeyValue[] {
  checkSha(input.revision);
  return [
    { key: "org.opencontainers.image.source", value: input.sourceUrl },
    { key: "org.opencontainers.image.revision", value: input.revision },
    { key: "org.opencontainers.image.created", value: (input.created ?? new Date()).toISOString() },
    { key: PREVIEW_LABEL, value: input.preview },
  ];
}

/**
 * Checks that `ref` is an image repository only (no `:tag`, no `@digest`) and returns it trimmed.
 * With `preview: true` the tags are derived, so a given tag would be silently ignored: refuse it
 * with one line instead.
 */
export function validatePreviewRepository(ref: string, input = "tags"): string {
  const repo = ref.trim();
  const hint =
    "with preview: true give image repositories only (e.g. ghcr.io/acme/web); the pr-<N> tags are derived";
  if (repo.includes("@")) {
    throw new InputError(input, `"${repo}" has a digest; ${hint}`);
  }
  const lastSlash = repo.lastIndexOf("/");
  if (repo.slice(lastSlash + 1).includes(":")) {
    throw new InputError(input, `"${repo}" has a tag; ${hint}`);
  }
  if (!REPOSITORY_RE.test(repo)) {
    throw new InputError(
      input,
      `"${repo}" is not a valid image repository (lowercase path components, optional registry host)`,
    );
  }
  return repo;
}

/** validatePreviewRepository over a list; at least one repository, duplicates removed. */
export function validatePreviewRepositories(refs: string[], input = "tags"): string[] {
  const repos = [
    ...new Set(
      refs
        .map((r) => r.trim())
        .filter((r) => r !== "")
        .map((r) => validatePreviewRepository(r, input)),
    ),
  ];
  if (repos.length === 0) {
    throw new InputError(
      input,
      "with preview: true give at least one image repository (e.g. ghcr.io/acme/web)",
    );
  }
  return repos;
}
