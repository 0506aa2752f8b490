/**
 * Runs pipelines with gitlab-ci-local (a third-party GitLab CI runner) in its shell executor, on
 * the project's Node 24 (process.execPath under jest). Each project is a fresh git repository in
 * a temp dir holding the component's templates/ at its root — the layout of the component project
 * — so `include: component: $CI_SERVER_FQDN/$CI_PROJECT_PATH/build@$CI_COMMIT_SHA` resolves
 * locally, as GitLab resolves it in the component's own pipeline.
 */
import { execFileSync, spawn } from "node:child_process";
import { chmodSync, cpSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";

export const ROOT = resolve(dirname(new URL(import.meta.url).pathname), "../../..");
export const TEMPLATE = join(ROOT, "gitlab/templates/build.yml");
const GCL = join(ROOT, "node_modules/gitlab-ci-local/dist/index.js");
const NODE = process.execPath;

function hasOnPath(command: string): boolean {
  try {
    execFileSync("sh", ["-c", `command -v ${command}`], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/**
 * A temp dir with `k8s-image-build` on it: the committed bundle dist/cli.js run on Node 24, as the
 * component's job image runs it. gitlab-ci-local also needs rsync (scripts/test-deps.sh installs it).
 */
export async function makeToolsDir(): Promise<string> {
  if (!hasOnPath("rsync")) throw new Error("rsync is not installed: run scripts/test-deps.sh");
  const dir = mkdtempSync(join(tmpdir(), "kib-gcl-bin-"));
  const cli = join(dir, "k8s-image-build");
  writeFileSync(cli, `#!/bin/sh\nexec "${NODE}" "${join(ROOT, "dist/cli.js")}" "$@"\n`);
  chmodSync(cli, 0o755);
  return dir;
}

export interface ProjectOptions {
  /** `.gitlab-ci.yml` text. */
  pipeline: string;
  /** Extra files (a Dockerfile, a build context, …). */
  files?: Record<string, string>;
  /** `.gitlab-ci-local-variables.yml` content (project CI/CD variables). */
  variables?: Record<string, unknown>;
  /** The template to put at templates/build.yml; default the component's own. */
  template?: string;
}

/** A git repository whose origin is https://gitlab.example.com/acme/k8s-image-build.git. */
export function makeProject(options: ProjectOptions): string {
  const dir = mkdtempSync(join(tmpdir(), "kib-gcl-project-"));
  mkdirSync(join(dir, "templates"));
  if (options.template !== undefined)
    writeFileSync(join(dir, "templates/build.yml"), options.template);
  else cpSync(TEMPLATE, join(dir, "templates/build.yml"));
  writeFileSync(join(dir, ".gitlab-ci.yml"), options.pipeline);
  for (const [path, content] of Object.entries(options.files ?? {})) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), content);
  }
  if (options.variables)
    writeFileSync(
      join(dir, ".gitlab-ci-local-variables.yml"),
      JSON.stringify(options.variables, null, 2),
    );
  writeFileSync(join(dir, ".gitignore"), ".gitlab-ci-local/\n.gitlab-ci-local-variables.yml\n");
  const git = (...args: string[]) =>
    execFileSync(
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
      {
        cwd: dir,
        stdio: "ignore",
      },
    );
  git("init", "-q");
  git("config", "user.name", "ci");
  git("config", "user.email", "ci@example.com");
  git("remote", "add", "origin", "https://gitlab.example.com/acme/k8s-image-build.git");
  git("symbolic-ref", "refs/remotes/origin/HEAD", "refs/remotes/origin/main");
  git("add", "-A");
  git("commit", "-q", "-m", "pipeline under test");
  return dir;
}

export interface GclResult {
  code: number | null;
  output: string;
}

/** gitlab-ci-local in `cwd`, jobs in the shell executor even where they name an image. */
export function runGcl(
  cwd: string,
  args: string[],
  options: { toolsDir?: string; timeoutMs?: number } = {},
): Promise<GclResult> {
  const home = join(cwd, ".gcl-home");
  mkdirSync(home, { recursive: true });
  const path = [options.toolsDir, dirname(NODE), process.env.PATH]
    .filter((p): p is string => Boolean(p))
    .join(":");
  const child = spawn(
    NODE,
    [GCL, "--home", home, "--no-color", "--force-shell-executor", ...args],
    {
      cwd,
      env: { PATH: path, HOME: home, LANG: "C.UTF-8", GCL_QUIET: "false" },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString("utf8")));
  child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString("utf8")));
  const timer = setTimeout(() => child.kill("SIGTERM"), options.timeoutMs ?? 90_000);
  return new Promise((resolvePromise) =>
    child.on("close", (code) => {
      clearTimeout(timer);
      resolvePromise({ code, output });
    }),
  );
}

/** What a job printed: gitlab-ci-local prefixes each line with the padded job name and "> ". */
export function jobOutput(output: string, job: string): string[] {
  const prefix = new RegExp(`^${job.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}\\s+> (.*)$`);
  return output.split("\n").flatMap((line) => {
    const match = prefix.exec(line);
    return match ? [match[1]] : [];
  });
}

export function artifactPath(project: string, job: string, file: string): string {
  return join(project, ".gitlab-ci-local/artifacts", job, ".gitlab-ci-reports/dotenv", file);
}
