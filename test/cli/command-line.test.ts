/** The CLI as people type it in a terminal: flags with typos, switches given words, --version. */
import { mkdtempSync, readFileSync, realpathSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { closest, FlagError, parseFlags } from "../../src/cli/flags.js";
import { parseBuildSpec } from "../../src/core/spec/spec.js";
import { contextDir, run } from "./support.js";

const TAGS = ["--tags", "registry.example/acme/web:1"];

describe("a flag that is not one", () => {
  test.each([
    [["build", "--tag", "x"], "error: unknown flag --tag (did you mean --tags?)"],
    [["build", "--namspace", "ci"], "error: unknown flag --namspace (did you mean --namespace?)"],
    [["build", "--dryrun"], "error: unknown flag --dryrun (did you mean --dry-run?)"],
    [
      ["build", "--build-arg", "A=1"],
      "error: unknown flag --build-arg (did you mean --build-args?)",
    ],
    [
      ["build", "--kubecontext", "x"],
      "error: unknown flag --kubecontext (did you mean --kube-context?)",
    ],
    [["build", "--frobnicate"], "error: unknown flag --frobnicate (see --help)"],
    [["build", "-t", "x"], "error: unknown flag -t (see --help)"],
    [
      ["build", "--no-tags"],
      "error: unknown flag --no-tags (--tags takes a value, it has no --no- form)",
    ],
  ])("%j → %s", async (argv, line) => {
    const { code, stdout, stderr } = await run(argv);
    expect(code).toBe(1);
    expect(stdout).toBe("");
    expect(stderr).toBe(`${line}\n`);
  });

  test("the suggestion is the nearest flag, and none when nothing is near", () => {
    const known = ["tags", "target", "timeout", "ttl", "namespace", "dry-run"];
    expect(closest("tag", known)).toBe("tags");
    expect(closest("targte", known)).toBe("target");
    expect(closest("timout", known)).toBe("timeout");
    expect(closest("dry", known)).toBe("dry-run");
    expect(closest("zzz", known)).toBeUndefined();
  });
});

describe("a switch given a word", () => {
  test.each([
    [
      ["build", ...TAGS, "--push", "maybe"],
      'error: input "push": --push takes no value, got "maybe"; use --push or --no-push (or --push=true / --push=false)',
    ],
    [
      ["build", ...TAGS, "--push=maybe"],
      'error: input "push": "maybe" is not a boolean; use --push or --no-push (or --push=true / --push=false)',
    ],
    [
      ["build", ...TAGS, "--dry-run", "false"],
      'error: input "dry-run": --dry-run takes no value, got "false"; use --dry-run or --no-dry-run (or --dry-run=true / --dry-run=false)',
    ],
  ])("%j names the input and the values it takes", async (argv, line) => {
    const { code, stderr } = await run(argv);
    expect(code).toBe(1);
    expect(stderr).toBe(`${line}\n`);
  });

  test("--push=false and --push=true are taken as they read", () => {
    const flags = { switches: new Set(["push"]), values: new Set(["tags"]) };
    expect(parseFlags(["--push=false"], flags).switches.get("push")).toBe(false);
    expect(parseFlags(["--push=TRUE"], flags).switches.get("push")).toBe(true);
    expect(parseFlags(["--no-push"], flags).switches.get("push")).toBe(false);
    expect(() => parseFlags(["--no-push=true"], flags)).toThrow(
      new FlagError(
        "--no-push takes no value; use --push or --no-push (or --push=true / --push=false)",
      ),
    );
  });

  test("a flag that needs a value and gets a flag instead says so", async () => {
    const { code, stderr } = await run(["build", "--tags", "--dry-run"]);
    expect(code).toBe(1);
    expect(stderr).toBe('error: input "tags": --tags needs a value (got "--dry-run")\n');
  });

  test("a word after -- is a positional, not a switch's value", () => {
    const flags = { switches: new Set(["push"]), values: new Set<string>() };
    expect(parseFlags(["build", "--push", "--", "x"], flags).positionals).toEqual(["build", "x"]);
  });
});

test("--version prints the package version, alone and with a command", async () => {
  const pkg = JSON.parse(readFileSync(join(import.meta.dirname, "../../package.json"), "utf8"));
  for (const argv of [["--version"], ["build", "--version"]]) {
    const { code, stdout, stderr } = await run(argv);
    expect([code, stdout, stderr]).toEqual([0, `k8s-image-build ${pkg.version}\n`, ""]);
  }
});

test("no command, or a command that is not one, points at --help", async () => {
  expect((await run([])).stderr).toBe(
    'error: expected "build" or "cleanup" followed by flags, got nothing (see --help)\n',
  );
  expect((await run(["biuld"])).stderr).toBe(
    'error: expected "build" or "cleanup" followed by flags, got "biuld" (see --help)\n',
  );
});

test("cleanup reads its flags in the same words: a near miss is named, no request is made", async () => {
  expect((await run(["cleanup", "--olderthan", "2h"])).stderr).toBe(
    "error: command line: unknown flag --olderthan (did you mean --older-than?) (see cleanup --help)\n",
  );
  expect((await run(["cleanup", "--keep-job", "maybe"])).stderr).toContain(
    "--keep-job takes no value",
  );
});

describe("--context outside the current directory", () => {
  const elsewhere = contextDir();
  const here = mkdtempSync(join(tmpdir(), "kib-cwd-"));

  test("a terminal has no workspace: any existing directory is a context", async () => {
    for (const context of [elsewhere, join("..", basename(elsewhere))]) {
      const { code, stdout, stderr } = await run(
        [
          "build",
          "--dry-run",
          ...TAGS,
          "--context",
          context,
          "--file",
          join(elsewhere, "Dockerfile"),
        ],
        { cwd: here },
      );
      expect({ code, stderr }).toEqual({ code: 0, stderr: "" });
      expect(stdout).toMatch(/^kind: Job$/m);
    }
  });

  test("a terminal still needs the directory to exist, and the Dockerfile in it", async () => {
    const missing = join(here, "nope");
    expect(
      (await run(["build", "--dry-run", ...TAGS, "--context", missing], { cwd: here })).stderr,
    ).toBe(`error: input "context": "${missing}" does not exist\n`);
    const outside = contextDir();
    const { stderr } = await run(
      [
        "build",
        "--dry-run",
        ...TAGS,
        "--context",
        elsewhere,
        "--file",
        join(outside, "Dockerfile"),
      ],
      { cwd: here },
    );
    expect(stderr).toMatch(/^error: input "file": ".*" is outside the context directory/);
  });

  test.each([["GITLAB_CI"], ["GITHUB_ACTIONS"]])(
    "a CI job (%s=true) keeps the workspace rule, as the action does",
    async (variable) => {
      const { code, stderr } = await run(["build", "--dry-run", ...TAGS, "--context", elsewhere], {
        cwd: here,
        env: { [variable]: "true" },
      });
      expect(code).toBe(1);
      expect(stderr.trimEnd().split("\n").at(-1)).toBe(
        `error: input "context": "${elsewhere}" leaves the workspace; give a path inside it`,
      );
    },
  );

  test("the engine keeps the rule unless the adapter lifts it", () => {
    const base = { workspace: here, kubeconfigPaths: [] };
    const raw = { tags: "registry.example/acme/web:1", context: elsewhere };
    expect(() => parseBuildSpec(raw, base)).toThrow(/leaves the workspace/);
    expect(parseBuildSpec(raw, { ...base, confineToWorkspace: false }).context).toEqual({
      kind: "dir",
      dir: realpathSync(elsewhere),
    });
  });
});
