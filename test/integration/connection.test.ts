/**
 * The connection as users arrive with it: a kubeconfig given as a file path (kubectl's
 * --kubeconfig, a GitLab "File" variable) through the CLI, with relative certificate paths; and
 * a corporate proxy named by HTTPS_PROXY, through which every API call, watch, log stream and
 * attach must go.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { parse, stringify } from "yaml";
import { cli } from "../../src/cli/cli.js";
import { startTestCluster, type TestCluster } from "../support/cluster.js";
import { startConnectProxy, type ConnectProxy } from "../support/connect-proxy.js";
import { NOTHING_LEFT, makeContext, waitForEmpty } from "./helpers.js";

const DIGEST = "sha256:8c1c626558915ecba14a9b1f8b20dce4ba869984d4032c592d4dd6c67d8aab84";

let cluster: TestCluster;
beforeAll(async () => {
  cluster = await startTestCluster();
  cluster.createNamespace("ci-builds");
  cluster.useScenario("kaniko-success-cold");
});
afterAll(async () => {
  await cluster?.close();
});

function sink(): Writable & { text: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      chunks.push(chunk.toString("utf8"));
      done();
    },
  }) as Writable & { text: () => string };
  stream.text = () => chunks.join("");
  return stream;
}

async function runCli(argv: string[], env: NodeJS.ProcessEnv, cwd = makeContext()) {
  const stdout = sink();
  const stderr = sink();
  const code = await cli({ argv, env: { HOME: tmpdir(), ...env }, stdout, stderr, cwd });
  return { code, stdout: stdout.text(), stderr: stderr.text() };
}

/** The test cluster's kubeconfig written as kubectl users keep it: the CA in a file beside it, by a relative path. */
function kubeconfigFile(): string {
  const dir = mkdtempSync(join(tmpdir(), "kib-kubeconfig-"));
  writeFileSync(join(dir, "ca.crt"), cluster.caPem);
  const config = parse(cluster.kubeconfig()) as {
    clusters: Array<{ cluster: Record<string, string> }>;
  };
  delete config.clusters[0].cluster["certificate-authority-data"];
  config.clusters[0].cluster["certificate-authority"] = "ca.crt";
  const file = join(dir, "config");
  writeFileSync(file, stringify(config));
  return file;
}

describe("kubeconfig as a path", () => {
  test("--kubeconfig <file> builds, and the Plan names the file", async () => {
    const file = kubeconfigFile();
    const { code, stdout, stderr } = await runCli(
      [
        "build",
        "--kubeconfig",
        file,
        "--namespace",
        "ci-builds",
        "--tags",
        "registry.example:5000/acme/web:1.0",
      ],
      {},
    );
    expect(stderr.split("\n").filter((l) => l.startsWith("error:"))).toEqual([]);
    expect(code).toBe(0);
    expect(stdout).toBe(`registry.example:5000/acme/web@${DIGEST}\n`);
    expect(stderr).toContain(`Cluster: ${cluster.url} (kubeconfig input ${file})`);
    expect(await waitForEmpty(cluster)).toEqual(NOTHING_LEFT);
  });

  test("KIB_KUBECONFIG=<file> (what a GitLab File variable expands to) builds too", async () => {
    const file = kubeconfigFile();
    const { code, stdout } = await runCli(["build"], {
      KIB_KUBECONFIG: file,
      KIB_NAMESPACE: "ci-builds",
      KIB_TAGS: "registry.example:5000/acme/web:1.0",
    });
    expect(code).toBe(0);
    expect(stdout).toBe(`registry.example:5000/acme/web@${DIGEST}\n`);
    expect(await waitForEmpty(cluster)).toEqual(NOTHING_LEFT);
  });

  test("a path that is not there is one line naming it, and nothing reaches the cluster", async () => {
    cluster.resetRequests();
    const { code, stderr } = await runCli(
      [
        "build",
        "--kubeconfig",
        "/root/.kube/config-missing",
        "--tags",
        "registry.example:5000/acme/web:1.0",
      ],
      {},
    );
    expect(code).toBe(1);
    expect(stderr.trim().split("\n").at(-1)).toBe(
      'error: input "kubeconfig": there is no file /root/.kube/config-missing; give the path of a kubeconfig file, its YAML, or base64 of it',
    );
    expect(cluster.requests).toEqual([]);
  });
});

