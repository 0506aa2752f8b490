/**
 * The test server authorizes as the API server does, over the rules deploy/rbac.yaml ships: what
 * the product's token may and may not do, the Status a refusal carries, and the README's table of
 * what the Role grants.
 */
import { readFileSync } from "node:fs";
import { PassThrough } from "node:stream";
import * as k8s from "@kubernetes/client-node";
import { loadShippedRbac, type PolicyRule } from "../support/rbac.js";
import { startTestCluster, type TestCluster } from "../support/cluster.js";

const SA = "system:serviceaccount:ci-builds:k8s-image-build";

function clients(c: TestCluster, token: string) {
  const kc = new k8s.KubeConfig();
  kc.loadFromString(c.kubeconfig({ token }));
  return { kc, core: kc.makeApiClient(k8s.CoreV1Api), batch: kc.makeApiClient(k8s.BatchV1Api) };
}

async function statusOf(p: Promise<unknown>): Promise<{ code: number; body: any }> {
  try {
    await p;
  } catch (e: any) {
    return { code: e.code, body: typeof e.body === "string" ? JSON.parse(e.body) : e.body };
  }
  return { code: 200, body: undefined };
}

let cluster: TestCluster;
beforeAll(async () => {
  cluster = await startTestCluster();
  cluster.createNamespace("ci-builds");
});
afterAll(async () => {
  await cluster?.close();
});

describe("deploy/rbac.yaml, evaluated by the test server", () => {
  test("the product's token may do what the Role lists, and nothing else, with the apiserver's 403", async () => {
    const { core, batch } = clients(cluster, cluster.token);
    const ns = "ci-builds";
    expect((await statusOf(core.listNamespacedPod({ namespace: ns }))).code).toBe(200);
    expect((await statusOf(core.listNamespacedEvent({ namespace: ns }))).code).toBe(200);
    expect((await statusOf(batch.readNamespacedJob({ name: "none", namespace: ns }))).code).toBe(
      404,
    );
    expect((await statusOf(core.readNamespacedSecret({ name: "none", namespace: ns }))).code).toBe(
      404,
    );

    // `cleanup` lists Secrets and Jobs; pods are only ever made by the Job controller.
    expect((await statusOf(core.listNamespacedSecret({ namespace: ns }))).code).toBe(200);
    expect((await statusOf(batch.listNamespacedJob({ namespace: ns }))).code).toBe(200);
    const list = await statusOf(
      core.createNamespacedPod({
        namespace: ns,
        body: { metadata: { name: "p" }, spec: { containers: [{ name: "c", image: "busybox" }] } },
      }),
    );
    expect(list).toEqual({
      code: 403,
      body: {
        kind: "Status",
        apiVersion: "v1",
        metadata: {},
        status: "Failure",
        message: `pods is forbidden: User "${SA}" cannot create resource "pods" in API group "" in the namespace "ci-builds"`,
        reason: "Forbidden",
        details: { kind: "pods" },
        code: 403,
      },
    });
    const deletePod = await statusOf(core.deleteNamespacedPod({ name: "p", namespace: ns }));
    expect(deletePod.code).toBe(403);
    expect(deletePod.body.message).toBe(
      `pods "p" is forbidden: User "${SA}" cannot delete resource "pods" in API group "" in the namespace "ci-builds"`,
    );
    const patchJob = await statusOf(
      batch.patchNamespacedJob({ name: "none", namespace: ns, body: {} }),
    );
    expect(patchJob.body.message).toBe(
      `jobs.batch "none" is forbidden: User "${SA}" cannot patch resource "jobs" in API group "batch" in the namespace "ci-builds"`,
    );
    // A Role never reaches cluster-scoped requests.
    const namespaces = await statusOf(core.listNamespace());
    expect(namespaces.body.message).toBe(
      `namespaces is forbidden: User "${SA}" cannot list resource "namespaces" in API group "" at the cluster scope`,
    );
  });

  test("reading the build namespace needs the optional ClusterRole", async () => {
    cluster.addToken("role-only-ns", { access: "role-only" });
    const withClusterRole = await statusOf(
      clients(cluster, cluster.token).core.readNamespace({ name: "ci-builds" }),
    );
    expect(withClusterRole.code).toBe(200);
    const without = await statusOf(
      clients(cluster, "role-only-ns").core.readNamespace({ name: "ci-builds" }),
    );
    expect(without.code).toBe(403);
    // For a namespace itself, the request's namespace is its name.
    expect(without.body.message).toBe(
      `namespaces "ci-builds" is forbidden: User "${SA}" cannot get resource "namespaces" in API group "" in the namespace "ci-builds"`,
    );
  });

  test("subresources are their own resources: pods/log is granted, and a Role without it is refused", async () => {
    const { core } = clients(cluster, cluster.token);
    const log = await statusOf(core.readNamespacedPodLog({ name: "p", namespace: "ci-builds" }));
    expect(log.code).toBe(404);
    const noLog = (rules: PolicyRule[]) =>
      rules.map((r) => ({ ...r, resources: r.resources.filter((x) => x !== "pods/log") }));
    const shipped = loadShippedRbac();
    cluster.addToken("no-log", {
      grants: { namespaced: noLog(shipped.role), cluster: shipped.clusterRole },
    });
    const denied = await statusOf(
      clients(cluster, "no-log").core.readNamespacedPodLog({ name: "p", namespace: "ci-builds" }),
    );
    expect(denied.body.message).toBe(
      `pods "p" is forbidden: User "${SA}" cannot get resource "pods/log" in API group "" in the namespace "ci-builds"`,
    );
  });

  test("from 1.35 a websocket attach also needs create on pods/attach: a Role with only get is refused", async () => {
    const shipped = loadShippedRbac();
    const getOnly = shipped.role.map((r) =>
      r.resources.includes("pods/attach") ? { ...r, verbs: ["get"] } : r,
    );
    for (const [version, expected] of [
      ["v1.34.0", 404],
      ["v1.35.0", 403],
    ] as const) {
      const c = await startTestCluster({ gitVersion: version });
      try {
        c.createNamespace("ci-builds");
        c.addToken("attach-get-only", { grants: { namespaced: getOnly, cluster: [] } });
        const { kc } = clients(c, "attach-get-only");
        const outcome = await new k8s.Attach(kc)
          .attach("ci-builds", "no-such-pod", "context", null, null, new PassThrough(), false)
          .then(
            () => "open",
            (e: unknown) => String((e as { message?: string }).message ?? e),
          );
        expect(outcome).toContain(String(expected));
        const attach = c.requests.find((r) => r.stream === "attach");
        expect(attach?.status).toBe(expected);
      } finally {
        await c.close();
      }
    }
  });

  test("the README's Cluster access table lists exactly the Role's verbs", () => {
    const all = readFileSync("README.md", "utf8");
    const start = all.indexOf("## Cluster access");
    const readme = all.slice(start, all.indexOf("\n## ", start + 1));
    const rows = new Map<string, string[]>();
    for (const m of readme.matchAll(/^\| `([a-z/]+)`(?: \(batch\))? \| ([a-z, ]+) \|/gm))
      rows.set(
        m[1]!,
        m[2]!.split(",").map((v) => v.trim()),
      );
    const role = loadShippedRbac().role;
    const granted = new Map<string, string[]>();
    for (const rule of role) for (const r of rule.resources) granted.set(r, [...rule.verbs]);
    expect(Object.fromEntries(rows)).toEqual(Object.fromEntries(granted));
  });
});
