/**
 * Context upload pipeline, end to end on this machine: our planContext + tarContext (adaptive gzip:
 * fast level where it buys bytes, stored blocks for random data) streamed into a stock
 * `busybox tar -xzf -`, against the two paths people use by hand, into the same busybox:
 *
 *   tar czf - -C <dir> . | busybox tar -xzOf -    (the gzip path of `… | kubectl exec -i`)
 *   tar cf  - -C <dir> . | busybox tar -xOf -     (the uncompressed path)
 *
 * busybox unpacks to stdout (-O, into /dev/null): the receiver's CPU (gunzip, tar parsing) counts,
 * this machine's disk does not.
 *
 * Alternating rounds in one run, medians with ratios (not an assertion). No cluster is involved:
 * this is the CPU side of an upload (walk, tar, compression, unpacking), with the transport a pipe.
 * What a link would add is the bytes on the wire, printed for each path.
 *
 *   node bench/upload.mjs [--mb 80] [--rounds 3]
 *
 * Ours runs in its own Node process (a bundle of src/core/context/index.ts, made on the fly with
 * esbuild into a temp dir), so its peak RSS (VmHWM) is its own.
 */
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { performance } from "node:perf_hooks";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { writeBenchContext } from "./context-fixture.mjs";
import { median, numberOption } from "./common.mjs";

const totalMb = numberOption("mb", 80);
const rounds = numberOption("rounds", 3);
/**
 * A link of this many MB/s between source and busybox, for a second set of rounds: 25 is what
 * the uncompressed `tar cf | kubectl exec -i` path reached on the real 2-core cluster (190 MiB in
 * 7.1–9.0 s). A model of the transport, not a measurement of it.
 */
const linkMbps = numberOption("link-mbps", 25);

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const work = mkdtempSync(path.join(tmpdir(), "k8sib-bench-upload-"));

function busyboxAvailable() {
  try {
    execFileSync("busybox", ["tar", "--help"], { stdio: "ignore" });
    return true;
  } catch (error) {
    return error.status === 0 || error.status === 1;
  }
}

/** Runs `command` in a shell; resolves with its wall time and what `measure` read from stdout. */
function timed(command, env = {}) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn("sh", ["-c", command], {
      stdio: ["ignore", "pipe", "inherit"],
      env: { ...process.env, ...env },
    });
    let out = "";
    child.stdout.on("data", (chunk) => (out += chunk));
    child.on("error", reject);
    child.on("close", (code) =>
      code === 0
        ? resolve({ ms: performance.now() - t0, out })
        : reject(new Error(`${command} exited ${code}`)),
    );
  });
}

