/**
 * Reuse: before anything is submitted, ask the registry whether an image with this build's key
 * exists (the tag `kib-<key>` in the cache repository). When it does, no Job and no pod: every
 * requested tag is pointed at that manifest and the build returns as if it had built it. After a
 * real build, the key is recorded the same way, so the next identical build reuses it.
 *
 * The registry is a cache here, never a reason to fail: a registry that cannot be read or written
 * means building, with one warning for the whole build.
 */
import { buildKey, resolveGitCommit, type KeyedContext } from "../context/build-key.js";
import { BuildFailure, messageOf } from "../errors.js";
import { RegistryClient, type ManifestRecord } from "../registry/client.js";
import { credentialsForRegistry } from "../registry/credentials.js";
import { imageCreated, pointTagsAt } from "../registry/image-copy.js";
import { isInsecureRegistry, splitRepository } from "../registry/reference.js";
import { parseImageReference } from "../spec/parse.js";
import type { BuildResult, BuildSpec } from "../types.js";
import { repositoryOf } from "./read-back.js";
import type { BuildRun } from "./run.js";

/** The tag, in the cache repository, that marks the image built from one key. */
export const KEY_TAG_PREFIX = "kib-";

/** Per registry request during reuse and recording. */
const REGISTRY_TIMEOUT_MS = 10_000;

/** What the reuse phase learnt, for recording after a build. */
export interface ReuseState {
  key: string;
  client: RegistryClient;
  /** Repository name of the cache, inside its registry. */
  cacheName: string;
  /** False once the registry refused a write (or a read): nothing more is tried. */
  usable: boolean;
}

/** Tags grouped by repository name, all in one registry: `acme/web` → ["1.0", "latest"]. */
function tagsByRepository(tags: readonly string[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const tag of tags) {
    const ref = parseImageReference(tag);
    const list = out.get(ref.path) ?? [];
    list.push(ref.tag ?? "latest");
    out.set(ref.path, list);
  }
  return out;
}

function clientFor(spec: BuildSpec, registry: string, signal: AbortSignal): RegistryClient {
  return new RegistryClient(registry, {
    credentials: credentialsForRegistry(spec.registryAuth, registry),
    insecure: isInsecureRegistry(registry, spec.insecureRegistries),
    signal,
    userAgent: "k8s-image-build",
    // A lookup that hangs costs more than the build it might save: give up sooner than a push would.
    timeoutMs: REGISTRY_TIMEOUT_MS,
  });
}

/** A request that failed because the build was cancelled is no registry problem: no warning, no build. */
function throwIfCancelled(run: BuildRun): void {
  if (run.abort.signal.aborted) throw new BuildFailure("cancelled", "the build was cancelled");
}

/** Why reuse cannot apply to this build at all, or undefined when it can. */
function notApplicable(spec: BuildSpec): string | undefined {
  const cacheRegistry = splitRepository(spec.cacheRepo ?? "").registry;
  const elsewhere = spec.tags.find((tag) => splitRepository(tag).registry !== cacheRegistry);
  return elsewhere
    ? `${elsewhere} is on another registry than the cache repository ${spec.cacheRepo}; blobs cannot be mounted across registries`
    : undefined;
}

async function keyedContext(run: BuildRun): Promise<KeyedContext | undefined> {
  const { spec, contextPlan } = run;
  if (spec.context.kind === "dir" && contextPlan) return { kind: "dir", plan: contextPlan };
  if (spec.context.kind !== "git") return undefined;
  const commit = await resolveGitCommit(
    spec.context.url,
    run.options.gitLsRemote,
    run.abort.signal,
  ).catch(() => undefined);
  return commit ? { kind: "git", commit } : undefined;
}

/**
 * The result of reusing an earlier build, or undefined when this one has to be built. Sets
 * run.reuse so that a build can be recorded afterwards.
 */
