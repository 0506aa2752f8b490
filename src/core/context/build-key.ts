/**
 * The build key: one sha256 over everything that decides the image, so that the same inputs give
 * the same key on any machine and any change to one of them gives another key.
 *
 * In it: the builder and its image; the Dockerfile's path (its content is in the context); every
 * entry the context sends after .dockerignore, in walk order, with its type, path, permission bits,
 * and the sha256 of a file's content or a symlink's target (never mtimes, owners or inode data);
 * build args and labels (by key: their order does not change the image); the target stage; the
 * platform list (in order: it is the index's order); the ids of build secrets (never their values).
 * A git context counts by its URL and the commit its ref resolves to.
 *
 * Out of it, because they do not decide the image: tags, cache inputs, the cluster and the pod's
 * shape (namespace, resources, node selector), the context receiver's image.
 */
import { execFile } from "node:child_process";
import { createHash, type Hash } from "node:crypto";
import { createReadStream } from "node:fs";
import path from "node:path";
import type { BuildSpec } from "../types.js";
import type { ContextPlan } from "./plan.js";

/** Bumped whenever what goes into the key changes, so an old key never matches a new meaning. */
const KEY_VERSION = "k8s-image-build/build-key/v1";

/** Files hashed at once: enough to keep a disk busy, few enough to bound open descriptors. */
const HASH_CONCURRENCY = 8;

/** What the key was computed from, besides the spec: the walked context or the resolved commit. */
export type KeyedContext = { kind: "dir"; plan: ContextPlan } | { kind: "git"; commit: string };

/** The 64 hex digits of the key. */
export async function buildKey(spec: BuildSpec, context: KeyedContext): Promise<string> {
  const hash = createHash("sha256");
  const byKey = (a: { key: string }, b: { key: string }) => (a.key < b.key ? -1 : 1);
  const header = {
    version: KEY_VERSION,
    builder: spec.builder,
    builderImage: spec.builderImage,
    dockerfile: spec.dockerfile,
    target: spec.target ?? null,
    buildArgs: [...spec.buildArgs].sort(byKey).map(({ key, value }) => [key, value]),
    labels: [...spec.labels].sort(byKey).map(({ key, value }) => [key, value]),
    platforms: spec.platforms,
    secretIds: spec.secrets.map((secret) => secret.id).sort(),
    context:
      context.kind === "git" && spec.context.kind === "git"
        ? {
            kind: "git",
            url: withoutRef(spec.context.url),
            ...gitFragment(spec.context.url),
            commit: context.commit,
          }
        : { kind: "dir" },
  };
  hash.update(`${JSON.stringify(header)}\n`);
  if (context.kind === "dir") await hashEntries(hash, context.plan);
  return hash.digest("hex");
}

async function hashEntries(hash: Hash, plan: ContextPlan): Promise<void> {
  const files = plan.entries.filter((entry) => entry.type === "file");
  const digests = new Map<string, string>();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < files.length) {
      const entry = files[next++]!;
      digests.set(entry.path, await fileDigest(path.join(plan.dir, entry.path)));
    }
  };
  await Promise.all(Array.from({ length: Math.min(HASH_CONCURRENCY, files.length) }, worker));
  for (const entry of plan.entries) {
    const what =
      entry.type === "file"
        ? digests.get(entry.path)
        : entry.type === "symlink"
          ? entry.linkTarget
          : "";
    hash.update(`${JSON.stringify([entry.type, entry.path, entry.mode, what])}\n`);
  }
}

function fileDigest(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash("sha256");
    createReadStream(file)
      .on("data", (chunk) => hash.update(chunk))
      .on("error", reject)
      .on("end", () => resolve(hash.digest("hex")));
  });
}

function withoutRef(url: string): string {
  const hash = url.indexOf("#");
  return hash >= 0 ? url.slice(0, hash) : url;
}

/** `<url>#<ref>[:<subdir>]` → ref and subdir ("" when absent). */
export function gitFragment(url: string): { ref: string; subdir: string } {
  const hash = url.indexOf("#");
  const fragment = hash >= 0 ? url.slice(hash + 1) : "";
  const colon = fragment.indexOf(":");
  return colon >= 0
    ? { ref: fragment.slice(0, colon), subdir: fragment.slice(colon + 1) }
    : { ref: fragment, subdir: "" };
}

const COMMIT = /^[0-9a-f]{40}$/;

/** Lists a remote's refs (`git ls-remote <url>`): "<sha>\t<ref>" lines. */
export type LsRemote = (url: string, signal?: AbortSignal) => Promise<string>;

export const gitLsRemote: LsRemote = (url, signal) =>
  new Promise((resolve, reject) => {
    execFile("git", ["ls-remote", "--", url], { timeout: 30_000, signal }, (error, stdout) =>
      error ? reject(error) : resolve(stdout),
    );
  });

/**
 * The commit a git context builds: a full commit id given as the ref as is; else the ref (a branch,
 * a tag, or HEAD when none is given) looked up on the remote. Undefined when it cannot be resolved.
 */
export async function resolveGitCommit(
  url: string,
  lsRemote: LsRemote = gitLsRemote,
  signal?: AbortSignal,
): Promise<string | undefined> {
  const { ref } = gitFragment(url);
  if (COMMIT.test(ref)) return ref;
  const listing = await lsRemote(withoutRef(url), signal);
  const refs = new Map<string, string>();
  for (const line of listing.split("\n")) {
    const [sha, name] = line.trim().split(/\s+/);
    if (sha && name && COMMIT.test(sha)) refs.set(name, sha);
  }
  const wanted = ref === "" ? ["HEAD"] : [ref, `refs/heads/${ref}`, `refs/tags/${ref}`];
  for (const name of wanted) {
    // An annotated tag's commit is its peeled entry.
    const sha = refs.get(`${name}^{}`) ?? refs.get(name);
    if (sha) return sha;
  }
  return undefined;
}
