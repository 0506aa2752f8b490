/** The build key: same inputs give the same key anywhere; each input of the key changes it. */
import { cpSync, mkdtempSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildKey, resolveGitCommit } from "../../src/core/context/build-key.js";
import { planContext } from "../../src/core/context/plan.js";
import { parseBuildSpec, type RawInputs } from "../../src/core/spec/spec.js";
import { makeContext } from "../integration/helpers.js";

function specIn(context: string, inputs: RawInputs = {}) {
  return parseBuildSpec(
    { context: ".", tags: "ghcr.io/acme/web:1", "cache-repo": "ghcr.io/acme/cache", ...inputs },
    { workspace: context, kubeconfigPaths: [] },
  );
}

async function keyOf(context: string, inputs: RawInputs = {}) {
  const spec = specIn(context, inputs);
  const plan = await planContext(context, { dockerfile: spec.dockerfile });
  return buildKey(spec, { kind: "dir", plan });
}

describe("build key", () => {
  test("the same inputs in another directory, with other mtimes, give the same key", async () => {
    const a = makeContext();
    const b = mkdtempSync(join(tmpdir(), "kib-copy-"));
    cpSync(a, b, { recursive: true });
    utimesSync(join(b, "app.txt"), new Date(2000, 0, 1), new Date(2000, 0, 1));
    expect(await keyOf(a)).toBe(await keyOf(b));
    expect(await keyOf(a)).toMatch(/^[0-9a-f]{64}$/);
  });

  test("order of build args and labels does not matter; tags, cache and cluster inputs do not count", async () => {
    const c = makeContext();
    const base = await keyOf(c, { "build-args": "A=1\nB=2", labels: "x=1\ny=2" });
    expect(
      await keyOf(c, {
        "build-args": "B=2\nA=1",
        labels: "y=2\nx=1",
        tags: "ghcr.io/acme/other:2",
        "cache-repo": "ghcr.io/acme/elsewhere",
        namespace: "other",
        resources: "limits: {memory: 2Gi}",
      }),
    ).toBe(base);
  });

  const changes: Array<[string, RawInputs, RawInputs]> = [
    ["a build arg value", { "build-args": "A=1" }, { "build-args": "A=2" }],
    ["a label", {}, { labels: "a=b" }],
    ["the target", {}, { target: "final" }],
    ["the builder", {}, { builder: "buildkit" }],
    ["the builder image", {}, { "builder-image": "ghcr.io/osscontainertools/kaniko:v0-debug" }],
    [
      "the platform list",
      { builder: "buildkit", platforms: "linux/amd64" },
      { builder: "buildkit", platforms: "linux/amd64,linux/arm64" },
    ],
    [
      "the platform order (the index's order)",
      { builder: "buildkit", platforms: "linux/arm64,linux/amd64" },
      { builder: "buildkit", platforms: "linux/amd64,linux/arm64" },
    ],
    ["a build secret's id", { builder: "buildkit" }, { builder: "buildkit", secrets: "npm=x" }],
  ];
  test.each(changes)("%s changes the key", async (_what, before, after) => {
    const c = makeContext();
    expect(await keyOf(c, after)).not.toBe(await keyOf(c, before));
  });

  test("a secret's value does not go into the key, its id does", async () => {
    const c = makeContext();
    const one = await keyOf(c, { builder: "buildkit", secrets: "npm=first-value" });
    expect(await keyOf(c, { builder: "buildkit", secrets: "npm=second-value" })).toBe(one);
    expect(await keyOf(c, { builder: "buildkit", secrets: "pip=first-value" })).not.toBe(one);
  });

  test("a file .dockerignore leaves out does not count; one it sends does", async () => {
    const c = makeContext();
    const base = await keyOf(c);
    writeFileSync(join(c, "secret.env"), "TOKEN=other\n");
    expect(await keyOf(c)).toBe(base);
    writeFileSync(join(c, "src/main.sh"), "#!/bin/sh\necho changed\n");
    expect(await keyOf(c)).not.toBe(base);
  });

  test("a git context counts by its resolved commit", async () => {
    const c = makeContext();
    const gitSpec = (url: string) =>
      parseBuildSpec(
        { context: url, tags: "ghcr.io/acme/web:1", "cache-repo": "ghcr.io/acme/cache" },
        { workspace: c, kubeconfigPaths: [] },
      );
    const url = "https://github.com/acme/web.git#main";
    const a = await buildKey(gitSpec(url), { kind: "git", commit: "a".repeat(40) });
    const b = await buildKey(gitSpec(url), { kind: "git", commit: "b".repeat(40) });
    expect(a).not.toBe(b);
    expect(await buildKey(gitSpec(`${url}:sub`), { kind: "git", commit: "a".repeat(40) })).not.toBe(
      a,
    );
  });
});

describe("resolving a git context's commit", () => {
  const listing = [
    `${"1".repeat(40)}\tHEAD`,
    `${"1".repeat(40)}\trefs/heads/main`,
    `${"2".repeat(40)}\trefs/heads/dev`,
    `${"3".repeat(40)}\trefs/tags/v1`,
    `${"4".repeat(40)}\trefs/tags/v1^{}`,
  ].join("\n");
  const lsRemote = async (url: string) => {
    expect(url).toBe("https://github.com/acme/web.git");
    return listing;
  };

  test.each([
    ["https://github.com/acme/web.git", "1".repeat(40)],
    ["https://github.com/acme/web.git#dev", "2".repeat(40)],
    ["https://github.com/acme/web.git#dev:sub/dir", "2".repeat(40)],
    ["https://github.com/acme/web.git#v1", "4".repeat(40)],
    ["https://github.com/acme/web.git#refs/heads/main", "1".repeat(40)],
    ["https://github.com/acme/web.git#nope", undefined],
  ])("%s → %s", async (url, commit) => {
    expect(await resolveGitCommit(url, lsRemote)).toBe(commit);
  });

  test("a full commit id is taken as is, without asking the remote", async () => {
    const commit = "0123456789abcdef0123456789abcdef01234567";
    const never = async (): Promise<string> => {
      throw new Error("not asked");
    };
    expect(await resolveGitCommit(`https://github.com/acme/web.git#${commit}`, never)).toBe(commit);
  });
});
