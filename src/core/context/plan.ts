/**
 * The build context: which files go (`.dockerignore` applied the way Docker applies it) and the
 * gzip tar stream that carries them into the pod (context-tar.ts).
 *
 * Matching is Docker's (dockerignore.ts) and the walk follows BuildKit's
 * (github.com/tonistiigi/fsutil `filterFS.Walk`, what `docker build` uses today):
 *
 * - An excluded directory is skipped whole unless an exception could match inside it (a prefix
 *   test, or any exception with wildcards); it is walked then, and written to the tar only when
 *   something inside it is included (with its own mode and mtime, before its children).
 * - A Dockerfile-specific ignore file (`<dockerfile>.dockerignore`) replaces the root one, as
 *   BuildKit does.
 *
 * On top of Docker: the Dockerfile and the ignore files are always sent (the builder in the pod
 * reads them from the context), `.git` at the root is never sent and special files are skipped.
 *
 * Symlinks travel as symlinks, wherever they point (docker and buildx do the same): the walk never
 * follows one, so a link out of the context (a virtualenv's `bin/python -> /usr/bin/python3`,
 * dangling here) reads nothing outside it. Only the files this tool itself reads are refused when
 * a link takes them out of the context: the ignore files and the Dockerfile.
 */
import { type Dirent, type Stats } from "node:fs";
import { lstat, readdir, readFile, readlink, realpath, stat } from "node:fs/promises";
import path from "node:path";
import { parseDockerignore, PatternMatcher } from "./dockerignore.js";
import { InputError, messageOf } from "../errors.js";

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

/** Refuses a file the tool reads (or the builder must read) that a symlink takes out of the context. */
async function checkReadInside(
  root: string,
  rel: string,
  input: "context" | "file",
  what: string,
): Promise<void> {
  let real: string;
  try {
    real = await realpath(path.join(root, rel));
  } catch {
    return; // missing or dangling: the caller reports what is missing
  }
  if (!isInside(root, real)) {
    throw new InputError(
      input,
      `${what} ${rel} is a symlink to ${real}, outside the context directory; copy the file into the context instead`,
    );
  }
}

async function readIgnoreFile(root: string, rel: string): Promise<string | null> {
  await checkReadInside(root, rel, "context", "the ignore file");
  try {
    return await readFile(path.join(root, rel), "utf8");
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
  await checkReadInside(root, dockerfile, "file", "the Dockerfile");

  // The ignore file: <dockerfile>.dockerignore wins over the root .dockerignore (BuildKit).
  const specificIgnore = `${dockerfile}.dockerignore`;
  let ignoreName = specificIgnore;
  let ignoreText = await readIgnoreFile(root, specificIgnore);
  if (ignoreText === null) {
    ignoreName = ".dockerignore";
    ignoreText = await readIgnoreFile(root, ".dockerignore");
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
      const target = await readlink(path.join(root, rel));
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
