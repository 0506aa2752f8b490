/** GitLab's dotenv report: KEY=value lines, single-line values, 5 KiB at most. */
import type { BuildResult } from "../core/types.js";

export const DOTENV_LIMIT_BYTES = 5 * 1024;

export function dotenvOf(result: BuildResult): string {
  const lines = [
    `IMAGE_DIGEST=${result.digest}`,
    `IMAGE_REF=${result.image}`,
    `IMAGE_TAGS=${result.tags.join(",")}`,
  ];
  const text = `${lines.join("\n")}\n`;
  if (Buffer.byteLength(text) > DOTENV_LIMIT_BYTES) {
    throw new Error(`the dotenv report would be ${Buffer.byteLength(text)} bytes; GitLab accepts at most ${DOTENV_LIMIT_BYTES}`);
  }
  return text;
}