describe("HTTPS_PROXY", () => {
  let proxy: ConnectProxy;
  beforeAll(async () => {
    proxy = await startConnectProxy();
  });
  afterAll(async () => {
    await proxy?.close();
  });

  /** The cluster by a name only the proxy can resolve: without the proxy nothing reaches it. */
  function proxiedKubeconfig(): { content: string; host: string } {
    const host = `apiserver.proxied.test:${new URL(cluster.url).port}`;
    return { content: cluster.kubeconfig().replace(new URL(cluster.url).host, host), host };
  }

  test("every API call, watch, log stream and the context attach go through the CONNECT proxy; the Plan names it", async () => {
    const { content, host } = proxiedKubeconfig();
    cluster.resetRequests();
    const { code, stdout, stderr } = await runCli(["build"], {
      KIB_KUBECONFIG: content,
      KIB_NAMESPACE: "ci-builds",
      KIB_TAGS: "registry.example:5000/acme/web:1.0",
      https_proxy: "http://ignored.example:1", // the upper-case form wins, as in kubectl
      HTTPS_PROXY: proxy.url,
      NO_PROXY: "localhost,.svc,10.0.0.0/8",
    });
    expect(stderr.split("\n").filter((l) => l.startsWith("error:"))).toEqual([]);
    expect(code).toBe(0);
    expect(stdout).toBe(`registry.example:5000/acme/web@${DIGEST}\n`);
    expect(stderr).toContain(`Proxy: ${proxy.url} (HTTPS_PROXY) for the API server`);

    // Every tunnel the proxy opened was to the API server, and every request the API server saw
    // came from one of those tunnels.
    expect(new Set(proxy.tunnels.map((t) => t.target))).toEqual(new Set([host]));
    const tunnelPorts = new Set(proxy.tunnels.map((t) => t.upstreamPort));
    const requests = [...cluster.requests];
    expect(requests.length).toBeGreaterThan(0);
    expect(requests.filter((r) => !tunnelPorts.has(r.peerPort))).toEqual([]);
    // The long-lived streams among them, each over a CONNECT tunnel.
    const streams = (kind: string) =>
      requests.filter((r) => r.stream === kind).map((r) => r.peerPort);
    expect(streams("watch").length).toBeGreaterThan(0);
    expect(streams("log").length).toBeGreaterThan(0);
    expect(streams("attach")).toHaveLength(1);
    const connects = proxy.tunnels.filter((t) => t.target === host).length;
    expect(connects).toBeGreaterThanOrEqual(new Set(requests.map((r) => r.peerPort)).size);
    expect(await waitForEmpty(cluster)).toEqual(NOTHING_LEFT);
  });

  test("a kubeconfig proxy-url wins over HTTPS_PROXY (kubectl's order)", async () => {
    const { content, host } = proxiedKubeconfig();
    const withProxyUrl = content.replace(
      /(\n\s+server: [^\n]+)/,
      `$1\n      proxy-url: ${proxy.url}`,
    );
    expect(withProxyUrl).toContain(`proxy-url: ${proxy.url}`);
    const before = proxy.tunnels.length;
    const { code, stdout, stderr } = await runCli(["build"], {
      KIB_KUBECONFIG: withProxyUrl,
      KIB_NAMESPACE: "ci-builds",
      KIB_TAGS: "registry.example:5000/acme/web:1.0",
      HTTPS_PROXY: "http://proxy-that-does-not-exist.invalid:3128",
    });
    expect(code).toBe(0);
    expect(stdout).toBe(`registry.example:5000/acme/web@${DIGEST}\n`);
    expect(stderr).toContain(`Proxy: ${proxy.url} (kubeconfig proxy-url) for the API server`);
    expect(proxy.tunnels.slice(before).every((t) => t.target === host)).toBe(true);
    expect(proxy.tunnels.length).toBeGreaterThan(before);
    expect(await waitForEmpty(cluster)).toEqual(NOTHING_LEFT);
  });

  test("a proxy that wants credentials: they go in the URL, and the password never reaches the log", async () => {
    const guarded = await startConnectProxy({ credentials: "ci-bot:pr0xy-pa$$word" });
    try {
      const { content } = proxiedKubeconfig();
      const env = {
        KIB_KUBECONFIG: content,
        KIB_NAMESPACE: "ci-builds",
        KIB_TAGS: "registry.example:5000/acme/web:1.0",
        KIB_TIMEOUT: "20s",
      };
      const refused = await runCli(["build"], { ...env, HTTPS_PROXY: guarded.url });
      expect(refused.code).toBe(1);
      expect(refused.stderr.trim().split("\n").at(-1)).toMatch(
        /^error: .*cannot reach the API server at https:\/\/apiserver\.proxied\.test:\d+ .*407/,
      );

      const withPassword = guarded.url.replace("http://", "http://ci-bot:pr0xy-pa%24%24word@");
      const { code, stdout, stderr } = await runCli(["build"], {
        ...env,
        HTTPS_PROXY: withPassword,
      });
      expect(stderr.split("\n").filter((l) => l.startsWith("error:"))).toEqual([]);
      expect(code).toBe(0);
      expect(stdout).toBe(`registry.example:5000/acme/web@${DIGEST}\n`);
      expect(stderr).toContain(
        `Proxy: ${guarded.url.replace("http://", "http://***@")} (HTTPS_PROXY) for the API server`,
      );
      expect(stderr + refused.stderr).not.toMatch(/pr0xy-pa/);
      expect(guarded.tunnels.at(-1)?.proxyAuthorization).toBe(
        `Basic ${Buffer.from("ci-bot:pr0xy-pa$$word").toString("base64")}`,
      );
      expect(await waitForEmpty(cluster)).toEqual(NOTHING_LEFT);
    } finally {
      await guarded.close();
    }
  });

  test("NO_PROXY naming the API server: straight there (which only the proxy can resolve), and the Plan says so", async () => {
    const { content } = proxiedKubeconfig();
    const before = proxy.tunnels.length;
    const { code, stderr } = await runCli(["build"], {
      KIB_KUBECONFIG: content,
      KIB_NAMESPACE: "ci-builds",
      KIB_TAGS: "registry.example:5000/acme/web:1.0",
      HTTPS_PROXY: proxy.url,
      NO_PROXY: "localhost,.proxied.test",
    });
    expect(code).toBe(1);
    expect(stderr).toContain(
      "Proxy: none for the API server (HTTPS_PROXY is set; NO_PROXY or a loopback address excludes the server)",
    );
    expect(stderr.trim().split("\n").at(-1)).toMatch(
      /^error: .*cannot reach the API server at https:\/\/apiserver\.proxied\.test:\d+ \(ENOTFOUND/,
    );
    expect(proxy.tunnels.length).toBe(before);
  });
});
