/**
 * The Kubernetes API test server: a kube-apiserver + Job controller + garbage collector + scripted kubelet
 * over real HTTPS, for @kubernetes/client-node to talk to unmodified.
 */
import { rmSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { stringify } from "yaml";
import { ApiServer, type RequestRecord } from "./apiserver.js";
import { Controllers } from "./controllers.js";
import { defaultPod } from "./defaults.js";
import { Kubelet, type ScenarioOverrides } from "./kubelet.js";
import { loadRecording } from "./recordings.js";
import { Store } from "./store.js";
import { makeServerTls } from "./tls.js";

export { scenarioNames } from "./recordings.js";

export interface TestClusterOptions {
  /** served at GET /version, default "v1.26.0" (the recordings' version) */
  gitVersion?: string;
  /** multiplies the recordings' delays; default 0.05 (fast tests) */
  timeScale?: number;
  /** websocket subprotocols the server accepts, default ["v5.channel.k8s.io","v4.channel.k8s.io"] */
  attachProtocols?: string[];
}

export interface TestCluster {
  url: string;
  caPem: string;
  token: string;
  kubeconfig(opts?: {
    token?: string;
    namespace?: string;
    contextName?: string;
    extraContexts?: string[];
  }): string;
  createNamespace(name: string, labels?: Record<string, string>): void;
  addToken(
    token: string,
    rules?: {
      forbid?: Array<{ verb: string; resource: string; subresource?: string }>;
      user?: string;
    },
  ): void;
  useScenario(pick: string | ((job: any) => string), overrides?: ScenarioOverrides): void;
  objects(resource: "jobs" | "pods" | "secrets" | "events", namespace: string): any[];
  receivedContext(podName: string): string | undefined;
  podNames(namespace: string): string[];
  faults: {
    dropNextWatch(opts: { resource: "pods" | "jobs" | "events"; afterEvents: number }): void;
    dropNextLog(opts: { afterLines: number }): void;
    /** The next context upload's connection drops after this many stdin bytes. */
    dropNextAttach(opts: { afterBytes: number }): void;
    failRequests(opts: {
      method?: string;
      pathPattern: RegExp;
      status: 429 | 500 | 503;
      times: number;
      retryAfterSeconds?: number;
    }): void;
    expireResourceVersions(): void;
    /** The next matching requests are carried out, but answered with a 504 Timeout. */
    loseResponses(opts: { method?: string; pathPattern: RegExp; times: number }): void;
  };
  requests: RequestRecord[];
  resetRequests(): void;
  close(): Promise<void>;
}

export type { RequestRecord };

export async function startTestCluster(opts: TestClusterOptions = {}): Promise<TestCluster> {
  const gitVersion = opts.gitVersion ?? "v1.26.0";
  const minor = Number(/^v?\d+\.(\d+)/.exec(gitVersion)?.[1] ?? 26);
  const timeScale = opts.timeScale ?? 0.05;
  const attachProtocols = opts.attachProtocols ?? ["v5.channel.k8s.io", "v4.channel.k8s.io"];
  const tls = makeServerTls();
  const store = new Store();
  let pick: string | ((job: any) => string) = "kaniko-success-cold";
  let overrides: ScenarioOverrides = {};
  const kubelet = new Kubelet(store, { timeScale });
  const controllers = new Controllers(store, kubelet, {
    timeScale,
    minor,
    defaultPod,
    pickScenario: (job) => {
      const scenario = typeof pick === "string" ? pick : pick(job);
      loadRecording(scenario);
      return { scenario, overrides: { ...overrides } };
    },
  });
  const api = new ApiServer(
    store,
    controllers,
    kubelet,
    { gitVersion, minor, timeScale, attachProtocols },
    tls,
  );
  const token = `admin-${Math.random().toString(36).slice(2)}`;
  api.tokens.set(token, { user: "kubernetes-admin", forbid: [] });
  let saCount = 0;

  const createNamespace = (name: string, labels?: Record<string, string>) => {
    if (store.get("namespaces", undefined, name)) return;
    store.create("namespaces", {
      metadata: { name, labels: { "kubernetes.io/metadata.name": name, ...(labels ?? {}) } },
      spec: { finalizers: ["kubernetes"] },
      status: { phase: "Active" },
    });
  };
  for (const ns of ["default", "kube-system", "kube-public"]) createNamespace(ns);

  await new Promise<void>((resolve) => api.server.listen(0, "127.0.0.1", resolve));
  const port = (api.server.address() as AddressInfo).port;
  const url = `https://127.0.0.1:${port}`;

  const cluster: TestCluster = {
    url,
    caPem: tls.caPem,
    token,
    kubeconfig(o = {}) {
      const name = o.contextName ?? "test";
      const ctx = (n: string) => ({
        name: n,
        context: {
          cluster: "test",
          user: "test",
          ...(o.namespace ? { namespace: o.namespace } : {}),
        },
      });
      return stringify({
        apiVersion: "v1",
        kind: "Config",
        clusters: [
          {
            name: "test",
            cluster: {
              server: url,
              "certificate-authority-data": Buffer.from(tls.caPem).toString("base64"),
            },
          },
        ],
        users: [{ name: "test", user: { token: o.token ?? token } }],
        contexts: [ctx(name), ...(o.extraContexts ?? []).map(ctx)],
        "current-context": name,
        preferences: {},
      });
    },
    createNamespace,
    addToken(t, rules) {
      api.tokens.set(t, {
        user: rules?.user ?? `system:serviceaccount:default:test-sa-${++saCount}`,
        forbid: rules?.forbid ?? [],
      });
    },
    useScenario(p, o) {
      if (typeof p === "string") loadRecording(p);
      pick = p;
      overrides = o ?? {};
    },
    objects(resource, namespace) {
      return store.list(resource, namespace);
    },
    receivedContext(podName) {
      return kubelet.receivedContext(podName);
    },
    podNames(namespace) {
      return [...(controllers.podHistory.get(namespace) ?? [])];
    },
    faults: {
      dropNextWatch(o) {
        api.faults.dropWatch.push({ ...o });
      },
      dropNextLog(o) {
        api.faults.dropLog.push({ ...o });
      },
      dropNextAttach(o) {
        api.faults.dropAttach.push({ ...o });
      },
      failRequests(o) {
        api.faults.fail.push({ ...o });
      },
      expireResourceVersions() {
        store.compact();
      },
      loseResponses(o) {
        api.faults.loseResponse.push({ ...o });
      },
    },
    requests: api.requests,
    resetRequests() {
      api.requests.splice(0, api.requests.length);
    },
    async close() {
      controllers.close();
      kubelet.close();
      await api.close();
      for (const ns of controllers.podHistory.keys()) {
        for (const p of controllers.podHistory.get(ns) ?? []) {
          const dir = kubelet.receivedContext(p);
          if (dir) rmSync(dir, { recursive: true, force: true });
        }
      }
    },
  };
  return cluster;
}
