/**
 * The engine against the Kubernetes API test server, through @kubernetes/client-node only:
 * what was created, what arrived in the pod, the log the user sees, the digest, what is left.
 */
import { existsSync, lstatSync, readFileSync, readdirSync, readlinkSync, statSync } from "node:fs";
import { join } from "node:path";
import { build } from "../../src/core/build.js";
import { BuildFailure } from "../../src/core/errors.js";
import { parseBuildSpec, type RawInputs } from "../../src/core/spec/spec.js";
import { startTestCluster, type TestCluster } from "../support/cluster.js";
import {
  addSymlink,
  makeContext,
  NOTHING_LEFT,
  recordingReporter,
  serverRequest,
  waitForEmpty,
} from "./helpers.js";

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

const DIGEST = "sha256:8c1c626558915ecba14a9b1f8b20dce4ba869984d4032c592d4dd6c67d8aab84";

/** A build of `context` in ci-builds on `on` (the shared test cluster unless another is given). */
function specFor(context: string, inputs: RawInputs = {}, on: TestCluster = cluster) {
  return parseBuildSpec(
    {
      context: ".",
      tags: "registry.example:5000/acme/web:1.0",
      namespace: "ci-builds",
      kubeconfig: on.kubeconfig(),
      ...inputs,
    },
    { workspace: context, kubeconfigPaths: [] },
  );
}

/** The recorded build log as the user sees it: each line without its kubelet timestamp. */
function recordedBuildLog(): string[] {
  return readFileSync("test/support/recordings/kaniko-success-cold/log-build.txt", "utf8")
    .split("\n")
    .filter(Boolean)
    .map((line) => line.slice(line.indexOf(" ") + 1));
}

function listFiles(dir: string, prefix = ""): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    const rel = prefix ? `${prefix}/${name}` : name;
    if (statSync(path).isDirectory()) out.push(...listFiles(path, rel));
    else out.push(rel);
  }
  return out.sort();
}

async function buildFails(spec: ReturnType<typeof specFor>, reporter = recordingReporter()) {
  try {
    await build(spec, { reporter, runId: "test", pendingGraceMs: 300 });
  } catch (error) {
    return { error: error as BuildFailure, reporter };
  }
  throw new Error("the build was expected to fail");
}

