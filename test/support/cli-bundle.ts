/**
 * The CLI as a process, built from the TypeScript sources (not the committed dist/, which the
 * release rebuilds): one esbuild bundle per test run, with scripts/build.mjs's settings.
 */
import { build, stop } from "esbuild";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";

const ROOT = resolve(dirname(new URL(import.meta.url).pathname), "../..");
let bundled: Promise<string> | undefined;

/** Path of an executable-by-node bundle of src/cli (`node <path> build …`). */
export function cliBundle(): Promise<string> {
  bundled ??= (async () => {
    const out = join(mkdtempSync(join(tmpdir(), "kib-cli-bundle-")), "cli.mjs");
    await build({
      stdin: {
        contents: 'import { runCli } from "./src/cli/cli.ts";\nawait runCli();\n',
        resolveDir: ROOT,
        sourcefile: "cli-entry.ts",
        loader: "ts",
      },
      outfile: out,
      bundle: true,
      platform: "node",
      target: "node24",
      format: "esm",
      logLevel: "warning",
      banner: {
        js: 'import { createRequire as __kibCreateRequire } from "node:module"; const require = __kibCreateRequire(import.meta.url);',
      },
    });
    await stop(); // esbuild's service process would keep jest from exiting
    return out;
  })();
  return bundled;
}
