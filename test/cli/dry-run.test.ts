/**
 * `--dry-run` prints objects a real API server takes as they are (`… --dry-run | kubectl apply -f -`):
 * checked against the Kubernetes OpenAPI schema (kubernetes-models, which checks `format: byte`,
 * i.e. base64, for Secret data) and by a server-side dry-run create on the Kubernetes API test
 * server, which decodes Secret data as the API server does and checks a dockerconfigjson Secret.
 */
import * as k8s from "@kubernetes/client-node";
import { Job } from "kubernetes-models/batch/v1";
import { Secret } from "kubernetes-models/v1";
import { parseAllDocuments } from "yaml";
import { startTestCluster, type TestCluster } from "../support/cluster.js";
import { run } from "./support.js";

const PASSWORD = "s3cr3t-registry-password";
const NPMRC = "//npm.example/:_authToken=npm-secret-token";

let cluster: TestCluster;
beforeAll(async () => {
  cluster = await startTestCluster();
  cluster.createNamespace("ci-builds");
});
afterAll(async () => {
  await cluster?.close();
});

async function dryRun(extra: string[]): Promise<Array<Record<string, unknown>>> {
  const { code, stdout, stderr } = await run([
    "build",
    "--dry-run",
    "--namespace",
    "ci-builds",
    "--tags",
    "ghcr.io/acme/web:1",
    "--registry-username",
    "ci",
    "--registry-password",
    PASSWORD,
    ...extra,
  ]);
  expect({ code, stderr }).toEqual({ code: 0, stderr: "" });
  expect(stdout).not.toContain(PASSWORD);
  expect(stdout).not.toContain("npm-secret-token");
  expect(stdout).not.toContain(Buffer.from(`ci:${PASSWORD}`).toString("base64"));
  return parseAllDocuments(stdout).map((doc) => doc.toJS() as Record<string, unknown>);
}

const CASES: Array<[string, string[]]> = [
  ["kaniko with registry credentials", []],
  [
    "buildkit with registry credentials and a build secret",
    ["--builder", "buildkit", "--secrets", `npmrc=${NPMRC}`],
  ],
];

describe.each(CASES)("%s", (_name, extra) => {
  test("every object passes the Kubernetes OpenAPI schema", async () => {
    const docs = await dryRun(extra);
    expect(docs.map((doc) => doc.kind)).toEqual([
      "Secret",
      ...(extra.includes("--secrets") ? ["Secret"] : []),
      "Job",
    ]);
    for (const doc of docs) {
      const model = doc.kind === "Job" ? new Job(doc as never) : new Secret(doc as never);
      expect(() => model.validate()).not.toThrow();
    }
  });

  test("the API server takes them as printed (server-side dry run), values redacted", async () => {
    const docs = await dryRun(extra);
    const kc = new k8s.KubeConfig();
    kc.loadFromString(cluster.kubeconfig());
    const core = kc.makeApiClient(k8s.CoreV1Api);
    const batch = kc.makeApiClient(k8s.BatchV1Api);
    for (const doc of docs) {
      const name = (doc.metadata as { name: string }).name;
      if (doc.kind === "Secret") {
        const created = await core.createNamespacedSecret({
          namespace: "ci-builds",
          body: doc as k8s.V1Secret,
          dryRun: "All",
        });
        expect(created.metadata?.name).toBe(name);
        const values = Object.values(created.data ?? {});
        expect(values.length).toBeGreaterThan(0);
        for (const value of values) {
          expect(Buffer.from(value, "base64").toString("utf8")).toContain("<redacted>");
        }
      } else {
        const created = await batch.createNamespacedJob({
          namespace: "ci-builds",
          body: doc as k8s.V1Job,
          dryRun: "All",
        });
        expect(created.metadata?.name).toBe(name);
      }
    }
    expect(cluster.objects("secrets", "ci-builds")).toEqual([]);
    expect(cluster.objects("jobs", "ci-builds")).toEqual([]);
  });
});

test("the registry Secret keeps the registries its config names, with every value redacted", async () => {
  const [secret] = await dryRun(["--cache-repo", "registry.example/acme/cache"]);
  const stringData = secret!.stringData as Record<string, string>;
  const config = JSON.parse(stringData[".dockerconfigjson"]!) as { auths: Record<string, unknown> };
  expect(Object.keys(config.auths).sort()).toEqual(["ghcr.io", "registry.example"]);
  for (const entry of Object.values(config.auths)) {
    expect(Object.values(entry as Record<string, string>).every((v) => v === "<redacted>")).toBe(
      true,
    );
  }
});
