// Bundles the engine and its three entry points into dist/.
// One bundle (dist/lib.js) holds all the code; main.js, post.js and cli.js are two-line
// entry files that import it. No hashed chunk names: a rebuild after a small change in src/
// gives a small diff in dist/.
import { build } from "esbuild";
import { mkdir, rm, writeFile } from "node:fs/promises";

await rm("dist", { recursive: true, force: true });
await mkdir("dist", { recursive: true });

await build({
  entryPoints: { lib: "src/entrypoints.ts" },
  outdir: "dist",
  bundle: true,
  platform: "node",
  target: "node24",
  format: "esm",
  minify: false,
  legalComments: "none",
  sourcemap: false,
  logLevel: "warning",
  // Some bundled CommonJS dependencies call require() on Node built-ins.
  banner: {
    js: 'import { createRequire as __kibCreateRequire } from "node:module"; const require = __kibCreateRequire(import.meta.url);',
  },
});

const entries = {
  "main.js": "runActionMain",
  "post.js": "runActionPost",
  "cli.js": "runCli",
};
// Each entry turns on Node's on-disk compile cache before it loads the bundle (a dynamic import,
// so that it comes after): a second start on the same machine — the post step after main, a
// self-hosted runner, the GitLab job image (built with a warm cache) — skips most of compiling
// lib.js (about 55 of 190 ms of CPU on the benchmark machine; bench/cold-start.mjs).
for (const [file, fn] of Object.entries(entries)) {
  const shebang = file === "cli.js" ? "#!/usr/bin/env node\n" : "";
  await writeFile(
    `dist/${file}`,
    `${shebang}import { enableCompileCache } from "node:module";\n\nenableCompileCache?.();\nconst { ${fn} } = await import("./lib.js");\n\nawait ${fn}();\n`,
  );
}
