/**
 * The build context: which files go (`.dockerignore` applied the way Docker applies it) and the
 * gzip tar stream that carries them into the pod.
 *
 * Matching is a port of Docker's current pattern matcher (github.com/moby/patternmatcher:
 * `New`, `Pattern.compile`, `MatchesUsingParentResults`) and the walk follows BuildKit's
 * (github.com/tonistiigi/fsutil `filterFS.Walk`, what `docker build` uses today):
 *
 * - `.dockerignore` lines: a UTF-8 BOM is dropped, lines starting with `#` are comments, each line
 *   is trimmed, `!` marks an exception, the rest is `filepath.Clean`ed and a leading `/` dropped.
 * - A path is excluded when the last pattern matching it *or any of its parent directories* is
 *   not an exception. Matching is case-sensitive; `*`/`?` never cross `/`; `**` spans directories.
 * - An excluded directory is skipped whole unless an exception could match inside it (a prefix
 *   test, or any exception with wildcards); it is walked then, and written to the tar only when
 *   something inside it is included (with its own mode and mtime, before its children).
 * - A Dockerfile-specific ignore file (`<dockerfile>.dockerignore`) replaces the root one, as
 *   BuildKit does.
 *
 * On top of Docker: the Dockerfile and the ignore files are always sent (the builder in the pod
 * reads them from the context), `.git` at the root is never sent, special files are skipped and a
 * symlink leading out of the context is refused.
 */
import {
  constants as fsc,
  createReadStream,
  type Dirent,
  type ReadStream,
  type Stats,
} from "node:fs";
import { lstat, readdir, readFile, readlink, realpath, stat } from "node:fs/promises";
import path from "node:path";
import { Transform, type Readable } from "node:stream";
import { createGzip } from "node:zlib";
import tarStream from "tar-stream";
import { InputError } from "./errors.js";

export interface ContextEntry {
  /** POSIX, relative to the context directory, no leading `./`, no trailing `/`. */
  path: string;
  type: "file" | "directory" | "symlink";
  /** Bytes for files; 0 otherwise. */
  size: number;
  /** Permission bits (`stat.mode & 0o7777`). */
  mode: number;
  mtime: Date;
  /** Symlinks only: the link text, verbatim. */
  linkTarget?: string;
}

export interface ContextPlan {
  /** Absolute, symlinks resolved. */
  dir: string;
  /** In walk order: depth first, names sorted bytewise, every directory before its children. */
  entries: ContextEntry[];
  files: number;
  /** Sum of file sizes. */
  bytes: number;
}

// ---------------------------------------------------------------------------------------------
// Docker's pattern matcher
// ---------------------------------------------------------------------------------------------

type MatchType = "exact" | "prefix" | "suffix" | "regexp";

interface Pattern {
  /** Cleaned pattern without the `!`. */
  text: string;
  exclusion: boolean;
  matchType: MatchType;
  regexp: RegExp | null;
}

/** Go's path.Clean / filepath.Clean on a POSIX system. */
function goClean(p: string): string {
  if (p === "") return ".";
  const cleaned = path.posix.normalize(p);
  return cleaned.length > 1 && cleaned.endsWith("/") ? cleaned.slice(0, -1) : cleaned;
}

/**
 * Reads an ignore file the way Docker does (moby/patternmatcher/ignorefile.ReadAll, which the
 * docker CLI and BuildKit share). Returns the patterns, `!` kept as a prefix.
 */
export function parseDockerignore(content: string): string[] {
  const patterns: string[] = [];
  const lines = content.replace(/^\uFEFF/, "").split("\n");
  for (let raw of lines) {
    // bufio.ScanLines drops one trailing \r.
    if (raw.endsWith("\r")) raw = raw.slice(0, -1);
    if (raw.startsWith("#")) continue;
    let pattern = goTrimSpace(raw);
    if (pattern === "") continue;
    const invert = pattern[0] === "!";
    if (invert) pattern = goTrimSpace(pattern.slice(1));
    if (pattern.length > 0) {
      pattern = goClean(pattern);
      if (pattern.length > 1 && pattern[0] === "/") pattern = pattern.slice(1);
    }
    patterns.push(invert ? "!" + pattern : pattern);
  }
  return patterns;
}

/** strings.TrimSpace: Go's unicode.IsSpace set (JS's \s differs: it has U+FEFF, lacks U+0085). */
const GO_SPACE =
  "[\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]";
