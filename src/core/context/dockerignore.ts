/**
 * Docker's `.dockerignore` matching, ported from its current pattern matcher
 * (github.com/moby/patternmatcher: `New`, `Pattern.compile`, `MatchesUsingParentResults`):
 *
 * - `.dockerignore` lines: a UTF-8 BOM is dropped, lines starting with `#` are comments, each line
 *   is trimmed, `!` marks an exception, the rest is `filepath.Clean`ed and a leading `/` dropped.
 * - A path is excluded when the last pattern matching it *or any of its parent directories* is
 *   not an exception. Matching is case-sensitive; `*`/`?` never cross `/`; `**` spans directories.
 */
import path from "node:path";

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
