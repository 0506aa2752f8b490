/**
 * `::add-mask::` once per value: the action masks whole secret inputs, then the secret parts of
 * the parsed request, then the engine masks what it uses; the runner needs each value once.
 */
import * as core from "@actions/core";

const masked = new Set<string>();

export function maskOnce(value: string): void {
  if (value === "" || masked.has(value)) return;
  masked.add(value);
  core.setSecret(value);
}