const GO_TRIM = new RegExp(`^${GO_SPACE}+|${GO_SPACE}+$`, "g");
function goTrimSpace(s: string): string {
  return s.replace(GO_TRIM, "");
}

/** Syntax check equivalent to Go's `filepath.Match(p, ".")` returning ErrBadPattern. */
function goMatchSyntaxOk(p: string): boolean {
  const cps = Array.from(p);
  let i = 0;
  // getEsc from path/filepath: one (possibly escaped) character of a class range.
  const getEsc = (): boolean => {
    if (i >= cps.length || cps[i] === "-" || cps[i] === "]") return false;
    if (cps[i] === "\\") {
      i++;
      if (i >= cps.length) return false;
    }
    i++;
    return i < cps.length;
  };
  while (i < cps.length) {
    const ch = cps[i];
    if (ch === "\\") {
      if (i + 1 >= cps.length) return false;
      i += 2;
    } else if (ch === "[") {
      i++;
      if (i < cps.length && cps[i] === "^") i++;
      let nrange = 0;
      for (;;) {
        if (i < cps.length && cps[i] === "]" && nrange > 0) {
          i++;
          break;
        }
        if (!getEsc()) return false;
        if (cps[i] === "-") {
          i++;
          if (!getEsc()) return false;
        }
        nrange++;
      }
    } else {
      i++;
    }
  }
  return true;
}

const SHOULD_ESCAPE = new Set([".", "+", "(", ")", "|", "{", "}", "$"]);

/** patternmatcher's Pattern.compile, for a `/` separator. */
function compilePattern(text: string): { matchType: MatchType; regexp: RegExp | null } {
  let reg = "^";
  let detected: MatchType = "exact";
  const cps = Array.from(text);
  for (let k = 0, i = 0; k < cps.length; i++) {
    const ch = cps[k++];
    if (ch === "*") {
      if (cps[k] === "*") {
        k++;
        if (cps[k] === "/") k++;
        if (k >= cps.length) {
          if (detected === "exact") {
            detected = "prefix";
          } else {
            reg += ".*";
            detected = "regexp";
          }
        } else {
          reg += "(.*/)?";
          detected = "regexp";
        }
        if (i === 0) detected = "suffix";
      } else {
        reg += "[^/]*";
        detected = "regexp";
      }
    } else if (ch === "?") {
      reg += "[^/]";
      detected = "regexp";
    } else if (SHOULD_ESCAPE.has(ch)) {
      reg += "\\" + ch;
    } else if (ch === "\\") {
      if (k < cps.length) {
        reg += "\\" + cps[k++];
        detected = "regexp";
      } else {
        reg += "\\";
      }
    } else if (ch === "[" || ch === "]") {
      reg += ch;
      detected = "regexp";
    } else {
      reg += ch;
    }
  }
  if (detected !== "regexp") return { matchType: detected, regexp: null };
  return { matchType: "regexp", regexp: new RegExp(reg + "$") };
}

function patternMatch(p: Pattern, file: string): boolean {
  switch (p.matchType) {
    case "exact":
      return file === p.text;
    case "prefix":
      return file.startsWith(p.text.slice(0, -2));
    case "suffix": {
      const suffix = p.text.slice(2);
      if (file.endsWith(suffix)) return true;
      return suffix[0] === "/" && file === suffix.slice(1);
    }
    case "regexp":
      return p.regexp !== null && p.regexp.test(file);
  }
}

export class PatternMatcher {
  readonly patterns: Pattern[] = [];
  readonly exclusions: boolean;

  /** patternmatcher.New; throws Error with Docker's message for a bad pattern. */
  constructor(patterns: readonly string[]) {
    let exclusions = false;
    for (let p of patterns) {
      p = goTrimSpace(p);
      if (p === "") continue;
      p = goClean(p);
      let exclusion = false;
      if (p[0] === "!") {
        if (p.length === 1) throw new Error('illegal exclusion pattern: "!"');
        exclusion = true;
        p = p.slice(1);
        exclusions = true;
      }
      if (!goMatchSyntaxOk(p)) throw new Error(`syntax error in pattern ${JSON.stringify(p)}`);
      let compiled: ReturnType<typeof compilePattern>;
      try {
        compiled = compilePattern(p);
      } catch {
        throw new Error(`syntax error in pattern ${JSON.stringify(p)}`);
      }
      this.patterns.push({ text: p, exclusion, ...compiled });
    }
    this.exclusions = exclusions;
  }