export async function findReusable(run: BuildRun): Promise<BuildResult | undefined> {
  const { spec, reporter } = run;
  if (!spec.reuse || spec.cacheRepo === undefined) return undefined;
  const started = performance.now();
  const skip = notApplicable(spec);
  if (skip) {
    reporter.info(`Reuse: not possible (${skip}); building`);
    return undefined;
  }
  const context = await keyedContext(run);
  if (!context) {
    reporter.warn(
      `Reuse: cannot resolve the commit of ${spec.context.kind === "git" ? spec.context.url : "the context"} (git ls-remote); building`,
    );
    return undefined;
  }
  const key = await buildKey(spec, context);
  const cache = splitRepository(spec.cacheRepo);
  const state: ReuseState = {
    key,
    client: clientFor(spec, cache.registry, run.abort.signal),
    cacheName: cache.name,
    usable: true,
  };
  run.reuse = state;
  const keyTag = `${spec.cacheRepo}:${KEY_TAG_PREFIX}${key}`;

  let manifest: ManifestRecord | undefined;
  try {
    manifest = await state.client.getManifest(cache.name, `${KEY_TAG_PREFIX}${key}`);
  } catch (error) {
    throwIfCancelled(run);
    state.usable = false;
    reporter.warn(`Reuse: cannot read ${keyTag} (${messageOf(error)}); building`);
    return undefined;
  }
  if (!manifest) {
    reporter.info(
      `Reuse: no image for build key ${key.slice(0, 12)} in ${spec.cacheRepo}; building`,
    );
    return undefined;
  }

  let builtAt: string | undefined;
  try {
    builtAt = await imageCreated(state.client, cache.name, manifest);
    for (const [name, tags] of tagsByRepository(spec.tags)) {
      await pointTagsAt(state.client, cache.name, manifest, name, tags);
    }
  } catch (error) {
    throwIfCancelled(run);
    state.usable = false;
    reporter.warn(
      `Reuse: found ${manifest.digest} for build key ${key.slice(0, 12)} but could not tag it (${messageOf(error)}); building`,
    );
    return undefined;
  }

  const { digest } = manifest;
  reporter.info(
    `Reused ${digest}${builtAt ? ` built ${builtAt}` : ""}: build key ${key.slice(0, 12)} (Dockerfile, ${context.kind === "git" ? `commit ${context.commit.slice(0, 12)}` : `${run.contextPlan?.files ?? 0} context files`}, args, target, platforms and builder unchanged) is in ${spec.cacheRepo}; tagged ${spec.tags.join(", ")}; no Job created`,
  );
  return {
    digest,
    image: `${repositoryOf(spec.tags[0]!)}@${digest}`,
    tags: [...spec.tags],
    builder: run.builder.name,
    namespace: run.namespace,
    job: "",
    context: { files: run.contextPlan?.files ?? 0, bytes: run.contextPlan?.bytes ?? 0 },
    durations: {
      submitMs: 0,
      scheduleMs: 0,
      uploadMs: 0,
      buildMs: 0,
      totalMs: Math.round(performance.now() - started),
    },
    reused: true,
    ...(builtAt !== undefined ? { builtAt } : {}),
    buildKey: key,
  };
}

/**
 * After a real build: the key tag in the cache repository points at the pushed image, so the next
 * identical build reuses it. A registry that refuses is one warning; the build stands.
 */
export async function recordBuild(run: BuildRun, result: BuildResult): Promise<void> {
  const state = run.reuse;
  if (!state?.usable || !run.spec.push) return;
  const { reporter, spec } = run;
  const source = splitRepository(spec.tags[0]!).name;
  try {
    const manifest = await state.client.getManifest(source, result.digest);
    if (!manifest) {
      throw new Error(`${spec.tags[0]} has no manifest ${result.digest}`);
    }
    await pointTagsAt(state.client, source, manifest, state.cacheName, [
      `${KEY_TAG_PREFIX}${state.key}`,
    ]);
    reporter.info(
      `Recorded build key ${state.key.slice(0, 12)} as ${spec.cacheRepo}:${KEY_TAG_PREFIX}${state.key.slice(0, 12)}…; the next identical build reuses ${result.digest}`,
    );
  } catch (error) {
    reporter.warn(
      `Reuse: could not record build key ${state.key.slice(0, 12)} in ${spec.cacheRepo} (${messageOf(error)}); the next identical build will build again`,
    );
  }
}
