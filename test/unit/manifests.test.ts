import * as k8s from "@kubernetes/client-node";
import { Job } from "kubernetes-models/batch/v1/Job";
import { Secret } from "kubernetes-models/v1/Secret";
import { parseAllDocuments } from "yaml";
import { KANIKO_IMAGE } from "../../src/core/builders/kaniko.js";
import {
  dockerConfigJson,
  labelSafe,
  manifestsToYaml,
  newBuildIdentity,
  renderManifests,
  type RenderedManifests,
} from "../../src/core/job/manifests.js";
import type { BuildIdentity } from "../../src/core/types.js";
import { specOf } from "./spec-fixture.js";

const baseSpec = specOf;

const ID: BuildIdentity = { jobName: "kib-abcd1234", runId: "123456789-1", buildId: "abcd1234" };
const ENV = { hasRegistryCredentials: false, hasBuildSecrets: false };
const LABELS = {
  "app.kubernetes.io/name": "k8s-image-build",
  "app.kubernetes.io/managed-by": "k8s-image-build",
  "app.kubernetes.io/component": "kaniko",
  "k8s-image-build/run-id": "123456789-1",
  "k8s-image-build/build-id": "abcd1234",
};

// ---------------------------------------------------------------------------------------------
// What the API server would refuse: kubernetes-models' schema validation (types, required
// fields, enums), plus unknown fields (checked against client-node's generated models, which
// follow the OpenAPI spec) and object/container/volume names.
// ---------------------------------------------------------------------------------------------

type ModelClass = { getAttributeTypeMap(): { name: string; baseName: string; type: string }[] };
const models = k8s as unknown as Record<string, ModelClass | undefined>;
const PRIMITIVES: Record<string, string> = {
  string: "string",
  number: "number",
  boolean: "boolean",
};

function unknownFields(value: unknown, type: string, path: string, out: string[]): void {
  if (value === undefined || value === null) return;
  const array = /^Array<(.+)>$/.exec(type);
  if (array) {
    if (!Array.isArray(value)) out.push(`${path}: expected a list`);
    else value.forEach((v, i) => unknownFields(v, array[1]!, `${path}[${i}]`, out));
    return;
  }
  const map = /^\{ \[key: string\]: (.+); \}$/.exec(type);
  if (map) {
    for (const [k, v] of Object.entries(value as Record<string, unknown>))
      unknownFields(v, map[1]!, `${path}.${k}`, out);
    return;
  }
  if (type in PRIMITIVES) {
    if (typeof value !== PRIMITIVES[type]) out.push(`${path}: expected ${type}`);
    return;
  }
  const model = models[type];
  if (!model || typeof model.getAttributeTypeMap !== "function") return; // IntOrString, Date, any
  const attributes = model.getAttributeTypeMap();
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    const attribute = attributes.find((a) => a.baseName === k);
    if (!attribute) out.push(`${path}.${k}: unknown field`);
    else unknownFields(v, attribute.type, `${path}.${k}`, out);
  }
}

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

function expectApiValid(m: RenderedManifests): void {
  expect(() => new Job(m.job as never).validate()).not.toThrow();
  for (const s of m.secrets) expect(() => new Secret(s as never).validate()).not.toThrow();

  const problems: string[] = [];
  unknownFields(m.job, "V1Job", "job", problems);
  m.secrets.forEach((s, i) => unknownFields(s, "V1Secret", `secrets[${i}]`, problems));
  expect(problems).toEqual([]);

  const names = [m.job.metadata!.name!, ...m.secrets.map((s) => s.metadata!.name!)];
  for (const name of names) expect(name.length <= 253 && DNS1123_SUBDOMAIN.test(name)).toBe(true);
  // Pod names get a 5-character suffix from the Job controller; the Job name must leave room.
  expect(m.job.metadata!.name!.length).toBeLessThanOrEqual(63 - 6);
  const pod = m.job.spec!.template.spec!;
  const containers = [...(pod.initContainers ?? []), ...pod.containers];
  for (const c of containers) expect(DNS1123_LABEL.test(c.name)).toBe(true);
  for (const v of pod.volumes ?? []) expect(DNS1123_LABEL.test(v.name)).toBe(true);
  const volumeNames = new Set((pod.volumes ?? []).map((v) => v.name));
  expect(volumeNames.size).toBe((pod.volumes ?? []).length);
  for (const c of containers)
    for (const mount of c.volumeMounts ?? []) expect(volumeNames.has(mount.name)).toBe(true);
  for (const s of m.secrets) {
    for (const key of Object.keys(s.data ?? {})) expect(/^[-._a-zA-Z0-9]+$/.test(key)).toBe(true);
  }
  for (const labels of [m.job.metadata!.labels!, m.job.spec!.template.metadata!.labels!]) {
    for (const v of Object.values(labels))
      expect(/^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/.test(v) && v.length <= 63).toBe(true);
  }
}

