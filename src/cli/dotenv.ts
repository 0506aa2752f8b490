/**
 * GitLab's dotenv report (artifacts:reports:dotenv): KEY=value lines, single-line values, 5 KiB
 * at most. IMAGE_DIGEST, IMAGE_REF and IMAGE_REUSED (true when an earlier image was reused) always fit; IMAGE_TAGS (comma-separated) keeps as many
 * whole tags as fit and says so, rather than failing a job whose image is already pushed.
 */
import type { BuildResult } from "../core/types.js";

export const DOTENV_LIMIT_BYTES = 5 * 1024;

export interface DotenvReport {
  text: string;
  warnings: string[];
}

function singleLine(name: string, value: string): string {
  if (/[\r\n]/.test(value))
    throw new Error(`dotenv: ${name} would span lines; GitLab accepts single-line values only`);
  return value;
}

export function dotenvOf(result: BuildResult): DotenvReport {
  const fixed = [
    `IMAGE_DIGEST=${singleLine("IMAGE_DIGEST", result.digest)}`,
    `IMAGE_REF=${singleLine("IMAGE_REF", result.image)}`,
    `IMAGE_REUSED=${result.reused}`,
  ];
  const tags = result.tags.map((tag) => singleLine("IMAGE_TAGS", tag));
  const render = (list: string[]) => `${[...fixed, `IMAGE_TAGS=${list.join(",")}`].join("\n")}\n`;
  const warnings: string[] = [];
  let kept = tags;
  while (kept.length > 0 && Buffer.byteLength(render(kept)) > DOTENV_LIMIT_BYTES)
    kept = kept.slice(0, -1);
  if (kept.length < tags.length) {
    warnings.push(
      `dotenv: IMAGE_TAGS lists ${kept.length} of ${tags.length} tags; GitLab's dotenv report holds at most ${DOTENV_LIMIT_BYTES} bytes (all tags were pushed)`,
    );
  }
  const text = render(kept);
  if (Buffer.byteLength(text) > DOTENV_LIMIT_BYTES) {
    throw new Error(
      `dotenv: the report would be ${Buffer.byteLength(text)} bytes; GitLab accepts at most ${DOTENV_LIMIT_BYTES}`,
    );
  }
  return { text, warnings };
}
