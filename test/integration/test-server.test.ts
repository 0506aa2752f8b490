import { execFileSync } from "node:child_process";
import { request as httpsRequest } from "node:https";
import { mkdtempSync, readFileSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough, Writable } from "node:stream";
import { fileURLToPath } from "node:url";
import { dirname } from "node:path";
import * as k8s from "@kubernetes/client-node";
import { startTestCluster, type TestCluster } from "../support/cluster.js";

const here = dirname(fileURLToPath(import.meta.url));
const JOB = JSON.parse(
  readFileSync(join(here, "../support/recordings/kaniko-success-cold/job.json"), "utf8"),
);
const DIGEST = "sha256:8c1c626558915ecba14a9b1f8b20dce4ba869984d4032c592d4dd6c67d8aab84";

function jobNamed(name: string): any {
  const j = JSON.parse(JSON.stringify(JOB));
  j.metadata.name = name;
  return j;
}

function contextTgz(): Buffer {
  const dir = mkdtempSync(join(tmpdir(), "kib-test-ctx-"));
  writeFileSync(join(dir, "Dockerfile"), "FROM busybox\nCOPY app.txt /app/app.txt\n");
  writeFileSync(join(dir, "app.txt"), "hello\n".repeat(1000));
  return execFileSync("tar", ["-czf", "-", "-C", dir, "."]);
}

async function waitFor<T>(fn: () => T | undefined | false, ms = 8000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > end) throw new Error("timed out waiting");
    await new Promise((r) => setTimeout(r, 10));
  }
}

function clients(c: TestCluster, token?: string) {
  const kc = new k8s.KubeConfig();
  kc.loadFromString(c.kubeconfig({ token: token ?? c.adminToken }));
  return { kc, core: kc.makeApiClient(k8s.CoreV1Api), batch: kc.makeApiClient(k8s.BatchV1Api) };
}

async function statusOf(p: Promise<unknown>): Promise<{ code: number; body: any }> {
  try {
    await p;
  } catch (e: any) {
    return { code: e.code, body: typeof e.body === "string" ? JSON.parse(e.body) : e.body };
  }
  throw new Error("expected a failure");
}

function collect(): { stream: Writable; text: () => string } {
  const chunks: Buffer[] = [];
  const stream = new Writable({
    write(c, _e, cb) {
      chunks.push(Buffer.from(c));
      cb();
    },
  });
  return { stream, text: () => Buffer.concat(chunks).toString("utf8") };
}

