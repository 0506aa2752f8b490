/**
 * scripts/release.sh as the release workflow runs it, in a clone whose origin is a bare repository
 * on disk: the tag must be package.json's version; vX follows each vX.Y.Z release.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, dirname, join } from "node:path";

const ROOT = join(import.meta.dirname, "../..");
const ENV = {
  PATH: `${dirname(process.execPath)}${delimiter}${process.env.PATH ?? ""}`,
  HOME: tmpdir(),
  GIT_CONFIG_NOSYSTEM: "1",
};

function git(cwd: string, ...args: string[]): string {
  return execFileSync(
    "git",
    [
      "-c",
      "user.name=ci",
      "-c",
      "user.email=ci@example.com",
      "-c",
      "init.defaultBranch=main",
      ...args,
    ],
    { cwd, encoding: "utf8", env: ENV },
  ).trim();
}

function release(cwd: string, command: string, tag: string) {
  const result = spawnSync("bash", ["scripts/release.sh", command, tag], {
    cwd,
    encoding: "utf8",
    env: ENV,
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

function repository(): { work: string; origin: string; commit: (version: string) => string } {
  const base = mkdtempSync(join(tmpdir(), "kib-release-"));
  const origin = join(base, "origin.git");
  const work = join(base, "work");
  mkdirSync(join(work, "scripts"), { recursive: true });
  git(base, "init", "-q", "--bare", origin);
  cpSync(join(ROOT, "scripts/release.sh"), join(work, "scripts/release.sh"));
  git(work, "init", "-q");
  git(work, "remote", "add", "origin", origin);
  const commit = (version: string) => {
    writeFileSync(join(work, "package.json"), JSON.stringify({ name: "x", version }));
    git(work, "add", "-A");
    git(work, "commit", "-q", "-m", `release ${version}`);
    git(work, "tag", `v${version}`);
    git(work, "push", "-q", "origin", "main", `v${version}`);
    return git(work, "rev-parse", "HEAD");
  };
  return { work, origin, commit };
}

test("check: the tag must be a release tag and package.json's version", () => {
  const { work, commit } = repository();
  commit("1.2.3");
  expect(release(work, "check", "v1.2.3")).toMatchObject({ code: 0 });
  expect(release(work, "check", "v1.2.4")).toEqual({
    code: 1,
    stdout: "",
    stderr:
      'release: tag v1.2.4 does not match package.json\'s version 1.2.3; set "version": "1.2.4" (npm version 1.2.4 --no-git-tag-version) and tag that commit\n',
  });
  for (const tag of ["1.2.3", "v1.2", "v1.2.3-rc.1"]) {
    expect(release(work, "check", tag)).toEqual({
      code: 1,
      stdout: "",
      stderr: `release: "${tag}" is not a release tag; push a tag vX.Y.Z (e.g. v1.2.3)\n`,
    });
  }
});

test("move-major: v1 points at the latest v1.y.z on origin, and moves with the next release", () => {
  const { work, origin, commit } = repository();
  const first = commit("1.0.0");
  expect(release(work, "move-major", "v1.0.0")).toMatchObject({ code: 0 });
  expect(git(origin, "rev-parse", "v1^{commit}")).toBe(first);
  const second = commit("1.1.0");
  expect(release(work, "move-major", "v1.1.0")).toMatchObject({
    code: 0,
    stdout: expect.stringContaining(`release: v1 now points at v1.1.0 (${second})`),
  });
  expect(git(origin, "rev-parse", "v1^{commit}")).toBe(second);
  expect(git(origin, "rev-parse", "v1.0.0^{commit}")).toBe(first);
  commit("2.0.0");
  release(work, "move-major", "v2.0.0");
  expect(git(origin, "rev-parse", "v1^{commit}")).toBe(second);
});
