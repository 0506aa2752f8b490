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
import type { LogFidelityOptions } from "./log-replay.js";
import { loadRecording } from "./recordings.js";
import { ADMIN, shippedGrants, type Grants } from "./rbac.js";
import { shapeDifferences } from "./pod-shape.js";
import { nowIso, Store } from "./store.js";
import { makeServerTls } from "./tls.js";

export { scenarioNames } from "./recordings.js";

/** shapeDifferences' line for a Secret volume whose Secret does not exist. */
const MISSING_SECRET = /^volume \S+ mounts Secret \S+, which does not exist/;

export interface TestClusterOptions {
  /** served at GET /version, default "v1.26.0" (the recordings' version) */
  gitVersion?: string;
  /** multiplies the recordings' delays; default 0.05 (fast tests) */
  timeScale?: number;
  /** websocket subprotocols the server accepts, default ["v5.channel.k8s.io","v4.channel.k8s.io"] */
  attachProtocols?: string[];
  /**
   * Logs as a node writes them (default): lines live while the container runs, stdout and stderr
   * stamped separately (stamps can go backwards), the status lagging the log's end or, seeded, the
   * other way round. `seed` varies the order.
   */
  logs?: LogFidelityOptions;
  /** Events kept per resource for watches to resume from; older resumes get 410 Gone. Default 20. */
  watchWindow?: number;
}

/** What a token may do: deploy/rbac.yaml's Role and ClusterRole, the Role alone, or everything. */
export type Access = "shipped" | "role-only" | "admin";

