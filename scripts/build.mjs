// Bundles the engine and its three entry points into dist/ (or the directory after --outdir).
// One bundle (dist/lib.js) holds all the code; main.js and post.js are two-line entry files that
// import it. cli.js is src/cli/bin.ts: it checks the Node.js version before it loads lib.js (which
// does not load on an older Node), has a shebang and is executable, so `./dist/cli.js` runs and
// npm can link it as the package's bin. No hashed chunk names: a rebuild after a small change in
// src/ gives a small diff in dist/.
import { build } from "esbuild";
import { chmod, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const { values } = parseArgs({ options: { outdir: { type: "string", default: "dist" } } });
const outdir = values.outdir;

await rm(outdir, { recursive: true, force: true });
await mkdir(outdir, { recursive: true });

const common = {
  bundle: true,
  platform: "node",
  target: "node24",
  format: "esm",
  minify: false,
  legalComments: "none",
  sourcemap: false,
  logLevel: "warning",
};

await build({
  ...common,
  entryPoints: { lib: "src/entrypoints.ts" },
  outdir,
  // One undici in the bundle: @actions/http-client asks for undici 6 and gets the undici that
  // client-node and the registry client use (the same API: fetch, Agent, ProxyAgent). Each copy
  // compiles its own WebAssembly HTTP parser when it loads.
  alias: { undici: fileURLToPath(new URL("../node_modules/undici", import.meta.url)) },
  // Some bundled CommonJS dependencies call require() on Node built-ins.
  banner: {
    js: 'import { createRequire as __kibCreateRequire } from "node:module"; const require = __kibCreateRequire(import.meta.url);',
  },
});

// ASCII only, so that V8 holds the 7.7 MB source as a one-byte string: a single character outside
// Latin-1 makes it two bytes per character, 7.4 MB more resident memory in every process.
// esbuild already escapes every string, template and regular expression (its charset is
// ASCII); what is left are comments kept from dependencies ("request’s"), rewritten here.
const libFile = `${outdir}/lib.js`;
const libSource = await readFile(libFile, "utf8");
await writeFile(
  libFile,
  libSource.replace(/[\u0080-\u{10ffff}]/gu, (c) => `\\u{${c.codePointAt(0).toString(16)}}`),
);

// Plain code an old Node can run: the version check, then a dynamic import of ./lib.js.
await build({
  ...common,
  entryPoints: { cli: "src/cli/bin.ts" },
  outdir,
  target: "node18",
  banner: { js: "#!/usr/bin/env node" },
});
await chmod(`${outdir}/cli.js`, 0o755);

// Each action entry turns on Node's on-disk compile cache before it loads the bundle (a dynamic
// import, so that it comes after): the post step after main and a self-hosted runner's next job
// skip most of compiling (bench/cold-start.mjs measures both). cli.js does the same (src/cli/bin.ts).
const entries = {
  "main.js": "runActionMain",
  "post.js": "runActionPost",
};
for (const [file, fn] of Object.entries(entries)) {
  await writeFile(
    `${outdir}/${file}`,
    `import { enableCompileCache } from "node:module";\n\nenableCompileCache?.();\nconst { ${fn} } = await import("./lib.js");\n\nawait ${fn}();\n`,
  );
}
