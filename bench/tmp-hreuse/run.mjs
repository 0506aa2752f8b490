const { planContext, tarContext } = await import("/tmp/hreuse-b/ctxp.mjs");
const plan = await planContext("/tmp/hreuse-b/ctx190", { dockerfile: "Dockerfile" });
const t0 = performance.now();
let n = 0;
const c0 = process.cpuUsage();
for await (const c of tarContext(plan, { gzipLevel: Number(process.argv[2] ?? 1) })) n += c.length;
const c = process.cpuUsage(c0);
console.log(
  (performance.now() - t0).toFixed(0),
  "ms",
  n,
  "cpu user",
  (c.user / 1000).toFixed(0),
  "sys",
  (c.system / 1000).toFixed(0),
);
