/**
 * Cleanup on PR close, for every image repository: ghcr.io through the GitHub Packages API,
 * every other registry through the OCI distribution API. Never throws: what could not be
 * removed comes back as warnings (a closed PR's workflow stays green).
 */

import { previewTagMatcher, type PreviewKind } from "../../core/spec/preview-tags.js";
import { deletePreviewTags, type PreviewCleanupReport } from "../../core/registry/cleanup.js";
import type { FetchFn, RegistryCredentials } from "../../core/registry/client.js";
import { isInsecureRegistry, splitRepository } from "../../core/registry/reference.js";
import type { ProxySettings } from "../../core/types.js";
import type { GitHubClient, PreviewCardInput } from "./comment.js";
import { deleteGhcrPreviewVersions, isGhcr, type GhcrCleanupReport } from "./ghcr.js";

export interface CleanupPreviewInput {
  repositories: string[];
  number: number;
  /** Default "pr". */
  kind?: PreviewKind;
  /** For ghcr.io (Packages API); without it ghcr.io repositories get a warning. */
  octokit?: GitHubClient;
  /** Credentials for a registry host (see credentialsForRegistry). */
  credentialsFor?: (registry: string) => RegistryCredentials | undefined;
  /** Registries spoken to over plain HTTP. */
  insecureRegistries?: string[];
  /** HTTPS_PROXY / HTTP_PROXY / NO_PROXY for the registry calls. */
  proxy?: ProxySettings;
  fetch?: FetchFn;
  signal?: AbortSignal;
}

export type RepositoryCleanup =
  | { via: "registry"; repository: string; report: PreviewCleanupReport }
  | { via: "ghcr"; repository: string; report: GhcrCleanupReport }
  | { via: "error"; repository: string; warning: string };

export interface CleanupPreviewResult {
  repositories: RepositoryCleanup[];
  /** Every warning, one line each, in repository order. */
  warnings: string[];
}

/** Deletes the PR's preview tags (every push's `pr-<N>-<sha>` and `pr-<N>`) from each repository. */
export async function cleanupPreviewImages(
  input: CleanupPreviewInput,
): Promise<CleanupPreviewResult> {
  const isPreview = previewTagMatcher(input.kind ?? "pr", input.number);
  const result: CleanupPreviewResult = { repositories: [], warnings: [] };
  for (const repository of input.repositories) {
    if (isGhcr(repository)) {
      if (!input.octokit) {
        const warning = `preview: ${repository} is on ghcr.io, whose images are deleted through the GitHub Packages API: give github-token with "packages: write" to remove the preview tags`;
        result.repositories.push({ via: "error", repository, warning });
        result.warnings.push(warning);
        continue;
      }
      const report = await deleteGhcrPreviewVersions(input.octokit, repository, isPreview);
      result.repositories.push({ via: "ghcr", repository, report });
      result.warnings.push(...report.warnings);
      continue;
    }
    const { registry } = splitRepository(repository);
    try {
      const report = await deletePreviewTags(repository, isPreview, {
        credentials: input.credentialsFor?.(registry),
        insecure: isInsecureRegistry(registry, input.insecureRegistries ?? []),
        proxy: input.proxy,
        fetch: input.fetch,
        signal: input.signal,
      });
      result.repositories.push({ via: "registry", repository, report });
      result.warnings.push(...report.warnings);
    } catch (error) {
      const warning = `preview: could not remove the preview tags of ${repository}: ${error instanceof Error ? error.message : String(error)}`;
      result.repositories.push({ via: "error", repository, warning });
      result.warnings.push(warning);
    }
  }
  return result;
}

/** The "removed" card's data for one repository's cleanup (feed to renderPreviewComment). */
export function removalCard(
  cleanup: RepositoryCleanup,
  prNumber: number,
  headSha: string,
  runUrl?: string,
): PreviewCardInput {
  const base = {
    repository: cleanup.repository,
    prNumber,
    headSha,
    state: "removed" as const,
    runUrl,
  };
  if (cleanup.via === "error")
    return { ...base, removal: { deletedTags: [], kept: [], warnings: [cleanup.warning] } };
  const r = cleanup.report;
  return {
    ...base,
    removal: {
      deletedTags: r.deleted.flatMap((d) => d.tags).sort(),
      kept: r.kept.map((k) => ({ tags: k.tags, sharedWith: k.sharedWith })),
      warnings: r.warnings,
    },
  };
}
