/**
 * builder: buildkit against the Kubernetes API test server: the rootless pod as the real cluster
 * ran it, outputs, a multi-platform index digest, build secrets that never show, a failing RUN,
 * a cache export failure that still succeeds, and the Pod Security preflight.
 */
import { chmodSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { build } from "../../src/core/build.js";
import { BuildFailure } from "../../src/core/errors.js";
import { parseBuildSpec, type RawInputs } from "../../src/core/spec/spec.js";
import { startTestCluster, type TestCluster } from "../support/cluster.js";
import {
  makeContext,
  NOTHING_LEFT,
  recordingReporter,
  serverRequest,
  waitForEmpty,
} from "./helpers.js";

/** The digest the recorded build wrote to its termination message. */
const RECORDED_DIGEST = readFileSync(
  "test/support/recordings/buildkit-rootless-success-cold/pod-watch.jsonl",
  "utf8",
).match(/"message":"(sha256:[0-9a-f]{64})/)?.[1];

let cluster: TestCluster;
let cluster130: TestCluster;
beforeAll(async () => {
  cluster = await startTestCluster({ gitVersion: "v1.26.0" });
  cluster130 = await startTestCluster({ gitVersion: "v1.30.2" });
  for (const c of [cluster, cluster130]) {
    c.createNamespace("ci-builds");
    c.createNamespace("locked", { "pod-security.kubernetes.io/enforce": "restricted" });
    c.createNamespace("base", { "pod-security.kubernetes.io/enforce": "baseline" });
  }
});
afterAll(async () => {
  await cluster?.close();
  await cluster130?.close();
});
beforeEach(() => {
  for (const c of [cluster, cluster130]) {
    c.resetRequests();
    c.useScenario("buildkit-rootless-success-cold");
  }
});

function spec(c: TestCluster, inputs: RawInputs = {}) {
  return parseBuildSpec(
    {
      builder: "buildkit",
      context: ".",
      tags: "registry.example:5000/acme/api:1.0\nregistry.example:5000/acme/api:latest",
      namespace: "ci-builds",
      kubeconfig: c.kubeconfig(),
      "cache-repo": "registry.example:5000/acme/api/cache",
      // registry.example is no registry the runner could ask; reuse is tested in reuse.test.ts.
      reuse: "false",
      ...inputs,
    },
    { workspace: makeContext(), kubeconfigPaths: [] },
  );
}

test("the rendered pod is the rootless pod that ran on the real cluster, every input mapped", async () => {
  const result = await build(
    spec(cluster, {
      "keep-job": "true",
      "build-args": "VERSION=1.2.3",
      labels: "org.opencontainers.image.title=api",
      target: "runtime",
      platforms: "linux/amd64,linux/arm64",
      "registry-username": "ci",
      "registry-password": "registry-pass-123",
    }),
    { reporter: recordingReporter(), runId: "bk" },
  );
  const job = cluster.objects("jobs", "ci-builds").find((j) => j.metadata.name === result.job);
  const pod = job.spec.template;
  const container = pod.spec.containers[0];
  expect(container.securityContext).toMatchObject({
    runAsUser: 1000,
    runAsGroup: 1000,
    seccompProfile: { type: "Unconfined" },
  });
  expect(container.securityContext.allowPrivilegeEscalation).toBeUndefined();
  // 1.26: AppArmor through the annotation (the field arrived in 1.30).
  expect(pod.metadata.annotations["container.apparmor.security.beta.kubernetes.io/build"]).toBe(
    "unconfined",
  );
  expect(container.env).toEqual(
    expect.arrayContaining([{ name: "BUILDKITD_FLAGS", value: "--oci-worker-no-process-sandbox" }]),
  );
  const mounts = container.volumeMounts.map((m: { mountPath: string }) => m.mountPath);
  expect(mounts).toEqual(
    expect.arrayContaining([
      "/kaniko/buildcontext",
      "/home/user/.local/share/buildkit",
      "/home/user/.docker",
    ]),
  );
  const args: string[] = container.args;
  expect(args).toEqual(
    expect.arrayContaining([
      "--opt",
      "build-arg:VERSION=1.2.3",
      "label:org.opencontainers.image.title=api",
      "target=runtime",
      "platform=linux/amd64,linux/arm64",
      "type=registry,ref=registry.example:5000/acme/api/cache:buildcache",
      "type=registry,ref=registry.example:5000/acme/api/cache:buildcache,mode=max,ignore-error=true",
      '"name=registry.example:5000/acme/api:1.0,registry.example:5000/acme/api:latest",push=true'.replace(
        /^/,
        "type=image,",
      ),
    ]),
  );
  await fetchCleanup(cluster, result.job);
});

test("on a 1.30 server AppArmor is the appArmorProfile field, and the build succeeds with outputs", async () => {
  const reporter = recordingReporter();
  const result = await build(spec(cluster130, { "keep-job": "true" }), { reporter, runId: "bk" });
  const job = cluster130.objects("jobs", "ci-builds").find((j) => j.metadata.name === result.job);
  expect(job.spec.template.spec.containers[0].securityContext.appArmorProfile).toEqual({
    type: "Unconfined",
  });
  expect(
    job.spec.template.metadata.annotations?.[
      "container.apparmor.security.beta.kubernetes.io/build"
    ],
  ).toBeUndefined();
  await fetchCleanup(cluster130, result.job);
  expect(result.digest).toBe(RECORDED_DIGEST);
  expect(result.builder).toBe("buildkit");
  expect(result.image).toBe(`registry.example:5000/acme/api@${RECORDED_DIGEST}`);
  const version = cluster130.requests.filter((r) => r.path === "/version");
  expect(version).toHaveLength(1);
  expect(reporter.buildLines.some((line) => /^#\d+ /.test(line.text))).toBe(true);
  // The first-run cache import miss is harmless: no warning.
  expect(reporter.warnings).toEqual([]);
  expect(await waitForEmpty(cluster130)).toEqual(NOTHING_LEFT);
});

test("insecure-registries: the Job carries the daemon's buildkitd.toml, and the build succeeds", async () => {
  const result = await build(
    spec(cluster, { "keep-job": "true", "insecure-registries": "registry.example:5000" }),
    { reporter: recordingReporter(), runId: "bk" },
  );
  const job = cluster.objects("jobs", "ci-builds").find((j) => j.metadata.name === result.job);
  const container = job.spec.template.spec.containers[0];
  expect(container.env).toEqual(
    expect.arrayContaining([
      {
        name: "BUILDKITD_TOML",
        value: '[registry."registry.example:5000"]\n  http = true\n  insecure = true\n',
      },
    ]),
  );
  expect(container.command[2]).toMatch(
    /^mkdir -p "\$HOME\/\.config\/buildkit" && .* --config=\$HOME\/\.config\/buildkit\/buildkitd\.toml" && buildctl-daemonless\.sh "\$@"/,
  );
  expect(result.digest).toBe(RECORDED_DIGEST);
  await fetchCleanup(cluster, result.job);
  expect(await waitForEmpty(cluster)).toEqual(NOTHING_LEFT);
});

test("a multi-platform build returns the index digest", async () => {
  const index = `sha256:${"ab".repeat(32)}`;
  cluster.useScenario("buildkit-rootless-success-cold", { digest: index });
  const result = await build(spec(cluster, { platforms: "linux/amd64,linux/arm64" }), {
    reporter: recordingReporter(),
    runId: "bk",
  });
  expect(result.digest).toBe(index);
  expect(result.image).toBe(`registry.example:5000/acme/api@${index}`);
});

test("a build secret never appears in the Job, the logs or any output", async () => {
  const value = "npm-token-0123456789-secret";
  const reporter = recordingReporter();
  const observed: string[] = [];
  const result = await build(
    spec(cluster, {
      secrets: `npmrc=//registry.npmjs.org/:_authToken=${value}`,
      "keep-job": "true",
    }),
    {
      reporter,
      runId: "bk",
    },
  );
  const job = cluster.objects("jobs", "ci-builds").find((j) => j.metadata.name === result.job);
  observed.push(JSON.stringify(job), reporter.lines.join("\n"), JSON.stringify(result));
  for (const text of observed) expect(text).not.toContain(value);
  const secret = cluster
    .objects("secrets", "ci-builds")
    .find((s) => s.metadata.name === `${result.job}-secrets`);
  expect(Buffer.from(secret.data.npmrc, "base64").toString()).toContain(value);
  expect(secret.metadata.ownerReferences[0]).toMatchObject({ kind: "Job", name: result.job });
  expect(job.spec.template.spec.containers[0].args).toEqual(
    expect.arrayContaining(["id=npmrc,src=/run/secrets/k8s-image-build/npmrc"]),
  );
  expect(reporter.masked.join("\n")).toContain(value);
  await fetchCleanup(cluster, result.job);
  expect(await waitForEmpty(cluster)).toEqual(NOTHING_LEFT);
});

test("a failing RUN carries BuildKit's last lines", async () => {
  cluster.useScenario("buildkit-rootless-run-fails");
  await expect(
    build(spec(cluster), { reporter: recordingReporter(), runId: "bk" }),
  ).rejects.toMatchObject({
    kind: "build-failed",
    message: expect.stringMatching(
      /exit code 1: error: failed to solve: process .* did not complete successfully: exit code: 3/,
    ),
  });
  expect(await waitForEmpty(cluster)).toEqual(NOTHING_LEFT);
});

test("a cache export that fails still succeeds, with a warning", async () => {
  const recorded = readFileSync(
    "test/support/recordings/buildkit-rootless-success-cold/log-build.txt",
    "utf8",
  )
    .split("\n")
    .filter(Boolean)
    .map((line) => line.slice(line.indexOf(" ") + 1));
  const failingExport = [
    "#11 exporting content cache",
    "#11 preparing build cache for export",
    "#11 ERROR: failed to push registry.example:5000/acme/api/cache:buildcache: unexpected status: 403 Forbidden",
    "------",
    " > exporting content cache:",
    "------",
  ];
  cluster.useScenario("buildkit-rootless-success-cold", {
    buildLog: [...recorded, ...failingExport],
  });
  const reporter = recordingReporter();
  const result = await build(spec(cluster), { reporter, runId: "bk" });
  expect(result.digest).toBe(RECORDED_DIGEST);
  expect(reporter.warnings).toHaveLength(1);
  expect(reporter.warnings[0]).toMatch(/cache/i);
});

test("the Pod Security preflight refuses a restricted namespace before anything is created", async () => {
  const error = await build(spec(cluster, { namespace: "locked" }), {
    reporter: recordingReporter(),
    runId: "bk",
  }).catch((e: unknown) => e as BuildFailure);
  expect(error).toBeInstanceOf(BuildFailure);
  expect((error as BuildFailure).kind).toBe("pod-security");
  expect((error as BuildFailure).message).toMatch(/locked.*restricted.*privileged/);
  expect((error as BuildFailure).message).not.toContain("\n");
  expect(cluster.requests.filter((r) => r.method !== "GET")).toEqual([]);
  // A baseline namespace admits Kaniko: the message offers it.
  const baseline = await build(spec(cluster, { namespace: "base" }), {
    reporter: recordingReporter(),
    runId: "bk",
  }).catch((e: unknown) => e as BuildFailure);
  expect((baseline as BuildFailure).message).toMatch(/builder: kaniko/);
});

async function fetchCleanup(c: TestCluster, job: string) {
  await serverRequest(
    c,
    `/apis/batch/v1/namespaces/ci-builds/jobs/${job}?propagationPolicy=Background`,
    { method: "DELETE" },
  );
}

test("without the right to read namespaces, Pod Security admission's refusal still ends the build at once", async () => {
  // deploy/rbac.yaml's Role without its optional ClusterRole: namespaces cannot be read.
  cluster.addToken("no-namespace-read", { access: "role-only" });
  const started = Date.now();
  const error = await build(
    parseBuildSpec(
      {
        builder: "buildkit",
        context: ".",
        tags: "registry.example:5000/acme/api:1.0",
        namespace: "base",
        kubeconfig: cluster.kubeconfig({ token: "no-namespace-read" }),
      },
      { workspace: makeContext(), kubeconfigPaths: [] },
    ),
    { reporter: recordingReporter(), runId: "bk" },
  ).catch((e: unknown) => e as BuildFailure);
  expect(error).toBeInstanceOf(BuildFailure);
  expect((error as BuildFailure).kind).toBe("pod-security");
  expect((error as BuildFailure).message).toMatch(
    /^the Job cannot create its pod: pods "kib-[a-z0-9]+-[a-z0-9]+" is forbidden: violates PodSecurity "baseline:latest": .*seccompProfile/,
  );
  expect(Date.now() - started).toBeLessThan(5000);
  expect(await waitForEmpty(cluster, "base")).toEqual(NOTHING_LEFT);
});

test("the context arrives owned by the rootless builder's user, so a 0600 file stays readable to it", async () => {
  const context = makeContext({ "private.conf": "only for the build\n" });
  chmodSync(join(context, "private.conf"), 0o600);
  const result = await build(
    parseBuildSpec(
      {
        builder: "buildkit",
        context: ".",
        tags: "registry.example:5000/acme/api:1.0",
        namespace: "ci-builds",
        kubeconfig: cluster.kubeconfig(),
      },
      { workspace: context, kubeconfigPaths: [] },
    ),
    { reporter: recordingReporter(), runId: "bk" },
  );
  expect(result.digest).toBe(RECORDED_DIGEST);
  const received = cluster.receivedContext(cluster.podNames("ci-builds").at(-1)!)!;
  const stat = statSync(join(received, "private.conf"));
  // The receiver unpacks as root and keeps the archive's owner (the test server's tar runs as root too).
  if (process.getuid?.() === 0) expect([stat.uid, stat.gid]).toEqual([1000, 1000]);
  expect(stat.mode & 0o777).toBe(0o600);
});
