/** The builder registry: one entry per engine behind the Builder interface. */
import type { BuilderName } from "../types.js";
import { buildkit } from "./buildkit.js";
import { kaniko } from "./kaniko.js";
import type { Builder } from "./types.js";

export const BUILDERS: Readonly<Record<BuilderName, Builder>> = { kaniko, buildkit };

export const BUILDER_NAMES = Object.keys(BUILDERS) as BuilderName[];

export function isBuilderName(name: string): name is BuilderName {
  return Object.prototype.hasOwnProperty.call(BUILDERS, name);
}

export function getBuilder(name: BuilderName): Builder {
  const builder = BUILDERS[name];
  if (!builder) throw new Error(`unknown builder "${String(name)}"`);
  return builder;
}
