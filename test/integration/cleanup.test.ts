/**
 * `k8s-image-build cleanup` against the Kubernetes API test server: the real CLI process killed
 * with SIGKILL at several points of a build, then `cleanup` with the same CI job id leaves no Job,
 * Pod or Secret; `--older-than` deletes old build objects only; the one-line errors.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { BatchV1Api, CoreV1Api, KubeConfig } from "@kubernetes/client-node";
import { cli } from "../../src/cli/cli.js";
import { renderBuildManifests } from "../../src/core/build.js";
import { LABEL_RUN_ID } from "../../src/core/job/manifests.js";
import { parseBuildSpec } from "../../src/core/spec/spec.js";
import { cliBundle } from "../support/cli-bundle.js";
import { startTestCluster, type TestCluster } from "../support/cluster.js";
import { leftovers, makeContext, NOTHING_LEFT, waitForEmpty } from "./helpers.js";

const NS = "ci-builds";
let cluster: TestCluster;
let bundle: string;
beforeAll(async () => {
  [cluster, bundle] = await Promise.all([startTestCluster(), cliBundle()]);
  cluster.createNamespace(NS);
}, 60_000);
afterAll(async () => {
  await cluster?.close();
});
beforeEach(() => {
  cluster.useScenario("kaniko-success-cold");
});

let jobIds = 7000;
/** The environment of one GitLab job: its own CI_JOB_ID, the build's inputs as KIB_ variables. */
function gitlabJob(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: mkdtempSync(join(tmpdir(), "kib-home-")),
    CI_JOB_ID: String(++jobIds),
    KIB_KUBECONFIG: cluster.kubeconfig(),
    KIB_NAMESPACE: NS,
    KIB_TAGS: "registry.example:5000/acme/web:1.0",
    KIB_REGISTRY_USERNAME: "ci-bot",
    KIB_REGISTRY_PASSWORD: "registry-password-value",
    ...extra,
  };
}

