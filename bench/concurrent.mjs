/**
 * Twenty builds at once against one API server: build() (the engine, bundled on the fly with
 * esbuild) on the Kubernetes API test server, its kubelet replaying the real cluster's
 * kaniko-success-cold recording at its recorded pace (timeScale 1). First builds one at a time
 * (the baseline), then N at once; every build must succeed. A build's overhead is its wall time
 * beyond what the replayed pod itself takes (the recording's span from the pod's creation to the
 * builder's end, scaled); the growth is median overhead at once / alone (goal < 10 %). Not an
 * assertion.
 *
 *   node bench/concurrent.mjs [--builds 20] [--alone 3] [--time-scale 1]
 *
 * The test server runs in a child process (its own event loop, as an API server has), the builds
 * in this one; both share the machine's cores. The per-build API request count is printed, with
 * the TLS handshakes (and how many resumed a session), the server's CPU in the window of the
 * builds at once, and how long each event loop was held (monitorEventLoopDelay: the test server's
 * kubelet spawns BusyBox receivers on the server's own loop, which a real kubelet does not).
 */
import { fork } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import path from "node:path";
import { monitorEventLoopDelay, performance } from "node:perf_hooks";
import { fileURLToPath, pathToFileURL } from "node:url";
import { bundleSources } from "./bundle-sources.mjs";
import { median, numberOption, quietReporter } from "./common.mjs";

const builds = numberOption("builds", 20);
const alone = numberOption("alone", 3);
const timeScale = numberOption("time-scale", 1);
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