describe("a successful Kaniko build", () => {
  test("submits the Job, uploads the filtered context, streams the log once, returns the digest, leaves nothing", async () => {
    const context = makeContext();
    const reporter = recordingReporter();
    const spec = specFor(context, {
      "registry-username": "ci-bot",
      "registry-password": "hunter2-registry-password",
      "cache-repo": "registry.example:5000/acme/web/cache",
      // registry.example is no registry the runner could ask; reuse is tested in reuse.test.ts.
      reuse: "false",
      "build-args": "VERSION=1.0",
    });
    const result = await build(spec, { reporter, runId: "test" });

    expect(result.digest).toBe(DIGEST);
    expect(result.image).toBe(`registry.example:5000/acme/web@${DIGEST}`);
    expect(result.context.files).toBe(4);

    const podName = cluster.podNames("ci-builds").at(-1)!;
    const received = cluster.receivedContext(podName)!;
    expect(listFiles(received)).toEqual([".dockerignore", "Dockerfile", "app.txt", "src/main.sh"]);
    expect(statSync(join(received, "src/main.sh")).mode & 0o111).not.toBe(0);
    expect(readFileSync(join(received, "app.txt"), "utf8")).toBe("hello from the build context\n");

    const recorded = recordedBuildLog();
    expect(reporter.buildLines.map((line) => line.text)).toEqual(recorded);

    const left = await waitForEmpty(cluster);
    expect(left).toEqual(NOTHING_LEFT);
    expect(reporter.lines.join("\n")).not.toContain("hunter2-registry-password");
  });

  test("the Job is shaped as the design says", async () => {
    const context = makeContext();
    const spec = specFor(context, { "keep-job": "true", timeout: "20m", ttl: "15m" });
    const result = await build(spec, { reporter: recordingReporter(), runId: "run-7" });
    const job = cluster.objects("jobs", "ci-builds").find((j) => j.metadata.name === result.job);
    expect(job.spec.backoffLimit).toBe(0);
    expect(job.spec.activeDeadlineSeconds).toBe(1200);
    expect(job.spec.ttlSecondsAfterFinished).toBe(900);
    expect(job.metadata.labels["k8s-image-build/run-id"]).toBe("run-7");
    const pod = job.spec.template.spec;
    expect(pod.restartPolicy).toBe("Never");
    expect(pod.initContainers[0]).toMatchObject({ name: "context", stdin: true, stdinOnce: true });
    expect(pod.containers[0].args).toEqual(
      expect.arrayContaining([
        "--context=dir:///kaniko/buildcontext",
        "--digest-file=/dev/termination-log",
        "--destination=registry.example:5000/acme/web:1.0",
      ]),
    );
    // keep-job leaves it; clean up by hand for the next tests.
    await fetchDelete(
      `/apis/batch/v1/namespaces/ci-builds/jobs/${result.job}?propagationPolicy=Background`,
    );
    await waitForEmpty(cluster);
  });

  test("a dropped pod watch and a dropped log stream give the same complete log and digest", async () => {
    const context = makeContext();
    cluster.faults.dropNextWatch({ resource: "pods", afterEvents: 3 });
    cluster.faults.dropNextLog({ afterLines: 5 });
    const reporter = recordingReporter();
    const result = await build(specFor(context), { reporter, runId: "test" });
    expect(result.digest).toBe(DIGEST);
    const texts = reporter.buildLines.map((line) => line.text);
    const recorded = recordedBuildLog();
    expect(texts).toEqual(recorded);
    const watches = cluster.requests.filter(
      (r) => r.stream === "watch" && r.path.endsWith("/pods"),
    );
    expect(watches.length).toBeGreaterThanOrEqual(2);
    const logs = cluster.requests.filter((r) => r.stream === "log");
    expect(logs.length).toBeGreaterThanOrEqual(2);
    expect(await waitForEmpty(cluster)).toEqual(NOTHING_LEFT);
  });

  test("429 and 503 answers are retried", async () => {
    cluster.faults.failRequests({
      method: "POST",
      pathPattern: /\/jobs$/,
      status: 429,
      times: 1,
      retryAfterSeconds: 1,
    });
    cluster.faults.failRequests({
      method: "DELETE",
      pathPattern: /\/jobs\//,
      status: 503,
      times: 2,
    });
    const reporter = recordingReporter();
    const result = await build(specFor(makeContext()), { reporter, runId: "test" });
    expect(result.digest).toBe(DIGEST);
    expect(reporter.warnings.some((w) => w.includes("429"))).toBe(true);
    expect(await waitForEmpty(cluster)).toEqual(NOTHING_LEFT);
  });

  test("a create that succeeded although its answer was lost (504) is recognised, and cleaned up", async () => {
    cluster.faults.loseResponses({ method: "POST", pathPattern: /\/secrets$/, times: 1 });
    cluster.faults.loseResponses({ method: "POST", pathPattern: /\/jobs$/, times: 1 });
    const reporter = recordingReporter();
    const result = await build(
      specFor(makeContext(), { "registry-username": "u", "registry-password": "p4ssw0rd" }),
      { reporter, runId: "test" },
    );
    expect(result.digest).toBe(DIGEST);
    expect(cluster.requests.filter((r) => r.status === 504)).toHaveLength(2);
    expect(cluster.requests.filter((r) => r.status === 409)).toHaveLength(2);
    expect(await waitForEmpty(cluster)).toEqual(NOTHING_LEFT);
  });

  test("request count of one build", async () => {
    await build(specFor(makeContext()), { reporter: recordingReporter(), runId: "test" });
    const summary = cluster.requests.map(
      (r) => `${r.method} ${r.path}${r.stream ? ` (${r.stream})` : ""}`,
    );
    // Without registry credentials: namespace, Job, pod watch, two event watches, attach, log, delete.
    expect(summary.length).toBeLessThanOrEqual(9);
    await waitForEmpty(cluster);
  });
});

