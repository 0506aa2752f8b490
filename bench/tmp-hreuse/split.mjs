import { build } from "esbuild";
const common = {
  bundle: true,
  platform: "node",
  target: "node24",
  format: "esm",
  logLevel: "warning",
  banner: {
    js: 'import { createRequire as __kibCreateRequire } from "node:module"; const require = __kibCreateRequire(import.meta.url);',
  },
};
await build({
  ...common,
  entryPoints: ["src/core/build.ts"],
  outfile: "/tmp/hreuse-b/core-only.mjs",
});
await build({
  ...common,
  entryPoints: ["src/core/build.ts"],
  outfile: "/tmp/hreuse-b/core-min.mjs",
  minify: true,
});
await build({
  ...common,
  entryPoints: ["src/entrypoints.ts"],
  outfile: "/tmp/hreuse-b/lib-min.mjs",
  minify: true,
});
await build({
  ...common,
  entryPoints: ["src/entrypoints.ts"],
  outfile: "/tmp/hreuse-b/lib-ws.mjs",
  minifyWhitespace: true,
});