const work = mkdtempSync(path.join(tmpdir(), "k8sib-bench-concurrent-"));
let cluster;
try {
  const bundle = path.join(work, "engine.mjs");
  const E = await bundleSources(
    `
export { build } from "./src/core/build.ts";
export { parseBuildSpec } from "./src/core/spec/spec.ts";
export { startTestCluster } from "./test/support/cluster.ts";
`,
    bundle,
  );
  // The test server, in its own process: answers "kubeconfig", "reset" and "count" over IPC.
  const server = path.join(work, "server.mjs");
  writeFileSync(
    server,
    `const { startTestCluster } = await import(${JSON.stringify(pathToFileURL(bundle).href)});
const { monitorEventLoopDelay } = await import("node:perf_hooks");
const cluster = await startTestCluster({ timeScale: ${timeScale} });
cluster.createNamespace("ci-builds");
cluster.useScenario("kaniko-success-cold");
const loop = monitorEventLoopDelay({ resolution: 5 });
loop.enable();
process.on("message", async (m) => {
  if (m === "reset") { cluster.resetRequests(); loop.reset(); }
  if (m === "close") { await cluster.close(); process.exit(0); }
  const cpu = process.cpuUsage();
  process.send({
    m,
    kubeconfig: cluster.kubeconfig(),
    count: cluster.requests.length,
    handshakes: cluster.handshakes.length,
    resumed: cluster.handshakes.filter((h) => h.resumed).length,
    cpuMs: (cpu.user + cpu.system) / 1000,
    loopMs: [loop.percentile(99) / 1e6, loop.max / 1e6],
  });
});
process.send({ m: "ready" });
`,
  );
  const child = fork(server, [], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
  const ask = (m) =>
    new Promise((resolve) => {
      const on = (reply) => {
        if (reply.m !== m) return;
        child.off("message", on);
        resolve(reply);
      };
      child.on("message", on);
      child.send(m);
    });
  await new Promise((resolve) => child.once("message", resolve));
  cluster = {
    close: () => new Promise((resolve) => (child.once("exit", resolve), child.send("close"))),
  };
  const { kubeconfig } = await ask("kubeconfig");

  // What the replayed pod takes by itself: the recording from the pod's creation to the frame in
  // which the builder has ended, scaled (it includes the recorded upload, which ours replaces).
  const recording = path.join(repo, "test/support/recordings/kaniko-success-cold");
  const frames = readFileSync(path.join(recording, "pod-watch.jsonl"), "utf8")
    .split("\n")
    .filter(Boolean)
    .map((line) => {
      const tab = line.indexOf("\t");
      return { t: Number(line.slice(0, tab)), event: JSON.parse(line.slice(tab + 1)) };
    });
  const ended = frames.find(
    (f) => f.event.object.status?.containerStatuses?.[0]?.state?.terminated !== undefined,
  );
  const span = ended ? (ended.t - frames[0].t) * timeScale : NaN;
  const podMs = Number.isFinite(span) ? span : undefined;

  const context = path.join(work, "ctx");
  mkdirSync(context, { recursive: true });
  writeFileSync(path.join(context, "Dockerfile"), "FROM busybox\nCOPY app.txt /app.txt\n");
  writeFileSync(path.join(context, "app.txt"), "hello\n");
  const spec = E.parseBuildSpec(
    {
      context: ".",
      tags: "registry.example:5000/acme/web:1.0",
      namespace: "ci-builds",
      kubeconfig,
    },
    { workspace: context, kubeconfigPaths: [] },
  );
  let phases = [];
  const one = async () => {
    const t0 = performance.now();
    const result = await E.build(spec, { reporter: quietReporter, runId: "bench" });
    if (!/^sha256:/.test(result.digest)) throw new Error("no digest");
    phases.push(result.durations);
    return performance.now() - t0;
  };

  await one(); // warm up
  const single = [];
  const beforeAlone = await ask("reset");
  const cpuAlone0 = process.cpuUsage();
  for (let i = 0; i < alone; i++) single.push(await one());
  const cpuAlone = process.cpuUsage(cpuAlone0);
  const afterAlone = await ask("count");
  const serverCpuAlone = (afterAlone.cpuMs - beforeAlone.cpuMs) / alone;
  const phasesAlone = phases.slice(1);
  phases = [];
  const atReset = await ask("reset");
  const engineLoop = monitorEventLoopDelay({ resolution: 5 });
  engineLoop.enable();
  const t0 = performance.now();
  const cpuTogether0 = process.cpuUsage();
  const settled = await Promise.allSettled(Array.from({ length: builds }, one));
  const cpuTogether = process.cpuUsage(cpuTogether0);
  const wall = performance.now() - t0;
  const failed = settled.filter((s) => s.status === "rejected");
  const together = settled.filter((s) => s.status === "fulfilled").map((s) => s.value);
  engineLoop.disable();
  const { count, handshakes, resumed, cpuMs: serverCpuMs, loopMs } = await ask("count");

  const cpu = cpus();
  const s = (ms) => `${(ms / 1000).toFixed(2)} s`;
  console.log(
    `machine: ${cpu.length} × ${cpu[0]?.model ?? "cpu"}, Node ${process.version}, load average ${loadavg()[0].toFixed(1)}; Kubernetes API test server in a child process replaying kaniko-success-cold at timeScale ${timeScale}`,
  );
  console.log(
    `  ${builds} builds at once: ${together.length} succeeded, ${failed.length} failed${failed.length ? ` (${failed[0].reason?.message})` : ""}; all done in ${s(wall)}; ${(count / builds).toFixed(1)} API requests per build`,
  );
  const aloneMs = median(single);
  const togetherMs = median(together);
  console.log(
    `  a build alone: ${s(aloneMs)} (median of ${alone}); at once: ${s(togetherMs)} (median), slowest ${s(Math.max(...together))}`,
  );
  if (podMs !== undefined) {
    const overheadAlone = aloneMs - podMs;
    const overheadTogether = togetherMs - podMs;
    console.log(
      `  overhead beyond the replayed pod (${s(podMs)}): alone ${s(overheadAlone)}, at once ${s(overheadTogether)}; growth ${(((overheadTogether - overheadAlone) / overheadAlone) * 100).toFixed(0)} % (goal < 10 %)`,
    );
  }
  const phaseLine = (list) =>
    ["submitMs", "scheduleMs", "uploadMs", "buildMs"]
      .map((k) => `${k.replace("Ms", "")} ${median(list.map((d) => d[k])).toFixed(0)}`)
      .join(", ");
  console.log(
    `  phases, ms (medians): alone ${phaseLine(phasesAlone)}; at once ${phaseLine(phases)}`,
  );
  const cpuMs = (usage, n) => ((usage.user + usage.system) / 1000 / n).toFixed(0);
  console.log(
    `  this process's CPU per build (the engine; the test server is the child's): alone ${cpuMs(cpuAlone, alone)} ms, at once ${cpuMs(cpuTogether, builds)} ms`,
  );
  console.log(
    `  wall time growth per build: ${(((togetherMs - aloneMs) / aloneMs) * 100).toFixed(1)} %`,
  );
  console.log(
    `  at once: ${(handshakes / builds).toFixed(1)} TLS handshakes per build (${resumed} of ${handshakes} resumed a session); the test server's CPU per build ${((serverCpuMs - atReset.cpuMs) / builds).toFixed(0)} ms at once vs ${serverCpuAlone.toFixed(0)} ms alone (handshakes per build alone ${(afterAlone.handshakes / alone).toFixed(1)}); event loop held (p99 / max): test server ${loopMs[0].toFixed(0)} / ${loopMs[1].toFixed(0)} ms, engine ${(engineLoop.percentile(99) / 1e6).toFixed(0)} / ${(engineLoop.max / 1e6).toFixed(0)} ms`,
  );
} finally {
  await cluster?.close();
  rmSync(work, { recursive: true, force: true });
}
