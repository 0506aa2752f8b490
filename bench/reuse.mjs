/**
 * Reuse: an unchanged rebuild against a full build of the same inputs, through build() (the
 * engine, bundled on the fly with esbuild), on the Kubernetes API test server with its kubelet
 * replaying the real cluster's recording at its recorded pace (timeScale 1: scheduling, image
 * pull and Kaniko's start as they took on the real cluster) and a real registry (Debian's
 * docker-registry with token auth, test/support/registry.ts) that the test kubelet's builder
 * pushes a real image to. Medians of N rounds; the ratio is rebuild / full build (goal ≤ 0.2).
 *
 *   node bench/reuse.mjs [--rounds 3] [--time-scale 1]
 *
 * Registry requests are the runner's, counted at fetch (token requests and 401 challenges
 * included; client-node has its own fetch, and the builder's push in the pod is not counted).
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { bundleSources } from "./bundle-sources.mjs";
import { median, numberOption, quietReporter } from "./common.mjs";

const rounds = numberOption("rounds", 3);
const timeScale = numberOption("time-scale", 1);

if (spawnSync("docker-registry", ["--version"], { stdio: "ignore" }).status !== 0) {
  console.log("reuse bench: skipped, no docker-registry (scripts/test-deps.sh installs it)");
  process.exit(0);
}

const work = mkdtempSync(path.join(tmpdir(), "k8sib-bench-reuse-"));
let cluster;
let registry;
try {
  const E = await bundleSources(
    `
export { build } from "./src/core/build.ts";
export { parseBuildSpec } from "./src/core/spec/spec.ts";
export { startTestCluster } from "./test/support/cluster.ts";
export { startRegistry, TEST_USER, TEST_PASSWORD } from "./test/support/registry.ts";
export { builderPush } from "./test/support/builder-push.ts";
`,
    path.join(work, "engine.mjs"),
  );

  let registryRequests = 0;
  const fetch0 = globalThis.fetch;
  globalThis.fetch = (...a) => {
    registryRequests++;
    return fetch0(...a);
  };

  registry = await E.startRegistry({ auth: "token", anonymousPull: true });
  cluster = await E.startTestCluster({ timeScale });
  cluster.createNamespace("ci-builds");
  const credentials = { username: E.TEST_USER, password: E.TEST_PASSWORD };
  // The builder's pushes (in the pod, on a real cluster) are not the runner's requests: not counted.
  cluster.useScenario("kaniko-success-cold", {
    push: E.builderPush({ credentials, fetch: fetch0 }),
  });

  const context = path.join(work, "ctx");
  mkdirSync(path.join(context, "src"), { recursive: true });
  writeFileSync(path.join(context, "Dockerfile"), "FROM busybox\nCOPY . /app\n");
  for (let i = 0; i < 200; i++)
    writeFileSync(path.join(context, "src", `f${i}.js`), `export const x${i} = ${i};\n`.repeat(50));
  const spec = (name) =>
    E.parseBuildSpec(
      {
        context: ".",
        tags: `${registry.host}/acme/${name}:1.0`,
        "cache-repo": `${registry.host}/acme/${name}/cache`,
        "insecure-registries": registry.host,
        "registry-username": credentials.username,
        "registry-password": credentials.password,
        namespace: "ci-builds",
        kubeconfig: cluster.kubeconfig(),
      },
      { workspace: context, kubeconfigPaths: [] },
    );
  const timed = async (s) => {
    cluster.resetRequests();
    registryRequests = 0;
    const t0 = performance.now();
    const result = await E.build(s, { reporter: quietReporter, runId: "bench" });
    return {
      ms: performance.now() - t0,
      reused: result.reused,
      api: cluster.requests.length,
      registry: registryRequests,
    };
  };

  const full = [];
  const again = [];
  for (let r = 0; r < rounds; r++) {
    const name = `web-${r}`;
    full.push(await timed(spec(name)));
    again.push(await timed(spec(name)));
    if (full.at(-1).reused || !again.at(-1).reused) throw new Error("reuse did not happen");
  }
  const fullMs = median(full.map((x) => x.ms));
  const againMs = median(again.map((x) => x.ms));
  const cpu = cpus();
  console.log(
    `machine: ${cpu.length} × ${cpu[0]?.model ?? "cpu"}, Node ${process.version}, load average ${loadavg()[0].toFixed(1)}; ${rounds} rounds, medians; Kubernetes API test server replaying the real cluster's kaniko-success-cold at timeScale ${timeScale}, docker-registry on loopback (token auth)`,
  );
  console.log(
    `  full build (key not found, built, key recorded): ${(fullMs / 1000).toFixed(2)} s  (${median(full.map((x) => x.api))} API requests, ${median(full.map((x) => x.registry))} registry requests; rounds ${full.map((x) => (x.ms / 1000).toFixed(2)).join(", ")} s)`,
  );
  console.log(
    `  unchanged rebuild (reused, no Job):               ${(againMs / 1000).toFixed(3)} s  (${median(again.map((x) => x.api))} API requests, ${median(again.map((x) => x.registry))} registry requests; rounds ${again.map((x) => (x.ms / 1000).toFixed(3)).join(", ")} s)`,
  );
  console.log(`  ratio (rebuild / full build, goal ≤ 0.2): ${(againMs / fullMs).toFixed(3)}`);
} finally {
  await cluster?.close();
  await registry?.stop();
  rmSync(work, { recursive: true, force: true });
}
