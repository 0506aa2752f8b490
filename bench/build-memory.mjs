/**
 * The tool's own peak memory over a whole build with a large context: `dist/cli.js build` (the
 * committed bundle, every module a build loads) against the Kubernetes API test server, whose
 * scripted kubelet runs the receiver's own `tar -xzf` with BusyBox, with the context of
 * `context-fixture.mjs`. Peak RSS is the child's VmHWM (read from /proc every 10 ms; the high-water
 * mark only grows, so the last read before exit is the peak up to 10 ms before it). Also printed:
 * the RSS after loading the bundle alone, and the upload phase's time from the build's metadata.
 *
 *   node bench/build-memory.mjs [--mb 190] [--rounds 3]
 */
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { clearInterval, setInterval } from "node:timers";
import { cpus, loadavg, tmpdir } from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath, pathToFileURL } from "node:url";
import { writeBenchContext } from "./context-fixture.mjs";
import { median, numberOption, startReplayCluster } from "./common.mjs";

const totalMb = numberOption("mb", 190);
const rounds = numberOption("rounds", 3);
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const node = process.execPath;
const lib = path.join(repo, "dist/lib.js");

if (!existsSync(lib)) {
  console.log("build-memory bench: skipped, no dist/lib.js (run npm run build)");
  process.exit(0);
}

const work = mkdtempSync(path.join(tmpdir(), "k8sib-bench-memory-"));
let cluster;
try {
  cluster = await startReplayCluster(work);
  const context = writeBenchContext(path.join(work, "ctx"), totalMb);
  const env = {
    PATH: process.env.PATH,
    HOME: work,
    KIB_TAGS: "registry.example:5000/acme/web:1.0",
    KIB_NAMESPACE: "ci-builds",
    KIB_KUBECONFIG: cluster.kubeconfig(),
    KIB_CONTEXT: ".",
  };

  /** Runs node with argv, polling its VmHWM; resolves with the peak and stdout. */
  const measured = (argv, childEnv) =>
    new Promise((resolve, reject) => {
      const t0 = performance.now();
      const child = spawn(node, argv, {
        cwd: context,
        env: childEnv,
        stdio: ["ignore", "pipe", "pipe"],
      });
      let peak = 0;
      let out = "";
      let err = "";
      const poll = setInterval(() => {
        try {
          const hwm = /VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, "utf8"));
          if (hwm) peak = Math.max(peak, Number(hwm[1]) * 1024);
        } catch {
          // exited between polls
        }
      }, 10);
      child.stdout.on("data", (chunk) => (out += chunk));
      child.stderr.on("data", (chunk) => (err += chunk));
      child.on("error", reject);
      child.on("close", (code) => {
        clearInterval(poll);
        if (code !== 0) reject(new Error(`exit ${code}: ${err.slice(-2000)}${out.slice(-2000)}`));
        else resolve({ peak, out, err, ms: performance.now() - t0 });
      });
    });

  const loadOnly = [];
  const builds = [];
  for (let r = 0; r < rounds; r++) {
    loadOnly.push(
      (
        await measured(
          [
            "--input-type=module",
            "-e",
            `await import(${JSON.stringify(pathToFileURL(lib).href)}); setTimeout(() => {}, 50);`,
          ],
          env,
        )
      ).peak,
    );
    const { peak, ms, err } = await measured([path.join(repo, "dist/cli.js"), "build"], env);
    builds.push({ peak, ms });
    if (r === 0)
      console.log(
        err
          .split("\n")
          .filter((l) => /upload|context|sent/i.test(l))
          .join("\n"),
      );
  }
  const cpu = cpus();
  const mb = (b) => `${(b / 1e6).toFixed(0)} MB`;
  console.log(
    `machine: ${cpu.length} × ${cpu[0]?.model ?? "cpu"}, Node ${process.version}, load average ${loadavg()[0].toFixed(1)}; context ${totalMb} MB (bench/context-fixture.mjs); ${rounds} rounds, medians; against the Kubernetes API test server (this process) and BusyBox tar`,
  );
  console.log(`  dist/lib.js loaded, nothing run: peak RSS ${mb(median(loadOnly))}`);
  console.log(
    `  dist/cli.js build, whole process: peak RSS ${mb(median(builds.map((x) => x.peak)))} (goal < 150 MB; rounds ${builds.map((x) => mb(x.peak)).join(", ")}); whole build ${(median(builds.map((x) => x.ms)) / 1000).toFixed(2)} s`,
  );
} finally {
  await cluster?.close();
  rmSync(work, { recursive: true, force: true });
}