interface Process {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function startCli(args: string[], env: NodeJS.ProcessEnv, cwd: string): Process {
  const child = spawn(process.execPath, [bundle, ...args], {
    cwd,
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (chunk: Buffer) => (stdout += chunk.toString("utf8")));
  child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("close", (code, signal) => resolve({ code, signal })),
  );
  return { child, stdout: () => stdout, stderr: () => stderr, exited };
}

async function killHard(build: Process): Promise<void> {
  build.child.kill("SIGKILL");
  expect(await build.exited).toEqual({ code: null, signal: "SIGKILL" });
}

async function cleanup(env: NodeJS.ProcessEnv, args: string[] = []) {
  const run = startCli(["cleanup", ...args], env, tmpdir());
  const { code } = await run.exited;
  return { code, stdout: run.stdout(), stderr: run.stderr() };
}

async function until(check: () => boolean, what: string, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function runLabel(env: NodeJS.ProcessEnv): string {
  return `gitlab-${env.CI_JOB_ID}`;
}

/** The objects of one run, as the store holds them. */
function ofRun(env: NodeJS.ProcessEnv, resource: "jobs" | "secrets" | "pods") {
  return cluster
    .objects(resource, NS)
    .filter((object) => object.metadata.labels?.[LABEL_RUN_ID] === runLabel(env));
}

/** cleanup's stdout: one line per object it deleted (sorted here), then the summary. */
function expectDeletedLines(stdout: string, objects: string[], summary: string): void {
  const lines = stdout.trimEnd().split("\n");
  expect(lines.at(-1)).toBe(summary);
  expect(lines.slice(0, -1).map((line) => line.replace(/, age \d+s\)$/, ")"))).toEqual(objects);
}

describe("cleanup after a build killed with SIGKILL", () => {
  test("after its Secret is created, before the Job: the Secret carries the run id and goes", async () => {
    const env = gitlabJob();
    const context = makeContext();
    const stateFile = join(context, ".k8s-image-build.state");
    const held = cluster.faults.holdNextRequest({
      method: "POST",
      pathPattern: /\/namespaces\/ci-builds\/jobs$/,
    });
    const build = startCli(["build", "--context", ".", "--state-file", stateFile], env, context);
    await held;
    await killHard(build);

    // What the kill left: a Secret with no owner, no Job; the state file names the run.
    const [secret] = ofRun(env, "secrets");
    expect(secret.metadata.ownerReferences).toBeUndefined();
    expect(ofRun(env, "jobs")).toEqual([]);
    expect(readFileSync(stateFile, "utf8")).toBe(`${runLabel(env)}\n`);

    const { code, stdout, stderr } = await cleanup(env);
    expect(stderr).toBe("");
    expect(code).toBe(0);
    expectDeletedLines(
      stdout,
      [`deleted Secret ${NS}/${secret.metadata.name} (run ${runLabel(env)})`],
      `cleanup: deleted 0 Jobs and 1 Secret of run ${runLabel(env)} in ${NS}`,
    );
    expect(await waitForEmpty(cluster)).toEqual(NOTHING_LEFT);
  }, 60_000);

  test("after the Job is created, before the Secret's owner is set: both go, another run's stay", async () => {
    const env = gitlabJob();
    const other = await createBuildObjects("gitlab-other-run");
    const held = cluster.faults.holdNextRequest({
      method: "PATCH",
      pathPattern: /\/namespaces\/ci-builds\/secrets\//,
    });
    const build = startCli(["build", "--context", "."], env, makeContext());
    await held;
    await killHard(build);

    const [secret] = ofRun(env, "secrets");
    const [job] = ofRun(env, "jobs");
    expect(secret.metadata.ownerReferences).toBeUndefined();
    expect(job.metadata.name).toBe(secret.metadata.name.replace(/-registry$/, ""));
    await until(() => ofRun(env, "pods").length === 1, "the Job's pod");

    const { code, stdout } = await cleanup(env);
    expect(code).toBe(0);
    expectDeletedLines(
      stdout,
      [
        `deleted Secret ${NS}/${secret.metadata.name} (run ${runLabel(env)})`,
        `deleted Job ${NS}/${job.metadata.name} (run ${runLabel(env)})`,
      ],
      `cleanup: deleted 1 Job and 1 Secret of run ${runLabel(env)} in ${NS}`,
    );
    await until(() => leftovers(cluster).pods.length === 1, "the killed build's pod to go");
    expect(leftovers(cluster)).toEqual({
      jobs: [other.job],
      pods: [expect.stringMatching(new RegExp(`^${other.job}-`))],
      secrets: [other.secret],
    });
    await deleteBuildObjects(other);
  }, 60_000);

  test("during the context upload", async () => {
    const env = gitlabJob();
    const context = makeContext({ "big.txt": randomBytes(1_500_000).toString("base64") });
    const stalled = cluster.faults.stallNextAttach({ afterBytes: 64 * 1024 });
    const build = startCli(["build", "--context", "."], env, context);
    await stalled;
    await killHard(build);
    expect(ofRun(env, "jobs")).toHaveLength(1);
    expect(ofRun(env, "secrets")[0].metadata.ownerReferences).toHaveLength(1);

    const { code, stdout } = await cleanup(env);
    expect(code).toBe(0);
    expect(stdout.trimEnd().split("\n").at(-1)).toBe(
      `cleanup: deleted 1 Job and 1 Secret of run ${runLabel(env)} in ${NS}`,
    );
    expect(await waitForEmpty(cluster)).toEqual(NOTHING_LEFT);
  }, 60_000);

  test("while it follows the build log", async () => {
    cluster.useScenario("kaniko-deadline"); // a builder that keeps running
    const env = gitlabJob();
    const build = startCli(["build", "--context", "."], env, makeContext());
    await until(
      () =>
        build.stderr().includes("== Build (kaniko)") &&
        cluster.requests.some((request) => request.stream === "log"),
      "the build log to be followed",
    );
    await killHard(build);
    const [pod] = ofRun(env, "pods");
    expect(pod.status.containerStatuses[0].state.running).toBeDefined();

    const { code, stdout } = await cleanup(env);
    expect(code).toBe(0);
    expect(stdout.trimEnd().split("\n").at(-1)).toBe(
      `cleanup: deleted 1 Job and 1 Secret of run ${runLabel(env)} in ${NS}`,
    );
    expect(await waitForEmpty(cluster)).toEqual(NOTHING_LEFT);
  }, 60_000);

  test("a build that ends on its own leaves nothing for cleanup, and removes its state file", async () => {
    const env = gitlabJob();
    const context = makeContext();
    const stateFile = join(context, ".k8s-image-build.state");
    const build = startCli(["build", "--context", ".", "--state-file", stateFile], env, context);
    expect(await build.exited).toEqual({ code: 0, signal: null });
    expect(existsSync(stateFile)).toBe(false);
    const { code, stdout } = await cleanup(env);
    expect(code).toBe(0);
    expect(stdout).toBe(`cleanup: no build Job or Secret of run ${runLabel(env)} in ${NS}\n`);
  }, 60_000);
});

// --- objects made directly, as other builds (or other tools) left them -------------------------

function clients() {
  const kc = new KubeConfig();
  kc.loadFromString(cluster.kubeconfig());
  return { core: kc.makeApiClient(CoreV1Api), batch: kc.makeApiClient(BatchV1Api) };
}

/** A build's Secret and Job as another run created them (kaniko-success-cold waits for an upload). */
async function createBuildObjects(runId: string, options: { unlabelled?: boolean } = {}) {
  const spec = parseBuildSpec(
    {
      context: ".",
      tags: "registry.example:5000/acme/web:1.0",
      namespace: NS,
      "registry-username": "u",
      "registry-password": "p4ssword",
      kubeconfig: cluster.kubeconfig(),
    },
    { workspace: makeContext(), kubeconfigPaths: [] },
  );
  const { job, secrets } = renderBuildManifests(spec, runId);
  const [secret] = secrets;
  if (options.unlabelled) {
    // Another tool's objects, named like ours but without the labels.
    delete job.metadata!.labels;
    delete secret.metadata!.labels;
    job.metadata!.name = `${job.metadata!.name}-x`;
    secret.metadata!.name = `${job.metadata!.name}-registry`;
  }
  const { core, batch } = clients();
  await core.createNamespacedSecret({ namespace: NS, body: secret });
  await batch.createNamespacedJob({ namespace: NS, body: job });
  return { job: job.metadata!.name!, secret: secret.metadata!.name! };
}

async function deleteBuildObjects(objects: { job: string; secret: string }) {
  const { core, batch } = clients();
  await core.deleteNamespacedSecret({ name: objects.secret, namespace: NS });
  await batch.deleteNamespacedJob({
    name: objects.job,
    namespace: NS,
    propagationPolicy: "Background",
  });
}

function sink(): Writable & { text: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      chunks.push(chunk.toString("utf8"));
      done();
    },
  }) as Writable & { text: () => string };
  stream.text = () => chunks.join("");
  return stream;
}

