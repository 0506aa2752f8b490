/**
 * The build against a test server that fails it the way a real cluster does: deploy/rbac.yaml
 * enforced, watch history compacted, requests refused or lost, the pod deleted from outside, an
 * API server out of reach. What the user sees, and that nothing is left behind.
 */
import { randomBytes } from "node:crypto";
import { build } from "../../src/core/build.js";
import type { BuildOptions } from "../../src/core/build/run.js";
import { BuildFailure } from "../../src/core/errors.js";
import { parseBuildSpec, type RawInputs } from "../../src/core/spec/spec.js";
import { startTestCluster, type TestCluster } from "../support/cluster.js";
import {
  leftovers,
  makeContext,
  NOTHING_LEFT,
  recordingReporter,
  serverRequest,
  waitForEmpty,
} from "./helpers.js";

const DIGEST = "sha256:8c1c626558915ecba14a9b1f8b20dce4ba869984d4032c592d4dd6c67d8aab84";

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

function specFor(inputs: RawInputs = {}, on: TestCluster = cluster, context = makeContext()) {
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

const WITH_CREDENTIALS = { "registry-username": "ci-bot", "registry-password": "p4ssw0rd-value" };

async function buildFails(
  spec: ReturnType<typeof specFor>,
  options: Partial<BuildOptions> = {},
): Promise<{ error: BuildFailure; reporter: ReturnType<typeof recordingReporter> }> {
  const reporter = recordingReporter();
  try {
    await build(spec, { reporter, runId: "test", pendingGraceMs: 300, ...options });
  } catch (error) {
    expect(error).toBeInstanceOf(BuildFailure);
    expect((error as BuildFailure).message).not.toContain("\n");
    return { error: error as BuildFailure, reporter };
  }
  throw new Error("the build was expected to fail");
}

/** Deletes what a build left, as an admin would (for the tests that show a leftover). */
async function adminCleanUp(c: TestCluster, namespace = "ci-builds") {
  const left = leftovers(c, namespace);
  for (const [group, resource, names] of [
    ["/apis/batch/v1", "jobs", left.jobs],
    ["/api/v1", "secrets", left.secrets],
  ] as const) {
    for (const name of names)
      await serverRequest(
        c,
        `${group}/namespaces/${namespace}/${resource}/${name}?propagationPolicy=Background`,
        { method: "DELETE" },
      );
  }
  return waitForEmpty(c, namespace);
}

describe("RBAC as shipped in deploy/rbac.yaml", () => {
  test("the Role alone, without the optional ClusterRole, builds: the Pod Security preflight is skipped", async () => {
    cluster.addToken("role-only", { access: "role-only" });
    const result = await build(
      specFor({ ...WITH_CREDENTIALS, kubeconfig: cluster.kubeconfig({ token: "role-only" }) }),
      { reporter: recordingReporter(), runId: "test" },
    );
    expect(result.digest).toBe(DIGEST);
    expect(cluster.requests.find((r) => r.path === "/api/v1/namespaces/ci-builds")?.status).toBe(
      403,
    );
    expect(cluster.requests.filter((r) => r.status === 403)).toHaveLength(1);
    expect(await waitForEmpty(cluster)).toEqual(NOTHING_LEFT);
  });

  test("every request of a build with credentials and lost answers is one the Role allows", async () => {
    cluster.faults.loseResponses({ method: "POST", pathPattern: /\/secrets$/, times: 1 });
    cluster.faults.loseResponses({ method: "POST", pathPattern: /\/jobs$/, times: 1 });
    const result = await build(specFor(WITH_CREDENTIALS), {
      reporter: recordingReporter(),
      runId: "test",
    });
    expect(result.digest).toBe(DIGEST);
    expect(cluster.requests.filter((r) => r.status === 403)).toEqual([]);
    // The lost creates were recognised by reading the objects back.
    const reads = cluster.requests
      .filter((r) => r.method === "GET" && /\/(secrets|jobs)\/kib-/.test(r.path))
      .map((r) => r.status);
    expect(reads).toEqual([200, 200]);
    expect(await waitForEmpty(cluster)).toEqual(NOTHING_LEFT);
  });
});

describe("watch compaction", () => {
  test("a pod watch that resumes past the kept history gets 410 Gone, re-lists and finishes the build", async () => {
    cluster.faults.dropNextWatch({ resource: "pods", afterEvents: 2, compact: true });
    const reporter = recordingReporter();
    const result = await build(specFor(), { reporter, runId: "test" });
    expect(result.digest).toBe(DIGEST);
    const podRequests = cluster.requests
      .filter((r) => r.path === "/api/v1/namespaces/ci-builds/pods")
      .map((r) => (r.stream === "watch" ? "watch" : "list"));
    // watch (dropped) → watch (410 Gone) → list → watch from the list's resourceVersion
    expect(podRequests.slice(0, 4)).toEqual(["watch", "watch", "list", "watch"]);
    expect(await waitForEmpty(cluster)).toEqual(NOTHING_LEFT);
  });

  test("a pod watch refused with 500 three times is retried with backoff, and the build completes", async () => {
    cluster.faults.dropNextWatch({ resource: "pods", afterEvents: 2 });
    cluster.faults.failRequests({
      method: "GET",
      pathPattern: /\/pods\?watch=true/,
      status: 500,
      times: 3,
    });
    const reporter = recordingReporter();
    const result = await build(specFor(), { reporter, runId: "test" });
    expect(result.digest).toBe(DIGEST);
    const watchStatuses = cluster.requests
      .filter((r) => r.path === "/api/v1/namespaces/ci-builds/pods")
      .map((r) => r.status);
    // The first watch is refused too: a watch that never connects is retried as well.
    expect(watchStatuses.slice(0, 3)).toEqual([500, 500, 500]);
    expect(await waitForEmpty(cluster)).toEqual(NOTHING_LEFT);
  });

  test("a pod watch the server ends at once, with nothing sent, is opened again", async () => {
    cluster.faults.dropNextWatch({ resource: "pods", afterEvents: 0 });
    const result = await build(specFor(), { reporter: recordingReporter(), runId: "test" });
    expect(result.digest).toBe(DIGEST);
    const watches = cluster.requests.filter(
      (r) => r.path === "/api/v1/namespaces/ci-builds/pods" && r.stream === "watch",
    );
    expect(watches.length).toBeGreaterThanOrEqual(2);
    expect(await waitForEmpty(cluster)).toEqual(NOTHING_LEFT);
  });

  test("a pod watch that keeps failing gives up after its attempts, in one line, and leaves nothing", async () => {
    cluster.faults.failRequests({
      method: "GET",
      pathPattern: /\/pods\?watch=true/,
      status: 500,
      times: 20,
    });
    const { error } = await buildFails(specFor(WITH_CREDENTIALS), { retryBaseDelayMs: 5 });
    expect(error.kind).toBe("api");
    expect(error.message).toBe(
      "could not watch the build pod: the API server answered 500 Internal Server Error (8 attempts in a row)",
    );
    cluster.faults.clear();
    expect(await waitForEmpty(cluster)).toEqual(NOTHING_LEFT);
  });

  test("a re-list that fails is retried before the watch resumes", async () => {
    cluster.faults.dropNextWatch({ resource: "pods", afterEvents: 2, compact: true });
    cluster.faults.failRequests({
      method: "GET",
      pathPattern: /\/pods\?labelSelector=/,
      status: 503,
      times: 1,
    });
    const result = await build(specFor(), { reporter: recordingReporter(), runId: "test" });
    expect(result.digest).toBe(DIGEST);
    const lists = cluster.requests
      .filter((r) => r.path === "/api/v1/namespaces/ci-builds/pods" && r.stream !== "watch")
      .map((r) => r.status);
    expect(lists).toEqual([503, 200]);
    expect(await waitForEmpty(cluster)).toEqual(NOTHING_LEFT);
  });

  test("a pod deleted while its watch was away is seen in the re-list, and named", async () => {
    cluster.useScenario("kaniko-deadline");
    const running = build(specFor(), {
      reporter: recordingReporter(),
      runId: "test",
      pendingGraceMs: 300,
    }).then(
      () => undefined,
      (e: unknown) => e as BuildFailure,
    );
    await until(() =>
      cluster
        .objects("pods", "ci-builds")
        .some((p) => p.status?.containerStatuses?.[0]?.state?.running),
    );
    const pod = cluster.podNames("ci-builds").at(-1)!;
    // The re-list is slow; the pod goes meanwhile; the watch's history is gone.
    cluster.faults.delayRequests({
      method: "GET",
      pathPattern: /\/pods\?labelSelector=/,
      ms: 1500,
      times: 1,
    });
    cluster.faults.expireResourceVersions();
    expect(cluster.faults.dropOpenWatches("pods")).toBe(1);
    await adminDelete(cluster, `/api/v1/namespaces/ci-builds/pods/${pod}?gracePeriodSeconds=0`);
    const error = await running;
    expect(error?.kind).toBe("pod-deleted");
    expect(error?.message).toBe("the build pod was deleted before the build finished");
    expect(cluster.requests.some((r) => r.path.endsWith("/pods") && r.stream !== "watch")).toBe(
      true,
    );
    expect(await waitForEmpty(cluster)).toEqual(NOTHING_LEFT);
  });

  test("an event watch that resumes past the kept history re-lists, and a Pending problem is still named", async () => {
    cluster.useScenario("kaniko-unschedulable");
    const failing = buildFails(specFor(), { pendingGraceMs: 1500 });
    // Once the pod's own event watch is open (the second), its history goes and it is cut (the
    // Job's event watch, stopped as the pod appeared, may not have closed yet: it is cut too).
    await until(() => cluster.requests.filter((r) => r.path.endsWith("/events")).length >= 2);
    cluster.faults.expireResourceVersions();
    expect(cluster.faults.dropOpenWatches("events")).toBeGreaterThanOrEqual(1);
    const { error } = await failing;
    expect(error.kind).toBe("unschedulable");
    expect(cluster.requests.some((r) => r.path.endsWith("/events") && r.stream !== "watch")).toBe(
      true,
    );
    expect(await waitForEmpty(cluster)).toEqual(NOTHING_LEFT);
  });

  test("the kept history is a small window: a watch from before it gets 410 at once", async () => {
    const small = await startTestCluster({ watchWindow: 3 });
    try {
      small.createNamespace("ci-builds");
      const result = await build(specFor({}, small), {
        reporter: recordingReporter(),
        runId: "test",
      });
      expect(result.digest).toBe(DIGEST);
      expect(await waitForEmpty(small)).toEqual(NOTHING_LEFT);
      const response = await serverRequest(
        small,
        "/api/v1/namespaces/ci-builds/pods?watch=true&resourceVersion=1001",
        { token: small.token },
      );
      const first = JSON.parse((await response.text()).split("\n")[0]!);
      expect(first.type).toBe("ERROR");
      expect(first.object).toMatchObject({
        kind: "Status",
        code: 410,
        reason: "Expired",
        message: expect.stringMatching(/^too old resource version: 1001 \(\d+\)$/),
      });
    } finally {
      await small.close();
    }
  });
});

describe("the product's pod, not the recording's", () => {
  test("a recording is replayed only for a pod of its shape: another builder's pod fails loudly, naming the differences", async () => {
    cluster.useScenario("kaniko-success-cold");
    const { error } = await buildFails(specFor({ builder: "buildkit" }));
    expect(error.message).toMatch(
      /RecordingMismatch\)?: test server: pod kib-[a-z0-9-]+ is not the pod recording "kaniko-success-cold" ran: .*containers\[build\]\.securityContext\.runAsUser: submitted 1000, recorded \(unset\)/,
    );
    expect(cluster.replayRefusals).toHaveLength(1);
    cluster.replayRefusals.splice(0);
    expect(await waitForEmpty(cluster)).toEqual(NOTHING_LEFT);
  });
});

