/** One table, every engine: the same input mapped to each builder's own flags. */
import { buildahArgs } from "../../src/core/builders/buildah.js";
import { buildctlArgs } from "../../src/core/builders/buildkit.js";
import { dockerArgs } from "../../src/core/builders/dind.js";
import { kanikoArgs } from "../../src/core/builders/kaniko.js";
import type { BuildSpec } from "../../src/core/types.js";
import { specOf } from "./spec-fixture.js";

const CACHE = "ghcr.io/acme/web/cache";

/** Flags per engine; adjacent pairs (flag, value) must stay together in the engine's line. */
interface Expected {
  kaniko: string[];
  buildkit: string[];
  buildah: string[];
  dind: string[];
}

test.each<[string, Partial<BuildSpec>, Expected]>([
  [
    "cache-repo",
    { cacheRepo: CACHE },
    {
      kaniko: ["--cache=true", `--cache-repo=${CACHE}`],
      buildkit: [
        "--import-cache",
        `type=registry,ref=${CACHE}:buildcache`,
        "--export-cache",
        `type=registry,ref=${CACHE}:buildcache,mode=max,ignore-error=true`,
      ],
      buildah: ["--layers", `--cache-from=${CACHE}`, `--cache-to=${CACHE}`],
      dind: [
        "--cache-from",
        `type=registry,ref=${CACHE}:buildcache`,
        "--cache-to",
        `type=registry,ref=${CACHE}:buildcache,mode=max,ignore-error=true`,
      ],
    },
  ],
  [
    "build-args",
    { buildArgs: [{ key: "VERSION", value: "1.2" }] },
    {
      kaniko: ["--build-arg=VERSION=1.2"],
      buildkit: ["--opt", "build-arg:VERSION=1.2"],
      buildah: ["--build-arg=VERSION=1.2"],
      dind: ["--build-arg", "VERSION=1.2"],
    },
  ],
  [
    "labels",
    { labels: [{ key: "team", value: "web" }] },
    {
      kaniko: ["--label=team=web"],
      buildkit: ["--opt", "label:team=web"],
      buildah: ["--label=team=web"],
      dind: ["--label", "team=web"],
    },
  ],
  [
    "target",
    { target: "runtime" },
    {
      kaniko: ["--target=runtime"],
      buildkit: ["--opt", "target=runtime"],
      buildah: ["--target=runtime"],
      dind: ["--target", "runtime"],
    },
  ],
  [
    "push: false (buildah and dind: the script skips the push, see their KIB_PUSH)",
    { push: false },
    {
      kaniko: ["--no-push"],
      buildkit: ["type=image,name=ghcr.io/acme/web:1,push=false"],
      buildah: ["-t", "ghcr.io/acme/web:1"],
      dind: ["-t", "ghcr.io/acme/web:1"],
    },
  ],
  [
    "tags",
    { tags: ["ghcr.io/acme/web:1"] },
    {
      kaniko: ["--destination=ghcr.io/acme/web:1"],
      buildkit: ["type=image,name=ghcr.io/acme/web:1,push=true"],
      buildah: ["-t", "ghcr.io/acme/web:1"],
      dind: ["-t", "ghcr.io/acme/web:1"],
    },
  ],
])("%s: each engine gets its own flags", (_input, over, expected) => {
  const lines: Expected = {
    kaniko: kanikoArgs(specOf(over)),
    buildkit: buildctlArgs(specOf({ builder: "buildkit", ...over })),
    buildah: buildahArgs(specOf({ builder: "buildah", ...over })),
    dind: dockerArgs(specOf({ builder: "dind", allowPrivileged: true, ...over })),
  };
  for (const engine of ["kaniko", "buildkit", "buildah", "dind"] as const)
    expect([engine, lines[engine].join("\n")]).toEqual([
      engine,
      expect.stringContaining(expected[engine].join("\n")),
    ]);
});
