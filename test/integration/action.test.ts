/**
 * The bundled action (dist/main.js, dist/post.js) run as the runner runs it: INPUT_* variables,
 * GITHUB_OUTPUT / GITHUB_STATE / GITHUB_STEP_SUMMARY files, Node 24, signals.
 */
import { readFileSync, rmSync } from "node:fs";
import { startTestCluster, type TestCluster } from "../support/cluster.js";
import { makeContext, NOTHING_LEFT, waitForEmpty } from "./helpers.js";
import { readFileCommands, startAction } from "./runner.js";

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

function runAction(
  entry: "main" | "post",
  inputs: Record<string, string>,
  options: { workspace: string; state?: Record<string, string> },
) {
  return startAction(entry, { inputs, ...options });
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

async function waitFor(check: () => boolean, ms = 15_000) {
  const until = Date.now() + ms;
  while (!check() && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 25));
  if (!check()) throw new Error("condition not reached");
}

test("a build through dist/main.js writes digest, image, tags and metadata outputs and a summary", async () => {
  const workspace = makeContext();
  const kubeconfig = Buffer.from(cluster.kubeconfig()).toString("base64");
  const run = runAction(
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
  // Each secret is masked once, though the action, the parsed request and the engine all mask it.
  const masks = stdout.split("\n").filter((line) => line.startsWith("::add-mask::"));
  expect(masks.filter((line) => line === `::add-mask::${PASSWORD}`)).toHaveLength(1);
  expect(masks.filter((line) => line === `::add-mask::${cluster.token}`)).toHaveLength(1);
  expect(new Set(masks).size).toBe(masks.length);
  expect(await waitForEmpty(cluster)).toEqual(NOTHING_LEFT);
});

test("dry-run prints the Job and a redacted Secret and creates nothing", async () => {
  const run = runAction(
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
  const run = runAction("main", baseInputs(bad as Record<string, string>), {
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
  const run = runAction(
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
  expect(await waitForEmpty(cluster)).toEqual(NOTHING_LEFT);
  expect(readFileCommands(run.files.state).objects).toBe("");
});

test("main killed outright → the post step deletes what the saved state names", async () => {
  cluster.useScenario("kaniko-deadline");
  const workspace = makeContext();
  const inputs = baseInputs({ "registry-username": "ci", "registry-password": PASSWORD });
  const run = runAction("main", inputs, { workspace });
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
  // The checkout may be gone by the time post runs: cleanup needs only the cluster inputs.
  rmSync(workspace, { recursive: true, force: true });
  const post = runAction("post", inputs, { workspace, state });
  const result = await post.done;
  expect(result.code).toBe(0);
  expect(result.stdout).toMatch(/Cleaned up Job kib-/);
  expect(await waitForEmpty(cluster)).toEqual(NOTHING_LEFT);
});
