/** The step summary: the same facts as the outputs, as a table. */
import * as core from "@actions/core";
import type { BuildResult } from "../core/types.js";

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

/** The summary's table is HTML, where Markdown is not read: code is <code>, text is escaped. */
function escapeHtml(text: string): string {
  return text
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;");
}

function code(text: string): string {
  return `<code>${escapeHtml(text)}</code>`;
}

/** Rows of [name, HTML of the value]. */
export function summaryRows(result: BuildResult): Array<[string, string]> {
  return [
    ["Image", code(result.image)],
    ["Digest", code(result.digest)],
    ["Tags", result.tags.map(code).join("<br>")],
    ["Builder", escapeHtml(result.builder)],
    result.reused
      ? [
          "Reused",
          `built ${escapeHtml(result.builtAt ?? "earlier")} from the same inputs (build key ${code((result.buildKey ?? "").slice(0, 12))}); no Job ran`,
        ]
      : ["Namespace / Job", `${escapeHtml(result.namespace)} / ${code(result.job)}`],
    [
      "Context",
      `${result.context.files} files, ${(result.context.bytes / 1024 / 1024).toFixed(1)} MiB`,
    ],
    [
      "Durations",
      result.reused
        ? `total ${seconds(result.durations.totalMs)}`
        : `submit ${seconds(result.durations.submitMs)}, schedule ${seconds(result.durations.scheduleMs)}, upload ${seconds(result.durations.uploadMs)}, build ${seconds(result.durations.buildMs)}, total ${seconds(result.durations.totalMs)}`,
    ],
  ];
}

export async function writeStepSummary(result: BuildResult, extraMarkdown?: string): Promise<void> {
  if (!process.env.GITHUB_STEP_SUMMARY) return;
  // No header row: each row's name is its header cell.
  const summary = core.summary
    .addHeading(result.reused ? "Image reused (unchanged inputs)" : "Image built in Kubernetes", 3)
    .addTable(summaryRows(result).map(([key, value]) => [{ data: key, header: true }, value]));
  if (extraMarkdown) summary.addRaw(extraMarkdown, true);
  await summary.write();
}