export interface TestCluster {
  url: string;
  caPem: string;
  /** The product's token: a ServiceAccount bound to exactly deploy/rbac.yaml (Role + ClusterRole). */
  token: string;
  /** cluster-admin, for what a test does behind the product's back. */
  adminToken: string;
  kubeconfig(opts?: {
    token?: string;
    namespace?: string;
    contextName?: string;
    extraContexts?: string[];
  }): string;
  createNamespace(name: string, labels?: Record<string, string>): void;
  /** A ResourceQuota in the namespace, enforced when the Job controller creates a pod. */
  addResourceQuota(namespace: string, name: string, hard: Record<string, string>): void;
  addToken(
    token: string,
    rules?: {
      /** Requests denied on top of what `access` grants. */
      forbid?: Array<{ verb: string; resource: string; subresource?: string }>;
      user?: string;
      /** Default "shipped". */
      access?: Access;
      /** Instead of `access`: exactly these RBAC rules (a Role's in every namespace, a ClusterRole's). */
      grants?: Grants;
    },
  ): void;
  useScenario(pick: string | ((job: any) => string), overrides?: ScenarioOverrides): void;
  objects(resource: "jobs" | "pods" | "secrets" | "events", namespace: string): any[];
  /** Moves an object's creationTimestamp this many seconds back (time passing, scaled down). */
  age(resource: "jobs" | "secrets", namespace: string, name: string, seconds: number): void;
  receivedContext(podName: string): string | undefined;
  podNames(namespace: string): string[];
  faults: {
    /** `compact`: the history is compacted as it drops, so the resume gets 410 Gone and must re-list. */
    dropNextWatch(opts: {
      resource: "pods" | "jobs" | "events";
      afterEvents: number;
      compact?: boolean;
    }): void;
    /** The next log stream drops after this many lines; `graceful`: it ends as if complete. */
    dropNextLog(opts: { afterLines: number; graceful?: boolean }): void;
    /** The next context upload's connection drops after this many stdin bytes. */
    dropNextAttach(opts: { afterBytes: number }): void;
    /**
     * The next context upload's connection stalls after this many stdin bytes and stays open,
     * silent, whatever happens to the pod; resolves once it has stalled.
     */
    stallNextAttach(opts: { afterBytes: number }): Promise<void>;
    /**
     * The next followed log stream sends what was logged so far, then stays open and silent, even
     * after the container ends; resolves once it is open.
     */
    stallNextLog(): Promise<void>;
    /**
     * The next request matching is held: never answered and never carried out, as if the client
     * had not sent it yet. Resolves when it arrives (to kill the client at that exact point).
     */
    holdNextRequest(opts: { method?: string; pathPattern: RegExp }): Promise<void>;
    failRequests(opts: {
      method?: string;
      pathPattern: RegExp;
      status: 401 | 403 | 429 | 500 | 503;
      times: number;
      retryAfterSeconds?: number;
    }): void;
    expireResourceVersions(): void;
    /** Forgets every fault not used up yet. */
    clear(): void;
    /** Cuts the connections of the watches open now (the client resumes from where it was). */
    dropOpenWatches(resource: "pods" | "jobs" | "events"): number;
    /** The next matching requests (path or path?query) are held `ms` before they are carried out. */
    delayRequests(opts: { method?: string; pathPattern: RegExp; ms: number; times: number }): void;
    /** The next matching requests are carried out, but answered with a 504 Timeout. */
    loseResponses(opts: { method?: string; pathPattern: RegExp; times: number }): void;
  };
  /**
   * Pods the test server refused to replay a recording for, because their shape differs from the
   * recorded pod's. close() fails while any is left here; a test that expects one takes it out.
   */
  replayRefusals: string[];
  requests: RequestRecord[];
  /** TLS handshakes completed since the last resetRequests(), and whether each resumed a session. */
  handshakes: Array<{ resumed: boolean; protocol: string }>;
  /** Forgets the requests and handshakes recorded so far. */
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
  const replayRefusals: string[] = [];
  const store = new Store({ watchWindow: opts.watchWindow });
  let pick: string | ((job: any) => string) = "kaniko-success-cold";
  let overrides: ScenarioOverrides = {};
  const kubelet = new Kubelet(store, { timeScale, logs: opts.logs });
  const controllers = new Controllers(store, kubelet, {
    timeScale,
    minor,
    defaultPod,
    replayRefusal: (pod, scenario) => {
      const recorded = loadRecording(scenario).pods[0]!.object;
      const differences = shapeDifferences(pod, recorded, {
        secretExists: (name) => Boolean(store.get("secrets", pod.metadata.namespace, name)),
      });
      if (!differences.length) return undefined;
      // A Secret volume whose Secret is gone (deleted by a cleanup racing the Job controller, say):
      // a kubelet does not start the pod and reports FailedMount, as recorded in
      // kaniko-missing-secret. That recording is replayed when the pod otherwise has its shape.
      if (differences.every((line) => MISSING_SECRET.test(line))) {
        const missingSecretPod = loadRecording("kaniko-missing-secret").pods[0]!.object;
        if (!shapeDifferences(pod, missingSecretPod, { secretExists: () => true }).length)
          return { replayInstead: "kaniko-missing-secret" };
      }
      const message = `test server: pod ${pod.metadata.name} is not the pod recording "${scenario}" ran: ${differences.join("; ")}`;
      console.error(message);
      replayRefusals.push(message);
      return { refusal: message };
    },
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
  const identity = (access: Access, user?: string) => {
    if (access === "admin") return { user: user ?? "kubernetes-admin", grants: ADMIN };
    const shipped = shippedGrants({ clusterRole: access === "shipped" });
    return { user: user ?? shipped.user, grants: shipped.grants };
  };
  const adminToken = `admin-${Math.random().toString(36).slice(2)}`;
  api.tokens.set(adminToken, { ...identity("admin"), forbid: [] });
  const token = `sa-${Math.random().toString(36).slice(2)}`;
  api.tokens.set(token, { ...identity("shipped"), forbid: [] });

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
    adminToken,
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
    addResourceQuota(namespace, name, hard) {
      controllers.quotas.set(namespace, [
        ...(controllers.quotas.get(namespace) ?? []),
        { name, hard },
      ]);
    },
    addToken(t, rules) {
      const who = identity(rules?.access ?? "shipped", rules?.user);
      api.tokens.set(t, {
        ...who,
        ...(rules?.grants ? { grants: rules.grants } : {}),
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
    age(resource, namespace, name, seconds) {
      store.mutate(resource, namespace, name, (o) => {
        o.metadata.creationTimestamp = nowIso(
          Date.parse(o.metadata.creationTimestamp) - seconds * 1000,
        );
      });
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
      stallNextAttach(o) {
        return new Promise((onStalled) => api.faults.stallAttach.push({ ...o, onStalled }));
      },
      stallNextLog() {
        return new Promise((onStalled) => api.faults.stallLog.push({ onStalled }));
      },
      holdNextRequest(o) {
        return new Promise((onHeld) => api.faults.hold.push({ ...o, onHeld }));
      },
      failRequests(o) {
        api.faults.fail.push({ ...o });
      },
      expireResourceVersions() {
        store.compact();
      },
      clear() {
        for (const list of Object.values(api.faults)) list.splice(0);
      },
      dropOpenWatches(resource) {
        return api.dropOpenWatches(resource);
      },
      delayRequests(o) {
        api.faults.delay.push({ ...o });
      },
      loseResponses(o) {
        api.faults.loseResponse.push({ ...o });
      },
    },
    replayRefusals,
    requests: api.requests,
    handshakes: api.handshakes,
    resetRequests() {
      api.requests.splice(0, api.requests.length);
      api.handshakes.splice(0, api.handshakes.length);
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
      if (replayRefusals.length)
        throw new Error(
          `the test server replayed no recording for ${replayRefusals.length} pod(s):\n${replayRefusals.join("\n")}`,
        );
    },
  };
  return cluster;
}