  /**
   * MatchesUsingParentResults: `parent` is what this returned for the parent directory (null at
   * the top, which falls back to testing every parent path, as MatchesOrParentMatches does).
   */
  matchUsingParent(
    file: string,
    parent: readonly boolean[] | null,
  ): { matched: boolean; info: boolean[] } {
    let matched = false;
    const info = new Array<boolean>(this.patterns.length).fill(false);
    this.patterns.forEach((pattern, i) => {
      let match = parent !== null ? parent[i] : false;
      if (!match) {
        if (pattern.exclusion !== matched) return;
        match = patternMatch(pattern, file);
        if (!match && parent === null) {
          const dir = path.posix.dirname(file);
          if (dir !== ".") {
            const parts = dir.split("/");
            for (let j = 1; j <= parts.length && !match; j++)
              match = patternMatch(pattern, parts.slice(0, j).join("/"));
          }
        }
      }
      info[i] = match;
      if (match) matched = !pattern.exclusion;
    });
    return { matched, info };
  }

  /** MatchesOrParentMatches: is `file` (slash-separated, relative) excluded? */
  matches(file: string): boolean {
    file = goClean(file);
    if (file === ".") return false;
    return this.matchUsingParent(file, null).matched;
  }
}

// ---------------------------------------------------------------------------------------------
// planContext
// ---------------------------------------------------------------------------------------------

function errnoCode(error: unknown): string | undefined {
  // Duck-typed: errors from node:fs may come from another realm (vm contexts, test runners).
  return typeof error === "object" &&
    error !== null &&
    "code" in error &&
    typeof error.code === "string"
    ? error.code
    : undefined;
}

function messageOf(error: unknown): string {
  return typeof error === "object" &&
    error !== null &&
    "message" in error &&
    typeof error.message === "string"
    ? error.message
    : String(error);
}

function isInside(root: string, p: string): boolean {
  const rel = path.relative(root, p);
  return rel !== ".." && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel);
}

