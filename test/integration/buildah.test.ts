/**
 * builder: buildah against the Kubernetes API test server, replaying the real cluster's
 * buildah-* recordings: the pod as it ran there, every input in the Job, the outputs, the failing
 * RUN's last lines, build secrets that never show, the Pod Security preflight, and nothing left.
 */
import { readFileSync } from "node:fs";
import { build, renderBuildManifests } from "../../src/core/build.js";
import { BuildFailure, InputError } from "../../src/core/errors.js";
import { parseBuildSpec, type RawInputs } from "../../src/core/spec/spec.js";
import { startTestCluster, type TestCluster } from "../support/cluster.js";
import {
  failureOf,
  makeContext,
  NOTHING_LEFT,
  recordingReporter,
  serverRequest,
  waitForEmpty,
} from "./helpers.js";

const RECORDINGS = "test/support/recordings";
/** The digest the recorded `buildah push --digestfile` wrote (equal to the registry's). */
const RECORDED_DIGEST = readFileSync(
  `${RECORDINGS}/buildah-success-cold/pod-watch.jsonl`,
  "utf8",
).match(/"message":"(sha256:[0-9a-f]{64})/)?.[1];
const RECORDED_JOB = JSON.parse(
  readFileSync(`${RECORDINGS}/buildah-success-cold/job.json`, "utf8"),
);

function recordedLog(scenario: string): string[] {
  return readFileSync(`${RECORDINGS}/${scenario}/log-build.txt`, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((line) => line.slice(line.indexOf(" ") + 1));
}

let cluster: TestCluster;
let cluster130: TestCluster;
beforeAll(async () => {
  cluster = await startTestCluster({ gitVersion: "v1.26.0" });
  cluster130 = await startTestCluster({ gitVersion: "v1.30.2" });
  for (const c of [cluster, cluster130]) {
    c.createNamespace("ci-builds");
    c.createNamespace("base", { "pod-security.kubernetes.io/enforce": "baseline" });
    c.createNamespace("locked", { "pod-security.kubernetes.io/enforce": "restricted" });
  }
});
afterAll(async () => {
  await cluster?.close();
  await cluster130?.close();
});
beforeEach(() => {
  for (const c of [cluster, cluster130]) {
    c.resetRequests();
    c.useScenario("buildah-success-cold");
  }
});

function spec(c: TestCluster, inputs: RawInputs = {}, workspace = makeContext()) {
  return parseBuildSpec(
    {
      builder: "buildah",
      context: ".",
      tags: "registry.example:5000/acme/api:1.0\nregistry.example:5000/acme/api:latest",
      namespace: "ci-builds",
      kubeconfig: c.kubeconfig(),
      "cache-repo": "registry.example:5000/acme/api/cache",
      // registry.example is no registry the runner could ask; reuse is tested in reuse.test.ts.
      reuse: "false",
      ...inputs,
    },
    { workspace, kubeconfigPaths: [] },
  );
}

function jobOf(c: TestCluster, name: string) {
  return c.objects("jobs", "ci-builds").find((j) => j.metadata.name === name);
}

test("a cold build: the recorded pod shape, the context arrived, the log in order, the digest, nothing left", async () => {
  const reporter = recordingReporter();
  const result = await build(spec(cluster, { "keep-job": "true" }), { reporter, runId: "bh" });
  const job = jobOf(cluster, result.job);
  const pod = job.spec.template;
  const container = pod.spec.containers[0];
  const recorded = RECORDED_JOB.spec.template;
  expect(container.securityContext).toEqual(recorded.spec.containers[0].securityContext);
  expect(pod.metadata.annotations).toEqual(recorded.metadata.annotations);
  expect(container.image).toBe("quay.io/containers/buildah:v1.46.1");
  expect(pod.spec.initContainers.map((c: { name: string }) => c.name)).toEqual(["context"]);
  expect(pod.spec.volumes).toEqual(expect.arrayContaining([{ name: "containers", emptyDir: {} }]));
  const received = cluster.receivedContext(cluster.podNames("ci-builds").at(-1)!)!;
  expect(readFileSync(`${received}/Dockerfile`, "utf8")).toContain("FROM busybox");

  // The recorded log, each line once and in order, with its cache pushes.
  const shown = reporter.buildLines.filter((l) => l.container === "build").map((l) => l.text);
  expect(shown).toEqual(recordedLog("buildah-success-cold"));
  expect(shown.filter((l) => l.startsWith("--> Pushing cache"))).toHaveLength(3);
  expect(reporter.warnings).toEqual([]);

  expect(result.digest).toBe(RECORDED_DIGEST);
  expect(result.image).toBe(`registry.example:5000/acme/api@${RECORDED_DIGEST}`);
  expect(result.builder).toBe("buildah");
  expect(result.tags).toEqual([
    "registry.example:5000/acme/api:1.0",
    "registry.example:5000/acme/api:latest",
  ]);

  await deleteJob(cluster, result.job);
  expect(await waitForEmpty(cluster)).toEqual(NOTHING_LEFT);
});

test("on a 1.30 server AppArmor is the field, not the annotation", async () => {
  const result = await build(spec(cluster130, { "keep-job": "true" }), {
    reporter: recordingReporter(),
    runId: "bh",
  });
  const pod = jobOf(cluster130, result.job).spec.template;
  expect(pod.spec.containers[0].securityContext.appArmorProfile).toEqual({ type: "Unconfined" });
  expect(
    pod.metadata.annotations?.["container.apparmor.security.beta.kubernetes.io/build"],
  ).toBeUndefined();
  expect(result.digest).toBe(RECORDED_DIGEST);
  await deleteJob(cluster130, result.job);
  expect(await waitForEmpty(cluster130)).toEqual(NOTHING_LEFT);
});

test("a failing RUN: exit 3 passed through, Buildah's last line in the error, its last lines carried, nothing left", async () => {
  cluster.useScenario("buildah-run-fails");
  const error = await failureOf(
    build(spec(cluster), { reporter: recordingReporter(), runId: "bh" }),
  );
  expect(error).toBeInstanceOf(BuildFailure);
  expect(error.kind).toBe("build-failed");
  expect(error.message).toBe(
    'the build failed with exit code 3: Error: building at STEP "RUN echo "about to fail" && echo "compile error: missing semicolon" >&2 && exit 3": exit status 3',
  );
  expect(error.logTail).toEqual(expect.arrayContaining(["compile error: missing semicolon"]));
  expect(await waitForEmpty(cluster)).toEqual(NOTHING_LEFT);
});

describe("every input reaches the Job", () => {
  const dockerfile = { "docker/api.Dockerfile": "FROM busybox\n" };
  test.each<[string, RawInputs, string[]]>([
    [
      "build-args",
      { "build-args": "VERSION=1.2.3\nFLAGS=a b" },
      ["--build-arg=VERSION=1.2.3", "--build-arg=FLAGS=a b"],
    ],
    [
      "labels",
      { labels: "org.opencontainers.image.title=api" },
      ["--label=org.opencontainers.image.title=api"],
    ],
    ["target", { target: "runtime" }, ["--target=runtime"]],
    ["one platform", { platforms: "linux/arm64" }, ["--platform=linux/arm64"]],
    [
      "cache-repo and cache-ttl",
      { "cache-ttl": "168h" },
      [
        "--layers",
        "--cache-from=registry.example:5000/acme/api/cache",
        "--cache-to=registry.example:5000/acme/api/cache",
        "--cache-ttl=168h",
      ],
    ],
    [
      "file",
      { file: "docker/api.Dockerfile" },
      ["-f", "/kaniko/buildcontext/docker/api.Dockerfile"],
    ],
    [
      "secrets",
      { secrets: "npmrc=token-value-1" },
      ["--secret=id=npmrc,src=/run/secrets/k8s-image-build/npmrc"],
    ],
    [
      "tags",
      {},
      ["-t", "registry.example:5000/acme/api:1.0", "-t", "registry.example:5000/acme/api:latest"],
    ],
  ])("%s", (_name, inputs, expected) => {
    const s = spec(cluster, inputs, makeContext(inputs.file ? dockerfile : {}));
    const { job } = renderBuildManifests(s, "bh");
    const container = job.spec!.template.spec!.containers[0]!;
    expect(container.args).toEqual(expect.arrayContaining(expected));
    expect(JSON.stringify(job)).not.toContain("token-value-1");
  });

  test.each<[string, RawInputs, Record<string, string>]>([
    ["push: false", { push: "false" }, { KIB_PUSH: "false" }],
    [
      "insecure-registries: a registries.conf drop-in, and the push without TLS",
      { "insecure-registries": "registry.example:5000" },
      {
        KIB_INSECURE_REGISTRIES: "registry.example:5000",
        KIB_REGISTRIES_CONF:
          'unqualified-search-registries = ["docker.io"]\n\n[[registry]]\nlocation = "registry.example:5000"\ninsecure = true',
      },
    ],
    [
      "registry credentials: REGISTRY_AUTH_FILE names the Secret's config.json",
      { "registry-username": "ci", "registry-password": "pw-123" },
      { REGISTRY_AUTH_FILE: "/run/containers/k8s-image-build/config.json" },
    ],
  ])("%s", (_name, inputs, env) => {
    const { job } = renderBuildManifests(spec(cluster, inputs), "bh");
    const container = job.spec!.template.spec!.containers[0]!;
    for (const [name, value] of Object.entries(env))
      expect(container.env).toEqual(expect.arrayContaining([{ name, value }]));
  });

  test.each<[RawInputs, RegExp]>([
    [
      { platforms: "linux/amd64,linux/arm64" },
      /^input "platforms": .*one platform.*builder: buildkit/,
    ],
    [
      { "cache-from": "type=registry,ref=registry.example:5000/acme/api:cache" },
      /^input "cache-from": .*builder: buildkit or dind/,
    ],
    [
      { "cache-to": "type=registry,ref=registry.example:5000/acme/api:cache" },
      /^input "cache-to": .*"cache-repo"/,
    ],
  ])("refused before the cluster: %o", (inputs, message) => {
    expect(() => spec(cluster, inputs)).toThrow(InputError);
    expect(() => spec(cluster, inputs)).toThrow(message);
  });
});

test("a build secret never appears in the Job, the log or the result", async () => {
  const value = "npm-token-0123456789-secret";
  const reporter = recordingReporter();
  const result = await build(spec(cluster, { secrets: `npmrc=${value}`, "keep-job": "true" }), {
    reporter,
    runId: "bh",
  });
  const job = jobOf(cluster, result.job);
  for (const text of [JSON.stringify(job), reporter.lines.join("\n"), JSON.stringify(result)])
    expect(text).not.toContain(value);
  expect(job.spec.template.spec.containers[0].volumeMounts).toEqual(
    expect.arrayContaining([
      { name: "build-secrets", mountPath: "/run/secrets/k8s-image-build", readOnly: true },
    ]),
  );
  expect(reporter.masked).toContain(value);
  await deleteJob(cluster, result.job);
  expect(await waitForEmpty(cluster)).toEqual(NOTHING_LEFT);
});

test("--dry-run manifests are accepted by the API server (server-side dry run), and nothing is created", async () => {
  const s = spec(cluster, {
    "registry-username": "ci",
    "registry-password": "pw-123",
    secrets: "npmrc=abc",
    "build-args": "A=1",
    namespace: "ci-builds",
  });
  const { job, secrets } = renderBuildManifests(s, "bh");
  const post = (path: string, body: unknown) =>
    serverRequest(cluster, `${path}?dryRun=All&fieldValidation=Strict`, {
      method: "POST",
      body,
      token: cluster.token,
    });
  for (const secret of secrets)
    expect((await post("/api/v1/namespaces/ci-builds/secrets", secret)).status).toBe(201);
  const answer = await post("/apis/batch/v1/namespaces/ci-builds/jobs", job);
  expect([answer.status, answer.status === 201 ? "" : await answer.text()]).toEqual([201, ""]);
  expect(await waitForEmpty(cluster)).toEqual(NOTHING_LEFT);
});

test("the Pod Security preflight refuses baseline and restricted namespaces before submitting", async () => {
  for (const namespace of ["locked", "base"]) {
    const error = await failureOf(
      build(spec(cluster, { namespace }), {
        reporter: recordingReporter(),
        runId: "bh",
      }),
    );
    expect(error).toBeInstanceOf(BuildFailure);
    expect(error.kind).toBe("pod-security");
    expect(error.message).toMatch(
      new RegExp(
        `^namespace "${namespace}" enforces Pod Security level "${namespace === "base" ? "baseline" : "restricted"}".*buildah builder's pod needs "privileged"`,
      ),
    );
  }
  expect(cluster.requests.filter((r) => r.method !== "GET")).toEqual([]);
});

async function deleteJob(c: TestCluster, job: string) {
  await serverRequest(
    c,
    `/apis/batch/v1/namespaces/ci-builds/jobs/${job}?propagationPolicy=Background`,
    {
      method: "DELETE",
      token: c.token,
    },
  );
}

test("without the right to read namespaces, Pod Security admission's refusal of the pod ends the build at once", async () => {
  cluster.addToken("buildah-no-namespace-read", {
    forbid: [{ verb: "get", resource: "namespaces" }],
  });
  const error = await failureOf(
    build(
      parseBuildSpec(
        {
          builder: "buildah",
          context: ".",
          tags: "registry.example:5000/acme/api:1.0",
          namespace: "base",
          kubeconfig: cluster.kubeconfig({ token: "buildah-no-namespace-read" }),
        },
        { workspace: makeContext(), kubeconfigPaths: [] },
      ),
      { reporter: recordingReporter(), runId: "bh" },
    ),
  );
  expect(error.kind).toBe("pod-security");
  expect(error.message).toMatch(
    /^the Job cannot create its pod: pods "kib-[a-z0-9]+-[a-z0-9]+" is forbidden: violates PodSecurity "baseline:latest": .*seccompProfile/,
  );
  expect(await waitForEmpty(cluster, "base")).toEqual(NOTHING_LEFT);
});
