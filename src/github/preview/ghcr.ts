/**
 * GHCR previews: ghcr.io does not delete through the distribution API; images are package
 * versions of a container package, deleted through the GitHub Packages REST API. A version is
 * one digest with its tags, so a version is deleted only when all its tags are this PR's preview
 * tags; a version that also carries another tag is kept and named.
 */

import { splitRepository } from "../../core/registry/reference.js";
import type { GitHubClient } from "./comment.js";

export const GHCR = "ghcr.io";

export interface GhcrCleanupReport {
  repository: string;
  /** Whose package it is; undefined when it could not be found. */
  owner?: { kind: "org" | "user"; login: string; packageName: string };
  deleted: { id: number; digest: string; tags: string[] }[];
  kept: { id: number; digest: string; tags: string[]; sharedWith: string[] }[];
  /** Preview tags found on package versions. */
  found: string[];
  /** Token lacks the permission to list or delete: a warning says which. */
  denied: boolean;
  warnings: string[];
}

/** True for repositories on GitHub's container registry. */
export function isGhcr(repository: string): boolean {
  return splitRepository(repository).registry === GHCR;
}

/** `ghcr.io/Acme/web/api` → owner `acme`, package `web/api` (GHCR names are lowercase). */
export function ghcrPackage(repository: string): { owner: string; packageName: string } {
  const { name } = splitRepository(repository);
  const slash = name.indexOf("/");
  if (slash < 0) throw new Error(`"${repository}" is not a ghcr.io/<owner>/<package> repository`);
  return {
    owner: name.slice(0, slash).toLowerCase(),
    packageName: name.slice(slash + 1).toLowerCase(),
  };
}

interface PackageVersion {
  id: number;
  name: string;
  metadata?: { container?: { tags?: string[] } };
}

function statusOf(error: unknown): number | undefined {
  const s = (error as { status?: unknown } | null)?.status;
  return typeof s === "number" ? s : undefined;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message.split("\n")[0]! : String(error);
}

/**
 * Deletes this PR's preview versions of a ghcr.io container package. The package is looked up
 * as an organization's first, then as a user's. Never throws: permission and API failures come
 * back as warnings.
 */
export async function deleteGhcrPreviewVersions(
  octokit: GitHubClient,
  repository: string,
  isPreviewTag: (tag: string) => boolean,
): Promise<GhcrCleanupReport> {
  const report: GhcrCleanupReport = {
    repository,
    deleted: [],
    kept: [],
    found: [],
    denied: false,
    warnings: [],
  };
  let pkg: { owner: string; packageName: string };
  try {
    pkg = ghcrPackage(repository);
  } catch (error) {
    report.warnings.push(`preview: ${messageOf(error)}`);
    return report;
  }
  const permissionHint = `the github-token needs "packages: write" and admin access to the package (Package settings → Manage Actions access)`;

  let versions: PackageVersion[] | undefined;
  let kind: "org" | "user" = "org";
  for (const candidate of ["org", "user"] as const) {
    try {
      versions =
        candidate === "org"
          ? await octokit.paginate(
              octokit.rest.packages.getAllPackageVersionsForPackageOwnedByOrg,
              {
                org: pkg.owner,
                package_type: "container",
                package_name: pkg.packageName,
                per_page: 100,
              },
            )
          : await octokit.paginate(
              octokit.rest.packages.getAllPackageVersionsForPackageOwnedByUser,
              {
                username: pkg.owner,
                package_type: "container",
                package_name: pkg.packageName,
                per_page: 100,
              },
            );
      kind = candidate;
      break;
    } catch (error) {
      const status = statusOf(error);
      if (status === 404) continue; // not an org (or not this org's package): try the user
      if (status === 401 || status === 403) {
        report.denied = true;
        report.warnings.push(
          `preview: cannot list versions of the ghcr.io package ${pkg.owner}/${pkg.packageName} (HTTP ${status}): ${permissionHint}; preview tags left in place`,
        );
      } else {
        report.warnings.push(
          `preview: listing versions of the ghcr.io package ${pkg.owner}/${pkg.packageName} failed: ${messageOf(error)}; preview tags left in place`,
        );
      }
      return report;
    }
  }
  if (!versions) {
    report.warnings.push(
      `preview: the ghcr.io package ${pkg.owner}/${pkg.packageName} was not found, or the github-token cannot see it (it needs "packages: read"); preview tags left in place`,
    );
    return report;
  }
  report.owner = { kind, login: pkg.owner, packageName: pkg.packageName };

  for (const version of versions) {
    const tags = version.metadata?.container?.tags ?? [];
    const previews = tags.filter(isPreviewTag);
    if (previews.length === 0) continue;
    report.found.push(...previews);
    const others = tags.filter((t) => !isPreviewTag(t));
    if (others.length > 0 || report.denied) {
      report.kept.push({
        id: version.id,
        digest: version.name,
        tags: previews,
        sharedWith: others,
      });
      continue;
    }
    try {
      if (kind === "org") {
        await octokit.rest.packages.deletePackageVersionForOrg({
          org: pkg.owner,
          package_type: "container",
          package_name: pkg.packageName,
          package_version_id: version.id,
        });
      } else {
        await octokit.rest.packages.deletePackageVersionForUser({
          username: pkg.owner,
          package_type: "container",
          package_name: pkg.packageName,
          package_version_id: version.id,
        });
      }
      report.deleted.push({ id: version.id, digest: version.name, tags: previews });
    } catch (error) {
      const status = statusOf(error);
      if (status === 404) {
        report.deleted.push({ id: version.id, digest: version.name, tags: previews }); // gone meanwhile
        continue;
      }
      report.kept.push({ id: version.id, digest: version.name, tags: previews, sharedWith: [] });
      if (status === 401 || status === 403) {
        report.denied = true;
        report.warnings.push(
          `preview: cannot delete versions of the ghcr.io package ${pkg.owner}/${pkg.packageName} (HTTP ${status}): ${permissionHint}; preview tags left in place`,
        );
      } else {
        report.warnings.push(
          `preview: deleting version ${version.id} (${version.name}) of ${pkg.owner}/${pkg.packageName} failed: ${messageOf(error)}`,
        );
      }
    }
  }
  return report;
}
