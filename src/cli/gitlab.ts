/**
 * What the CLI does differently inside a GitLab job (GITLAB_CI=true): merge-request preview tags
 * and the project registry's credentials as the default. Both turn raw inputs into raw inputs, so
 * the engine's parser still checks everything that results.
 */
import { InputError } from "../core/errors.js";
import { ParseError, parseImageReference, registryAuthKey, splitList } from "../core/spec/parse.js";
import {
  previewLabels,
  previewTags,
  validatePreviewRepositories,
} from "../core/spec/preview-tags.js";
import type { RawInputs } from "../core/spec/spec.js";

type Env = NodeJS.ProcessEnv;

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === "" ? undefined : value.trim();
}

/** `registry.example/acme/web:1.0` → `registry.example/acme/web` (as written; a digest is kept, and refused later). */
export function repositoryOf(tag: string): string {
  const trimmed = tag.trim();
  if (trimmed.includes("@")) return trimmed;
  const lastSlash = trimmed.lastIndexOf("/");
  const colon = trimmed.indexOf(":", lastSlash + 1);
  return colon === -1 ? trimmed : trimmed.slice(0, colon);
}

export interface MergeRequestPreview {
  raw: RawInputs;
  /** One line for the log. */
  note: string;
}

/**
 * `preview: true` in a merge-request pipeline: the tags become `mr-<iid>` and `mr-<iid>-<short sha>`
 * in each repository the `tags` input names (its own tags are dropped), and OCI labels name the
 * merge request. Outside a merge-request pipeline the tags stay as given.
 */
export function applyMergeRequestPreview(raw: RawInputs, env: Env): MergeRequestPreview {
  const iidText = nonEmpty(env.CI_MERGE_REQUEST_IID);
  if (iidText === undefined) {
    return {
      raw,
      note: "preview: not a merge-request pipeline ($CI_MERGE_REQUEST_IID is unset); building with the tags as given",
    };
  }
  if (!/^[1-9][0-9]*$/.test(iidText)) {
    throw new InputError(
      "preview",
      `$CI_MERGE_REQUEST_IID "${iidText}" is not a merge request number`,
    );
  }
  const iid = Number(iidText);
  // In a merged-results pipeline CI_COMMIT_SHA is the merge commit; the MR's head is the source branch SHA.
  const sha = nonEmpty(env.CI_MERGE_REQUEST_SOURCE_BRANCH_SHA) ?? nonEmpty(env.CI_COMMIT_SHA);
  if (sha === undefined)
    throw new InputError("preview", "needs $CI_COMMIT_SHA to name the preview tag");
  let items: string[];
  try {
    items = splitList(raw.tags ?? "", { comma: true });
  } catch (error) {
    if (error instanceof ParseError) throw new InputError("tags", error.message);
    throw error;
  }
  const repositories = validatePreviewRepositories(items.map(repositoryOf));
  const tags = repositories.flatMap((repository) => previewTags(repository, "mr", iid, sha));
  const next: RawInputs = { ...raw, tags: tags.join("\n") };

  const sourceUrl =
    nonEmpty(env.CI_MERGE_REQUEST_SOURCE_PROJECT_URL) ?? nonEmpty(env.CI_PROJECT_URL);
  const projectPath = nonEmpty(env.CI_MERGE_REQUEST_PROJECT_PATH) ?? nonEmpty(env.CI_PROJECT_PATH);
  if (sourceUrl !== undefined && projectPath !== undefined) {
    const given = new Set(
      (raw.labels ?? "")
        .split("\n")
        .map((line) => line.split("=")[0]?.trim())
        .filter((key): key is string => key !== undefined && key !== ""),
    );
    const extra = previewLabels({ sourceUrl, revision: sha, preview: `${projectPath}!${iid}` })
      .filter((label) => !given.has(label.key))
      .map((label) => `${label.key}=${label.value}`);
    const labels = [nonEmpty(raw.labels), ...extra].filter(
      (line): line is string => line !== undefined,
    );
    if (labels.length > 0) next.labels = labels.join("\n");
  }
  return { raw: next, note: `preview: merge request !${iid}: pushing ${tags.join(", ")}` };
}

export interface RegistryDefault {
  raw: RawInputs;
  /** The line to print when the default was taken; the password itself never appears. */
  note?: string;
  /** Values to mask. */
  secrets: string[];
}

/**
 * Without registry credentials given, a tag (or the cache repository) in `$CI_REGISTRY` is pushed
 * with `$CI_REGISTRY_USER` / `$CI_REGISTRY_PASSWORD`. They go in as a config.json scoped to that
 * registry alone, so the job token is never offered to another registry the tags name.
 */
export function withGitLabRegistryDefault(raw: RawInputs, env: Env): RegistryDefault {
  const unchanged: RegistryDefault = { raw, secrets: [] };
  if (
    nonEmpty(raw["registry-username"]) ||
    nonEmpty(raw["registry-password"]) ||
    nonEmpty(raw["docker-config-json"])
  ) {
    return unchanged;
  }
  const registry = nonEmpty(env.CI_REGISTRY)?.toLowerCase();
  const user = nonEmpty(env.CI_REGISTRY_USER);
  const password = env.CI_REGISTRY_PASSWORD;
  if (registry === undefined || user === undefined || password === undefined || password === "")
    return unchanged;

  let refs: string[];
  try {
    refs = [
      ...splitList(raw.tags ?? "", { comma: true }),
      ...(nonEmpty(raw["cache-repo"]) ? [raw["cache-repo"]!.trim()] : []),
    ];
  } catch {
    return unchanged; // the parser reports the bad list
  }
  const inRegistry = refs.some((ref) => {
    try {
      return parseImageReference(ref).domain.toLowerCase() === registry;
    } catch {
      return false; // the parser reports the bad reference
    }
  });
  if (!inRegistry) return unchanged;
  const auth = Buffer.from(`${user}:${password}`).toString("base64");
  const json = JSON.stringify({ auths: { [registryAuthKey(registry)]: { auth } } });
  return {
    raw: { ...raw, "docker-config-json": json },
    note: `registry: no credentials given; pushing to ${registry} as $CI_REGISTRY_USER with $CI_REGISTRY_PASSWORD`,
    secrets: [password, auth],
  };
}
