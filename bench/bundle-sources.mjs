/**
 * Bundles TypeScript sources of this repository (the engine, the Kubernetes API test server) into
 * one ES module a benchmark can import, with esbuild (a devDependency). `contents` is a module of
 * re-exports with paths from the repository root.
 */
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { build } from "esbuild";

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

export async function bundleSources(contents, outfile) {
  await build({
    stdin: { contents, resolveDir: repo, loader: "ts", sourcefile: path.basename(outfile) },
    bundle: true,
    platform: "node",
    format: "esm",
    outfile,
    logLevel: "error",
    // The test server finds its recordings next to its own source file.
    define: {
      "import.meta.url": JSON.stringify(
        pathToFileURL(path.join(repo, "test/support/recordings.ts")).href,
      ),
    },
    // Some bundled CommonJS dependencies call require() on Node built-ins.
    banner: {
      js: "import { createRequire as __kibCreateRequire } from 'node:module'; const require = __kibCreateRequire(import.meta.url);",
    },
  });
  return import(pathToFileURL(outfile).href);
}
