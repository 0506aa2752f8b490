/** The step summary: the same facts as the outputs, as a table. */
import * as core from "@actions/core";
import type { BuildResult } from "../core/types.js";

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

export function summaryRows(result: BuildResult): Array<[string, string]> {
  return [
    ["Image", `\`${result.image}\``],
    ["Digest", `\`${result.digest}\``],
    ["Tags", result.tags.map((tag) => `\`${tag}\``).join("<br>")],
    ["Builder", result.builder],
    result.reused
      ? [
          "Reused",
          `built ${result.builtAt ?? "earlier"} from the same inputs (build key \`${(result.buildKey ?? "").slice(0, 12)}\`); no Job ran`,
        ]
      : ["Namespace / Job", `${result.namespace} / ${result.job}`],
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
  const summary = core.summary
    .addHeading(result.reused ? "Image reused (unchanged inputs)" : "Image built in Kubernetes", 3)
    .addTable([
      [
        { data: "", header: true },
        { data: "", header: true },
      ],
      ...summaryRows(result).map(([key, value]) => [key, value]),
    ]);
  if (extraMarkdown) summary.addRaw(extraMarkdown, true);
  await summary.write();
}
