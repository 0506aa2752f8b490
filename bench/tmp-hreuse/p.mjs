import { build } from "esbuild";
import { writeBenchContext } from "../context-fixture.mjs";
import { existsSync } from "node:fs";
await build({
  entryPoints: ["/work/wt/h-reuse/src/core/context/index.ts"],
  bundle: true,
  platform: "node",
  format: "esm",
  outfile: "/tmp/hreuse-b/ctxp.mjs",
  logLevel: "warning",
  banner: {
    js: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);",
  },
});
if (!existsSync("/tmp/hreuse-b/ctx190")) writeBenchContext("/tmp/hreuse-b/ctx190", 190);
