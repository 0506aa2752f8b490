import { execFileSync } from "node:child_process";
const files = [
  "/work/wt/h-reuse/dist/lib.js",
  "/tmp/hreuse-b/core-only.mjs",
  "/tmp/hreuse-b/core-min.mjs",
  "/tmp/hreuse-b/lib-min.mjs",
  "/tmp/hreuse-b/lib-ws.mjs",
  "none",
];
const res = Object.fromEntries(files.map((f) => [f, []]));
for (let r = 0; r < 7; r++)
  for (const f of files) {
    const out = execFileSync(process.execPath, [
      "-e",
      `const c0=process.cpuUsage();const t=performance.now();${f === "none" ? "Promise.resolve()" : `import(${JSON.stringify(f)})`}.then(()=>{const c=process.cpuUsage(c0);console.log((performance.now()-t).toFixed(1), ((c.user+c.system)/1000).toFixed(1), performance.now().toFixed(1))})`,
    ])
      .toString()
      .trim()
      .split(" ")
      .map(Number);
    res[f].push(out);
  }
const med = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
for (const f of files)
  console.log(
    f.padEnd(40),
    "wall",
    med(res[f].map((x) => x[0])),
    "cpu",
    med(res[f].map((x) => x[1])),
    "since start",
    med(res[f].map((x) => x[2])),
  );