function compareNames(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

/** What fsutil's patternWithoutTrailingGlob does: `a/b/**` and `a/b/*` both become `a/b`. */
function withoutTrailingGlob(text: string): string {
  if (text.endsWith("/**")) text = text.slice(0, -3);
  if (text.endsWith("/*")) text = text.slice(0, -2);
  return text;
}

const PATTERN_CHARS = /[*[\]?^\\]/;

async function readIgnoreFile(file: string): Promise<string | null> {
  try {
    return await readFile(file, "utf8");
  } catch (error) {
    const code = errnoCode(error);
    if (code === "ENOENT" || code === "ENOTDIR") return null;
    throw error;
  }
}

/** Walk dir applying .dockerignore exactly as Docker does; throws InputError("context", …) / InputError("file", …) for user problems. */
export async function planContext(dir: string, opts: { dockerfile: string }): Promise<ContextPlan> {
  let root: string;
  try {
    root = await realpath(dir);
  } catch (error) {
    const code = errnoCode(error);
    if (code === "ENOENT") throw new InputError("context", `directory ${dir} does not exist`);
    throw new InputError("context", `cannot open ${dir}: ${code ?? String(error)}`);
  }
  if (!(await stat(root)).isDirectory())
    throw new InputError("context", `${dir} is not a directory`);

  // The Dockerfile: relative to the context, inside it, a file.
  const dockerfileAbs = path.resolve(root, opts.dockerfile);
  const dockerfile = path.relative(root, dockerfileAbs).split(path.sep).join("/");
  if (
    dockerfile === "" ||
    dockerfile === ".." ||
    dockerfile.startsWith("../") ||
    path.isAbsolute(dockerfile)
  ) {
    throw new InputError("file", `${opts.dockerfile} is outside the context directory ${dir}`);
  }
  let dockerfileStat: Stats;
  try {
    dockerfileStat = await stat(dockerfileAbs);
  } catch (error) {
    if (errnoCode(error) === "ENOENT" || errnoCode(error) === "ENOTDIR") {
      throw new InputError(
        "file",
        `Dockerfile ${dockerfile} not found in the context directory ${dir}`,
      );
    }
    throw new InputError(
      "file",
      `cannot read Dockerfile ${dockerfile}: ${errnoCode(error) ?? String(error)}`,
    );
  }
  if (!dockerfileStat.isFile()) throw new InputError("file", `${dockerfile} is not a file`);

  // The ignore file: <dockerfile>.dockerignore wins over the root .dockerignore (BuildKit).
  const specificIgnore = `${dockerfile}.dockerignore`;
  let ignoreName = specificIgnore;
  let ignoreText = await readIgnoreFile(path.join(root, specificIgnore));
  if (ignoreText === null) {
    ignoreName = ".dockerignore";
    ignoreText = await readIgnoreFile(path.join(root, ".dockerignore"));
  }
  let matcher: PatternMatcher;
  try {
    matcher = new PatternMatcher(ignoreText === null ? [] : parseDockerignore(ignoreText));
  } catch (error) {
    throw new InputError("context", `${ignoreName}: ${messageOf(error)}`);
  }

  // Always sent: the builder in the pod reads these from the context.
  const forced = new Set([dockerfile, ".dockerignore", specificIgnore]);
  const forcedAncestors = new Set<string>();
  for (const f of forced) {
    for (let d = path.posix.dirname(f); d !== "."; d = path.posix.dirname(d))
      forcedAncestors.add(d);
  }

  const onlyPrefixExceptions = !matcher.patterns.some(
    (p) => p.exclusion && PATTERN_CHARS.test(withoutTrailingGlob(p.text)),
  );
  const exceptionPrefixes = matcher.patterns
    .filter((p) => p.exclusion)
    .map((p) => withoutTrailingGlob(p.text) + "/");

  const entries: ContextEntry[] = [];
  let files = 0;
  let bytes = 0;

  interface PendingDir {
    rel: string;
    emitted: boolean;
  }

  const toEntry = async (rel: string, st: Stats): Promise<ContextEntry | null> => {
    const mode = st.mode & 0o7777;
    if (st.isDirectory()) return { path: rel, type: "directory", size: 0, mode, mtime: st.mtime };
    if (st.isFile()) return { path: rel, type: "file", size: st.size, mode, mtime: st.mtime };
    if (st.isSymbolicLink()) {
      const abs = path.join(root, rel);
      const target = await readlink(abs);
      const lexical = path.resolve(path.dirname(abs), target);
      let resolved = lexical;
      try {
        resolved = await realpath(abs);
      } catch {
        // dangling: judge by the link text alone
      }
      for (const p of [lexical, resolved]) {
        if (!isInside(root, p)) {
          throw new InputError(
            "context",
            `symlink ${rel} points outside the context (${target} → ${p})`,
          );
        }
      }
      return { path: rel, type: "symlink", size: 0, mode, mtime: st.mtime, linkTarget: target };
    }
    return null; // sockets, fifos, devices
  };

  const lstatOrNull = async (rel: string): Promise<Stats | null> => {
    try {
      return await lstat(path.join(root, rel));
    } catch (error) {
      if (errnoCode(error) === "ENOENT") return null; // vanished while walking
      throw new InputError("context", `cannot read ${rel}: ${errnoCode(error) ?? String(error)}`);
    }
  };

  const emit = async (rel: string, st: Stats, parents: PendingDir[]): Promise<void> => {
    const entry = await toEntry(rel, st);
    if (entry === null) return;
    for (const parent of parents) {
      if (parent.emitted) continue;
      const pst = await lstatOrNull(parent.rel);
      if (pst === null) continue;
      const pentry = await toEntry(parent.rel, pst);
      if (pentry !== null) entries.push(pentry);
      parent.emitted = true;
    }
    entries.push(entry);
    if (entry.type === "file") {
      files++;
      bytes += entry.size;
    }
  };

  const walk = async (
    relDir: string,
    parentInfo: boolean[] | null,
    parents: PendingDir[],
  ): Promise<void> => {
    let dirents: Dirent[];
    try {
      dirents = await readdir(relDir === "" ? root : path.join(root, relDir), {
        withFileTypes: true,
      });
    } catch (error) {
      if (errnoCode(error) === "ENOENT") return;
      throw new InputError(
        "context",
        `cannot read directory ${relDir || "."}: ${errnoCode(error) ?? String(error)}`,
      );
    }
    dirents.sort((a, b) => compareNames(a.name, b.name));

    // Decide first (cheap, pure), then lstat what is kept, in parallel, then emit in order.
    interface Decision {
      rel: string;
      isDir: boolean;
      skip: boolean;
      walk: boolean;
      info: boolean[];
    }
    const decisions: Decision[] = [];
    for (const d of dirents) {
      const rel = relDir === "" ? d.name : `${relDir}/${d.name}`;
      if (rel === ".git") continue;
      const isDir = d.isDirectory();
      const { matched, info } = matcher.matchUsingParent(rel, parentInfo);
      let skip = false;
      let walkInto = isDir;
      if (matched && !forced.has(rel)) {
        skip = true;
        if (isDir && onlyPrefixExceptions && !forcedAncestors.has(rel)) {
          const dirSlash = rel + "/";
          walkInto = matcher.exclusions && exceptionPrefixes.some((p) => p.startsWith(dirSlash));
          if (!walkInto) continue;
        }
      }
      decisions.push({ rel, isDir, skip, walk: walkInto, info });
    }
    const stats = await Promise.all(
      decisions.map((d) => (d.skip ? Promise.resolve(null) : lstatOrNull(d.rel))),
    );

    for (const [i, d] of decisions.entries()) {
      const st = stats[i];
      if (!d.skip && st !== null) await emit(d.rel, st, parents);
      if (d.isDir && d.walk && (d.skip || (st !== null && st.isDirectory()))) {
        await walk(d.rel, d.info, [...parents, { rel: d.rel, emitted: !d.skip && st !== null }]);
      }
    }
  };

  await walk("", null, []);
  return { dir: root, entries, files, bytes };
}

// ---------------------------------------------------------------------------------------------
// tarContext
// ---------------------------------------------------------------------------------------------

/** Files up to this size are read whole (and a few ahead); larger ones are streamed. */
const SMALL_FILE = 512 * 1024;
const PREFETCH_FILES = 16;
const PREFETCH_BYTES = 8 * 1024 * 1024;

const COALESCE = 64 * 1024;

function coalescer(): Transform {
  let parts: Buffer[] = [];
  let size = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      if (size === 0 && chunk.length >= COALESCE) return callback(null, chunk);
      parts.push(chunk);
      size += chunk.length;
      if (size < COALESCE) return callback();
      const out = Buffer.concat(parts, size);
      parts = [];
      size = 0;
      callback(null, out);
    },
    flush(callback) {
      callback(null, size ? Buffer.concat(parts, size) : undefined);
    },
  });
}

