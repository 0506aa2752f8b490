/**
 * The cluster connection: a KubeConfig from the precedence list in DESIGN.md (explicit content,
 * then kubeconfig files, then the in-cluster service account) and one factory for API clients.
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import {
  BatchV1Api,
  CoreV1Api,
  type KubeConfig,
  VersionApi,
  type Cluster,
} from "@kubernetes/client-node";
import { BuildFailure } from "../errors.js";
import { displayProxyUrl, proxyFor, type ChosenProxy } from "../proxy.js";
import type { ClusterSource, ProxySettings } from "../types.js";
import { PooledKubeConfig } from "./pooled-kubeconfig.js";

export interface ClusterConnection {
  kubeConfig: KubeConfig;
  /** The namespace the selected context names, else "default" (kubectl's rule). */
  contextNamespace: string;
  /** Where the configuration came from, for the log ("input kubeconfig", a path, "in-cluster"). */
  origin: string;
  server: string;
  /** The proxy every API call, watch, log stream and attach goes through, when one applies. */
  proxy?: { url: string; from: string };
}

/** API clients for one connection. Tests and other adapters can build their own from a KubeConfig. */
export interface ClusterClients {
  kubeConfig: KubeConfig;
  core: CoreV1Api;
  batch: BatchV1Api;
  version: VersionApi;
}

export function createClients(kubeConfig: KubeConfig): ClusterClients {
  return {
    kubeConfig,
    core: kubeConfig.makeApiClient(CoreV1Api),
    batch: kubeConfig.makeApiClient(BatchV1Api),
    version: kubeConfig.makeApiClient(VersionApi),
  };
}

function kubeconfigFailure(detail: string): BuildFailure {
  return new BuildFailure("kubeconfig", `kubeconfig: ${detail}`);
}

function loadFromContent(content: string, origin: string): KubeConfig {
  const kc = new PooledKubeConfig();
  try {
    kc.loadFromString(content);
  } catch (error) {
    // The loader's messages name fields, never values.
    const reason = error instanceof Error ? error.message.split("\n")[0] : String(error);
    throw kubeconfigFailure(`${origin} is not a valid kubeconfig (${reason})`);
  }
  return kc;
}

/** A kubeconfig file; relative certificate and key paths in it resolve from its directory (kubectl). */
function loadFromFile(file: string): KubeConfig {
  const kc = loadFromContent(readFileSync(file, "utf8"), file);
  kc.makePathsAbsolute(dirname(file));
  return kc;
}

function loadInCluster(inCluster: NonNullable<ClusterSource["inCluster"]>): KubeConfig {
  const tokenFile = join(inCluster.serviceAccountDir, "token");
  const caFile = join(inCluster.serviceAccountDir, "ca.crt");
  if (!existsSync(tokenFile)) {
    throw kubeconfigFailure(`in-cluster service account token ${tokenFile} is missing`);
  }
  const host = inCluster.host.includes(":") ? `[${inCluster.host}]` : inCluster.host;
  const kc = new PooledKubeConfig();
  kc.loadFromOptions({
    clusters: [
      {
        name: "in-cluster",
        server: `https://${host}:${inCluster.port}`,
        caFile,
        skipTLSVerify: false,
      },
    ],
    users: [{ name: "in-cluster", authProvider: { name: "tokenFile", config: { tokenFile } } }],
    contexts: [{ name: "in-cluster", cluster: "in-cluster", user: "in-cluster" }],
    currentContext: "in-cluster",
  });
  return kc;
}

function inClusterNamespace(serviceAccountDir: string): string | undefined {
  try {
    return readFileSync(join(serviceAccountDir, "namespace"), "utf8").trim() || undefined;
  } catch {
    return undefined;
  }
}

/** Applies the precedence: input content, then kubeconfig files (merged, first wins), then in-cluster. */
export function connect(source: ClusterSource): ClusterConnection {
  let kc: KubeConfig;
  let origin: string;
  let fallbackNamespace: string | undefined;
  if (source.kubeconfigContent !== undefined && source.kubeconfigFile !== undefined) {
    kc = loadFromContent(source.kubeconfigContent, source.kubeconfigFile);
    kc.makePathsAbsolute(dirname(source.kubeconfigFile));
    origin = `kubeconfig input ${source.kubeconfigFile}`;
  } else if (source.kubeconfigContent !== undefined) {
    kc = loadFromContent(source.kubeconfigContent, "the kubeconfig input");
    origin = "kubeconfig input";
  } else {
    const files = source.kubeconfigPaths.filter((path) => existsSync(path));
    if (files.length > 0) {
      kc = loadFromFile(files[0]);
      for (const file of files.slice(1)) kc.mergeConfig(loadFromFile(file), true);
      origin = files.join(", ");
    } else if (source.inCluster) {
      kc = loadInCluster(source.inCluster);
      origin = "in-cluster service account";
      fallbackNamespace = inClusterNamespace(source.inCluster.serviceAccountDir);
    } else {
      throw kubeconfigFailure(
        "no cluster configured: set the kubeconfig input, or $KUBECONFIG / ~/.kube/config, or run in a pod with a service account",
      );
    }
  }

  const contexts = kc.getContexts().map((context) => context.name);
  if (source.context !== undefined) {
    if (!contexts.includes(source.context)) {
      const available = contexts.length > 0 ? contexts.join(", ") : "none";
      throw kubeconfigFailure(
        `context "${source.context}" not found; available contexts: ${available}`,
      );
    }
    kc.setCurrentContext(source.context);
  }
  const contextName = kc.getCurrentContext();
  const context = kc.getContextObject(contextName);
  if (!contextName || !context) {
    const available = contexts.length > 0 ? contexts.join(", ") : "none";
    throw kubeconfigFailure(
      `no current context; choose one with kube-context (available: ${available})`,
    );
  }
  const cluster = kc.getCurrentCluster();
  if (!cluster?.server) {
    throw kubeconfigFailure(`context "${contextName}" names no cluster with a server`);
  }
  const proxy = applyProxy(kc, cluster, source.proxy);
  return {
    kubeConfig: kc,
    contextNamespace: context.namespace || fallbackNamespace || "default",
    origin,
    server: cluster.server,
    ...(proxy ? { proxy } : {}),
  };
}

/**
 * The cluster's proxy, as kubectl chooses it: the kubeconfig's own proxy-url, else HTTPS_PROXY /
 * HTTP_PROXY unless NO_PROXY (or a loopback server) says otherwise. client-node reads only
 * proxy-url, for requests, watches, logs and websockets alike; so the chosen proxy is written
 * there.
 */
function applyProxy(
  kc: KubeConfig,
  cluster: Cluster,
  settings: ProxySettings | undefined,
): ClusterConnection["proxy"] {
  if (cluster.proxyUrl) return { url: cluster.proxyUrl, from: "kubeconfig proxy-url" };
  let chosen: ChosenProxy | undefined;
  try {
    chosen = proxyFor(settings, cluster.server);
  } catch {
    throw kubeconfigFailure(`the server "${cluster.server}" is not a URL`);
  }
  if (!chosen) return undefined;
  if (!/^(https?|socks[45]h?):\/\//i.test(chosen.url)) {
    throw kubeconfigFailure(
      `${chosen.from} is ${displayProxyUrl(chosen.url)}: give an http://, https:// or socks5:// proxy URL`,
    );
  }
  const proxied: Cluster = { ...cluster, proxyUrl: chosen.url };
  kc.clusters = kc.clusters.map((c) => (c.name === cluster.name ? proxied : c));
  return chosen;
}