describe("failures a real cluster has", () => {
  test("the Secret is created, then the Job create is refused: the Secret is deleted", async () => {
    cluster.addToken("no-jobs", { forbid: [{ verb: "create", resource: "jobs" }] });
    const { error, reporter } = await buildFails(
      specFor({ ...WITH_CREDENTIALS, kubeconfig: cluster.kubeconfig({ token: "no-jobs" }) }),
    );
    expect(error.kind).toBe("forbidden");
    expect(error.message).toMatch(/^could not create Job kib-[a-z0-9]+: jobs.batch is forbidden/);
    expect(cluster.requests.map((r) => `${r.method} ${r.status}`)).toContain("DELETE 200");
    expect(reporter.warnings).toEqual([]);
    expect(await waitForEmpty(cluster)).toEqual(NOTHING_LEFT);
  });

  test("the Job create fails with 500 every time: the Secret is deleted, and so is the Job that may exist", async () => {
    cluster.faults.failRequests({ method: "POST", pathPattern: /\/jobs$/, status: 500, times: 6 });
    const { error } = await buildFails(specFor(WITH_CREDENTIALS), { retryBaseDelayMs: 10 });
    expect(error.kind).toBe("api");
    expect(error.message).toMatch(
      /^could not create Job kib-[a-z0-9]+: 500 Internal error occurred: injected fault$/,
    );
    expect(await waitForEmpty(cluster)).toEqual(NOTHING_LEFT);
  });

  test("a Secret create whose every answer is lost fails the build, and the Secret it made is deleted", async () => {
    // Carried out once, then 409 AlreadyExists on each retry — every answer replaced by a 504.
    cluster.faults.loseResponses({ method: "POST", pathPattern: /\/secrets$/, times: 6 });
    const { error } = await buildFails(specFor(WITH_CREDENTIALS), { retryBaseDelayMs: 10 });
    expect(error.kind).toBe("api");
    expect(error.message).toMatch(
      /^could not create Secret kib-[a-z0-9]+-registry: 504 Timeout: request did not complete within requested timeout/,
    );
    expect(cluster.requests.filter((r) => r.method === "POST").map((r) => r.status)).toEqual([
      504, 504, 504, 504, 504, 504,
    ]);
    expect(await waitForEmpty(cluster)).toEqual(NOTHING_LEFT);
  });

  test("a cleanup whose deletes keep failing warns, naming what is left", async () => {
    cluster.faults.failRequests({
      method: "DELETE",
      pathPattern: /\/jobs\//,
      status: 500,
      times: 3,
    });
    const reporter = recordingReporter();
    const result = await build(specFor(), { reporter, runId: "test" });
    expect(result.digest).toBe(DIGEST);
    expect(reporter.warnings).toContainEqual(
      expect.stringMatching(
        /^could not delete Job kib-[a-z0-9]+: 500 Internal error occurred: injected fault$/,
      ),
    );
    expect(leftovers(cluster).jobs).toEqual([result.job]);
    expect(await adminCleanUp(cluster)).toEqual(NOTHING_LEFT);
  });

  test("a cleanup that does not finish in time says so and returns", async () => {
    cluster.faults.delayRequests({ method: "DELETE", pathPattern: /\/jobs\//, ms: 3000, times: 1 });
    const reporter = recordingReporter();
    const result = await build(specFor(), { reporter, runId: "test", cleanupTimeoutMs: 300 });
    expect(result.digest).toBe(DIGEST);
    expect(reporter.warnings).toContainEqual(
      expect.stringMatching(/^cleanup did not finish in time; /),
    );
    // The delayed delete is carried out in the end.
    expect(await waitForEmpty(cluster, "ci-builds", 8000)).toEqual(NOTHING_LEFT);
  });

  test("an API server that refuses connections is named, with nothing created", async () => {
    const gone = await startTestCluster();
    const kubeconfig = gone.kubeconfig();
    const server = gone.url;
    await gone.close();
    const { error, reporter } = await buildFails(specFor({ kubeconfig }), {
      retryBaseDelayMs: 5,
    });
    expect(error.kind).toBe("cluster-unreachable");
    expect(error.message).toBe(
      `could not read namespace ci-builds: cannot reach the API server at ${server} (ECONNREFUSED: connect ECONNREFUSED ${server.replace("https://", "")})`,
    );
    expect(reporter.warnings.length).toBeGreaterThan(0);
  });

  test("an API server whose certificate the kubeconfig does not trust is named as a TLS problem", async () => {
    const other = await startTestCluster();
    try {
      // This cluster's address, another cluster's CA.
      const kubeconfig = cluster
        .kubeconfig()
        .replace(
          Buffer.from(cluster.caPem).toString("base64"),
          Buffer.from(other.caPem).toString("base64"),
        );
      cluster.resetRequests();
      const { error } = await buildFails(specFor({ kubeconfig }));
      expect(error.kind).toBe("cluster-unreachable");
      expect(error.message).toMatch(
        new RegExp(
          `^could not read namespace ci-builds: the API server at ${cluster.url} presented a certificate the kubeconfig's certificate-authority-data does not trust \\([A-Z_]+: .+\\)$`,
        ),
      );
      expect(cluster.requests).toEqual([]);
    } finally {
      await other.close();
    }
  });

  test("a pod watch refused with 403 fails the build in one line and leaves nothing", async () => {
    cluster.faults.failRequests({
      method: "GET",
      pathPattern: /\/pods\?.*watch=true/,
      status: 403,
      times: 1,
    });
    const { error } = await buildFails(specFor(WITH_CREDENTIALS));
    expect(error.kind).toBe("forbidden");
    expect(error.message).toMatch(/watching pods is forbidden \(403\)/);
    expect(await waitForEmpty(cluster)).toEqual(NOTHING_LEFT);
  });

  test("a pod watch answered 401 (the token expired) names the credentials", async () => {
    cluster.faults.failRequests({
      method: "GET",
      pathPattern: /\/pods\?.*watch=true/,
      status: 401,
      times: 1,
    });
    const { error } = await buildFails(specFor());
    expect(error.kind).toBe("kubeconfig");
    expect(error.message).toMatch(/401 Unauthorized/);
    expect(await waitForEmpty(cluster)).toEqual(NOTHING_LEFT);
  });

  test("a pod still Pending when the Job's deadline kills it ends with the deadline's words", async () => {
    cluster.useScenario("kaniko-unschedulable");
    // A grace longer than the test: only the Job's deadline (the Job controller deletes the pod)
    // can end this build, and the Job's condition names it.
    const { error } = await buildFails(specFor({ timeout: "1s" }), {
      pendingGraceMs: 600_000,
      deadlineSlackMs: 600_000,
    });
    expect(error.kind).toBe("deadline-exceeded");
    expect(error.message).toBe(
      "the build exceeded its timeout of 1s (the Job's activeDeadlineSeconds) and was stopped",
    );
    expect(await waitForEmpty(cluster)).toEqual(NOTHING_LEFT);
  });

  test("a Pending pod deleted from outside ends the build, named as such", async () => {
    cluster.useScenario("kaniko-unschedulable");
    const earlier = new Set(cluster.podNames("ci-builds"));
    const failing = buildFails(specFor(), { pendingGraceMs: 600_000 });
    let pod: string | undefined;
    await until(
      () => (pod = cluster.podNames("ci-builds").find((n) => !earlier.has(n))) !== undefined,
    );
    await adminDelete(cluster, `/api/v1/namespaces/ci-builds/pods/${pod}?gracePeriodSeconds=0`);
    const { error } = await failing;
    expect(error.kind).toBe("pod-deleted");
    expect(error.message).toBe("the build pod was deleted before the build finished");
    expect(await waitForEmpty(cluster)).toEqual(NOTHING_LEFT);
  });

  test("the pod deleted from outside mid-build ends the build, named as such", async () => {
    cluster.useScenario("kaniko-deadline");
    const reporter = recordingReporter();
    const running = build(specFor(WITH_CREDENTIALS), {
      reporter,
      runId: "test",
      pendingGraceMs: 300,
    }).then(
      () => undefined,
      (e: unknown) => e as BuildFailure,
    );
    // The builder runs.
    await until(() =>
      cluster
        .objects("pods", "ci-builds")
        .some((p) => p.status?.containerStatuses?.[0]?.state?.running),
    );
    const pod = cluster.podNames("ci-builds").at(-1)!;
    await adminDelete(cluster, `/api/v1/namespaces/ci-builds/pods/${pod}`);
    const error = await running;
    expect(error).toBeInstanceOf(BuildFailure);
    expect(error?.kind).toBe("pod-deleted");
    expect(error?.message).toBe(
      "the build pod was deleted before the build finished (build was stopped, exit code 2)",
    );
    expect(await waitForEmpty(cluster)).toEqual(NOTHING_LEFT);
  });

  test("the pod deleted during the upload: the receiver ignores SIGTERM, is killed after the grace period, and the build says the pod was deleted", async () => {
    const context = makeContext({ "big.bin": randomBytes(24 * 1024 * 1024).toString("latin1") });
    const reporter = recordingReporter();
    let deleting: Promise<void> | undefined;
    // This build's pod: earlier tests' pods may still be terminating in the namespace.
    const earlier = new Set(cluster.podNames("ci-builds"));
    const originalUpload = reporter.upload;
    reporter.upload = (progress) => {
      originalUpload(progress);
      if (!progress.done && progress.sentBytes > 0 && !deleting) {
        const pod = cluster.podNames("ci-builds").find((name) => !earlier.has(name))!;
        deleting = adminDelete(cluster, `/api/v1/namespaces/ci-builds/pods/${pod}`);
      }
    };
    const error = await build(specFor({}, cluster, context), {
      reporter,
      runId: "test",
    }).then(
      () => undefined,
      (e: unknown) => e as BuildFailure,
    );
    await deleting;
    expect(error?.kind).toBe("pod-deleted");
    expect(error?.message).toBe(
      "the build pod was deleted before the build finished (context was stopped, exit code 137)",
    );
    expect(await waitForEmpty(cluster)).toEqual(NOTHING_LEFT);
  }, 30_000);

  test("cancelling during the upload stops it and deletes the Job and its Secret", async () => {
    // Incompressible, so the upload lasts long enough to be cancelled in the middle.
    const context = makeContext({ "big.bin": randomBytes(24 * 1024 * 1024).toString("latin1") });
    const controller = new AbortController();
    const reporter = recordingReporter();
    const originalUpload = reporter.upload;
    reporter.upload = (progress) => {
      originalUpload(progress);
      if (!progress.done && progress.sentBytes > 0) controller.abort();
    };
    const error = await build(specFor(WITH_CREDENTIALS, cluster, context), {
      reporter,
      runId: "test",
      signal: controller.signal,
    }).then(
      () => undefined,
      (e: unknown) => e as BuildFailure,
    );
    expect(error).toBeInstanceOf(BuildFailure);
    expect(error?.kind).toBe("cancelled");
    expect(reporter.uploads.some((u) => u.done)).toBe(false);
    expect(await waitForEmpty(cluster)).toEqual(NOTHING_LEFT);
  }, 30_000);
});

async function until(condition: () => boolean, ms = 10_000) {
  const end = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > end) throw new Error("timed out waiting");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function adminDelete(c: TestCluster, path: string) {
  const response = await serverRequest(c, path, { method: "DELETE" });
  expect(response.status).toBe(200);
}
