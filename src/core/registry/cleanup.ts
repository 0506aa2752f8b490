/**
 * Removing a PR/MR's preview tags through the OCI distribution API. A manifest DELETE removes a
 * digest with every tag on it, so a digest is deleted only when no tag outside the preview set
 * points to it; otherwise it is kept and the report names the tag it shares.
 */

import { RegistryClient, type RegistryClientOptions } from "./client.js";
import { splitRepository } from "./reference.js";

export interface DeletedDigest {
  digest: string;
  /** The preview tags that pointed to it (tag names, no repository). */
  tags: string[];
}

export interface KeptDigest {
  digest: string;
  /** Preview tags on the digest, left in place. */
  tags: string[];
  /** Tags outside the preview set on the same digest (why it was kept). */
  sharedWith: string[];
}

export interface PreviewCleanupReport {
  /** The repository as given (`localhost:5000/acme/web`). */
  repository: string;
  deleted: DeletedDigest[];
  kept: KeptDigest[];
  /** Preview tags found in the registry (tag names). */
  found: string[];
  /** The registry refuses deletes (405 / UNSUPPORTED): nothing deleted, a warning says so. */
  unsupported: boolean;
  /** Deletes refused for these credentials (401/403). */
  denied: boolean;
  /** One line each, for the step log; no throw for registries that cannot delete. */
  warnings: string[];
}

export interface DeletePreviewTagsOptions extends RegistryClientOptions {
  /** Use this client instead of creating one from the repository's host. */
  client?: RegistryClient;
  /** Parallel HEAD requests while resolving tags; default 8. */
  concurrency?: number;
}

async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return results;
}

/**
 * Deletes the preview tags of one repository.
 *
 * @param repository image repository (`ghcr.io/acme/web`, `localhost:5000/web`); a tag suffix is ignored.
 * @param previewTags the tags to remove: names or full references (`pr-12`, `repo:pr-12-abc1234`),
 *   or a predicate over tag names (`previewTagMatcher("pr", 12)` — catches every push's sha tag).
 *
 * Registry errors other than "deletes not allowed"/"denied" (unreachable, listing refused) throw
 * RegistryError.
 */
export async function deletePreviewTags(
  repository: string,
  previewTags: readonly string[] | ((tag: string) => boolean),
  options: DeletePreviewTagsOptions = {},
): Promise<PreviewCleanupReport> {
  const { registry, name } = splitRepository(repository);
  const client = options.client ?? new RegistryClient(registry, options);
  const report: PreviewCleanupReport = {
    repository,
    deleted: [],
    kept: [],
    found: [],
    unsupported: false,
    denied: false,
    warnings: [],
  };

  const isPreview =
    typeof previewTags === "function"
      ? previewTags
      : (
          (set: Set<string>) => (tag: string) =>
            set.has(tag)
        )(new Set(previewTags.map((t) => (t.includes(":") ? t.slice(t.lastIndexOf(":") + 1) : t))));

  const allTags = await client.listTags(name);
  report.found = allTags.filter(isPreview);
  if (report.found.length === 0) return report;

  // Every tag's digest: a preview digest may be shared with any tag in the repository.
  const digests = await mapLimit(allTags, options.concurrency ?? 8, (tag) =>
    client.resolveDigest(name, tag),
  );
  const tagsByDigest = new Map<string, string[]>();
  allTags.forEach((tag, i) => {
    const digest = digests[i];
    if (digest === undefined) return; // deleted meanwhile
    const list = tagsByDigest.get(digest) ?? [];
    list.push(tag);
    tagsByDigest.set(digest, list);
  });

  for (const [digest, tags] of tagsByDigest) {
    const previews = tags.filter(isPreview);
    if (previews.length === 0) continue;
    const others = tags.filter((t) => !isPreview(t));
    if (others.length > 0) {
      report.kept.push({ digest, tags: previews, sharedWith: others });
      continue;
    }
    if (report.unsupported || report.denied) {
      report.kept.push({ digest, tags: previews, sharedWith: [] });
      continue;
    }
    const outcome = await client.deleteManifest(name, digest);
    switch (outcome.result) {
      case "deleted":
      case "not-found":
        report.deleted.push({ digest, tags: previews });
        break;
      case "unsupported":
        report.unsupported = true;
        report.warnings.push(
          `${outcome.message}; preview tags of ${repository} left in place — enable deletes (distribution: storage.delete.enabled) or remove them by registry policy`,
        );
        report.kept.push({ digest, tags: previews, sharedWith: [] });
        break;
      case "denied":
        report.denied = true;
        report.warnings.push(`${outcome.message}; preview tags of ${repository} left in place`);
        report.kept.push({ digest, tags: previews, sharedWith: [] });
        break;
    }
  }
  return report;
}
