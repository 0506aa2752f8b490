import { execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import {
  chmodSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Readable } from "node:stream";
import { createGunzip } from "node:zlib";
import tarStream from "tar-stream";
import {
  PatternMatcher,
  parseDockerignore,
  planContext,
  tarContext,
  type ContextPlan,
} from "../../src/core/context/index.js";
import { InputError } from "../../src/core/errors.js";

const tmpRoots: string[] = [];
afterAll(() => {
  for (const d of tmpRoots) rmSync(d, { recursive: true, force: true });
});

/** A tree from lines like "dir a", "file a/b [content]", "link a/c target". */
function tree(spec: string[]): string {
  const root = mkdtempSync(path.join(tmpdir(), "k8sib-ctx-"));
  tmpRoots.push(root);
  for (const line of spec) {
    const [kind, rel, ...rest] = line.split(" ");
    const abs = path.join(root, rel);
    mkdirSync(path.dirname(abs), { recursive: true });
    if (kind === "dir") mkdirSync(abs, { recursive: true });
    else if (kind === "file") writeFileSync(abs, rest.join(" "));
    else if (kind === "link") symlinkSync(rest[0], abs);
    else throw new Error(line);
  }
  return root;
}

/** The walk as fsutil's tests print it: "dir a", "file a/b", "symlink:t a/c". */
function listing(plan: ContextPlan): string[] {
  return plan.entries.map((e) =>
    e.type === "symlink"
      ? `symlink:${e.linkTarget} ${e.path}`
      : `${e.type === "directory" ? "dir" : "file"} ${e.path}`,
  );
}

async function plan(
  spec: string[],
  dockerignore?: string,
  dockerfile = "Dockerfile",
): Promise<string[]> {
  const root = tree([
    ...spec,
    ...(spec.some((l) => l.startsWith(`file ${dockerfile}`))
      ? []
      : [`file ${dockerfile} FROM scratch`]),
  ]);
  if (dockerignore !== undefined) writeFileSync(path.join(root, ".dockerignore"), dockerignore);
  return listing(await planContext(root, { dockerfile }));
}

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

interface TarItem {
  name: string;
  type: string;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  linkname: string | null;
  body: Buffer;
}

async function untarList(gz: Buffer): Promise<TarItem[]> {
  const items: TarItem[] = [];
  const extract = tarStream.extract();
  const done = new Promise<void>((resolve, reject) => {
    extract.on("entry", (header, stream, next) => {
      const chunks: Buffer[] = [];
      stream.on("data", (c: unknown) => chunks.push(c as Buffer));
      stream.on("end", () => {
        items.push({
          name: header.name,
          type: header.type,
          mode: header.mode,
          uid: header.uid,
          gid: header.gid,
          mtime: header.mtime.getTime(),
          linkname: header.linkname ?? null,
          body: Buffer.concat(chunks),
        });
        next();
      });
    });
    extract.on("finish", () => resolve());
    extract.on("error", reject);
  });
  const gunzip = createGunzip();
  gunzip.pipe(extract as unknown as NodeJS.WritableStream);
  gunzip.end(gz);
  await done;
  return items;
}

// ---------------------------------------------------------------------------------------------
// The pattern matcher, against Docker's own tables.
// ---------------------------------------------------------------------------------------------

describe("PatternMatcher = moby/patternmatcher", () => {
  // github.com/moby/patternmatcher patternmatcher_test.go, TestMatches `tests` (commit 1d6a3f4).
  // exact/inexact both mean "MatchesOrParentMatches returns true" there; fail means false.
  const T = true;
  const F = false;
  const mobyTests: Array<[string, string, boolean]> = [
    ["**", "file", T],
    ["**", "file/", T],
    ["**/", "file", T],
    ["**/", "file/", T],
    ["**", "/", T],
    ["**/", "/", T],
    ["**", "dir/file", T],
    ["**/", "dir/file", T],
    ["**", "dir/file/", T],
    ["**/", "dir/file/", T],
    ["**/**", "dir/file", T],
    ["**/**", "dir/file/", T],
    ["dir/**", "dir/file", T],
    ["dir/**", "dir/file/", T],
    ["dir/**", "dir/dir2/file", T],
    ["dir/**", "dir/dir2/file/", T],
    ["**/dir", "dir", T],
    ["**/dir", "dir/file", T],
    ["**/dir2/*", "dir/dir2/file", T],
    ["**/dir2/*", "dir/dir2/file/", T],
    ["**/dir2/**", "dir/dir2/dir3/file", T],
    ["**/dir2/**", "dir/dir2/dir3/file/", T],
    ["**file", "file", T],
    ["**file", "dir/file", T],
    ["**/file", "dir/file", T],
    ["**file", "dir/dir/file", T],
    ["**/file", "dir/dir/file", T],
    ["**/file*", "dir/dir/file", T],
    ["**/file*", "dir/dir/file.txt", T],
    ["**/file*txt", "dir/dir/file.txt", T],
    ["**/file*.txt", "dir/dir/file.txt", T],
    ["**/file*.txt*", "dir/dir/file.txt", T],
    ["**/**/*.txt", "dir/dir/file.txt", T],
    ["**/**/*.txt2", "dir/dir/file.txt", F],
    ["**/*.txt", "file.txt", T],
    ["**/**/*.txt", "file.txt", T],
    ["a**/*.txt", "a/file.txt", T],
    ["a**/*.txt", "a/dir/file.txt", T],
    ["a**/*.txt", "a/dir/dir/file.txt", T],
    ["a/*.txt", "a/dir/file.txt", F],
    ["a/*.txt", "a/file.txt", T],
    ["a/*.txt**", "a/file.txt", T],
    ["a[b-d]e", "ae", F],
    ["a[b-d]e", "ace", T],
    ["a[b-d]e", "aae", F],
    ["a[^b-d]e", "aze", T],
    [".*", ".foo", T],
    [".*", "foo", F],
    ["abc.def", "abcdef", F],
    ["abc.def", "abc.def", T],
    ["abc.def", "abcZdef", F],
    ["abc?def", "abcZdef", T],
    ["abc?def", "abcdef", F],
    ["**/foo/bar", "foo/bar", T],
    ["**/foo/bar", "dir/foo/bar", T],
    ["**/foo/bar", "dir/dir2/foo/bar", T],
    ["abc/**", "abc", F],
    ["abc/**", "abc/def", T],
    ["abc/**", "abc/def/ghi", T],
    ["**/.foo", ".foo", T],
    ["**/.foo", "bar.foo", F],
    ["a(b)c/def", "a(b)c/def", T],
    ["a(b)c/def", "a(b)c/xyz", F],
    ["a.|)$(}+{bc", "a.|)$(}+{bc", T],
    [
      "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
      "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
      T,
    ],
    ["dist/*.whl", "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", T],
    // the non-Windows additions
    ["a\\\\", "a\\", T],
    ["a\\*b", "a*b", T],
  ];
  test.each(mobyTests)("pattern %j vs %j → %s", (pattern, text, expected) => {
    expect(new PatternMatcher([pattern]).matches(text)).toBe(expected);
  });

  // Same file, multiPatternTests.
  const multi: Array<[string[], string, boolean]> = [
    [["**", "!util/docker/web"], "util/docker/web/foo", F],
    [["**", "!util/docker/web", "util/docker/web/foo"], "util/docker/web/foo", T],
    [
      ["**", "!dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl"],
      "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
      F,
    ],
    [["**", "!dist/*.whl"], "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", F],
    // TestExclusionPatternMatchesPatternBefore, TestPatternMatchesFolderExclusions, …WithSlash…, …Wildcard…, …PatternAfter
    [["!fileutils.go", "*.go"], "fileutils.go", T],
    [["docs", "!docs/README.md"], "docs/README.md", F],
    [["docs/", "!docs/README.md"], "docs/README.md", F],
    [["docs/*", "!docs/README.md"], "docs/README.md", F],
    [["*.go", "!fileutils.go"], "fileutils.go", F],
    // TestExclusionPatternMatchesWholeDirectory, TestMatchesWithNoPatterns, TestWildcardMatches, TestPatternMatches
    [["*.go"], ".", F],
    [[], "/any/path/there", F],
    [["*"], "fileutils.go", T],
    [["*.go"], "fileutils.go", T],
  ];
  test.each(multi)("patterns %j vs %j → %s", (patterns, text, expected) => {
    expect(new PatternMatcher(patterns).matches(text)).toBe(expected);
  });

  // matchTests ("stolen from go's filepath Match tests") run through Matches(s, [pattern]).
  const E = "error";
  const goMatch: Array<[string, string, boolean | typeof E]> = [
    ["abc", "abc", T],
    ["*", "abc", T],
    ["*c", "abc", T],
    ["a*", "a", T],
    ["a*", "abc", T],
    ["a*", "ab/c", T],
    ["a*/b", "abc/b", T],
    ["a*/b", "a/c/b", F],
    ["a*b*c*d*e*/f", "axbxcxdxe/f", T],
    ["a*b*c*d*e*/f", "axbxcxdxexxx/f", T],
    ["a*b*c*d*e*/f", "axbxcxdxe/xxx/f", F],
    ["a*b*c*d*e*/f", "axbxcxdxexxx/fff", F],
    ["a*b?c*x", "abxbbxdbxebxczzx", T],
    ["a*b?c*x", "abxbbxdbxebxczzy", F],
    ["ab[c]", "abc", T],
    ["ab[b-d]", "abc", T],
    ["ab[e-g]", "abc", F],
    ["ab[^c]", "abc", F],
    ["ab[^b-d]", "abc", F],
    ["ab[^e-g]", "abc", T],
    ["a\\*b", "a*b", T],
    ["a\\*b", "ab", F],
    ["a?b", "a☺b", T],
    ["a[^a]b", "a☺b", T],
    ["a???b", "a☺b", F],
    ["a[^a][^a][^a]b", "a☺b", F],
    ["[a-ζ]*", "α", T],
    ["*[a-ζ]", "A", F],
    ["a?b", "a/b", F],
    ["a*b", "a/b", F],
    ["[\\]a]", "]", T],
    ["[\\-]", "-", T],
    ["[x\\-]", "x", T],
    ["[x\\-]", "-", T],
    ["[x\\-]", "z", F],
    ["[\\-x]", "x", T],
    ["[\\-x]", "-", T],
    ["[\\-x]", "a", F],
    ["[]a]", "]", E],
    ["[-]", "-", E],
    ["[x-]", "x", E],
    ["[x-]", "-", E],
    ["[x-]", "z", E],
    ["[-x]", "x", E],
    ["[-x]", "-", E],
    ["[-x]", "a", E],
    ["\\", "a", E],
    ["[a-b-c]", "a", E],
    ["[", "a", E],
    ["[^", "a", E],
    ["[^bc", "a", E],
    ["a[", "a", E],
    ["a[", "ab", E],
    ["*x", "xxx", T],
  ];
  test.each(goMatch)("filepath.Match table: %j vs %j → %s", (pattern, text, expected) => {
    if (expected === E) {
      expect(() => new PatternMatcher([pattern])).toThrow();
    } else {
      expect(new PatternMatcher([pattern]).matches(text)).toBe(expected);
    }
  });

  test('a lone "!" is an error (TestSingleExclamationError)', () => {
    expect(() => new PatternMatcher(["!"])).toThrow('illegal exclusion pattern: "!"');
  });

  test("matching is case-sensitive, as on Linux (where @balena/dockerignore defaults to ignorecase)", () => {
    expect(new PatternMatcher(["Foo"]).matches("foo")).toBe(false);
    expect(new PatternMatcher(["*.MD"]).matches("README.md")).toBe(false);
  });
});

describe("parseDockerignore = ignorefile.ReadAll", () => {
  test("moby/patternmatcher ignorefile_test.go TestReadAll", () => {
    const content =
      "test1\n/test2\n/a/file/here\n\nlastfile\n# this is a comment\n! /inverted/abs/path\n!\n! ";
    expect(parseDockerignore(content)).toEqual([
      "test1",
      "test2",
      "a/file/here",
      "lastfile",
      "!inverted/abs/path",
      "!",
      "!",
    ]);
  });
  test("BOM, CRLF, cleaning, comments only at column 0", () => {
    expect(
      parseDockerignore("\uFEFFa/./b/../c/\r\n  # not a comment\r\n#comment\r\n\t./x//y \r\n/\r\n"),
    ).toEqual(["a/c", "# not a comment", "x/y", "/"]);
  });
});

// ---------------------------------------------------------------------------------------------
// The walk
// ---------------------------------------------------------------------------------------------

describe("planContext: the walk (fsutil filterFS.Walk semantics)", () => {
  test("TestWalkerExclude: foo* with !foo/bar2 walks foo and writes it before its kept child", async () => {
    expect(
      await plan(["file bar", "dir foo", "file foo2", "file foo/bar2"], "foo*\n!foo/bar2\n"),
    ).toEqual(["file .dockerignore", "file Dockerfile", "file bar", "dir foo", "file foo/bar2"]);
  });

  test("TestFSWalkNested: foo, !foo/bar", async () => {
    expect(await plan(["dir foo", "file foo/bar"], "foo\n!foo/bar\n")).toEqual([
      "file .dockerignore",
      "file Dockerfile",
      "dir foo",
      "file foo/bar",
    ]);
  });

  test("TestFilteredOpenInvert: foo, !foo/bar, foo/bar/baz, !foo/bar/baz/x", async () => {
    const got = await plan(
      [
        "dir foo/bar/baz",
        "file foo/bar/baz/x",
        "file foo/bar/baz/y",
        "file foo/bar/z",
        "file foo/w",
      ],
      "foo\n!foo/bar\nfoo/bar/baz\n!foo/bar/baz/x\n",
    );
    expect(got).toEqual([
      "file .dockerignore",
      "file Dockerfile",
      "dir foo",
      "dir foo/bar",
      "dir foo/bar/baz",
      "file foo/bar/baz/x",
      "file foo/bar/z",
    ]);
  });

  test("an excluded directory with no exception inside is not walked nor sent; empty kept dirs are sent", async () => {
    expect(
      await plan(["file node_modules/a/b.js", "dir empty", "file src/x.ts"], "node_modules\n"),
    ).toEqual(["file .dockerignore", "file Dockerfile", "dir empty", "dir src", "file src/x.ts"]);
  });

  test("an exception with a wildcard makes excluded directories walk (not only prefix matches)", async () => {
    expect(
      await plan(
        ["file a/keep.md", "file a/drop.txt", "file b/c/keep.md", "file b/c/x.js"],
        "a\nb\n!**/*.md\n",
      ),
    ).toEqual([
      "file .dockerignore",
      "file Dockerfile",
      "dir a",
      "file a/keep.md",
      "dir b",
      "dir b/c",
      "file b/c/keep.md",
    ]);
  });

  test("a prefix-only exception elsewhere does not open an unrelated excluded directory", async () => {
    expect(await plan(["file a/x", "file b/y"], "a\nb\n!b/y\n")).toEqual([
      "file .dockerignore",
      "file Dockerfile",
      "dir b",
      "file b/y",
    ]);
  });

  test("* excludes only the top level; **/x at any depth; leading / means the context root", async () => {
    const spec = ["file x", "file d/x", "file d/e/x", "file d/y"];
    expect(await plan(spec, "d/*\n")).toEqual([
      "file .dockerignore",
      "file Dockerfile",
      "dir d",
      "file x",
    ]);
    expect(await plan(spec, "**/x\n")).toEqual([
      "file .dockerignore",
      "file Dockerfile",
      "dir d",
      "dir d/e",
      "file d/y",
    ]);
    expect(await plan(spec, "/x\n")).toEqual([
      "file .dockerignore",
      "file Dockerfile",
      "dir d",
      "dir d/e",
      "file d/e/x",
      "file d/x",
      "file d/y",
    ]);
  });

  test("the last matching line wins (exception then re-exclusion)", async () => {
    expect(
      await plan(["file a.md", "file b.md", "file c.txt"], "*.md\n!a.md\n!b.md\nb.md\n"),
    ).toEqual(["file .dockerignore", "file Dockerfile", "file a.md", "file c.txt"]);
  });

  test("the Dockerfile and .dockerignore are sent even when ignored; so is a nested Dockerfile's directory", async () => {
    expect(await plan(["file src/a"], "*\n")).toEqual(["file .dockerignore", "file Dockerfile"]);
    expect(
      await plan(
        ["file docker/app.Dockerfile FROM x", "file docker/other"],
        "docker\n",
        "docker/app.Dockerfile",
      ),
    ).toEqual(["file .dockerignore", "dir docker", "file docker/app.Dockerfile"]);
  });

  test("<dockerfile>.dockerignore replaces the root .dockerignore (BuildKit)", async () => {
    const root = tree([
      "file build/Dockerfile FROM x",
      "file build/Dockerfile.dockerignore secret*",
      "file secret.txt",
      "file other.txt",
    ]);
    writeFileSync(path.join(root, ".dockerignore"), "other.txt\n");
    const got = listing(await planContext(root, { dockerfile: "build/Dockerfile" }));
    expect(got).toEqual([
      "file .dockerignore",
      "dir build",
      "file build/Dockerfile",
      "file build/Dockerfile.dockerignore",
      "file other.txt",
    ]);
  });

  test(".git at the root is never sent, even with an exception for it", async () => {
    expect(
      await plan(
        ["file .git/HEAD", "file .git/config", "file sub/.git", "file a"],
        "!.git\n!.git/HEAD\n",
      ),
    ).toEqual(["file .dockerignore", "file Dockerfile", "file a", "dir sub", "file sub/.git"]);
  });

  test("order is depth first with names sorted bytewise (Go's os.ReadDir)", async () => {
    expect(await plan(["file B", "file a.txt", "file a/z", "file a-b", "file _"])).toEqual([
      "file B",
      "file Dockerfile",
      "file _",
      "dir a",
      "file a/z",
      "file a-b",
      "file a.txt",
    ]);
  });

  test("files and bytes count files only", async () => {
    const root = tree(["file Dockerfile FROM x", "file a/b 12345", "link l a/b"]);
    const p = await planContext(root, { dockerfile: "Dockerfile" });
    expect(p.files).toBe(2);
    expect(p.bytes).toBe(5 + "FROM x".length);
  });

  test("symlinks inside the context are kept as symlinks; dangling ones too", async () => {
    expect(
      await plan(["file a/b x", "link a/l ../c", "link top a/b", "link dangling nope", "file c"]),
    ).toEqual([
      "file Dockerfile",
      "dir a",
      "file a/b",
      "symlink:../c a/l",
      "file c",
      "symlink:nope dangling",
      "symlink:a/b top",
    ]);
  });

  test("a symlink pointing outside the context is sent as a link, dangling or not (as docker does)", async () => {
    expect(
      await plan([
        "link .venv/bin/python /nonexistent/usr/bin/python3",
        "link a/b ../../etc/passwd",
        "link abs /etc",
      ]),
    ).toEqual([
      "dir .venv",
      "dir .venv/bin",
      "symlink:/nonexistent/usr/bin/python3 .venv/bin/python",
      "file Dockerfile",
      "dir a",
      "symlink:../../etc/passwd a/b",
      "symlink:/etc abs",
    ]);
  });

  test("a link out of the context is never followed: the walk does not enter it, the tar holds the link", async () => {
    const outside = tree(["file secret s"]);
    const root = tree(["file Dockerfile FROM x", `link ign ${outside}`, "link a ign/secret"]);
    const p = await planContext(root, { dockerfile: "Dockerfile" });
    expect(listing(p)).toEqual([
      "file Dockerfile",
      "symlink:ign/secret a",
      `symlink:${outside} ign`,
    ]);
    const items = await untarList(await collect(tarContext(p)));
    expect(items.map((h) => [h.name, h.type, h.linkname])).toEqual([
      ["Dockerfile", "file", null],
      ["a", "symlink", "ign/secret"],
      ["ign", "symlink", outside],
    ]);
  });

  test("an ignore file or a Dockerfile that a symlink takes out of the context is refused, naming it", async () => {
    const outside = tree(["file ignore secret.env", "file Dockerfile FROM x"]);
    await expect(
      planContext(tree(["file Dockerfile FROM x", `link .dockerignore ${outside}/ignore`]), {
        dockerfile: "Dockerfile",
      }),
    ).rejects.toThrow(
      /input "context": the ignore file \.dockerignore is a symlink to .*ignore, outside the context directory; copy the file into the context instead/,
    );
    await expect(
      planContext(tree([`link Dockerfile ${outside}/Dockerfile`]), { dockerfile: "Dockerfile" }),
    ).rejects.toThrow(
      /input "file": the Dockerfile Dockerfile is a symlink to .*, outside the context/,
    );
  });

  test("special files (a fifo) are skipped", async () => {
    const root = tree(["file Dockerfile FROM x", "file a"]);
    execFileSync("mkfifo", [path.join(root, "pipe")]);
    expect(listing(await planContext(root, { dockerfile: "Dockerfile" }))).toEqual([
      "file Dockerfile",
      "file a",
    ]);
  });

  test("a missing Dockerfile is InputError(file) naming it; a missing context is InputError(context)", async () => {
    const root = tree(["file a"]);
    await expect(planContext(root, { dockerfile: "sub/Dockerfile.prod" })).rejects.toThrow(
      /input "file": Dockerfile sub\/Dockerfile\.prod not found/,
    );
    await expect(planContext(root, { dockerfile: "../Dockerfile" })).rejects.toThrow(
      /input "file": .*outside the context/,
    );
    await expect(
      planContext(path.join(root, "nope"), { dockerfile: "Dockerfile" }),
    ).rejects.toThrow(/input "context": directory .*nope does not exist/);
    const err = await planContext(path.join(root, "nope"), { dockerfile: "Dockerfile" }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(InputError);
  });

  test("a bad .dockerignore pattern is an InputError(context) naming the file", async () => {
    await expect(plan(["file a"], "a[\n")).rejects.toThrow(
      /input "context": \.dockerignore: syntax error in pattern "a\["/,
    );
    await expect(plan(["file a"], "!\n")).rejects.toThrow(/illegal exclusion pattern/);
  });
});

// ---------------------------------------------------------------------------------------------
// The tar
// ---------------------------------------------------------------------------------------------

describe("tarContext", () => {
  const longName = `${"deep/".repeat(30)}${"n".repeat(120)}.txt`;

  function sample(): string {
    const root = tree([
      "file Dockerfile FROM x",
      "file bin/run #!/bin/sh",
      "file data/big",
      "file data/empty",
      `file ${longName} long`,
      "file ünï.txt u",
      "link bin/latest run",
    ]);
    writeFileSync(path.join(root, "data/big"), Buffer.alloc(3 * 1024 * 1024 + 17, 7)); // streamed path
    writeFileSync(path.join(root, "data/empty"), "");
    chmodSync(path.join(root, "bin/run"), 0o755);
    chmodSync(path.join(root, "data/empty"), 0o600);
    chmodSync(path.join(root, "data"), 0o750);
    utimesSync(
      path.join(root, "bin/run"),
      new Date("2020-01-02T03:04:05Z"),
      new Date("2020-01-02T03:04:05Z"),
    );
    utimesSync(
      path.join(root, "data"),
      new Date("2019-05-06T07:08:09Z"),
      new Date("2019-05-06T07:08:09Z"),
    );
    return root;
  }

  test("headers: uid/gid 0, modes and mtimes preserved, directories end in /, symlinks, long and non-ASCII names", async () => {
    const root = sample();
    const p = await planContext(root, { dockerfile: "Dockerfile" });
    const items = await untarList(await collect(tarContext(p)));
    expect(items.map((i) => i.name)).toEqual(
      p.entries.map((e) => (e.type === "directory" ? `${e.path}/` : e.path)),
    );
    for (const item of items) {
      expect([item.uid, item.gid]).toEqual([0, 0]);
      const st = lstatSync(path.join(root, item.name));
      expect(item.mode).toBe(st.mode & 0o7777);
      // The tar is written from stat.mtime, a Date Node rounds to the millisecond: compare with
      // that Date (flooring mtimeMs instead differs by a second in the last half millisecond).
      expect(item.mtime).toBe(Math.floor(st.mtime.getTime() / 1000) * 1000);
    }
    const byName = new Map(items.map((i) => [i.name, i]));
    expect(byName.get("bin/run")?.mode).toBe(0o755);
    expect(byName.get("bin/run")?.mtime).toBe(Date.parse("2020-01-02T03:04:05Z"));
    expect(byName.get("data/")?.mode).toBe(0o750);
    expect(byName.get("data/")?.type).toBe("directory");
    expect(byName.get("data/empty")?.mode).toBe(0o600);
    expect(byName.get("bin/latest")).toMatchObject({ type: "symlink", linkname: "run" });
    expect(byName.get(longName)?.body.toString()).toBe("long");
    expect(byName.get("ünï.txt")?.body.toString()).toBe("u");
    expect(createHash("sha256").update(byName.get("data/big")!.body).digest("hex")).toBe(
      createHash("sha256")
        .update(readFileSync(path.join(root, "data/big")))
        .digest("hex"),
    );
  });

  test("GNU tar extracts it whole: contents, exec bits, mtimes, symlink", async () => {
    const root = sample();
    const p = await planContext(root, { dockerfile: "Dockerfile" });
    const gz = await collect(tarContext(p));
    const out = mkdtempSync(path.join(tmpdir(), "k8sib-untar-"));
    tmpRoots.push(out);
    execFileSync("tar", ["-xzf", "-", "-C", out], { input: gz });
    for (const e of p.entries) {
      const st = lstatSync(path.join(out, e.path));
      expect(st.mode & 0o7777).toBe(e.mode);
      if (e.type !== "symlink")
        expect(Math.floor(st.mtimeMs / 1000)).toBe(Math.floor(e.mtime.getTime() / 1000));
      if (e.type === "file")
        expect(
          readFileSync(path.join(out, e.path)).equals(readFileSync(path.join(root, e.path))),
        ).toBe(true);
    }
    expect(lstatSync(path.join(out, "bin/latest")).isSymbolicLink()).toBe(true);
    const listed = execFileSync("tar", ["-tvzf", "-"], { input: gz }).toString();
    expect(listed).toMatch(/-rwxr-xr-x 0\/0 .* bin\/run/);
  });

  test("deterministic: the same plan gives the same bytes; progress per file", async () => {
    const root = sample();
    const p = await planContext(root, { dockerfile: "Dockerfile" });
    const progress: Array<{ files: number; bytes: number }> = [];
    const a = await collect(tarContext(p, { onProgress: (x) => progress.push(x) }));
    const b = await collect(tarContext(p));
    expect(a.equals(b)).toBe(true);
    expect(progress).toHaveLength(p.files);
    expect(progress[progress.length - 1]).toEqual({ files: p.files, bytes: p.bytes });
  });

  test("a file that shrank since planning fails the stream with InputError(context)", async () => {
    const root = tree(["file Dockerfile FROM x", "file small 123456", "file large x"]);
    writeFileSync(path.join(root, "large"), Buffer.alloc(2 * 1024 * 1024));
    const p = await planContext(root, { dockerfile: "Dockerfile" });
    writeFileSync(path.join(root, "small"), "1");
    await expect(collect(tarContext(p))).rejects.toThrow(/small changed while it was being sent/);
    writeFileSync(path.join(root, "small"), "123456");
    writeFileSync(path.join(root, "large"), "x");
    await expect(collect(tarContext(p))).rejects.toThrow(/large changed while it was being sent/);
  });

  function openFds(): number {
    return readdirSync("/proc/self/fd").length;
  }

  test("destroying the stream early closes every file handle and stops reading", async () => {
    const spec = ["file Dockerfile FROM x"];
    for (let i = 0; i < 200; i++)
      spec.push(`file small/f${String(i).padStart(3, "0")} ${"x".repeat(i)}`);
    const root = tree(spec);
    for (let i = 0; i < 4; i++)
      writeFileSync(path.join(root, `large${i}`), randomBytes(4 * 1024 * 1024));
    const p = await planContext(root, { dockerfile: "Dockerfile" });
    const before = openFds();

    // Stop after the first chunk, and a few MB into the 16 MB of large files (as bytes: how many
    // chunks the gzip stream comes in depends on how it groups its input).
    for (const stopAfter of [1, 2 * 1024 * 1024, 10 * 1024 * 1024]) {
      let progressed = 0;
      const stream = tarContext(p, { gzipLevel: 1, onProgress: () => progressed++ });
      let bytes = 0;
      let stopped = false;
      await new Promise<void>((resolve) => {
        stream.on("data", (chunk: Buffer) => {
          bytes += chunk.length;
          if (!stopped && bytes >= stopAfter) {
            stopped = true;
            stream.destroy();
            resolve();
          }
        });
        stream.on("close", () => resolve());
      });
      await new Promise((r) => setTimeout(r, 300));
      const settled = progressed;
      await new Promise((r) => setTimeout(r, 200));
      expect(progressed).toBe(settled); // the read loop has stopped
      expect(progressed).toBeLessThan(p.files); // it was stopped mid-way
      expect(openFds()).toBe(before);
    }
  });
});
