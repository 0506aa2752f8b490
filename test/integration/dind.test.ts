/**
 * builder: dind against the Kubernetes API test server, replaying the real cluster's dind-*
 * recordings: refused without allow-privileged, the privileged pod as it ran there, every input in
 * the Job, the outputs, the failing RUN's last lines, the Pod Security preflight, and nothing left.
 */
import { readFileSync } from "node:fs";
import { build, renderBuildManifests } from "../../src/core/build.js";
import { BuildFailure, InputError } from "../../src/core/errors.js";
import { parseBuildSpec, type RawInputs } from "../../src/core/spec/spec.js";
import type { BuildSpec } from "../../src/core/types.js";
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
/** The digest the recorded `docker push` printed (equal to the registry's). */
const RECORDED_DIGEST = readFileSync(
  `${RECORDINGS}/dind-success-cold/pod-watch.jsonl`,
  "utf8",
).match(/"message":"(sha256:[0-9a-f]{64})/)?.[1];
const RECORDED_JOB = JSON.parse(readFileSync(`${RECORDINGS}/dind-success-cold/job.json`, "utf8"));

function recordedLog(scenario: string): string[] {
  return (
    readFileSync(`${RECORDINGS}/${scenario}/log-build.txt`, "utf8")
      .split("\n")
      .filter(Boolean)
      .map((line) => line.slice(line.indexOf(" ") + 1))
      // "Sending build context … 4.096kB\r": the log follower ends a line at the carriage return.
      .map((line) => line.replace(/\r$/, ""))
  );
}

let cluster: TestCluster;
beforeAll(async () => {
  cluster = await startTestCluster();
  cluster.createNamespace("ci-builds");
  cluster.createNamespace("base", { "pod-security.kubernetes.io/enforce": "baseline" });
  cluster.createNamespace("locked", { "pod-security.kubernetes.io/enforce": "restricted" });
});
afterAll(async () => {
  await cluster?.close();
});
beforeEach(() => {
  cluster.resetRequests();
  cluster.useScenario("dind-success-cold");
});

function spec(inputs: RawInputs = {}, workspace = makeContext()): BuildSpec {
  return parseBuildSpec(
    {
      builder: "dind",
      "allow-privileged": "true",
      context: ".",
      tags: "registry.example:5000/acme/api:1.0\nregistry.example:5000/acme/api:latest",
      namespace: "ci-builds",
      kubeconfig: cluster.kubeconfig(),
      ...inputs,
    },
    { workspace, kubeconfigPaths: [] },
  );
}

test("without allow-privileged the build is refused in one line, before the cluster is touched", async () => {
  let error: unknown;
  try {
    spec({ "allow-privileged": "" });
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(InputError);
  expect((error as InputError).message).toBe(
    'input "allow-privileged": builder: dind runs a privileged container (root on the node for anything that escapes the build); ' +
      "set allow-privileged: true to accept that, or use a builder without one: kaniko, buildkit, buildah",
  );
  // A spec built without the parser (library use) is refused by build() itself.
  const unchecked = { ...spec(), allowPrivileged: false };
  await expect(
    build(unchecked, { reporter: recordingReporter(), runId: "dd" }),
  ).rejects.toMatchObject({ name: "InputError", input: "allow-privileged" });
  expect(cluster.requests).toEqual([]);
});

test("a cold build: the recorded privileged pod, dockerd's start-up time first in the log, the pushed digest, nothing left", async () => {
  const reporter = recordingReporter();
  const result = await build(spec({ "keep-job": "true" }), { reporter, runId: "dd" });
  const job = cluster.objects("jobs", "ci-builds").find((j) => j.metadata.name === result.job);
  const container = job.spec.template.spec.containers[0];
  expect(container.securityContext).toEqual(
    RECORDED_JOB.spec.template.spec.containers[0].securityContext,
  );
  expect(container.image).toBe("docker.io/library/docker:29.9.2-dind");
  expect(job.spec.template.spec.volumes).toEqual(
    expect.arrayContaining([{ name: "docker", emptyDir: {} }]),
  );
  const received = cluster.receivedContext(cluster.podNames("ci-builds").at(-1)!)!;
  expect(readFileSync(`${received}/app.txt`, "utf8")).toBe("hello from the build context\n");

  const shown = reporter.buildLines.filter((l) => l.container === "build").map((l) => l.text);
  expect(shown).toEqual(recordedLog("dind-success-cold"));
  expect(shown[0]).toMatch(/^dockerd ready after \d+ ms$/);
  expect(reporter.warnings).toEqual([]);

  expect(result.digest).toBe(RECORDED_DIGEST);
  expect(shown.at(-1)).toContain(`digest: ${RECORDED_DIGEST}`);
  expect(result.image).toBe(`registry.example:5000/acme/api@${RECORDED_DIGEST}`);
  expect(result.builder).toBe("dind");

  await deleteJob(result.job);
  expect(await waitForEmpty(cluster)).toEqual(NOTHING_LEFT);
});

test("a failing RUN: the command and its exit code in the error (no colour codes), the step's lines carried, nothing left", async () => {
  cluster.useScenario("dind-run-fails");
  const error = await failureOf(build(spec(), { reporter: recordingReporter(), runId: "dd" }));
  expect(error).toBeInstanceOf(BuildFailure);
  expect(error.kind).toBe("build-failed");
  expect(error.message).toBe(
    'the build failed with exit code 3: The command \'/bin/sh -c echo "about to fail" && echo "compile error: missing semicolon" >&2 && exit 3\' returned a non-zero code: 3',
  );
  expect(error.logTail.slice(-3)).toEqual([
    "about to fail",
    "compile error: missing semicolon",
    'The command \'/bin/sh -c echo "about to fail" && echo "compile error: missing semicolon" >&2 && exit 3\' returned a non-zero code: 3',
  ]);
  expect(await waitForEmpty(cluster)).toEqual(NOTHING_LEFT);
});

describe("every input reaches the Job", () => {
  test.each<[string, RawInputs, string[]]>([
    ["build-args", { "build-args": "VERSION=1.2.3" }, ["--build-arg", "VERSION=1.2.3"]],
    ["labels", { labels: "org.example.team=web" }, ["--label", "org.example.team=web"]],
    ["target", { target: "runtime" }, ["--target", "runtime"]],
    [
      "platforms",
      { platforms: "linux/amd64,linux/arm64" },
      ["--platform", "linux/amd64,linux/arm64"],
    ],
    [
      "secrets (through BuildKit)",
      { secrets: "npmrc=token-value-1" },
      ["--secret", "id=npmrc,src=/run/secrets/k8s-image-build/npmrc"],
    ],
    [
      "cache-repo",
      { "cache-repo": "registry.example:5000/acme/api/cache" },
      [
        "--cache-from",
        "type=registry,ref=registry.example:5000/acme/api/cache:buildcache",
        "--cache-to",
        "type=registry,ref=registry.example:5000/acme/api/cache:buildcache,mode=max,ignore-error=true",
      ],
    ],
    [
      "cache-from / cache-to",
      {
        "cache-from": "registry.example:5000/acme/api:cache",
        "cache-to": "type=registry,ref=registry.example:5000/acme/api:cache",
      },
      [
        "--cache-from",
        "type=registry,ref=registry.example:5000/acme/api:cache",
        "--cache-to",
        "type=registry,ref=registry.example:5000/acme/api:cache,ignore-error=true",
      ],
    ],
    [
      "tags",
      {},
      ["-t", "registry.example:5000/acme/api:1.0", "-t", "registry.example:5000/acme/api:latest"],
    ],
  ])("%s", (_name, inputs, expected) => {
    const { job } = renderBuildManifests(spec(inputs), "dd");
    const container = job.spec!.template.spec!.containers[0]!;
    expect(container.args).toEqual(expect.arrayContaining(expected));
    expect(JSON.stringify(job)).not.toContain("token-value-1");
  });

  test.each<[string, RawInputs, Record<string, string>]>([
    ["push: false", { push: "false" }, { KIB_PUSH: "false" }],
    [
      "insecure-registries: dockerd's --insecure-registry",
      { "insecure-registries": "registry.example:5000,mirror.local" },
      {
        KIB_DOCKERD_FLAGS:
          "--insecure-registry=registry.example:5000 --insecure-registry=mirror.local",
      },
    ],
  ])("%s", (_name, inputs, env) => {
    const { job } = renderBuildManifests(spec(inputs), "dd");
    const container = job.spec!.template.spec!.containers[0]!;
    for (const [name, value] of Object.entries(env))
      expect(container.env).toEqual(expect.arrayContaining([{ name, value }]));
  });

  test("registry credentials: the Secret's config.json in the Docker CLI's config directory", () => {
    const { job } = renderBuildManifests(
      spec({ "registry-username": "ci", "registry-password": "pw-123" }),
      "dd",
    );
    expect(job.spec!.template.spec!.containers[0]!.volumeMounts).toEqual(
      expect.arrayContaining([
        {
          name: "registry-credentials",
          mountPath: "/root/.docker/config.json",
          subPath: "config.json",
          readOnly: true,
        },
      ]),
    );
  });

  test("cache-ttl is refused, naming the builders that take it", () => {
    expect(() =>
      spec({ "cache-repo": "registry.example:5000/acme/api/cache", "cache-ttl": "24h" }),
    ).toThrow(/^input "cache-ttl": .*builder: kaniko or buildah/);
  });
});

test("--dry-run manifests are accepted by the API server (server-side dry run)", async () => {
  const { job, secrets } = renderBuildManifests(
    spec({ "registry-username": "ci", "registry-password": "pw-123", secrets: "npmrc=abc" }),
    "dd",
  );
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
  for (const [namespace, level] of [
    ["base", "baseline"],
    ["locked", "restricted"],
  ]) {
    const error = await failureOf(
      build(spec({ namespace }), {
        reporter: recordingReporter(),
        runId: "dd",
      }),
    );
    expect(error).toBeInstanceOf(BuildFailure);
    expect(error.kind).toBe("pod-security");
    expect(error.message).toMatch(
      new RegExp(
        `^namespace "${namespace}" enforces Pod Security level "${level}".*dind builder's pod needs "privileged"`,
      ),
    );
  }
  expect(cluster.requests.filter((r) => r.method !== "GET")).toEqual([]);
});

async function deleteJob(job: string) {
  await serverRequest(
    cluster,
    `/apis/batch/v1/namespaces/ci-builds/jobs/${job}?propagationPolicy=Background`,
    { method: "DELETE", token: cluster.token },
  );
}