describe("the context where Kaniko never snapshots", () => {
  const RECORDING = "test/support/recordings/kaniko-success-buildcontext";
  const RECORDED_DIGEST = "sha256:22ffa93a3c7f81e89227f4d7c98ec7c10c52bbccdd79332094df3899aa698194";

  test("the product's Kaniko pod is the recorded kaniko-success-buildcontext pod, and its build replays", async () => {
    // contexts/workdir-copy: a Dockerfile writing under WORKDIR /workspace, Kaniko's default.
    const context = makeContext({
      Dockerfile:
        "FROM 10.88.0.1:5000/library/busybox:local\nWORKDIR /workspace\nCOPY . .\nRUN ls /workspace\n",
      "app.txt": "hello from the context\n",
    });
    cluster.useScenario("kaniko-success-buildcontext");
    const reporter = recordingReporter();
    const result = await build(specFor(context, { "keep-job": "true" }), {
      reporter,
      runId: "test",
    });
    expect(result.digest).toBe(RECORDED_DIGEST);

    const recordedJob = JSON.parse(readFileSync(join(RECORDING, "job.json"), "utf8"));
    const job = cluster.objects("jobs", "ci-builds").find((j) => j.metadata.name === result.job);
    const mountsOf = (c: { name: string; volumeMounts?: { mountPath: string }[] }) =>
      `${c.name}: ${(c.volumeMounts ?? []).map((m) => m.mountPath).join(", ")}`;
    const podSpec = job.spec.template.spec;
    const recordedSpec = recordedJob.spec.template.spec;
    // Mounted where the recording mounted it, in both containers, and read from there.
    expect([...podSpec.initContainers, ...podSpec.containers].map(mountsOf)).toEqual(
      [...recordedSpec.initContainers, ...recordedSpec.containers].map(mountsOf),
    );
    const recordedArgs: string[] = recordedSpec.containers[0].args;
    const contextArgs = (args: string[]) =>
      args.filter((a) => a.startsWith("--context=") || a.startsWith("--dockerfile="));
    expect(contextArgs(podSpec.containers[0].args)).toEqual(contextArgs(recordedArgs));
    expect(podSpec.initContainers[0].command.join(" ")).toBe(
      recordedSpec.initContainers[0].command.at(-1),
    );

    const received = cluster.receivedContext(cluster.podNames("ci-builds").at(-1)!)!;
    expect(listFiles(received)).toEqual([".dockerignore", "Dockerfile", "app.txt", "src/main.sh"]);
    const recordedLog = readFileSync(join(RECORDING, "log-build.txt"), "utf8")
      .split("\n")
      .filter(Boolean)
      .map((line) => line.slice(line.indexOf(" ") + 1));
    expect(reporter.buildLines.map((line) => line.text)).toEqual(recordedLog);

    await fetchDelete(
      `/apis/batch/v1/namespaces/ci-builds/jobs/${result.job}?propagationPolicy=Background`,
    );
    expect(await waitForEmpty(cluster)).toEqual(NOTHING_LEFT);
  });
});

async function fetchDelete(path: string) {
  await serverRequest(cluster, path, { method: "DELETE" });
}