function raw(
  c: TestCluster,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; headers: Record<string, any>; body: string }> {
  return new Promise((resolve, reject) => {
    const u = new URL(c.url + path);
    const req = httpsRequest(
      {
        host: u.hostname,
        port: u.port,
        path: u.pathname + u.search,
        method,
        ca: c.caPem,
        headers: { Authorization: `Bearer ${c.adminToken}`, "Content-Type": "application/json" },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (d: Buffer) => chunks.push(d));
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString("utf8"),
          }),
        );
      },
    );
    req.on("error", reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

const initState = (p: any) => p?.status?.initContainerStatuses?.[0]?.state;

describe("Kubernetes API test server", () => {
  let c: TestCluster;
  beforeAll(async () => {
    c = await startTestCluster();
  });
  afterAll(async () => {
    await c.close();
  });

  test("a Job creates its pod and replays kaniko-success-cold after an upload (v5 attach)", async () => {
    const { kc, core, batch } = clients(c);
    const created = await batch.createNamespacedJob({
      namespace: "default",
      body: jobNamed("kib-ok"),
    });
    expect(created.metadata?.uid).toBeDefined();
    expect(created.spec?.selector?.matchLabels?.["controller-uid"]).toBe(created.metadata?.uid);

    const seen: string[] = [];
    const watch = new k8s.Watch(kc);
    const ctl = await watch.watch(
      "/api/v1/namespaces/default/pods",
      { labelSelector: "job-name=kib-ok" },
      (type, obj) => seen.push(`${type}:${obj.status?.phase}`),
      () => {},
    );

    const pod = await waitFor(() =>
      c
        .objects("pods", "default")
        .find((p) => p.metadata.labels?.["job-name"] === "kib-ok" && initState(p)?.running),
    );
    expect(pod.metadata.name).toMatch(/^kib-ok-[bcdfghjklmnpqrstvwxz2456789]{5}$/);
    expect(pod.metadata.labels["controller-uid"]).toBe(created.metadata?.uid);
    expect(pod.metadata.ownerReferences[0]).toMatchObject({
      kind: "Job",
      name: "kib-ok",
      controller: true,
      blockOwnerDeletion: true,
    });

    // The build container has not started: the real BadRequest.
    const early = await statusOf(
      core.readNamespacedPodLog({
        name: pod.metadata.name,
        namespace: "default",
        container: "build",
      }),
    );
    expect(early.code).toBe(400);

    const stdin = new PassThrough();
    const ws = await new k8s.Attach(kc).attach(
      "default",
      pod.metadata.name,
      "context",
      null,
      collect().stream,
      stdin,
      false,
    );
    expect(ws.protocol).toBe("v5.channel.k8s.io");
    stdin.end(contextTgz());

    const job = await waitFor(() =>
      c
        .objects("jobs", "default")
        .find((j) => j.metadata.name === "kib-ok" && j.status?.conditions?.length),
    );
    expect(job.status.conditions[0]).toMatchObject({ type: "Complete", status: "True" });
    expect(job.status.succeeded).toBe(1);
    expect(job.status.completionTime).toBeDefined();

    const final = await core.readNamespacedPod({ name: pod.metadata.name, namespace: "default" });
    expect(final.status?.phase).toBe("Succeeded");
    expect(final.status?.containerStatuses?.[0]?.state?.terminated?.message).toBe(DIGEST);
    expect(final.metadata?.finalizers).toBeUndefined();

    const dir = c.receivedContext(pod.metadata.name)!;
    expect(readFileSync(join(dir, "app.txt"), "utf8")).toBe("hello\n".repeat(1000));
    expect(existsSync(join(dir, "Dockerfile"))).toBe(true);

    const log = await core.readNamespacedPodLog({
      name: pod.metadata.name,
      namespace: "default",
      container: "build",
      timestamps: true,
    });
    const lines = log.trimEnd().split("\n");
    expect(lines.length).toBeGreaterThan(10);
    expect(lines[0]).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z time="/);
    const tail = await core.readNamespacedPodLog({
      name: pod.metadata.name,
      namespace: "default",
      container: "build",
      tailLines: 2,
    });
    expect(tail.trimEnd().split("\n")).toHaveLength(2);

    const events = c
      .objects("events", "default")
      .filter(
        (e) => e.involvedObject.name === pod.metadata.name || e.involvedObject.name === "kib-ok",
      );
    const reasons = events.map((e) => e.reason);
    expect(reasons).toEqual(
      expect.arrayContaining([
        "SuccessfulCreate",
        "Scheduled",
        "Pulled",
        "Created",
        "Started",
        "Completed",
      ]),
    );
    expect(events.find((e) => e.reason === "Scheduled").message).toBe(
      `Successfully assigned default/${pod.metadata.name} to realk8s`,
    );
    ctl.abort();
    expect(seen[0]).toBe("ADDED:Pending");
    expect(seen).toContain("MODIFIED:Succeeded");
  });

  test("Status shapes: 401, 403, 404, 409, 422, 400 strict, 410", async () => {
    const { core, batch, kc } = clients(c);
    c.addToken("limited", {
      forbid: [
        { verb: "create", resource: "jobs" },
        { verb: "get", resource: "pods", subresource: "log" },
      ],
      user: "system:serviceaccount:ci:builder",
    });
    const limited = clients(c, "limited");
    const f = await statusOf(
      limited.batch.createNamespacedJob({ namespace: "default", body: jobNamed("x") }),
    );
    expect(f.code).toBe(403);
    expect(f.body).toEqual({
      kind: "Status",
      apiVersion: "v1",
      metadata: {},
      status: "Failure",
      message:
        'jobs.batch is forbidden: User "system:serviceaccount:ci:builder" cannot create resource "jobs" in API group "batch" in the namespace "default"',
      reason: "Forbidden",
      details: { group: "batch", kind: "jobs" },
      code: 403,
    });
    const fl = await statusOf(
      limited.core.readNamespacedPodLog({ name: "p", namespace: "default" }),
    );
    expect(fl.code).toBe(403);

    const u = await statusOf(clients(c, "nope").core.readNamespace({ name: "default" }));
    expect(u.code).toBe(401);

    const nf = await statusOf(batch.readNamespacedJob({ name: "missing", namespace: "default" }));
    expect(nf.body).toEqual({
      kind: "Status",
      apiVersion: "v1",
      metadata: {},
      status: "Failure",
      message: 'jobs.batch "missing" not found',
      reason: "NotFound",
      details: { name: "missing", group: "batch", kind: "jobs" },
      code: 404,
    });

    await core.createNamespacedSecret({
      namespace: "default",
      body: { metadata: { name: "s1" }, stringData: { a: "b" } },
    });
    const ae = await statusOf(
      core.createNamespacedSecret({ namespace: "default", body: { metadata: { name: "s1" } } }),
    );
    expect(ae.body).toMatchObject({
      reason: "AlreadyExists",
      message: 'secrets "s1" already exists',
      details: { name: "s1", kind: "secrets" },
      code: 409,
    });

    const inv = await statusOf(
      batch.createNamespacedJob({ namespace: "default", body: jobNamed("Bad_Name") }),
    );
    expect(inv.code).toBe(422);
    expect(inv.body.reason).toBe("Invalid");
    expect(inv.body.message).toMatch(
      /^Job\.batch "Bad_Name" is invalid: metadata\.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain/,
    );
    expect(inv.body.details.causes[0]).toMatchObject({
      reason: "FieldValueInvalid",
      field: "metadata.name",
    });

    // client-node's serializer drops unknown fields, so send these raw.
    const bad = jobNamed("strict");
    bad.spec.bogus = 1;
    bad.spec.template.spec.containers[0].colour = "red";
    const st = await raw(
      c,
      "POST",
      "/apis/batch/v1/namespaces/default/jobs?fieldValidation=Strict",
      bad,
    );
    expect(st.status).toBe(400);
    expect(JSON.parse(st.body)).toMatchObject({
      code: 400,
      reason: "BadRequest",
      // document order, as the strict JSON decoder meets them
      message:
        'strict decoding error: unknown field "spec.template.spec.containers[0].colour", unknown field "spec.bogus"',
    });
    const warn = await raw(c, "POST", "/apis/batch/v1/namespaces/default/jobs", bad);
    expect(warn.status).toBe(201);
    expect(warn.headers.warning).toBe(
      '299 - "unknown field \\"spec.template.spec.containers[0].colour\\"", 299 - "unknown field \\"spec.bogus\\""',
    );
    expect(JSON.parse(warn.body).spec.bogus).toBeUndefined();
    await batch.deleteNamespacedJob({
      name: "strict",
      namespace: "default",
      propagationPolicy: "Background",
    });

    // 410: a watch from a compacted resourceVersion gets an ERROR event with the Expired Status.
    const list = await core.listNamespacedSecret({ namespace: "default" });
    c.faults.expireResourceVersions();
    const got: any[] = [];
    await new Promise<void>((resolve) => {
      void new k8s.Watch(kc).watch(
        "/api/v1/namespaces/default/secrets",
        { resourceVersion: String(Number(list.metadata!.resourceVersion) - 1) },
        (type, obj) => got.push({ type, obj }),
        () => resolve(),
      );
    });
    expect(got[0].type).toBe("ERROR");
    expect(got[0].obj).toMatchObject({
      kind: "Status",
      status: "Failure",
      reason: "Expired",
      code: 410,
    });
    expect(got[0].obj.message).toMatch(/^too old resource version: \d+ \(\d+\)$/);
  });

  test("Background delete removes the Job, then its pods and the owned Secret", async () => {
    const { core, batch, kc } = clients(c);
    c.useScenario("kaniko-unschedulable");
    const job = await batch.createNamespacedJob({
      namespace: "default",
      body: jobNamed("kib-del"),
    });
    const secret = await core.createNamespacedSecret({
      namespace: "default",
      body: { metadata: { name: "kib-del-auth" }, type: "Opaque", data: { x: "eA==" } },
    });
    await core.patchNamespacedSecret({
      name: "kib-del-auth",
      namespace: "default",
      body: [
        {
          op: "add",
          path: "/metadata/ownerReferences",
          value: [{ apiVersion: "batch/v1", kind: "Job", name: "kib-del", uid: job.metadata!.uid }],
        },
      ],
    });
    expect(secret.metadata?.uid).toBeDefined();
    const pod = await waitFor(() =>
      c
        .objects("pods", "default")
        .find((p) => p.metadata.labels?.["job-name"] === "kib-del" && p.status?.conditions?.length),
    );
    expect(pod.status.conditions[0]).toMatchObject({
      type: "PodScheduled",
      status: "False",
      reason: "Unschedulable",
    });

    const events: string[] = [];
    const ctl = await new k8s.Watch(kc).watch(
      "/api/v1/namespaces/default/pods",
      { labelSelector: "job-name=kib-del", resourceVersion: pod.metadata.resourceVersion },
      (t, o) => events.push(`${t}:${o.metadata.deletionTimestamp ? "del" : ""}`),
      () => {},
    );
    const resp: any = await batch.deleteNamespacedJob({
      name: "kib-del",
      namespace: "default",
      propagationPolicy: "Background",
    });
    expect(resp).toMatchObject({
      kind: "Status",
      status: "Success",
      details: { name: "kib-del", group: "batch", kind: "jobs", uid: job.metadata!.uid },
    });
    await waitFor(
      () =>
        !c.objects("pods", "default").some((p) => p.metadata.labels?.["job-name"] === "kib-del") &&
        !c.objects("secrets", "default").some((s) => s.metadata.name === "kib-del-auth"),
    );
    await waitFor(() => events.includes("DELETED:del"));
    expect(events).toContain("MODIFIED:del");
    expect(c.podNames("default")).toContain(pod.metadata.name);
    ctl.abort();
    c.useScenario("kaniko-success-cold");
  });

  test("deleting a Job without a propagationPolicy orphans its pods (batch/v1 default)", async () => {
    const { batch } = clients(c);
    c.useScenario("kaniko-unschedulable");
    await batch.createNamespacedJob({ namespace: "default", body: jobNamed("kib-orphan") });
    const pod = await waitFor(() =>
      c.objects("pods", "default").find((p) => p.metadata.labels?.["job-name"] === "kib-orphan"),
    );
    await batch.deleteNamespacedJob({ name: "kib-orphan", namespace: "default" });
    await waitFor(
      () => !c.objects("jobs", "default").some((j) => j.metadata.name === "kib-orphan"),
    );
    const orphan = await waitFor(() =>
      c
        .objects("pods", "default")
        .find((p) => p.metadata.name === pod.metadata.name && !p.metadata.ownerReferences),
    );
    expect(orphan.metadata.deletionTimestamp).toBeUndefined();
    c.useScenario("kaniko-success-cold");
  });

  test("faults: 429 with Retry-After, dropped watch, dropped log, request records", async () => {
    const { core, kc } = clients(c);
    c.resetRequests();
    c.faults.failRequests({
      method: "GET",
      pathPattern: /\/namespaces\/default$/,
      status: 429,
      times: 1,
      retryAfterSeconds: 3,
    });
    const r = await statusOf(core.readNamespace({ name: "default" }));
    expect(r.code).toBe(429);
    expect(r.body).toMatchObject({
      reason: "TooManyRequests",
      details: { retryAfterSeconds: 3 },
      code: 429,
    });
    const ns = await core.readNamespace({ name: "default" });
    expect(ns.metadata?.name).toBe("default");
    expect(
      c.requests.filter((x) => x.path === "/api/v1/namespaces/default").map((x) => x.status),
    ).toEqual([429, 200]);

    c.faults.dropNextWatch({ resource: "events", afterEvents: 2 });
    const got: string[] = [];
    await new Promise<void>((resolve) => {
      void new k8s.Watch(kc).watch(
        "/api/v1/namespaces/default/events",
        {},
        (t) => got.push(t),
        () => resolve(),
      );
    });
    expect(got).toHaveLength(2);
    expect(
      c.requests.some(
        (x) => x.stream === "watch" && x.path === "/api/v1/namespaces/default/events",
      ),
    ).toBe(true);

    const done = c.objects("pods", "default").find((p) => p.status?.phase === "Succeeded")!;
    c.faults.dropNextLog({ afterLines: 3 });
    // A dropped connection: the body ends without its final chunk, so the client sees an error.
    await expect(
      core.readNamespacedPodLog({
        name: done.metadata.name,
        namespace: "default",
        container: "build",
      }),
    ).rejects.toThrow(/terminated|other side closed/);
    expect(c.requests.filter((x) => x.stream === "log").length).toBe(1);
  });
});

describe("v4 attach and a truncated upload", () => {
  let c: TestCluster;
  beforeAll(async () => {
    c = await startTestCluster({ attachProtocols: ["v4.channel.k8s.io"] });
  });
  afterAll(async () => {
    await c.close();
  });

  test("the receiver fails like busybox tar and the Job fails with BackoffLimitExceeded", async () => {
    const { kc, batch } = clients(c);
    c.createNamespace("ci");
    await batch.createNamespacedJob({ namespace: "ci", body: jobNamed("kib-cut") });
    const pod = await waitFor(() => c.objects("pods", "ci").find((p) => initState(p)?.running));
    const stdin = new PassThrough();
    const err = collect();
    const ws = await new k8s.Attach(kc).attach(
      "ci",
      pod.metadata.name,
      "context",
      null,
      err.stream,
      stdin,
      false,
    );
    expect(ws.protocol).toBe("v4.channel.k8s.io");
    const tgz = contextTgz();
    stdin.end(tgz.subarray(0, Math.floor(tgz.length / 2)));
    const failed = await waitFor(() =>
      c
        .objects("pods", "ci")
        .find((p) => p.metadata.name === pod.metadata.name && initState(p)?.terminated),
    );
    expect(initState(failed).terminated).toMatchObject({ exitCode: 1, reason: "Error" });
    expect(failed.status.containerStatuses[0].state.waiting.reason).toBe("PodInitializing");
    const job = await waitFor(() =>
      c.objects("jobs", "ci").find((j) => j.status?.conditions?.length),
    );
    expect(job.status.conditions[0]).toMatchObject({
      type: "Failed",
      reason: "BackoffLimitExceeded",
      message: "Job has reached the specified backoff limit",
    });
    expect(job.status.failed).toBe(1);
    const { core } = clients(c);
    const log = await core.readNamespacedPodLog({
      name: pod.metadata.name,
      namespace: "ci",
      container: "context",
    });
    expect(log).toBe("tar: unexpected end of file\ntar: short read\n");
  });

  test("activeDeadlineSeconds kills and deletes the pod (kaniko-deadline)", async () => {
    const { batch, kc } = clients(c);
    c.useScenario("kaniko-success-cold");
    const j = jobNamed("kib-deadline");
    j.spec.activeDeadlineSeconds = 1;
    // The recorded pod's shape, receiver included: it waits for a context that never comes.
    c.useScenario("kaniko-deadline");
    await batch.createNamespacedJob({ namespace: "default", body: j });
    const pod = await waitFor(() =>
      c.objects("pods", "default").find((p) => p.metadata.labels?.["job-name"] === "kib-deadline"),
    );
    const job = await waitFor(
      () =>
        c
          .objects("jobs", "default")
          .find((x) => x.metadata.name === "kib-deadline" && x.status?.conditions?.length),
      5000,
    );
    expect(job.status.conditions[0]).toMatchObject({
      type: "Failed",
      reason: "DeadlineExceeded",
      message: "Job was active longer than specified deadline",
    });
    await waitFor(
      () => !c.objects("pods", "default").some((p) => p.metadata.name === pod.metadata.name),
      5000,
    );
    const reasons = c.objects("events", "default").map((e) => e.reason);
    expect(reasons).toEqual(
      expect.arrayContaining(["Killing", "SuccessfulDelete", "DeadlineExceeded"]),
    );
    void kc;
  });
});
