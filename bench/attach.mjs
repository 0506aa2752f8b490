/**
 * Context upload end to end: our uploadContext (pods/attach websocket, stdin frames with
 * backpressure) against the peer `tar czf - -C <dir> . | kubectl attach -i <pod> -c context`,
 * both into the receiver init container of a real Job on the Kubernetes API test server
 * (test/support/cluster.ts) over HTTPS, whose attach handler pipes stdin into a real `tar -xz`.
 * Alternating rounds in one run, medians reported with their ratio (not an assertion).
 *
 *   node bench/attach.mjs [--mb 80] [--rounds 3] [--kubectl /usr/bin/kubectl] [--kubectl-as-is]
 *
 * Every upload gets a fresh Job (stdinOnce: one upload per receiver). Ours runs in its own Node
 * process (a bundle of src/core/context/plan.ts + upload.ts), as the tool does, so that its peak RSS
 * is its own and not the test server's; the test server lives in this process. Timing: both sides
 * over the same span, from their process's spawn to its exit — start-up, walking and compressing
 * the context, the connection, the upload, and the receiver unpacking it (both wait for its end).
 * Our uploadContext call alone is reported beside it, as a breakdown, never in the ratio. Each
 * round alternates which side goes first. A side that cannot run (no kubectl, a kubectl that cannot
 * attach over websocket, a round that fails) fails the bench with exit code 1. See bench/README.md.
 *
 * TS sources are bundled on the fly with esbuild (a devDependency) into a temp dir.
 */
import { execFileSync, spawn } from "node:child_process";
import {
  accessSync,
  constants,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { performance } from "node:perf_hooks";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath, pathToFileURL } from "node:url";
import { build } from "esbuild";
import { writeBenchContext } from "./context-fixture.mjs";

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
};
const totalMb = Number(option("mb", 80));
const rounds = Number(option("rounds", 3));
let kubectl = option("kubectl", "/usr/bin/kubectl");

try {
  accessSync(kubectl, constants.X_OK);
} catch {
  console.error(
    `attach bench: FAILED: no kubectl at ${kubectl}; the peer side cannot run (give --kubectl PATH)`,
  );
  process.exit(1);
}

