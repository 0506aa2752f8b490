/** The step summary as GitHub renders it: an HTML table, where Markdown backticks stay literal. */
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as core from "@actions/core";
import { writeStepSummary } from "../../src/github/summary.js";
import type { BuildResult } from "../../src/core/types.js";

const DIGEST = `sha256:${"ab".repeat(32)}`;

const RESULT: BuildResult = {
  digest: DIGEST,
  image: `ghcr.io/acme/web@${DIGEST}`,
  tags: ["ghcr.io/acme/web:1.0", "ghcr.io/acme/web:latest"],
  builder: "kaniko",
  reused: false,
  namespace: "ci-builds",
  job: "kib-1a2b3c",
  context: { files: 12, bytes: 3 * 1024 * 1024 },
  durations: { submitMs: 100, scheduleMs: 900, uploadMs: 300, buildMs: 20_000, totalMs: 21_300 },
};

test("a table of named rows with code in <code>: no empty header row, no literal backticks", async () => {
  const file = join(mkdtempSync(join(tmpdir(), "kib-summary-")), "summary.md");
  writeFileSync(file, "");
  const before = process.env.GITHUB_STEP_SUMMARY;
  process.env.GITHUB_STEP_SUMMARY = file;
  try {
    core.summary.emptyBuffer();
    await writeStepSummary(RESULT);
  } finally {
    process.env.GITHUB_STEP_SUMMARY = before;
  }
  const html = readFileSync(file, "utf8");
  expect(html).not.toContain("`");
  expect(html).not.toMatch(/<th><\/th>/);
  const rows = [...html.matchAll(/<tr>(.*?)<\/tr>/g)].map((m) => m[1]);
  expect(rows).toEqual([
    `<th>Image</th><td><code>ghcr.io/acme/web@${DIGEST}</code></td>`,
    `<th>Digest</th><td><code>${DIGEST}</code></td>`,
    "<th>Tags</th><td><code>ghcr.io/acme/web:1.0</code><br><code>ghcr.io/acme/web:latest</code></td>",
    "<th>Builder</th><td>kaniko</td>",
    "<th>Namespace / Job</th><td>ci-builds / <code>kib-1a2b3c</code></td>",
    "<th>Context</th><td>12 files, 3.0 MiB</td>",
    "<th>Durations</th><td>submit 0.1 s, schedule 0.9 s, upload 0.3 s, build 20.0 s, total 21.3 s</td>",
  ]);
});
