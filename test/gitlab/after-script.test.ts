/**
 * The component's after_script, run by gitlab-ci-local: a build job whose CLI process is killed
 * (SIGKILL, as a runner's hard kill or a dying runner does it) fails, and its after_script runs
 * `k8s-image-build cleanup`, which deletes the Job and Secret the killed build left; a job that
 * succeeds runs no cleanup. The CLI is built from src/ (test/support/cli-bundle.ts).
 */
import { chmodSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cliBundle } from "../support/cli-bundle.js";
import { startTestCluster, type TestCluster } from "../support/cluster.js";
import { jobOutput, makeProject, runGcl } from "./support/gcl.js";

const NS = "ci-builds";
const PREDEFINED = "GITLAB_CI,CI_REGISTRY,CI_REGISTRY_USER,CI_REGISTRY_PASSWORD";
let cluster: TestCluster;
let tools: string;
let pids: string;

/** `k8s-image-build` on PATH: the bundle from src/, each call's pid and subcommand noted. */
async function toolsDir(): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), "kib-gcl-bin-"));
  pids = join(dir, "pids");
  writeFileSync(pids, "");
  const cli = join(dir, "k8s-image-build");
  writeFileSync(
    cli,
    `#!/bin/sh\necho "$$ $1" >> "${pids}"\nexec "${process.execPath}" "${await cliBundle()}" "$@"\n`,
  );
  chmodSync(cli, 0o755);
  return dir;
}

beforeAll(async () => {
  [cluster, tools] = await Promise.all([startTestCluster(), toolsDir()]);
  cluster.createNamespace(NS);
}, 120_000);
afterAll(async () => {
  await cluster?.close();
});

function project() {
  return makeProject({
    files: { "app/Dockerfile": "FROM busybox\nRUN echo built\n" },
    variables: {
      KUBECONFIG: { type: "file", values: { "*": cluster.kubeconfig() } },
      GITLAB_CI: "true",
      CI_REGISTRY: "registry.example:5000",
      CI_REGISTRY_USER: "gitlab-ci-token",
      CI_REGISTRY_PASSWORD: "job-token-for-the-registry",
    },
    pipeline: `include:
  - component: $CI_SERVER_FQDN/$CI_PROJECT_PATH/build@$CI_COMMIT_SHA
    inputs:
      namespace: ${NS}
      context: app
      tags: registry.example:5000/acme/web:1
`,
  });
}

function leftovers() {
  return (["jobs", "pods", "secrets"] as const).flatMap((kind) =>
    cluster.objects(kind, NS).map((object) => `${kind}/${object.metadata.name as string}`),
  );
}

async function until(check: () => boolean, what: string, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function calls(): Array<{ pid: number; command: string }> {
  return readFileSync(pids, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((line) => {
      const [pid, command] = line.split(" ");
      return { pid: Number(pid), command: command ?? "" };
    });
}

test("a build job whose CLI is killed mid-build fails, and its after_script deletes what the build left", async () => {
  cluster.useScenario("kaniko-deadline"); // a builder that keeps running
  writeFileSync(pids, "");
  const dir = project();
  const pipeline = runGcl(dir, ["--ignore-predefined-vars", PREDEFINED], { toolsDir: tools });

  // The build is running in the cluster and its log is followed: kill the CLI there.
  await until(
    () =>
      calls().some((call) => call.command === "build") &&
      cluster
        .objects("pods", NS)
        .some((pod) =>
          pod.status?.containerStatuses?.some(
            (status: { state?: { running?: unknown } }) => status.state?.running,
          ),
        ) &&
      cluster.requests.some((request) => request.stream === "log"),
    "the build to run",
  );
  const build = calls().find((call) => call.command === "build")!;
  expect(leftovers()).toEqual(
    expect.arrayContaining([
      expect.stringMatching(/^jobs\/kib-/),
      expect.stringMatching(/^secrets\/kib-/),
    ]),
  );
  process.kill(build.pid, "SIGKILL");

  const { code, output } = await pipeline;
  expect(code).not.toBe(0);
  expect(output).toMatch(/FAIL\s+build-image/);
  expect(calls().map((call) => call.command)).toEqual(["build", "cleanup"]);
  const printed = jobOutput(output, "build-image");
  const job = /^deleted Job ci-builds\/(kib-[a-z0-9]{8}) \(run (gitlab-\d+), age \d+s\)$/;
  const deletedJob = printed.find((line) => job.test(line));
  expect(deletedJob).toBeDefined();
  const [, name, run] = job.exec(deletedJob!)!;
  expect(printed).toEqual(
    expect.arrayContaining([
      expect.stringMatching(
        new RegExp(`^deleted Secret ci-builds/${name}-registry \\(run ${run}, age \\d+s\\)$`),
      ),
      `cleanup: deleted 1 Job and 1 Secret of run ${run} in ${NS}`,
    ]),
  );
  // The job's id is the run id the build labelled its objects with.
  expect(output).not.toContain("job-token-for-the-registry");
  await until(() => leftovers().length === 0, "the garbage collector", 10_000);
  expect(leftovers()).toEqual([]);
  expect(existsSync(join(dir, ".k8s-image-build.state"))).toBe(true);
}, 180_000);

test("a build job that succeeds runs no cleanup", async () => {
  cluster.useScenario("kaniko-success-cold");
  writeFileSync(pids, "");
  const dir = project();
  const { code, output } = await runGcl(dir, ["--ignore-predefined-vars", PREDEFINED], {
    toolsDir: tools,
  });
  expect(output).toMatch(/PASS\s+build-image/);
  expect(code).toBe(0);
  expect(calls().map((call) => call.command)).toEqual(["build"]);
  expect(jobOutput(output, "build-image").filter((line) => line.startsWith("cleanup"))).toEqual([]);
  expect(existsSync(join(dir, ".k8s-image-build.state"))).toBe(false);
  await until(() => leftovers().length === 0, "the garbage collector", 10_000);
}, 180_000);
