/**
 * The bundled action (dist/main.js, dist/post.js) run as the runner runs it: INPUT_* variables,
 * GITHUB_OUTPUT / GITHUB_STATE / GITHUB_STEP_SUMMARY files, Node 24, signals.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startTestCluster, type TestCluster } from "../support/cluster.js";
import { makeContext } from "./helpers.js";

let cluster: TestCluster;
beforeAll(async () => {
  cluster = await startTestCluster();
  cluster.createNamespace("ci-builds");
});
afterAll(async () => {
  await cluster?.close();
});
beforeEach(() => {
  cluster.resetRequests();
  cluster.useScenario("kaniko-success-cold");
});

const PASSWORD = "s3cr3t-registry-password-value";
const DIGEST = "sha256:8c1c626558915ecba14a9b1f8b20dce4ba869984d4032c592d4dd6c67d8aab84";

interface Run {
  child: ChildProcess;
  files: { output: string; state: string; summary: string };
  done: Promise<{
    code: number | null;
    signal: NodeJS.Signals | null;
    stdout: string;
    stderr: string;
  }>;
}

function startAction(
  entry: "main" | "post",
  inputs: Record<string, string>,
  options: { workspace: string; state?: Record<string, string>; files?: Run["files"] },
): Run {
  const dir = mkdtempSync(join(tmpdir(), "kib-runner-"));
  const files = options.files ?? {
    output: join(dir, "output"),
    state: join(dir, "state"),
    summary: join(dir, "summary"),
  };
  for (const path of Object.values(files)) writeFileSync(path, "", { flag: "a" });
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: dir,
    RUNNER_TEMP: dir,
    GITHUB_ACTIONS: "true",
    GITHUB_RUN_ID: "4242",
    GITHUB_RUN_ATTEMPT: "1",
    GITHUB_WORKSPACE: options.workspace,
    GITHUB_OUTPUT: files.output,
    GITHUB_STATE: files.state,
    GITHUB_STEP_SUMMARY: files.summary,
  };
  for (const [name, value] of Object.entries(inputs)) env[`INPUT_${name.toUpperCase()}`] = value;
  for (const [name, value] of Object.entries(options.state ?? {})) env[`STATE_${name}`] = value;
  const child = spawn(process.execPath, [`dist/${entry}.js`], {
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (chunk) => (stdout += chunk));
  child.stderr!.on("data", (chunk) => (stderr += chunk));
  const done = new Promise<{
    code: number | null;
    signal: NodeJS.Signals | null;
    stdout: string;
    stderr: string;
  }>((resolve) => child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr })));
  return { child, files, done };
}

/** The runner's file-command format: `name<<delimiter` … `delimiter`. */
function readFileCommands(path: string): Record<string, string> {
  const values: Record<string, string> = {};
  const lines = readFileSync(path, "utf8").split("\n");
  for (let i = 0; i < lines.length; i++) {
    const match = /^([^<]+)<<(.+)$/.exec(lines[i]);
    if (!match) continue;
    const [, name, delimiter] = match;
    const value: string[] = [];
    for (i++; i < lines.length && lines[i] !== delimiter; i++) value.push(lines[i]);
    values[name] = value.join("\n");
  }
  return values;
}

function baseInputs(extra: Record<string, string> = {}): Record<string, string> {
  return {
    context: ".",
    tags: "registry.example:5000/acme/web:1.0",
    namespace: "ci-builds",
    kubeconfig: cluster.kubeconfig(),
    push: "true",
    builder: "kaniko",
    ...extra,
  };
}

async function waitForEmpty(ms = 5000) {
  const until = Date.now() + ms;
  const count = () =>
    cluster.objects("jobs", "ci-builds").length +
    cluster.objects("pods", "ci-builds").length +
    cluster.objects("secrets", "ci-builds").length;
  while (count() > 0 && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 50));
  return count();
}

async function waitFor(check: () => boolean, ms = 15_000) {
  const until = Date.now() + ms;
  while (!check() && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 25));
  if (!check()) throw new Error("condition not reached");
}

