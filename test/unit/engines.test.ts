/** One table, both engines: the same input mapped to each builder's own flags. */
import { buildctlArgs } from "../../src/core/builders/buildkit.js";
import { kanikoArgs } from "../../src/core/builders/kaniko.js";
import type { BuildSpec } from "../../src/core/types.js";
import { specOf } from "./spec-fixture.js";

const CACHE = "ghcr.io/acme/web/cache";

test.each<[string, Partial<BuildSpec>, string[], string[]]>([
  [
    "cache-repo",
    { cacheRepo: CACHE },
    ["--cache=true", `--cache-repo=${CACHE}`],
    [
      "--import-cache",
      `type=registry,ref=${CACHE}:buildcache`,
      "--export-cache",
      `type=registry,ref=${CACHE}:buildcache,mode=max,ignore-error=true`,
    ],
  ],
  [
    "build-args",
    { buildArgs: [{ key: "VERSION", value: "1.2" }] },
    ["--build-arg=VERSION=1.2"],
    ["--opt", "build-arg:VERSION=1.2"],
  ],
  [
    "labels",
    { labels: [{ key: "team", value: "web" }] },
    ["--label=team=web"],
    ["--opt", "label:team=web"],
  ],
  ["target", { target: "runtime" }, ["--target=runtime"], ["--opt", "target=runtime"]],
  [
    "push: false",
    { push: false },
    ["--no-push"],
    ["type=image,name=ghcr.io/acme/web:1,push=false"],
  ],
  [
    "tags",
    { tags: ["ghcr.io/acme/web:1"] },
    ["--destination=ghcr.io/acme/web:1"],
    ["type=image,name=ghcr.io/acme/web:1,push=true"],
  ],
])("%s: Kaniko and BuildKit each get their own flags", (_input, over, kaniko, buildkit) => {
  const kanikoLine = kanikoArgs(specOf(over));
  const buildkitLine = buildctlArgs(specOf({ builder: "buildkit", ...over }));
  for (const arg of kaniko) expect(kanikoLine).toContain(arg);
  // Adjacent pairs (flag, value) stay together in the BuildKit line.
  const joined = buildkitLine.join("\n");
  expect(joined).toContain(buildkit.join("\n"));
});
