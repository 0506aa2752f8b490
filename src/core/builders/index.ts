/** The builder registry: one entry per engine behind the Builder interface. */
import type { BuilderName, BuildSpec } from "../types.js";
import { buildah } from "./buildah.js";
import { buildkit } from "./buildkit.js";
import { dind } from "./dind.js";
import { kaniko } from "./kaniko.js";
import type { Builder } from "./types.js";

export const BUILDERS: Readonly<Record<BuilderName, Builder>> = { kaniko, buildkit, buildah, dind };

export const BUILDER_NAMES = Object.keys(BUILDERS) as BuilderName[];

export function isBuilderName(name: string): name is BuilderName {
  return Object.prototype.hasOwnProperty.call(BUILDERS, name);
}

export function getBuilder(name: BuilderName): Builder {
  const builder = BUILDERS[name];
  if (!builder) throw new Error(`unknown builder "${String(name)}"`);
  return builder;
}

/**
 * The first input this builder cannot honour for this spec, as one line naming it: a privileged
 * builder without `allow-privileged: true` first, then the builder's own refusals.
 */
export function unsupportedInput(
  builder: Builder,
  spec: BuildSpec,
): { input: string; detail: string } | undefined {
  if (builder.privileged && !spec.allowPrivileged) {
    const daemonless = BUILDER_NAMES.filter((name) => !BUILDERS[name].privileged);
    return {
      input: "allow-privileged",
      detail:
        `builder: ${builder.name} runs a privileged container (${builder.privilegedRisk ?? "root on the node"}); ` +
        `set allow-privileged: true to accept that, or use a builder without one: ${daemonless.join(", ")}`,
    };
  }
  return builder.unsupported(spec);
}