// The gcloud SDK's kubectl is a dispatcher (itself a kubectl v1.32.4): it first GETs /version
// to pick a version-matched kubectl.1.N next to it, if any. Run kubectl.1.<server minor>
// directly, so the peer is a plain kubectl; --kubectl-as-is keeps the dispatcher.
const SERVER_VERSION = "v1.32.0";
let kubectlNote = "";
if (!args.includes("--kubectl-as-is")) {
  try {
    const client = execFileSync(kubectl, ["version", "--client"], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
    });
    const minor = SERVER_VERSION.split(".")[1];
    const versioned = path.join(path.dirname(realpathSync(kubectl)), `kubectl.1.${minor}`);
    if (/dispatcher/.test(client) && existsSync(versioned)) {
      kubectlNote = ` (${kubectl} is gcloud's version dispatcher, which GETs /version first; running kubectl.1.${minor} next to it directly)`;
      kubectl = versioned;
    }
  } catch {
    // keep the path given; a failure shows in the rounds
  }
}
const kubectlVersion = (() => {
  try {
    const out = execFileSync(kubectl, ["version", "--client", "-o", "json"], { encoding: "utf8" });
    return JSON.parse(out).clientVersion.gitVersion;
  } catch {
    return "unknown version";
  }
})();
const timeBin = "/usr/bin/time";
const haveTime = (() => {
  try {
    execFileSync(timeBin, ["-f", "%M", "-o", "/dev/null", "true"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
})();

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const work = mkdtempSync(path.join(tmpdir(), "k8sib-bench-attach-"));
const banner = {
  js: "import { createRequire as __kibCreateRequire } from 'node:module'; const require = __kibCreateRequire(import.meta.url);",
};
const bundle = (contents, outfile) =>
  build({
    stdin: { contents, resolveDir: repo, loader: "ts", sourcefile: path.basename(outfile) },
    bundle: true,
    platform: "node",
    format: "esm",
    outfile,
    logLevel: "warning",
    banner,
  });

// Our side, in its own process: plan, then time uploadContext alone; report on stdout.
const WORKER = `
import { readFileSync } from "node:fs";
import { KubeConfig } from "@kubernetes/client-node";
import { planContext, tarContext } from "./src/core/context/index.ts";
import { uploadContext } from "./src/core/context/upload.ts";

const [kubeconfigPath, namespace, pod, dir] = process.argv.slice(2);
const kubeConfig = new KubeConfig();
kubeConfig.loadFromFile(kubeconfigPath);
const t0 = performance.now();
const plan = await planContext(dir, { dockerfile: "Dockerfile" });
const t1 = performance.now();
const rssBeforeKb = process.memoryUsage().rss / 1024;
const result = await uploadContext(
  { kubeConfig, namespace, pod, container: "context" },
  () => tarContext(plan),
  {},
);
const t2 = performance.now();
const hwm = /VmHWM:\\s*(\\d+)/.exec(readFileSync("/proc/self/status", "utf8"));
process.stdout.write(JSON.stringify({
  planMs: t1 - t0,
  ms: t2 - t1,
  sentBytes: result.sentBytes,
  files: plan.files,
  rssBeforeKb,
  hwmKb: hwm ? Number(hwm[1]) : process.resourceUsage().maxRSS,
}));
`;

const HARNESS = `
export { planContext } from "./src/core/context/plan.ts";
export { parseBuildSpec } from "./src/core/spec/spec.ts";
export { newBuildIdentity, renderManifests } from "./src/core/job/manifests.ts";
export { startTestCluster } from "./test/support/cluster.ts";
export { BatchV1Api, KubeConfig } from "@kubernetes/client-node";
`;

let cluster;
try {
  const workerJs = path.join(work, "worker.mjs");
  const harnessJs = path.join(work, "harness.mjs");
  await Promise.all([bundle(WORKER, workerJs), bundle(HARNESS, harnessJs)]);
  // The test server finds its recordings next to its own module.
  symlinkSync(path.join(repo, "test/support/recordings"), path.join(work, "recordings"));
  process.noDeprecation = true; // punycode, from a client-node dependency
  const H = await import(pathToFileURL(harnessJs).href);

  // 1. A context shaped like a real one (bench/context-fixture.mjs).
  const dir = writeBenchContext(path.join(work, "ctx"), totalMb);
  const plan = await H.planContext(dir, { dockerfile: "Dockerfile" });

  // 2. The test server, a namespace, and kubeconfig files for both sides.
  cluster = await H.startTestCluster({ gitVersion: SERVER_VERSION });
  const ns = "bench";
  cluster.createNamespace(ns);
  cluster.useScenario("kaniko-success-cold");
  const kubeconfigPath = path.join(work, "kubeconfig");
  writeFileSync(kubeconfigPath, cluster.kubeconfig({ namespace: ns }), { mode: 0o600 });
  const kc = new H.KubeConfig();
  kc.loadFromString(cluster.kubeconfig());
  const batch = kc.makeApiClient(H.BatchV1Api);
  // The test server serves no discovery (/api, /apis), which kubectl needs to map "pods": seed
  // kubectl's discovery cache (in the temp dir) with the core group's pods.
  const cacheDir = path.join(work, "kube-cache");
  const discovery = path.join(
    cacheDir,
    "discovery",
    cluster.url.replace(/^https?:\/\//, "").replace(/[^\w/.]/g, "_"),
  );
  mkdirSync(path.join(discovery, "v1"), { recursive: true });
  const v1 = { groupVersion: "v1", version: "v1" };
  writeFileSync(
    path.join(discovery, "servergroups.json"),
    JSON.stringify({
      kind: "APIGroupList",
      apiVersion: "v1",
      groups: [{ name: "", versions: [v1], preferredVersion: v1 }],
    }),
  );
  writeFileSync(
    path.join(discovery, "v1", "serverresources.json"),
    JSON.stringify({
      kind: "APIResourceList",
      apiVersion: "v1",
      groupVersion: "v1",
      resources: [
        {
          name: "pods",
          singularName: "pod",
          namespaced: true,
          kind: "Pod",
          verbs: ["create", "delete", "get", "list", "patch", "update", "watch"],
          shortNames: ["po"],
        },
      ],
    }),
  );

  const spec = H.parseBuildSpec(
    { context: ".", tags: "registry.example:5000/bench/attach:1", namespace: ns },
    { workspace: dir, kubeconfigPaths: [kubeconfigPath] },
  );

  /** A fresh Job; resolves with its pod once the receiver init container runs. */
  const receiverPod = async () => {
    const id = H.newBuildIdentity("bench-attach");
    const { job } = H.renderManifests(spec, id, {
      hasRegistryCredentials: false,
      hasBuildSecrets: false,
      serverMinorVersion: 32,
    });
    await batch.createNamespacedJob({ namespace: ns, body: job });
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      const pod = cluster
        .objects("pods", ns)
        .find((p) => p.metadata.ownerReferences?.some((o) => o.name === id.jobName));
      const st = pod?.status?.initContainerStatuses?.find((s) => s.name === "context");
      if (st?.state?.running) return { pod: pod.metadata.name, job: id.jobName };
      await sleep(10);
    }
    throw new Error(`the receiver of Job ${id.jobName} did not start within 30 s`);
  };

  const countFiles = (d) => {
    let n = 0;
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) n += countFiles(path.join(d, e.name));
      else if (e.isFile()) n++;
    }
    return n;
  };

  /** After an upload: wait for the receiver to exit, count what arrived, drop the Job and the copy. */
  const settle = async ({ pod, job }) => {
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      const p = cluster.objects("pods", ns).find((x) => x.metadata.name === pod);
      const st = p?.status?.initContainerStatuses?.find((s) => s.name === "context");
      if (!p || st?.state?.terminated) break;
      await sleep(10);
    }
    const received = cluster.receivedContext(pod);
    const files = received && existsSync(received) ? countFiles(received) : 0;
    if (received) rmSync(received, { recursive: true, force: true });
    await batch
      .deleteNamespacedJob({ name: job, namespace: ns, propagationPolicy: "Background" })
      .catch(() => {});
    return files;
  };

  /** Runs a command; resolves with wall time, exit code, stdout, stderr tail. */
  const run = (file, argv, env) =>
    new Promise((resolve) => {
      const t0 = performance.now();
      const child = spawn(file, argv, {
        env: { ...process.env, ...env },
        stdio: ["ignore", "pipe", "pipe"],
      });
      let out = "";
      let err = "";
      child.stdout.on("data", (c) => (out += c));
      child.stderr.on("data", (c) => (err = (err + c).slice(-2000)));
      let hwmKb = 0;
      // Without /usr/bin/time: poll the kubectl child's VmHWM until it exits (a lower bound).
      const poll = haveTime
        ? null
        : (async () => {
            while (child.exitCode === null && child.signalCode === null) {
              try {
                const kids = readFileSync(
                  `/proc/${child.pid}/task/${child.pid}/children`,
                  "utf8",
                ).trim();
                for (const pid of kids.split(/\s+/).filter(Boolean)) {
                  if (!readFileSync(`/proc/${pid}/comm`, "utf8").startsWith("kubectl")) continue;
                  const m = /VmHWM:\s*(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
                  if (m) hwmKb = Math.max(hwmKb, Number(m[1]));
                }
              } catch {
                // gone between reads
              }
              await sleep(20);
            }
          })();
      child.on("error", (error) =>
        resolve({ ms: performance.now() - t0, code: -1, out, err: String(error), hwmKb }),
      );
      child.on("close", async (code) => {
        const ms = performance.now() - t0;
        await poll;
        resolve({ ms, code, out, err, hwmKb });
      });
    });

  const rssFile = path.join(work, "rss");
  const readRss = () => {
    try {
      return Number(readFileSync(rssFile, "utf8").trim().split("\n").pop());
    } catch {
      return NaN;
    }
  };

  const ours = async () => {
    const target = await receiverPod();
    const before = cluster.requests.length;
    const argv = [workerJs, kubeconfigPath, ns, target.pod, dir];
    const r = haveTime
      ? await run(timeBin, ["-f", "%M", "-o", rssFile, process.execPath, ...argv])
      : await run(process.execPath, argv);
    const requests = cluster.requests.slice(before);
    const files = await settle(target);
    if (r.code !== 0) return { ok: false, why: r.err.trim().split("\n").slice(-3).join(" | ") };
    const w = JSON.parse(r.out);
    return {
      ok: files === plan.files,
      why: `${files}/${plan.files} files arrived`,
      ms: w.ms,
      wallMs: r.ms,
      planMs: w.planMs,
      sentBytes: w.sentBytes,
      rssKb: haveTime ? readRss() : w.hwmKb,
      rssBeforeKb: w.rssBeforeKb,
      requests,
      files,
    };
  };

  const peer = async () => {
    const target = await receiverPod();
    const before = cluster.requests.length;
    const attach = `"$3" attach -i -q "$4" -c context -n "$5" --cache-dir "$6"`;
    const script = `set -o pipefail; tar czf - -C "$1" . | ${haveTime ? `${timeBin} -f %M -o "$2" ` : ""}${attach}`;
    const r = await run(
      "bash",
      ["-c", script, "bash", dir, rssFile, kubectl, target.pod, ns, cacheDir],
      // kubectl 1.29–1.30 attach over websocket only when asked (the default from 1.31).
      { KUBECONFIG: kubeconfigPath, KUBECTL_REMOTE_COMMAND_WEBSOCKETS: "true" },
    );
    const requests = cluster.requests.slice(before);
    const files = await settle(target);
    if (r.code !== 0) {
      // kubectl's own words, not the tar that lost its reader.
      const lines = r.err.trim().split("\n");
      const said =
        lines
          .filter((l) => !l.startsWith("tar:"))
          .slice(-3)
          .join(" | ") || lines.slice(-3).join(" | ");
      // The test server, like the API servers this tool targets, attaches over websocket only.
      const spdy = /spdy|upgrade request required|unable to upgrade connection/i.test(r.err);
      return {
        ok: false,
        why: spdy
          ? `${kubectl} (${kubectlVersion}) cannot attach over websocket (v4/v5.channel.k8s.io), which is all the test server speaks; use kubectl 1.29 or later: exit ${r.code}: ${said}`
          : `exit ${r.code}: ${said}`,
      };
    }
    return {
      ok: files === plan.files,
      why: `${files}/${plan.files} files arrived`,
      ms: r.ms,
      rssKb: haveTime ? readRss() : r.hwmKb,
      requests,
      files,
    };
  };

  const tStart = performance.now();
  console.log(
    `attach bench: ${plan.files} files, ${(plan.bytes / 1e6).toFixed(1)} MB context, ${rounds} rounds (alternating order), medians`,
  );
  console.log(`  peer: ${kubectl} ${kubectlVersion}${kubectlNote}`);
  // Warm-up, not counted: page cache, kubectl's binary, the server's JIT.
  for (const [name, side] of [
    ["ours", ours],
    ["peer", peer],
  ]) {
    const res = await side();
    if (!res.ok) console.log(`  warm-up ${name}: ${res.why}`);
  }
  const a = [];
  const b = [];
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0 ? [ours, peer] : [peer, ours];
    for (const side of order) {
      const res = await side();
      (side === ours ? a : b).push(res);
      if (!res.ok) console.log(`  round ${r + 1} ${side === ours ? "ours" : "peer"}: ${res.why}`);
    }
  }

  const median = (xs) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
  const good = (xs) => xs.filter((x) => x.ok);
  const ga = good(a);
  const gb = good(b);
  const mbps = (ms) => plan.bytes / 1e6 / (ms / 1000);
  const mb = (kb) => `${(kb / 1024).toFixed(0)} MB`;
  const describe = (reqs) =>
    reqs
      .map(
        (q) => `${q.method} ${q.path.replace(/\/namespaces\/.*\/pods\//, "/…/pods/")} ${q.status}`,
      )
      .join(", ");
  const rssHow = haveTime
    ? `${timeBin} -f %M (whole process)`
    : "VmHWM from /proc (ours: read by the process itself before exit; kubectl: polled every 20 ms, a lower bound)";
  if (ga.length) {
    const ms = median(ga.map((x) => x.ms));
    console.log(
      `  ours  uploadContext (own node process):   ${(ms / 1000).toFixed(2)} s  ${mbps(ms).toFixed(1)} MB/s  → ${(ga[0].sentBytes / 1e6).toFixed(1)} MB sent; peak RSS ${mb(median(ga.map((x) => x.rssKb)))} (max ${mb(Math.max(...ga.map((x) => x.rssKb)))}; ${mb(median(ga.map((x) => x.rssBeforeKb)))} before the upload, after loading and planning)`,
    );
    console.log(
      `        process wall (spawn to exit) incl. node start-up and planContext (${median(ga.map((x) => x.planMs)).toFixed(0)} ms): ${(median(ga.map((x) => x.wallMs)) / 1000).toFixed(2)} s`,
    );
  }
  if (gb.length) {
    const ms = median(gb.map((x) => x.ms));
    console.log(
      `  peer  tar czf | kubectl attach -i:        ${(ms / 1000).toFixed(2)} s  ${mbps(ms).toFixed(1)} MB/s  (pipeline start to exit); kubectl peak RSS ${mb(median(gb.map((x) => x.rssKb)))} (max ${mb(Math.max(...gb.map((x) => x.rssKb)))})`,
    );
  }
  if (ga.length && gb.length) {
    const oursWall = median(ga.map((x) => x.wallMs));
    const peerWall = median(gb.map((x) => x.ms));
    console.log(
      `  same span (spawn to exit, context unpacked): ours ${(oursWall / 1000).toFixed(2)} s, peer ${(peerWall / 1000).toFixed(2)} s; ratio ours/peer (speed) ${(peerWall / oursWall).toFixed(2)}×`,
    );
  }
  const list = (xs, key) => xs.map((x) => (x.ok ? (x[key] / 1000).toFixed(2) : "failed")).join(" ");
  console.log(
    `  per round, spawn to exit (s, in run order): ours ${list(a, "wallMs")}; peer ${list(b, "ms")}`,
  );
  console.log(`  RSS: ${rssHow}`);
  if (ga.length)
    console.log(
      `  API requests per upload, ours (${ga[0].requests.length}): ${describe(ga[0].requests)}`,
    );
  if (gb.length)
    console.log(
      `  API requests per upload, peer (${gb[0].requests.length}): ${describe(gb[0].requests)}`,
    );
  console.log(
    `  files arrived: ours ${ga.length}/${a.length} rounds complete, peer ${gb.length}/${b.length}; run ${((performance.now() - tStart) / 1000).toFixed(0)} s`,
  );
  // Loud: a side that could not run every round is a failed bench, not a shorter report.
  const failedSides = [
    ["ours", a],
    ["peer", b],
  ].filter(([, xs]) => xs.some((x) => !x.ok));
  if (failedSides.length) {
    for (const [name, xs] of failedSides)
      console.error(
        `attach bench: FAILED: ${name} could not run ${xs.filter((x) => !x.ok).length} of ${xs.length} rounds: ${xs.find((x) => !x.ok).why}`,
      );
    process.exitCode = 1;
  }
} catch (error) {
  console.error(`attach bench: FAILED: ${error?.stack ?? error}`);
  process.exitCode = 1;
} finally {
  await cluster?.close().catch(() => {});
  rmSync(work, { recursive: true, force: true });
}
process.exit(process.exitCode ?? 0);
