/**
 * Cold start: from spawning the committed bundle (dist/, `npm run build` first) to the first
 * Kubernetes API request it makes, for the action (dist/main.js, inputs as INPUT_* variables) and
 * the CLI (dist/cli.js build, KIB_* variables), against the Kubernetes API test server in this
 * process (test/support/cluster.ts, bundled on the fly with esbuild). Also: a bare `node -e 0`,
 * and the CPU time of importing dist/lib.js alone. Medians of N rounds (not an assertion).
 *
 *   node bench/cold-start.mjs [--rounds 7]
 *
 * A plain build (no cache-repo, so no registry lookup before the first request); the first
 * request is the Pod Security preflight's namespace read. The time is the child's own clock
 * (performance.now(), from its process start) when undici writes the first request's headers to
 * the socket (diagnostics channel `undici:client:sendHeaders`, subscribed by a preloaded module),
 * so a busy test server in this process does not count; what the server saw is printed too.
 */
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath, pathToFileURL } from "node:url";
import { median, numberOption, startReplayCluster } from "./common.mjs";

const rounds = numberOption("rounds", 7);
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const node = process.execPath;

if (!existsSync(path.join(repo, "dist/lib.js"))) {
  console.log("cold-start bench: skipped, no dist/lib.js (run npm run build)");
  process.exit(0);
}

const work = mkdtempSync(path.join(tmpdir(), "k8sib-bench-cold-"));
let cluster;
try {
  cluster = await startReplayCluster(work);
  const kubeconfig = cluster.kubeconfig();

  // The first request of each run, as the server sees it.
  let firstSeen;
  const push = cluster.requests.push.bind(cluster.requests);
  cluster.requests.push = (...records) => {
    firstSeen ??= performance.now();
    return push(...records);
  };

  const context = path.join(work, "ctx");
  execFileSync("mkdir", ["-p", context]);
  writeFileSync(path.join(context, "Dockerfile"), "FROM busybox\nCOPY app.txt /app.txt\n");
  writeFileSync(path.join(context, "app.txt"), "hello\n");
  const inputs = {
    tags: "registry.example:5000/acme/web:1.0",
    namespace: "ci-builds",
    kubeconfig,
    context: ".",
  };
  const actionEnv = {
    ...Object.fromEntries(Object.entries(inputs).map(([k, v]) => [`INPUT_${k.toUpperCase()}`, v])),
    GITHUB_WORKSPACE: context,
    GITHUB_OUTPUT: path.join(work, "output"),
    GITHUB_STATE: path.join(work, "state"),
  };
  const cliEnv = Object.fromEntries(
    Object.entries(inputs).map(([k, v]) => [`KIB_${k.toUpperCase()}`, v]),
  );
  const probe = path.join(work, "first-request.mjs");
  writeFileSync(
    probe,
    `import { subscribe, unsubscribe } from "node:diagnostics_channel";
import { writeSync } from "node:fs";
const onHeaders = () => {
  const cpu = process.cpuUsage();
  writeSync(3, JSON.stringify({ ms: performance.now(), cpuMs: (cpu.user + cpu.system) / 1000 }));
  unsubscribe("undici:client:sendHeaders", onHeaders);
};
subscribe("undici:client:sendHeaders", onHeaders);
`,
  );
  let cacheDirs = 0;
  /** A fresh compile cache (cold) or the one every warm run shares. */
  const compileCache = (warm) =>
    path.join(work, warm ? "compile-cache-warm" : `compile-cache-${++cacheDirs}`);
  const timeToFirstRequest = (argv, env) =>
    new Promise((resolve, reject) => {
      firstSeen = undefined;
      const t0 = performance.now();
      const child = spawn(node, ["--import", pathToFileURL(probe).href, ...argv], {
        cwd: context,
        env: { PATH: process.env.PATH, HOME: work, ...env },
        stdio: ["ignore", "ignore", "pipe", "pipe"],
      });
      let stderr = "";
      let sent = "";
      child.stderr.on("data", (chunk) => (stderr += chunk));
      child.stdio[3].on("data", (chunk) => (sent += chunk));
      child.on("error", reject);
      child.on("close", (code) =>
        firstSeen === undefined || sent === ""
          ? reject(new Error(`no API request (exit ${code}): ${stderr}`))
          : resolve({ ...JSON.parse(sent), seen: firstSeen - t0, total: performance.now() - t0 }),
      );
    });
  const bare = () =>
    new Promise((resolve) => {
      const t0 = performance.now();
      spawn(node, ["-e", "0"]).on("close", () => resolve(performance.now() - t0));
    });
  const importCpu = () =>
    Number(
      execFileSync(node, [
        "-e",
        `const c0 = process.cpuUsage(); import(${JSON.stringify(pathToFileURL(path.join(repo, "dist/lib.js")).href)}).then(() => { const c = process.cpuUsage(c0); console.log((c.user + c.system) / 1000); })`,
      ])
        .toString()
        .trim(),
    );

  const faces = {
    "action (dist/main.js)": { argv: [path.join(repo, "dist/main.js")], env: actionEnv },
    "CLI (dist/cli.js build)": { argv: [path.join(repo, "dist/cli.js"), "build"], env: cliEnv },
  };
  const runs = [];
  for (const face of Object.keys(faces))
    for (const warm of [false, true])
      runs.push({ face, warm, label: `${face}, ${warm ? "warm" : "cold"} compile cache` });
  const results = { bare: [], importCpu: [] };
  for (const run of runs) results[run.label] = [];
  const once = (run) =>
    timeToFirstRequest(faces[run.face].argv, {
      ...faces[run.face].env,
      NODE_COMPILE_CACHE: compileCache(run.warm),
    });
  for (const run of runs) if (run.warm) await once(run); // fill the warm cache, and the page cache
  for (let r = 0; r < rounds; r++) {
    results.bare.push(await bare());
    results.importCpu.push(importCpu());
    for (const run of runs) results[run.label].push(await once(run));
  }
  const cpu = cpus();
  const ms = (x) => `${x.toFixed(0)} ms`;
  console.log(
    `machine: ${cpu.length} × ${cpu[0]?.model ?? "cpu"}, Node ${process.version}, load average ${loadavg()[0].toFixed(1)}; ${rounds} rounds, medians; against the Kubernetes API test server (this process)`,
  );
  console.log(`  node -e 0: ${ms(median(results.bare))}`);
  console.log(
    `  import dist/lib.js (the library: every face), no compile cache: ${ms(median(results.importCpu))} CPU  (rounds ${results.importCpu.map((x) => x.toFixed(0)).join(", ")})`,
  );
  console.log("  process start → first API request sent (goal < 250 ms):");
  for (const run of runs) {
    const xs = results[run.label];
    console.log(
      `    ${run.label.padEnd(46)} ${ms(median(xs.map((x) => x.ms)))} (${ms(median(xs.map((x) => x.cpuMs)))} CPU; rounds ${xs.map((x) => x.ms.toFixed(0)).join(", ")}; the server answered ${ms(median(xs.map((x) => x.seen)))} after spawn; whole build ${ms(median(xs.map((x) => x.total)))})`,
    );
  }
} finally {
  await cluster?.close();
  rmSync(work, { recursive: true, force: true });
}
