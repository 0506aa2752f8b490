/** Where the connection comes from: input content, then kubeconfig files, then in-cluster. */
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, createClients } from "../../src/core/cluster/connection.js";
import { BuildFailure } from "../../src/core/errors.js";
import type { ClusterSource } from "../../src/core/types.js";
import { startTestCluster, type TestCluster } from "../support/cluster.js";

let cluster: TestCluster;
beforeAll(async () => {
  cluster = await startTestCluster();
  cluster.createNamespace("from-file");
  cluster.createNamespace("in-cluster-ns");
});
afterAll(async () => {
  await cluster?.close();
});

function tempFile(name: string, content: string): string {
  const dir = mkdtempSync(join(tmpdir(), "kib-cluster-"));
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

function serviceAccountDir(token: string, namespace: string): string {
  const dir = mkdtempSync(join(tmpdir(), "kib-sa-"));
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "token"), token);
  writeFileSync(join(dir, "ca.crt"), cluster.caPem);
  writeFileSync(join(dir, "namespace"), namespace);
  return dir;
}

const port = () => new URL(cluster.url).port;

test("input content wins over files and in-cluster", () => {
  const file = tempFile(
    "config",
    cluster.kubeconfig({ namespace: "from-file", contextName: "file" }),
  );
  const connection = connect({
    kubeconfigContent: cluster.kubeconfig({ contextName: "input" }),
    kubeconfigPaths: [file],
    inCluster: {
      host: "127.0.0.1",
      port: port(),
      serviceAccountDir: serviceAccountDir(cluster.token, "in-cluster-ns"),
    },
  });
  expect(connection.origin).toBe("kubeconfig input");
  expect(connection.kubeConfig.getCurrentContext()).toBe("input");
  expect(connection.contextNamespace).toBe("default");
});

test("$KUBECONFIG files are used next, with the context's namespace, and they reach the cluster", async () => {
  const file = tempFile(
    "config",
    cluster.kubeconfig({ namespace: "from-file", contextName: "file" }),
  );
  const connection = connect({ kubeconfigPaths: ["/nonexistent/config", file] });
  expect(connection.origin).toBe(file);
  expect(connection.contextNamespace).toBe("from-file");
  const ns = await createClients(connection.kubeConfig).core.readNamespace({ name: "from-file" });
  expect(ns.metadata?.name).toBe("from-file");
});

test("in-cluster last: the service account's token, CA and namespace", async () => {
  const connection = connect({
    kubeconfigPaths: ["/nonexistent/config"],
    inCluster: {
      host: "127.0.0.1",
      port: port(),
      serviceAccountDir: serviceAccountDir(cluster.token, "in-cluster-ns"),
    },
  });
  expect(connection.origin).toBe("in-cluster service account");
  expect(connection.contextNamespace).toBe("in-cluster-ns");
  const ns = await createClients(connection.kubeConfig).core.readNamespace({
    name: "in-cluster-ns",
  });
  expect(ns.metadata?.name).toBe("in-cluster-ns");
});

test.each<[string, ClusterSource, RegExp]>([
  [
    "nothing configured",
    { kubeconfigPaths: [] },
    /no cluster configured: set the kubeconfig input, or \$KUBECONFIG/,
  ],
  [
    "a kubeconfig with no context",
    { kubeconfigPaths: [], kubeconfigContent: "apiVersion: v1\nkind: Config\nclusters: []\n" },
    /no current context/,
  ],
])("%s → one line", (_label, source, message) => {
  expect(() => connect(source)).toThrow(BuildFailure);
  expect(() => connect(source)).toThrow(message);
});

test("a GitLab agent context is selected by name; a missing one lists what is there", () => {
  const content = cluster.kubeconfig({
    contextName: "acme/infra/agents:ci-builder",
    extraContexts: ["acme/other:agent"],
  });
  expect(
    connect({
      kubeconfigContent: content,
      kubeconfigPaths: [],
      context: "acme/infra/agents:ci-builder",
    }).kubeConfig.getCurrentContext(),
  ).toBe("acme/infra/agents:ci-builder");
  expect(() =>
    connect({ kubeconfigContent: content, kubeconfigPaths: [], context: "acme/infra/agents:nope" }),
  ).toThrow(
    /context "acme\/infra\/agents:nope" not found; available contexts: .*acme\/infra\/agents:ci-builder/,
  );
});