test("a build through dist/main.js writes digest, image, tags and metadata outputs and a summary", async () => {
  const workspace = makeContext();
  const kubeconfig = Buffer.from(cluster.kubeconfig()).toString("base64");
  const run = startAction(
    "main",
    baseInputs({ kubeconfig, "registry-username": "ci", "registry-password": PASSWORD }),
    { workspace },
  );
  const { code, stdout, stderr } = await run.done;
  expect(stderr).toBe("");
  expect(code).toBe(0);
  const outputs = readFileCommands(run.files.output);
  expect(outputs.digest).toBe(DIGEST);
  expect(outputs.image).toBe(`registry.example:5000/acme/web@${DIGEST}`);
  expect(outputs.tags).toBe("registry.example:5000/acme/web:1.0");
  const metadata = JSON.parse(outputs.metadata);
  expect(metadata).toMatchObject({
    builder: "kaniko",
    digest: DIGEST,
    namespace: "ci-builds",
    context: { files: 4 },
  });
  expect(Object.keys(metadata.durations)).toEqual([
    "submitMs",
    "scheduleMs",
    "uploadMs",
    "buildMs",
    "totalMs",
  ]);
  expect(readFileSync(run.files.summary, "utf8")).toContain(DIGEST);
  expect(stdout).toMatch(/::group::Upload context/);
  expect(stdout).toMatch(/Sent context: 4 files/);
  // Secrets are masked and never printed.
  expect(stdout).toContain(`::add-mask::${PASSWORD}`);
  const printed = stdout
    .split("\n")
    .filter((line) => !line.startsWith("::add-mask::"))
    .join("\n");
  expect(printed).not.toContain(PASSWORD);
  expect(printed).not.toContain(cluster.token);
  expect(stdout).toContain(`::add-mask::${cluster.token}`);
  expect(await waitForEmpty()).toBe(0);
});

test("dry-run prints the Job and a redacted Secret and creates nothing", async () => {
  const run = startAction(
    "main",
    baseInputs({ "dry-run": "true", "registry-username": "ci", "registry-password": PASSWORD }),
    {
      workspace: makeContext(),
    },
  );
  const { code, stdout } = await run.done;
  expect(code).toBe(0);
  expect(stdout).toMatch(/kind: Job/);
  expect(stdout).toMatch(/kind: Secret/);
  expect(stdout).toContain("<redacted>");
  expect(cluster.requests).toEqual([]);
});

test.each([
  [{ tags: "" }, /input "tags"/],
  [{ tags: "Registry.Example/UPPER:tag" }, /input "tags"/],
  [{ namespace: "Bad_Namespace" }, /input "namespace"/],
  [{ builder: "docker" }, /input "builder": .*kaniko.*buildkit/],
  [{ context: "../outside" }, /input "context"/],
  [{ timeout: "ten minutes" }, /input "timeout"/],
  [{ resources: "limits: { memory: lots }" }, /input "resources"/],
  [{ kubeconfig: "not base64 and not yaml: [" }, /input "kubeconfig"/],
])("bad input %o → one error line, nothing created", async (bad, message) => {
  const run = startAction("main", baseInputs(bad as Record<string, string>), {
    workspace: makeContext(),
  });
  const { code, stdout } = await run.done;
  expect(code).toBe(1);
  const errors = stdout.split("\n").filter((line) => line.startsWith("::error::"));
  expect(errors).toHaveLength(1);
  expect(errors[0]).toMatch(/^::error::k8s-image-build failed: /);
  expect(errors[0]).toMatch(message);
  expect(stdout).not.toMatch(/\n\s+at /);
  expect(cluster.requests).toEqual([]);
});

test("SIGINT mid-build deletes the Job and its Secret within 7 s", async () => {
  cluster.useScenario("kaniko-deadline");
  const run = startAction(
    "main",
    baseInputs({ "registry-username": "ci", "registry-password": PASSWORD }),
    {
      workspace: makeContext(),
    },
  );
  await waitFor(() =>
    cluster.objects("pods", "ci-builds").some((pod) => pod.status?.phase === "Running"),
  );
  const sentAt = Date.now();
  run.child.kill("SIGINT");
  const { code, stdout } = await run.done;
  expect(Date.now() - sentAt).toBeLessThan(7000);
  expect(code).not.toBe(0);
  expect(stdout).toMatch(
    /::error::k8s-image-build failed: the build was cancelled; deleted Job kib-/,
  );
  expect(await waitForEmpty()).toBe(0);
  expect(readFileCommands(run.files.state).objects).toBe("");
});

test("main killed outright → the post step deletes what the saved state names", async () => {
  cluster.useScenario("kaniko-deadline");
  const workspace = makeContext();
  const inputs = baseInputs({ "registry-username": "ci", "registry-password": PASSWORD });
  const run = startAction("main", inputs, { workspace });
  await waitFor(() =>
    cluster.objects("pods", "ci-builds").some((pod) => pod.status?.phase === "Running"),
  );
  run.child.kill("SIGKILL");
  await run.done;
  expect(cluster.objects("jobs", "ci-builds")).toHaveLength(1);
  const state = readFileCommands(run.files.state);
  expect(JSON.parse(state.objects)).toMatchObject({
    namespace: "ci-builds",
    job: expect.stringMatching(/^kib-/),
  });
  const post = startAction("post", inputs, { workspace, state });
  const result = await post.done;
  expect(result.code).toBe(0);
  expect(result.stdout).toMatch(/Cleaned up Job kib-/);
  expect(await waitForEmpty()).toBe(0);
});