describe("failures are one line and leave nothing", () => {
  test.each([
    ["kaniko-image-pull-fails", "image-pull", /cannot be pulled|Failed to pull image/],
    ["kaniko-unschedulable", "unschedulable", /cannot be scheduled: 0\/1 nodes are available/],
    ["kaniko-oomkilled", "oom-killed", /ran out of memory \(OOMKilled/],
    [
      "kaniko-run-fails",
      "build-failed",
      /the build failed with exit code 3: error building image: .*exit status 3/,
    ],
  ])("%s → %s", async (scenario, kind, message) => {
    cluster.useScenario(scenario);
    const { error } = await buildFails(specFor(makeContext()));
    expect(error).toBeInstanceOf(BuildFailure);
    expect(error.kind).toBe(kind);
    expect(error.message).toMatch(message);
    expect(error.message).not.toContain("\n");
    expect(await waitForEmpty(cluster)).toEqual(NOTHING_LEFT);
  });

  test("a failing RUN carries the last log lines", async () => {
    cluster.useScenario("kaniko-run-fails");
    const { error } = await buildFails(specFor(makeContext()));
    expect(error.logTail.length).toBeGreaterThan(0);
    expect(error.logTail.join("\n")).toMatch(/exit/);
  });

  test("DeadlineExceeded", async () => {
    cluster.useScenario("kaniko-deadline");
    const { error } = await buildFails(specFor(makeContext(), { timeout: "2s" }));
    expect(error.kind).toBe("deadline-exceeded");
    expect(error.message).toMatch(/exceeded its timeout of 2s/);
    expect(await waitForEmpty(cluster)).toEqual(NOTHING_LEFT);
  });

  test("an upload whose connection drops is named as such", async () => {
    const context = makeContext({ "big.bin": "x".repeat(200_000) });
    cluster.faults.dropNextAttach({ afterBytes: 100 });
    const { error } = await buildFails(specFor(context));
    expect(error.kind).toBe("upload-failed");
    expect(error.message).toMatch(
      /the build context did not arrive whole: the receiver exited with code 1/,
    );
    expect(error.message).not.toContain("\n");
    expect(await waitForEmpty(cluster)).toEqual(NOTHING_LEFT);
  });

  test("a symlink out of the context (a dangling virtualenv python) arrives as the same link", async () => {
    const context = makeContext({ ".venv/pyvenv.cfg": "home = /usr/bin\n" });
    addSymlink(context, ".venv/python", "/usr/bin/python3-not-on-this-machine");
    addSymlink(context, "passwd", "/etc/passwd");
    const result = await build(specFor(context), { reporter: recordingReporter(), runId: "test" });
    expect(result.digest).toBe(DIGEST);
    const received = cluster.receivedContext(cluster.podNames("ci-builds").at(-1)!)!;
    expect(readlinkSync(join(received, ".venv/python"))).toBe(
      "/usr/bin/python3-not-on-this-machine",
    );
    expect(readlinkSync(join(received, "passwd"))).toBe("/etc/passwd");
    expect(lstatSync(join(received, "passwd")).isSymbolicLink()).toBe(true);
    expect(await waitForEmpty(cluster)).toEqual(NOTHING_LEFT);
  });

  test("403 from RBAC", async () => {
    cluster.addToken("no-jobs-token", { forbid: [{ verb: "create", resource: "jobs" }] });
    const spec = specFor(makeContext(), {
      kubeconfig: cluster.kubeconfig({ token: "no-jobs-token" }),
    });
    const { error } = await buildFails(spec);
    expect(error.kind).toBe("forbidden");
    expect(error.message).toMatch(
      /could not create Job .*forbidden.*cannot create resource "jobs"/,
    );
    expect(error.message).not.toContain("\n");
    expect(await waitForEmpty(cluster)).toEqual(NOTHING_LEFT);
  });

  test("a kubeconfig with a wrong token", async () => {
    const spec = specFor(makeContext(), {
      kubeconfig: cluster.kubeconfig({ token: "not-a-valid-token" }),
    });
    const { error } = await buildFails(spec);
    expect(error.kind).toBe("kubeconfig");
    expect(error.message).toMatch(/401 Unauthorized/);
    expect(error.message).not.toContain("not-a-valid-token");
  });

  test("a kubeconfig context that does not exist lists the available ones", async () => {
    const { error } = await buildFails(specFor(makeContext(), { "kube-context": "nope" }));
    expect(error.message).toMatch(/context "nope" not found; available contexts: /);
    expect(cluster.requests).toEqual([]);
  });

  test("cancelling mid-build deletes the Job and its Secret", async () => {
    cluster.useScenario("kaniko-deadline");
    const controller = new AbortController();
    const reporter = recordingReporter();
    const running = build(
      specFor(makeContext(), { "registry-username": "u", "registry-password": "p4ssword-value" }),
      { reporter, runId: "test", signal: controller.signal },
    );
    const until = Date.now() + 10_000;
    while (!reporter.groups.includes("Build (kaniko)") && Date.now() < until) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const cancelledAt = Date.now();
    controller.abort();
    await expect(running).rejects.toMatchObject({ kind: "cancelled" });
    expect(await waitForEmpty(cluster)).toEqual(NOTHING_LEFT);
    expect(Date.now() - cancelledAt).toBeLessThan(7000);
  });
});

test("the recordings are in the project", () => {
  expect(existsSync("test/support/recordings/kaniko-success-cold/log-build.txt")).toBe(true);
});

describe("API requests per build", () => {
  function describeRequests(c: TestCluster) {
    return c.requests.map(
      (r) =>
        `${r.method} ${r.path.replace(/kib-[a-z0-9-]+/g, "kib-…")}${r.stream ? ` (${r.stream})` : ""}`,
    );
  }

  test("one watch and one log follow drive the build: a pod lifecycle 10× slower makes no more requests", async () => {
    const slow = await startTestCluster({ timeScale: 0.5 });
    try {
      slow.createNamespace("ci-builds");
      slow.useScenario("kaniko-success-cold");
      cluster.resetRequests();
      const quickStarted = Date.now();
      await build(specFor(makeContext()), { reporter: recordingReporter(), runId: "test" });
      const quickMs = Date.now() - quickStarted;
      const quick = describeRequests(cluster);

      const slowSpec = specFor(makeContext(), {}, slow);
      const slowStarted = Date.now();
      await build(slowSpec, { reporter: recordingReporter(), runId: "test" });
      const slowMs = Date.now() - slowStarted;
      const slowRequests = describeRequests(slow);

      expect(slowMs).toBeGreaterThan(quickMs * 2);
      expect(slowRequests).toEqual(quick);
      expect(quick).toEqual([
        "GET /api/v1/namespaces/ci-builds",
        "POST /apis/batch/v1/namespaces/ci-builds/jobs",
        "GET /api/v1/namespaces/ci-builds/pods (watch)",
        // The Job's events until the pod exists (admission refusals), then the pod's while Pending.
        "GET /api/v1/namespaces/ci-builds/events (watch)",
        "GET /api/v1/namespaces/ci-builds/events (watch)",
        "GET /api/v1/namespaces/ci-builds/pods/kib-…/attach (attach)",
        "GET /api/v1/namespaces/ci-builds/pods/kib-…/log (log)",
        // The log ends when the builder exits; the status saying so comes later (or the other way
        // round). A stream that ended before the watch saw the end is read once more from the
        // resume point, which repeats lines that are dropped (a clean end can be a cut proxy).
        "GET /api/v1/namespaces/ci-builds/pods/kib-…/log (log)",
        "DELETE /apis/batch/v1/namespaces/ci-builds/jobs/kib-…",
      ]);
      console.log(
        `requests per build: ${quick.length} in ${quickMs} ms; ${slowRequests.length} in ${slowMs} ms`,
      );
    } finally {
      await slow.close();
    }
  }, 60_000);

  test("the plain requests share one connection: 9 requests, at most 7 TLS handshakes", async () => {
    cluster.resetRequests();
    await build(specFor(makeContext()), { reporter: recordingReporter(), runId: "test" });
    expect(cluster.requests).toHaveLength(9);
    // The namespace read, the Job's create and its delete over one kept-alive connection; each
    // watch, the attach and each log stream hold their own.
    expect(cluster.handshakes.length).toBeGreaterThanOrEqual(1);
    expect(cluster.handshakes.length).toBeLessThanOrEqual(7);
  });

  test("with registry credentials: the Secret's create, owner patch and delete", async () => {
    cluster.resetRequests();
    await build(
      specFor(makeContext(), { "registry-username": "u", "registry-password": "p4ssw0rd" }),
      {
        reporter: recordingReporter(),
        runId: "test",
      },
    );
    const secretCalls = describeRequests(cluster).filter((r) => r.includes("/secrets"));
    expect(secretCalls).toEqual([
      "POST /api/v1/namespaces/ci-builds/secrets",
      "PATCH /api/v1/namespaces/ci-builds/secrets/kib-…",
      "DELETE /api/v1/namespaces/ci-builds/secrets/kib-…",
    ]);
    expect(cluster.requests).toHaveLength(12);
  });
});

describe("a namespace with a ResourceQuota on cpu and memory", () => {
  beforeAll(() => {
    cluster.createNamespace("quota-builds");
    cluster.addResourceQuota("quota-builds", "compute", {
      "requests.cpu": "8",
      "requests.memory": "16Gi",
      "limits.cpu": "8",
      "limits.memory": "16Gi",
    });
  });

  test("admits the build pod when resources sets the builder's: the receiver states its own", async () => {
    const spec = specFor(makeContext(), {
      namespace: "quota-builds",
      resources: "requests: {cpu: 500m, memory: 1Gi}\nlimits: {cpu: 2, memory: 2Gi}",
      timeout: "20s",
    });
    const reporter = recordingReporter();
    const result = await build(spec, { reporter, runId: "test", pendingGraceMs: 300 });
    expect(result.digest).toBe(DIGEST);
    expect(reporter.warnings.join("\n")).not.toMatch(/quota/);
    expect(await waitForEmpty(cluster, "quota-builds")).toEqual(NOTHING_LEFT);
  });

  test("without resources, the refusal names the builder container only, and ends the build at once", async () => {
    const spec = specFor(makeContext(), { namespace: "quota-builds" });
    const reporter = recordingReporter();
    // A grace far longer than the test: only a refusal taken as final can end the build in time.
    const error = await build(spec, { reporter, runId: "test", pendingGraceMs: 600_000 }).then(
      () => undefined,
      (e: unknown) => e as BuildFailure,
    );
    expect(error).toBeInstanceOf(BuildFailure);
    expect(error?.message).toMatch(
      /^the Job cannot create its pod: .*failed quota: compute: must specify limits\.cpu for: build/,
    );
    const refusal = reporter.warnings.find((w) => /failed quota/.test(w)) ?? error?.message ?? "";
    expect(refusal).toMatch(
      /failed quota: compute: must specify limits\.cpu for: build; limits\.memory for: build; requests\.cpu for: build; requests\.memory for: build$/,
    );
    expect(await waitForEmpty(cluster, "quota-builds")).toEqual(NOTHING_LEFT);
  });
});

test("a Job whose pod is never created, with its events out of sight, still ends at its deadline", async () => {
  cluster.createNamespace("locked-down", { "pod-security.kubernetes.io/enforce": "restricted" });
  // deploy/rbac.yaml's Role without the optional ClusterRole, and events denied on top.
  cluster.addToken("no-events-no-namespaces", {
    access: "role-only",
    forbid: [
      { verb: "watch", resource: "events" },
      { verb: "list", resource: "events" },
    ],
  });
  const spec = specFor(makeContext(), {
    namespace: "locked-down",
    timeout: "1s",
    kubeconfig: cluster.kubeconfig({ token: "no-events-no-namespaces" }),
  });
  const started = Date.now();
  const error = await build(spec, {
    reporter: recordingReporter(),
    runId: "test",
    deadlineSlackMs: 500,
  }).catch((e: unknown) => e as BuildFailure);
  expect(error).toBeInstanceOf(BuildFailure);
  expect((error as BuildFailure).kind).toBe("deadline-exceeded");
  expect((error as BuildFailure).message).toMatch(/exceeded its timeout of 1s/);
  expect(Date.now() - started).toBeLessThan(6000);
  expect(await waitForEmpty(cluster, "locked-down")).toEqual(NOTHING_LEFT);
});

test("on 1.31+, where the Job says FailureTarget before Failed, a deadline is still named as such", async () => {
  const newer = await startTestCluster({ gitVersion: "v1.31.2" });
  try {
    newer.createNamespace("ci-builds");
    newer.useScenario("kaniko-deadline");
    const spec = specFor(makeContext(), { timeout: "2s" }, newer);
    const error = await build(spec, { reporter: recordingReporter(), runId: "test" }).catch(
      (e: unknown) => e as BuildFailure,
    );
    expect((error as BuildFailure).kind).toBe("deadline-exceeded");
    expect(await waitForEmpty(newer)).toEqual(NOTHING_LEFT);
  } finally {
    await newer.close();
  }
});

test("a server that speaks only v4.channel.k8s.io (Kubernetes before 1.30) gets the whole context", async () => {
  const older = await startTestCluster({ attachProtocols: ["v4.channel.k8s.io"] });
  try {
    older.createNamespace("ci-builds");
    older.useScenario("kaniko-success-cold");
    const spec = specFor(makeContext(), {}, older);
    const result = await build(spec, { reporter: recordingReporter(), runId: "test" });
    expect(result.digest).toBe(DIGEST);
    const received = older.receivedContext(older.podNames("ci-builds").at(-1)!)!;
    expect(listFiles(received)).toEqual([".dockerignore", "Dockerfile", "app.txt", "src/main.sh"]);
    expect(await waitForEmpty(older)).toEqual(NOTHING_LEFT);
  } finally {
    await older.close();
  }
});
