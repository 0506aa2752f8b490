/** What the main step leaves for the post step: the objects to delete if main could not. */
import * as core from "@actions/core";
import type { CreatedObjects } from "../core/job/cleanup.js";

export const STATE_OBJECTS = "objects";

export function saveObjects(objects: CreatedObjects): void {
  core.saveState(STATE_OBJECTS, JSON.stringify(objects));
}

export function loadObjects(): CreatedObjects | undefined {
  const raw = core.getState(STATE_OBJECTS);
  if (!raw) return undefined;
  try {
    const value = JSON.parse(raw) as Partial<CreatedObjects>;
    if (typeof value.namespace !== "string") return undefined;
    return {
      namespace: value.namespace,
      job: typeof value.job === "string" ? value.job : undefined,
      secrets: Array.isArray(value.secrets)
        ? value.secrets.filter((s): s is string => typeof s === "string")
        : [],
    };
  } catch {
    return undefined;
  }
}