// ---------------------------------------------------------------------------------------------

describe("newBuildIdentity", () => {
  test("kib-<8 lowercase alnum>, build id the same suffix", () => {
    const id = newBuildIdentity("42-1", () => "x1y2z3w4");
    expect(id).toEqual({ jobName: "kib-x1y2z3w4", runId: "42-1", buildId: "x1y2z3w4" });
  });

  test("random by default, distinct", () => {
    const ids = new Set(Array.from({ length: 50 }, () => newBuildIdentity("local").jobName));
    expect(ids.size).toBe(50);
    for (const name of ids) expect(name).toMatch(/^kib-[a-z0-9]{8}$/);
  });

  test("a bad random source is refused", () => {
    expect(() => newBuildIdentity("x", () => "ABC")).toThrow(
      'build id "ABC" is not 8 lowercase letters or digits',
    );
  });

  test.each([
    ["123456789-1", "123456789-1"],
    ["local", "local"],
    ["gitlab/job#77", "gitlab-job-77"],
    ["--x--", "x"],
    ["", "unknown"],
    ["a".repeat(80), "a".repeat(63)],
  ])("run id %j → label %j", (runId, label) => {
    expect(labelSafe(runId)).toBe(label);
    expect(newBuildIdentity(runId, () => "aaaaaaaa").runId).toBe(label);
  });
});

