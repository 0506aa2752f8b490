import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { bundleSources } from "./bundle-sources.mjs";
import { writeBenchContext } from "./context-fixture.mjs";
const work = mkdtempSync(path.join(tmpdir(), "k8sib-exp-"));
const { startTestCluster } = await bundleSources(`export { startTestCluster } from "./test/support/cluster.ts";`, path.join(work, "support.mjs"));
const cluster = await startTestCluster();
cluster.createNamespace("ci-builds");
cluster.useScenario("kaniko-success-cold");
const context = writeBenchContext(path.join(work, "ctx"), Number(process.env.EXP_MB ?? 190));
const env = { PATH: process.env.PATH, HOME: work, KIB_TAGS: "registry.example:5000/acme/web:1.0", KIB_NAMESPACE: "ci-builds", KIB_KUBECONFIG: cluster.kubeconfig(), KIB_CONTEXT: ".", ...Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith("EXP_") || k.startsWith("MALLOC_") || k.startsWith("UV_"))) };
const t0 = performance.now();
const child = spawn(process.execPath, [...(process.env.EXP_NODE_ARGS ?? "").split(" ").filter(Boolean), path.resolve("dist/cli.js"), "build"], { cwd: context, env, stdio: ["ignore", "pipe", "pipe"] });
const stamp = () => ((performance.now() - t0) / 1000).toFixed(2).padStart(6);
child.stderr.on("data", (c) => String(c).split("\n").filter(Boolean).forEach((l) => console.log(stamp(), "LOG", l.slice(0, 140))));
let lastSmaps = "";
const poll = setInterval(() => { try { if (process.env.EXP_SMAPS) lastSmaps = readFileSync(`/proc/${child.pid}/smaps`, "utf8"); const s = readFileSync(`/proc/${child.pid}/status`, "utf8"); console.log(stamp(), "RSS", /VmRSS:\s+(\d+)/.exec(s)[1] / 1024 | 0, "HWM", /VmHWM:\s+(\d+)/.exec(s)[1] / 1024 | 0); } catch {} }, Number(process.env.EXP_POLL ?? 100));
await new Promise((r) => child.on("close", r));
clearInterval(poll);
if (lastSmaps) {
  const rows = []; let cur;
  for (const line of lastSmaps.split("\n")) {
    if (/^[0-9a-f]+-[0-9a-f]+ /.test(line)) { const parts = line.split(/\s+/); cur = { name: parts[5] || "", range: parts[0], rss: 0 }; rows.push(cur); }
    else if (line.startsWith("Rss:")) cur.rss = Number(line.split(/\s+/)[1]);
  }
  const by = new Map(); for (const r of rows) by.set(r.name, (by.get(r.name) ?? 0) + r.rss);
  console.log("SMAPS by name (MB):", [...by].sort((a, b) => b[1] - a[1]).slice(0, 8).map(([n, v]) => `${n} ${(v / 1024).toFixed(1)}`).join("; "));
  const anon = rows.filter((r) => r.name === "" || r.name === "[anon]").sort((a, b) => b.rss - a.rss).slice(0, 15);
  console.log("largest anon (MB):", anon.map((r) => `${(r.rss / 1024).toFixed(1)}@${r.range}`).join(" "));
}
await cluster.close();
rmSync(work, { recursive: true, force: true });
