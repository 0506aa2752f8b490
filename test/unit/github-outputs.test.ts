/** The action's metadata output and step summary for a build and for a reused image. */
import { metadataOf } from "../../src/github/main.js";
import { summaryRows } from "../../src/github/summary.js";
import type { BuildResult } from "../../src/core/types.js";

const DIGEST = `sha256:${"ab".repeat(32)}`;
const KEY = "3b1f0a9c2d4e".padEnd(64, "0");

function result(over: Partial<BuildResult> = {}): BuildResult {
  return {
    digest: DIGEST,
    image: `ghcr.io/acme/web@${DIGEST}`,
    tags: ["ghcr.io/acme/web:1.1"],
    builder: "kaniko",
    namespace: "ci-builds",
    job: "kib-run-1-abcde",
    context: { files: 4, bytes: 1024 },
    durations: { submitMs: 10, scheduleMs: 2000, uploadMs: 100, buildMs: 3000, totalMs: 5200 },
    reused: false,
    builtAt: "2026-12-04T09:00:00.000Z",
    buildKey: KEY,
    ...over,
  };
}

test("metadata says whether the image was reused, when it was built and its build key", () => {
  expect(JSON.parse(metadataOf(result()))).toMatchObject({
    reused: false,
    builtAt: "2026-12-04T09:00:00.000Z",
    buildKey: KEY,
    job: "kib-run-1-abcde",
  });
  const reused = JSON.parse(
    metadataOf(result({ reused: true, job: "", builtAt: "2026-12-01T08:00:00Z" })),
  );
  expect(reused).toMatchObject({ reused: true, builtAt: "2026-12-01T08:00:00Z", buildKey: KEY });
  // Without reuse there is no key: the field is left out, not null.
  expect(JSON.parse(metadataOf(result({ buildKey: undefined })))).not.toHaveProperty("buildKey");
});

test("the summary of a reused image names the original build instead of a Job", () => {
  const rows = Object.fromEntries(
    summaryRows(
      result({
        reused: true,
        job: "",
        builtAt: "2026-12-01T08:00:00Z",
        durations: { submitMs: 0, scheduleMs: 0, uploadMs: 0, buildMs: 0, totalMs: 90 },
      }),
    ),
  );
  expect(rows["Reused"]).toBe(
    "built 2026-12-01T08:00:00Z from the same inputs (build key <code>3b1f0a9c2d4e</code>); no Job ran",
  );
  expect(rows["Namespace / Job"]).toBeUndefined();
  expect(rows["Durations"]).toBe("total 0.1 s");
  expect(Object.fromEntries(summaryRows(result()))["Namespace / Job"]).toBe(
    "ci-builds / <code>kib-run-1-abcde</code>",
  );
});