describe("renderManifests", () => {
  test("minimal Kaniko build: the whole Job", () => {
    const m = renderManifests(baseSpec(), ID, ENV);
    expect(m.secrets).toEqual([]);
    expect(m.job).toEqual({
      apiVersion: "batch/v1",
      kind: "Job",
      metadata: { name: "kib-abcd1234", labels: LABELS },
      spec: {
        backoffLimit: 0,
        activeDeadlineSeconds: 1800,
        ttlSecondsAfterFinished: 600,
        template: {
          metadata: { labels: LABELS },
          spec: {
            restartPolicy: "Never",
            automountServiceAccountToken: false,
            terminationGracePeriodSeconds: 5,
            initContainers: [
              {
                name: "context",
                image: "docker.io/library/busybox:1.37.0",
                command: ["tar", "-xzf", "-", "-C", "/kaniko/buildcontext"],
                stdin: true,
                stdinOnce: true,
                resources: {
                  requests: { cpu: "100m", memory: "32Mi" },
                  limits: { cpu: "1", memory: "128Mi" },
                },
                volumeMounts: [{ name: "workspace", mountPath: "/kaniko/buildcontext" }],
              },
            ],
            containers: [
              {
                name: "build",
                image: KANIKO_IMAGE,
                args: [
                  "--context=dir:///kaniko/buildcontext",
                  "--dockerfile=/kaniko/buildcontext/Dockerfile",
                  "--destination=ghcr.io/acme/web:1",
                  "--digest-file=/dev/termination-log",
                ],
                volumeMounts: [{ name: "workspace", mountPath: "/kaniko/buildcontext" }],
                terminationMessagePath: "/dev/termination-log",
                terminationMessagePolicy: "File",
              },
            ],
            volumes: [{ name: "workspace", emptyDir: {} }],
          },
        },
      },
    });
    expectApiValid(m);
  });

  test("registry credentials: a dockerconfigjson Secret, mounted as config.json", () => {
    const spec = baseSpec({
      namespace: "ci-builds",
      registryAuth: {
        kind: "basic",
        username: "bot",
        password: "TOPSECRET",
        registries: ["ghcr.io"],
      },
    });
    const m = renderManifests(spec, ID, ENV);
    expect(m.secrets).toHaveLength(1);
    const secret = m.secrets[0]!;
    expect(secret.metadata).toEqual({
      name: "kib-abcd1234-registry",
      namespace: "ci-builds",
      labels: LABELS,
    });
    expect(secret.type).toBe("kubernetes.io/dockerconfigjson");
    const config = JSON.parse(
      Buffer.from(secret.data![".dockerconfigjson"]!, "base64").toString("utf8"),
    );
    expect(config).toEqual({
      auths: {
        "ghcr.io": {
          username: "bot",
          password: "TOPSECRET",
          auth: Buffer.from("bot:TOPSECRET").toString("base64"),
        },
      },
    });
    const pod = m.job.spec!.template.spec!;
    expect(pod.volumes).toContainEqual({
      name: "registry-credentials",
      secret: {
        secretName: "kib-abcd1234-registry",
        items: [{ key: ".dockerconfigjson", path: "config.json" }],
      },
    });
    expect(pod.containers[0]!.env).toEqual([{ name: "DOCKER_CONFIG", value: "/kaniko/.docker" }]);
    expect(m.job.metadata!.namespace).toBe("ci-builds");
    expect(JSON.stringify(m.job)).not.toContain("TOPSECRET");
    expectApiValid(m);
  });

  test("build secrets: an Opaque Secret, one key per id, values only there", () => {
    const spec = baseSpec({
      secrets: [
        { id: "npmrc", value: Buffer.from("TOPSECRET-1") },
        { id: "cert.pem", value: Buffer.from([0, 255, 1]) },
      ],
    });
    const m = renderManifests(spec, ID, ENV);
    const secret = m.secrets.find((s) => s.metadata!.name === "kib-abcd1234-secrets")!;
    expect(secret.type).toBe("Opaque");
    expect(secret.metadata!.labels).toEqual(LABELS);
    expect(secret.data).toEqual({
      npmrc: Buffer.from("TOPSECRET-1").toString("base64"),
      "cert.pem": Buffer.from([0, 255, 1]).toString("base64"),
    });
    expect(m.job.spec!.template.spec!.volumes).toContainEqual({
      name: "build-secrets",
      secret: { secretName: "kib-abcd1234-secrets" },
    });
    expect(JSON.stringify(m.job)).not.toContain("TOPSECRET");
    expect(JSON.stringify(m.job)).not.toContain(Buffer.from("TOPSECRET-1").toString("base64"));
    expectApiValid(m);
  });

  test("both Secrets: registry first, then build secrets", () => {
    const m = renderManifests(
      baseSpec({
        registryAuth: { kind: "docker-config-json", json: '{"auths":{"ghcr.io":{"auth":"eDp5"}}}' },
        secrets: [{ id: "a", value: Buffer.from("b") }],
      }),
      ID,
      ENV,
    );
    expect(m.secrets.map((s) => s.metadata!.name)).toEqual([
      "kib-abcd1234-registry",
      "kib-abcd1234-secrets",
    ]);
    expect(Buffer.from(m.secrets[0]!.data![".dockerconfigjson"]!, "base64").toString()).toBe(
      '{"auths":{"ghcr.io":{"auth":"eDp5"}}}',
    );
    expect(m.job.spec!.template.spec!.volumes!.map((v) => v.name)).toEqual([
      "workspace",
      "registry-credentials",
      "build-secrets",
    ]);
    expectApiValid(m);
  });

  test("git context: no receiver init container", () => {
    const m = renderManifests(
      baseSpec({ context: { kind: "git", url: "https://github.com/acme/web.git#main" } }),
      ID,
      ENV,
    );
    expect(m.job.spec!.template.spec!.initContainers).toBeUndefined();
    expect(m.job.spec!.template.spec!.containers[0]!.args![0]).toBe(
      "--context=git://github.com/acme/web.git",
    );
    expectApiValid(m);
  });

  test("pod placement: service account, node selector, tolerations", () => {
    const m = renderManifests(
      baseSpec({
        serviceAccount: "builder",
        nodeSelector: { "kubernetes.io/arch": "amd64", pool: "builds" },
        tolerations: [
          { key: "dedicated", operator: "Equal", value: "builds", effect: "NoSchedule" },
          {
            key: "node.kubernetes.io/unreachable",
            operator: "Exists",
            effect: "NoExecute",
            tolerationSeconds: 60,
          },
        ],
        resources: {
          requests: { cpu: "500m", memory: "1Gi" },
          limits: { memory: "2Gi", "nvidia.com/gpu": "1" },
        },
        timeoutSeconds: 5400,
        ttlSeconds: 60,
      }),
      ID,
      ENV,
    );
    const job = m.job.spec!;
    expect(job.activeDeadlineSeconds).toBe(5400);
    expect(job.ttlSecondsAfterFinished).toBe(60);
    expect(job.template.spec!.serviceAccountName).toBe("builder");
    expect(job.template.spec!.automountServiceAccountToken).toBe(false);
    expect(job.template.spec!.nodeSelector).toEqual({
      "kubernetes.io/arch": "amd64",
      pool: "builds",
    });
    expect(job.template.spec!.tolerations).toHaveLength(2);
    expect(job.template.spec!.containers[0]!.resources).toEqual({
      requests: { cpu: "500m", memory: "1Gi" },
      limits: { memory: "2Gi", "nvidia.com/gpu": "1" },
    });
    expectApiValid(m);
  });

  test("the environment cannot contradict the spec about credentials and secrets", () => {
    const m = renderManifests(baseSpec(), ID, {
      hasRegistryCredentials: true,
      hasBuildSecrets: true,
    });
    expect(m.job.spec!.template.spec!.containers[0]!.volumeMounts).toEqual([
      { name: "workspace", mountPath: "/kaniko/buildcontext" },
    ]);
    expectApiValid(m);
  });

  test.each([
    [26, true],
    [30, false],
  ])(
    "BuildKit on a 1.%d server: its volumes, security context and AppArmor form",
    (minor, annotation) => {
      const m = renderManifests(
        baseSpec({
          builder: "buildkit",
          builderImage: "moby/buildkit:v0.33.0-rootless",
          registryAuth: { kind: "basic", username: "u", password: "p", registries: ["ghcr.io"] },
          secrets: [{ id: "npmrc", value: Buffer.from("x") }],
          platforms: ["linux/amd64", "linux/arm64"],
        }),
        ID,
        { ...ENV, serverMinorVersion: minor },
      );
      const template = m.job.spec!.template;
      expect(template.metadata!.labels!["app.kubernetes.io/component"]).toBe("buildkit");
      expect(template.spec!.volumes!.map((v) => v.name)).toEqual([
        "workspace",
        "registry-credentials",
        "build-secrets",
        "buildkitd",
      ]);
      expect(template.spec!.initContainers).toHaveLength(1);
      expect(template.metadata!.annotations !== undefined).toBe(annotation);
      expectApiValid(m);
    },
  );
});