async function cleanupInProcess(argv: string[], env: NodeJS.ProcessEnv) {
  const stdout = sink();
  const stderr = sink();
  const code = await cli({
    argv: ["cleanup", ...argv],
    env: { HOME: tmpdir(), KIB_KUBECONFIG: cluster.kubeconfig(), KIB_NAMESPACE: NS, ...env },
    stdout,
    stderr,
    cwd: tmpdir(),
  });
  return { code, stdout: stdout.text(), stderr: stderr.text() };
}

describe("cleanup --older-than: the janitor for runners that died", () => {
  test("deletes every build's Job and Secret older than that; not younger ones, not unlabelled ones", async () => {
    const old = [await createBuildObjects("gitlab-101"), await createBuildObjects("1234567")];
    const young = await createBuildObjects("gitlab-102");
    const foreign = await createBuildObjects("gitlab-103", { unlabelled: true });
    for (const objects of [...old, foreign]) {
      cluster.age("jobs", NS, objects.job, 2 * 3600);
      cluster.age("secrets", NS, objects.secret, 2 * 3600);
    }
    cluster.age("jobs", NS, young.job, 50 * 60);
    cluster.age("secrets", NS, young.secret, 50 * 60);

    const { code, stdout, stderr } = await cleanupInProcess(["--older-than", "1h"], {});
    expect(stderr).toBe("");
    expect(code).toBe(0);
    const lines = stdout.trimEnd().split("\n");
    // Ages in whole seconds: a creationTimestamp has no fraction, so 2h may read 2h1s.
    const withAge = lines
      .slice(0, -1)
      .map((line) => line.replace(/, age 2h(\d+s)?\)$/, ", age 2h)"));
    expect(withAge.sort()).toEqual(
      [
        `deleted Job ${NS}/${old[0].job} (run gitlab-101, age 2h)`,
        `deleted Job ${NS}/${old[1].job} (run 1234567, age 2h)`,
        `deleted Secret ${NS}/${old[0].secret} (run gitlab-101, age 2h)`,
        `deleted Secret ${NS}/${old[1].secret} (run 1234567, age 2h)`,
      ].sort(),
    );
    expect(lines.at(-1)).toBe(`cleanup: deleted 2 Jobs and 2 Secrets older than 1h in ${NS}`);
    await until(() => leftovers(cluster).pods.length === 2, "the old Jobs' pods to go");
    const left = leftovers(cluster);
    expect(left.jobs.sort()).toEqual([young.job, foreign.job].sort());
    expect(left.secrets.sort()).toEqual([young.secret, foreign.secret].sort());

    await deleteBuildObjects(young);
    await deleteBuildObjects(foreign);
    expect(await waitForEmpty(cluster)).toEqual(NOTHING_LEFT);
  }, 60_000);

  test("nothing old enough is not an error", async () => {
    const { code, stdout, stderr } = await cleanupInProcess(["--older-than", "90m"], {});
    expect([code, stdout, stderr]).toEqual([
      0,
      `cleanup: no build Job or Secret older than 1h30m in ${NS}\n`,
      "",
    ]);
  });

  test.each(["soon", "-1h", "1d", ""])(
    "a bad --older-than (%j) is one line naming the flag and the format, before any request",
    async (value) => {
      cluster.resetRequests();
      const { code, stdout, stderr } = await cleanupInProcess([`--older-than=${value}`], {});
      expect(code).toBe(1);
      expect(stdout).toBe("");
      expect(stderr).toBe(
        `error: --older-than: "${value}" is not a duration; use a duration like 30m, 2h or 1h30m, or whole seconds\n`,
      );
      expect(cluster.requests).toEqual([]);
    },
  );
});

