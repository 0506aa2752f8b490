/**
 * The test server replays a pod its node ends as the real cluster did (recordings
 * kaniko-kubelet-rejects and kaniko-evicted), through @kubernetes/client-node only.
 */
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { PassThrough } from "node:stream";
import { createGzip } from "node:zlib";
import * as k8s from "@kubernetes/client-node";
import tarStream from "tar-stream";
import { startTestCluster, type TestCluster } from "../support/cluster.js";

const here = dirname(fileURLToPath(import.meta.url));
const JOB = JSON.parse(
  readFileSync(join(here, "../support/recordings/kaniko-success-cold/job.json"), "utf8"),
);

let cluster: TestCluster;
let core: k8s.CoreV1Api;
let batch: k8s.BatchV1Api;
beforeAll(async () => {
  cluster = await startTestCluster();
  cluster.createNamespace("rec");
  const kc = new k8s.KubeConfig();
  kc.loadFromString(cluster.kubeconfig());
  core = kc.makeApiClient(k8s.CoreV1Api);
  batch = kc.makeApiClient(k8s.BatchV1Api);
});
afterAll(async () => {
  await cluster?.close();
});

/** A gzip tar holding one Dockerfile, as a context upload sends it. */
async function dockerfileTgz(): Promise<Buffer> {
  const pack = tarStream.pack();
  pack.entry({ name: "Dockerfile" }, "FROM busybox\n");
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of pack.pipe(createGzip())) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function job(name: string, withReceiver: boolean): k8s.V1Job {
  const j = JSON.parse(JSON.stringify(JOB));
  j.metadata.name = name;
  if (!withReceiver) delete j.spec.template.spec.initContainers;
  return j;
}

async function until<T>(fn: () => Promise<T | undefined>, ms = 8000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error("timed out waiting");
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function podOf(jobName: string): Promise<k8s.V1Pod | undefined> {
  const list = await core.listNamespacedPod({
    namespace: "rec",
    labelSelector: `job-name=${jobName}`,
  });
  return list.items[0];
}

test("kaniko-kubelet-rejects: the pod fails before any container ran, and the Job fails about a second later", async () => {
  cluster.useScenario("kaniko-kubelet-rejects");
  await batch.createNamespacedJob({ namespace: "rec", body: job("rejects", true) });
  const pod = await until(async () => {
    const p = await podOf("rejects");
    return p?.status?.phase === "Failed" ? p : undefined;
  });
  expect(pod.status?.reason).toBe("OutOfcpu");
  expect(pod.status?.message).toBe(
    "Pod was rejected: Node didn't have enough resource: cpu, requested: 64000, used: 100, capacity: 2000",
  );
  expect(pod.status?.containerStatuses).toBeUndefined();
  expect(pod.status?.initContainerStatuses).toBeUndefined();
  expect(pod.status?.conditions).toBeUndefined();
  const events = await core.listNamespacedEvent({
    namespace: "rec",
    fieldSelector: `involvedObject.name=${pod.metadata?.name}`,
  });
  expect(
    events.items.map((e) => `${e.type} ${e.reason} ${e.source?.component}: ${e.message}`),
  ).toContain(
    "Warning OutOfcpu kubelet: Node didn't have enough resource: cpu, requested: 64000, used: 100, capacity: 2000",
  );
  const failed = await until(async () => {
    const j = await batch.readNamespacedJob({ name: "rejects", namespace: "rec" });
    return j.status?.conditions?.find((c) => c.type === "Failed");
  });
  expect(failed.reason).toBe("BackoffLimitExceeded");
  expect(cluster.podNames("rec").filter((n) => n.startsWith("rejects-"))).toHaveLength(1);
});

test("kaniko-evicted: the pod fails Evicted with the kubelet's words, and its logs are gone", async () => {
  cluster.useScenario("kaniko-evicted");
  // The recorded pod, receiver included (the test server replays a recording only for its shape):
  // the context goes in through attach, as in the recording.
  await batch.createNamespacedJob({ namespace: "rec", body: job("evicted", true) });
  const waiting = await until(async () => {
    const p = await podOf("evicted");
    return p?.status?.initContainerStatuses?.[0]?.state?.running ? p : undefined;
  });
  const stdin = new PassThrough();
  const kc = new k8s.KubeConfig();
  kc.loadFromString(cluster.kubeconfig());
  await new k8s.Attach(kc).attach(
    "rec",
    waiting.metadata!.name!,
    "context",
    null,
    new PassThrough(),
    stdin,
    false,
  );
  stdin.end(await dockerfileTgz());
  const pod = await until(async () => {
    const p = await podOf("evicted");
    return p?.status?.phase === "Failed" ? p : undefined;
  });
  expect(pod.status?.reason).toBe("Evicted");
  expect(pod.status?.message).toBe(
    "Pod ephemeral local storage usage exceeds the total limit of containers 2Mi. ",
  );
  const build = pod.status?.containerStatuses?.find((c) => c.name === "build");
  expect(build?.state?.terminated).toMatchObject({ exitCode: 2, reason: "Error" });
  const events = await core.listNamespacedEvent({
    namespace: "rec",
    fieldSelector: `involvedObject.name=${pod.metadata?.name}`,
  });
  expect(events.items.map((e) => `${e.type} ${e.reason}`)).toEqual(
    expect.arrayContaining(["Warning Evicted", "Normal Killing"]),
  );
  // As kube-apiserver passes on the kubelet's GetContainerLogs error: 400 BadRequest.
  const error = await core
    .readNamespacedPodLog({ name: pod.metadata!.name!, namespace: "rec", container: "build" })
    .then(
      () => undefined,
      (e: unknown) => e as { code: number; body: string },
    );
  expect(error?.code).toBe(400);
  const status = JSON.parse(error!.body);
  expect(status).toMatchObject({ kind: "Status", reason: "BadRequest", code: 400 });
  expect(status.message).toBe(`unable to retrieve container logs for ${build?.containerID}`);
  expect(build?.containerID).toMatch(/^containerd:\/\/[0-9a-f]{64}$/);
});