describe("the API check itself", () => {
  test.each<[string, (m: RenderedManifests) => void]>([
    [
      "an unknown container field",
      (m) => Object.assign(m.job.spec!.template.spec!.containers[0]!, { bogus: 1 }),
    ],
    ["an unknown Job spec field", (m) => Object.assign(m.job.spec!, { backoff: 0 })],
    ["a wrong type", (m) => Object.assign(m.job.spec!, { backoffLimit: "0" })],
    ["a bad Job name", (m) => Object.assign(m.job.metadata!, { name: "Kib_1" })],
    [
      "a mount of a missing volume",
      (m) =>
        m.job.spec!.template.spec!.containers[0]!.volumeMounts!.push({
          name: "nope",
          mountPath: "/x",
        }),
    ],
  ])("refuses %s", (_name, mutate) => {
    const m = renderManifests(baseSpec(), ID, ENV);
    mutate(m);
    expect(() => expectApiValid(m)).toThrow();
  });
});

describe("dockerConfigJson", () => {
  test("basic: one entry per registry, with the legacy auth field", () => {
    const json = dockerConfigJson({
      kind: "basic",
      username: "bot",
      password: "p:w=",
      registries: ["ghcr.io", "https://index.docker.io/v1/"],
    });
    const auth = Buffer.from("bot:p:w=").toString("base64");
    expect(JSON.parse(json)).toEqual({
      auths: {
        "ghcr.io": { username: "bot", password: "p:w=", auth },
        "https://index.docker.io/v1/": { username: "bot", password: "p:w=", auth },
      },
    });
  });

  test("docker-config-json is passed through", () => {
    expect(dockerConfigJson({ kind: "docker-config-json", json: '{"auths":{}}' })).toBe(
      '{"auths":{}}',
    );
  });
});

describe("manifestsToYaml", () => {
  const m = renderManifests(
    baseSpec({
      namespace: "ci",
      registryAuth: {
        kind: "basic",
        username: "bot",
        password: "TOPSECRET",
        registries: ["ghcr.io"],
      },
      secrets: [{ id: "npmrc", value: Buffer.from("TOPSECRET-2") }],
      buildArgs: [{ key: "LONG", value: "x".repeat(200) }],
    }),
    ID,
    ENV,
  );

  test("multi-document YAML that reads back to the same objects", () => {
    const docs = parseAllDocuments(manifestsToYaml(m, { redactSecrets: false })).map((d) =>
      d.toJS(),
    );
    expect(docs).toEqual([...m.secrets, m.job]);
  });

  test("redacted: no secret data, every value replaced", () => {
    const yaml = manifestsToYaml(m, { redactSecrets: true });
    const docs = parseAllDocuments(yaml).map((d) => d.toJS());
    expect(docs.map((d) => d.kind)).toEqual(["Secret", "Secret", "Job"]);
    expect(docs[0].data).toBeUndefined();
    expect(JSON.parse(docs[0].stringData[".dockerconfigjson"])).toEqual({
      auths: { "ghcr.io": { username: "<redacted>", password: "<redacted>", auth: "<redacted>" } },
    });
    expect(docs[1].data).toBeUndefined();
    expect(docs[1].stringData).toEqual({ npmrc: "<redacted>" });
    expect(docs[2]).toEqual(m.job);
    for (const s of m.secrets)
      for (const v of Object.values(s.data!)) expect(yaml).not.toContain(v);
    expect(yaml).not.toContain("TOPSECRET");
    // The objects themselves are untouched.
    expect(m.secrets[0]!.data![".dockerconfigjson"]).not.toBe("<redacted>");
  });
});