describe("cleanup of a run", () => {
  test("nothing of this run is not an error", async () => {
    const { code, stdout, stderr } = await cleanupInProcess([], { CI_JOB_ID: "424242" });
    expect([code, stdout, stderr]).toEqual([
      0,
      `cleanup: no build Job or Secret of run gitlab-424242 in ${NS}\n`,
      "",
    ]);
  });

  test("keep-job leaves the run's objects, as the build itself does", async () => {
    const kept = await createBuildObjects("gitlab-5150");
    const { code, stdout, stderr } = await cleanupInProcess([], {
      CI_JOB_ID: "5150",
      KIB_KEEP_JOB: "true",
    });
    expect([code, stdout]).toEqual([0, ""]);
    expect(stderr).toBe(
      "cleanup: keep-job is set; leaving the objects of run gitlab-5150 (their ttl removes them)\n",
    );
    expect(leftovers(cluster).jobs).toEqual([kept.job]);
    await deleteBuildObjects(kept);
    expect(await waitForEmpty(cluster)).toEqual(NOTHING_LEFT);
  });

  test("a Role without list on Secrets is one line naming what to grant", async () => {
    cluster.addToken("no-list-secrets", { forbid: [{ verb: "list", resource: "secrets" }] });
    const { code, stdout, stderr } = await cleanupInProcess([], {
      CI_JOB_ID: "77",
      KIB_KUBECONFIG: cluster.kubeconfig({ token: "no-list-secrets" }),
    });
    expect([code, stdout]).toEqual([1, ""]);
    expect(stderr.trimEnd().split("\n")).toEqual([
      expect.stringMatching(
        /^error: could not list the Secrets in ci-builds: .*cannot list resource "secrets".* \(grant the Role in deploy\/rbac\.yaml\)$/,
      ),
    ]);
  });

  test("in a cancelled GitLab job whose token was revoked, the 401 comes with the way out", async () => {
    const { code, stdout, stderr } = await cleanupInProcess([], {
      GITLAB_CI: "true",
      CI_JOB_ID: "78",
      CI_JOB_STATUS: "canceled",
      KIB_KUBECONFIG: cluster.kubeconfig({ token: "revoked-job-token" }),
    });
    expect([code, stdout]).toEqual([1, ""]);
    expect(stderr.trimEnd().split("\n")).toEqual([
      "error: could not list the Secrets in ci-builds: the API server rejected the credentials (401 Unauthorized); check the kubeconfig's user",
      "note: GitLab revokes a cancelled job's CI_JOB_TOKEN before after_script runs (gitlab-org/gitlab#473376), and the GitLab agent's kubeconfig authenticates with it; a scheduled `k8s-image-build cleanup --older-than <duration>` removes what is left",
    ]);
  });

  test("an argument it does not take is one line", async () => {
    const { code, stderr } = await cleanupInProcess(["everything"], {});
    expect(code).toBe(1);
    expect(stderr).toBe(
      'error: command line: cleanup takes no arguments, got "everything" (see cleanup --help)\n',
    );
  });
});
