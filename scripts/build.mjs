// Bundles the engine and its three entry points into dist/.
// dist/main.js, post.js and cli.js are small entry files; each loads only its own face's code
// (run-main.js, run-post.js, run-cli.js) and the chunks it shares with the others (dist/chunks/),
// so a CLI build never loads @actions/*, and the action loads its preview code (@actions/github,
// Octokit) only when a preview is asked for. dist/lib.js is the library (build(), parseBuildSpec()).
// Shared chunks are named by content hash (esbuild needs that to keep them apart): a change in src/
// that moves code between chunks renames a chunk file in the dist/ diff.
import { build } from "esbuild";
import { mkdir, rm, writeFile } from "node:fs/promises";

await rm("dist", { recursive: true, force: true });
await mkdir("dist", { recursive: true });

await build({
  entryPoints: {
    lib: "src/entrypoints.ts",
    "run-main": "src/github/main.ts",
    "run-post": "src/github/post.ts",
    "run-cli": "src/cli/cli.ts",
  },
  outdir: "dist",
  bundle: true,
  splitting: true,
  chunkNames: "chunks/[name]-[hash]",
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
  "main.js": ["run-main.js", "runActionMain"],
  "post.js": ["run-post.js", "runActionPost"],
  "cli.js": ["run-cli.js", "runCli"],
};
// Each entry turns on Node's on-disk compile cache before it loads its code (a dynamic import,
// so that it comes after): a second start on the same machine — the post step after main, a
// self-hosted runner, the GitLab job image (built with a warm cache) — skips most of compiling
// (bench/cold-start.mjs measures both).
for (const [file, [module, fn]] of Object.entries(entries)) {
  const shebang = file === "cli.js" ? "#!/usr/bin/env node\n" : "";
  await writeFile(
    `dist/${file}`,
    `${shebang}import { enableCompileCache } from "node:module";\n\nenableCompileCache?.();\nconst { ${fn} } = await import("./${module}");\n\nawait ${fn}();\n`,
  );
}