type TarHeader = Parameters<ReturnType<typeof tarStream.pack>["entry"]>[0];

function headerFor(entry: ContextEntry): TarHeader {
  // tar-stream replaces a falsy mode with its default: keep a 0 mode by adding the type bits
  // (the header keeps only the low 12 bits).
  const typeBits =
    entry.type === "directory" ? fsc.S_IFDIR : entry.type === "symlink" ? fsc.S_IFLNK : fsc.S_IFREG;
  return {
    name: entry.type === "directory" ? `${entry.path}/` : entry.path,
    type: entry.type,
    mode: entry.mode | typeBits,
    uid: 0,
    gid: 0,
    mtime: entry.mtime,
    size: entry.type === "file" ? entry.size : 0,
    ...(entry.type === "symlink" ? { linkname: entry.linkTarget ?? "" } : {}),
  };
}

class ChangedError extends InputError {
  constructor(rel: string) {
    super(
      "context",
      `${rel} changed while it was being sent (it is smaller than when the context was planned)`,
    );
  }
}

/** A gzip tar of exactly the planned entries, streamed (never the whole context in memory), with progress. */
export function tarContext(
  plan: ContextPlan,
  opts: { onProgress?: (p: { files: number; bytes: number }) => void; gzipLevel?: number } = {},
): Readable {
  const pack = tarStream.pack();
  const gzip = createGzip({ level: opts.gzipLevel ?? 6, chunkSize: 64 * 1024 });
  const abort = new AbortController();
  let current: ReadStream | null = null;
  let stopped = false;

  const stop = (): void => {
    if (stopped) return;
    stopped = true;
    abort.abort();
    current?.destroy();
    if (!pack.destroyed) pack.destroy();
  };
  gzip.once("close", stop);
  // Headers and small files arrive as many small buffers; each write into zlib is a threadpool
  // round trip, so hand it at least COALESCE bytes at a time.
  const coalesce = coalescer();
  coalesce.on("error", (error: Error) => gzip.destroy(error));
  coalesce.pipe(gzip);
  pack.pipe(coalesce, (error?: Error | null) => {
    if (error && !gzip.destroyed) gzip.destroy(error);
  });
  gzip.once("close", () => coalesce.destroy());

  const entryDone = (header: TarHeader, body?: Buffer): Promise<void> =>
    new Promise((resolve, reject) => {
      const cb = (error?: Error | null): void => (error ? reject(error) : resolve());
      if (body) pack.entry(header, body, cb);
      else pack.entry(header, cb);
    });

  // Small files are read whole, a few ahead of the writer, so disk and gzip overlap.
  const prefetched = new Map<number, Promise<Buffer>>();
  let prefetchNext = 0;
  let prefetchBytes = 0;
  const isSmall = (e: ContextEntry): boolean => e.type === "file" && e.size <= SMALL_FILE;
  const fill = (from: number): void => {
    if (prefetchNext < from) prefetchNext = from;
    while (
      prefetchNext < plan.entries.length &&
      prefetchNext < from + PREFETCH_FILES &&
      prefetchBytes < PREFETCH_BYTES &&
      !stopped
    ) {
      const e = plan.entries[prefetchNext];
      if (e.type === "file" && !isSmall(e)) break; // a large file is streamed in turn
      if (isSmall(e)) {
        const p = readFile(path.join(plan.dir, e.path), { signal: abort.signal });
        p.catch(() => {}); // observed when its turn comes
        prefetched.set(prefetchNext, p);
        prefetchBytes += e.size;
      }
      prefetchNext++;
    }
  };

  const writeLarge = async (e: ContextEntry, header: TarHeader): Promise<void> => {
    let sinkError: Error | null = null;
    const sink = pack.entry(header, (error?: Error | null) => {
      if (error) sinkError = error;
    });
    const finished = new Promise<void>((resolve, reject) => {
      sink.once("close", () => (sinkError ? reject(sinkError) : resolve()));
      sink.once("error", (error: Error) => {
        sinkError ??= error;
      });
    });
    finished.catch(() => {});
    const rs = createReadStream(path.join(plan.dir, e.path), {
      start: 0,
      end: Math.max(0, e.size - 1),
      highWaterMark: 256 * 1024,
    });
    current = rs;
    let written = 0;
    try {
      if (e.size > 0) {
        for await (const chunk of rs as AsyncIterable<Buffer>) {
          if (stopped) break;
          written += chunk.length;
          if (!sink.write(chunk)) {
            await new Promise<void>((resolve) => {
              const done = (): void => {
                sink.off("drain", done);
                sink.off("close", done);
                resolve();
              };
              sink.on("drain", done);
              sink.on("close", done);
            });
          }
          if (stopped || sinkError) break;
        }
      }
    } finally {
      current = null;
      if (!rs.destroyed) rs.destroy();
    }
    if (stopped) return;
    if (written < e.size) {
      const error = new ChangedError(e.path);
      sink.destroy(error);
      throw error;
    }
    sink.end(undefined);
    await finished;
  };

  const run = async (): Promise<void> => {
    let files = 0;
    let bytes = 0;
    for (let i = 0; i < plan.entries.length; i++) {
      if (stopped) return;
      const e = plan.entries[i];
      const header = headerFor(e);
      if (isSmall(e)) {
        fill(i);
        const pending = prefetched.get(i);
        prefetched.delete(i);
        let body = await (pending ??
          readFile(path.join(plan.dir, e.path), { signal: abort.signal }));
        prefetchBytes -= pending ? e.size : 0;
        if (stopped) return;
        if (body.length < e.size) throw new ChangedError(e.path);
        if (body.length > e.size) body = body.subarray(0, e.size);
        await entryDone(header, body);
      } else if (e.type === "file") {
        await writeLarge(e, header);
      } else {
        await entryDone(header);
      }
      if (e.type === "file") {
        files++;
        bytes += e.size;
        opts.onProgress?.({ files, bytes });
      }
      fill(i + 1);
    }
    if (!stopped) pack.finalize();
  };

  run().catch((error: unknown) => {
    if (stopped) return;
    const err =
      error instanceof InputError
        ? error
        : new InputError("context", `reading the context failed: ${messageOf(error)}`);
    gzip.destroy(err);
  });

  return gzip;
}