try {
  if (!busyboxAvailable()) {
    console.log("upload bench: skipped, no busybox on PATH (the receiver is a stock busybox tar)");
    process.exit(0);
  }
  const bundle = path.join(work, "context.mjs");
  await build({
    entryPoints: [path.join(repo, "src/core/context/index.ts")],
    bundle: true,
    platform: "node",
    format: "esm",
    outfile: bundle,
    logLevel: "warning",
    banner: {
      js: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);",
    },
  });
  // A pipe with a rate limit (token bucket, 10 ms ticks): stdin → stdout at `MB/s`.
  const throttle = path.join(work, "throttle.mjs");
  writeFileSync(
    throttle,
    `const rate = Number(process.argv[2]) * 1e6;
const t0 = performance.now();
let sent = 0;
process.stdin.on("data", (chunk) => {
  sent += chunk.length;
  process.stdout.write(chunk);
  const due = t0 + (sent / rate) * 1000 - performance.now();
  if (due > 0) {
    process.stdin.pause();
    setTimeout(() => process.stdin.resume(), due);
  }
});
process.stdin.on("end", () => process.stdout.end());
`,
  );
  // Ours, in its own process: plan, then the tar stream into busybox's stdin with backpressure.
  const ours = path.join(work, "ours.mjs");
  writeFileSync(
    ours,
    `import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
const { planContext, tarContext } = await import(${JSON.stringify(bundle)});
const [dir, receiver] = process.argv.slice(2);
const t0 = performance.now();
const plan = await planContext(dir, { dockerfile: "Dockerfile" });
const planned = performance.now();
const tar = spawn("sh", ["-c", receiver], { stdio: ["pipe", "ignore", "inherit"] });
let sent = 0;
const exited = new Promise((resolve) => tar.on("close", resolve));
for await (const chunk of tarContext(plan)) {
  sent += chunk.length;
  if (!tar.stdin.write(chunk)) await new Promise((resolve) => tar.stdin.once("drain", resolve));
}
tar.stdin.end();
const code = await exited;
if (code !== 0) throw new Error("busybox tar exited " + code);
const hwm = Number(/VmHWM:\\s+(\\d+)/.exec(readFileSync("/proc/self/status", "utf8"))[1]) * 1024;
console.log(JSON.stringify({ ms: performance.now() - t0, planMs: planned - t0, sent, hwm, files: plan.files, bytes: plan.bytes }));
`,
  );

  const dir = writeBenchContext(path.join(work, "ctx"), totalMb);
  const node = process.execPath;
  const link = (limited) => (limited ? `"${node}" "${throttle}" ${linkMbps} | ` : "");
  const runOurs = async (limited) => {
    const receiver = `${link(limited)}busybox tar -xzOf - > /dev/null`;
    const { out: json } = await timed(`"${node}" "${ours}" "${dir}" '${receiver}'`);
    return JSON.parse(json);
  };
  const runPeer = async (create, extract, limited) => {
    const { ms } = await timed(
      `tar ${create} - -C "${dir}" . | ${link(limited)}busybox tar ${extract} - > /dev/null`,
    );
    return { ms };
  };
  const wireBytes = (create) =>
    Number(
      execFileSync("sh", ["-c", `tar ${create} - -C "${dir}" . | wc -c`])
        .toString()
        .trim(),
    );

  await runOurs(false); // warm the page cache
  const cpu = cpus();
  const wire = { czf: wireBytes("czf"), cf: wireBytes("cf") };
  for (const limited of [false, true]) {
    const a = [];
    const gz = [];
    const raw = [];
    for (let r = 0; r < rounds; r++) {
      // Alternate who goes first, so neither always gets the warmer cache or the quieter machine.
      const order = r % 2 === 0 ? ["ours", "gz", "raw"] : ["raw", "gz", "ours"];
      for (const who of order) {
        if (who === "ours") a.push(await runOurs(limited));
        if (who === "gz") gz.push(await runPeer("czf", "-xzOf", limited));
        if (who === "raw") raw.push(await runPeer("cf", "-xOf", limited));
      }
    }
    const { files, bytes, sent } = a[0];
    const oursMs = median(a.map((x) => x.ms));
    const gzMs = median(gz.map((x) => x.ms));
    const rawMs = median(raw.map((x) => x.ms));
    const mbps = (ms) => (bytes / 1e6 / (ms / 1000)).toFixed(1);
    const each = (xs) => xs.map((x) => (x.ms / 1000).toFixed(2)).join(", ");
    if (!limited) {
      console.log(
        `machine: ${cpu.length} × ${cpu[0]?.model ?? "cpu"}, Node ${process.version}, load average ${loadavg()[0].toFixed(1)}; context ${files} files, ${(bytes / 1e6).toFixed(1)} MB (bench/context-fixture.mjs: ~30 % small text files, 2 MB blobs half random); ${rounds} rounds, medians`,
      );
    }
    console.log(
      limited
        ? `source → a ${linkMbps} MB/s link (modelled: the real cluster's uncompressed tar|kubectl exec rate) → busybox tar -O:`
        : "source → pipe → busybox tar -O > /dev/null (this machine, no cluster, no link limit):",
    );
    console.log(
      `  ours (adaptive gzip): ${(oursMs / 1000).toFixed(2)} s  ${mbps(oursMs)} MB/s  wire ${(sent / 1e6).toFixed(1)} MB  peak RSS ${(median(a.map((x) => x.hwm)) / 1e6).toFixed(0)} MB of the pipeline's own process, not the tool's (bench/build-memory.mjs)  (walk ${median(a.map((x) => x.planMs)).toFixed(0)} ms; rounds ${each(a)} s)`,
    );
    console.log(
      `  tar czf | tar xzf:    ${(gzMs / 1000).toFixed(2)} s  ${mbps(gzMs)} MB/s  wire ${(wire.czf / 1e6).toFixed(1)} MB  (rounds ${each(gz)} s)`,
    );
    console.log(
      `  tar cf | tar xf:      ${(rawMs / 1000).toFixed(2)} s  ${mbps(rawMs)} MB/s  wire ${(wire.cf / 1e6).toFixed(1)} MB  (rounds ${each(raw)} s)`,
    );
    console.log(
      `  ratios (peer time / ours, > 1: ours faster): vs gzip ${(gzMs / oursMs).toFixed(2)}×, vs uncompressed ${(rawMs / oursMs).toFixed(2)}×`,
    );
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
