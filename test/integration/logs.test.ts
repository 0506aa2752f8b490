/**
 * The build log as the user sees it, against a test server that writes logs as a node does: lines
 * arrive while the builder runs, stdout and stderr are stamped apart (stamps can go backwards),
 * the status can trail the log's end or precede it, and a step can stay silent for longer than the
 * HTTP client's body timeout (undici: 300 s; scaled down here with the time).
 */
import { readFileSync } from "node:fs";
import { build } from "../../src/core/build.js";
import type { BuildOptions } from "../../src/core/build/run.js";
import { BuildFailure } from "../../src/core/errors.js";
import type { LogLine } from "../../src/core/reporter.js";
import { parseBuildSpec } from "../../src/core/spec/spec.js";
import { startTestCluster, type TestCluster } from "../support/cluster.js";
import type { TimedLine } from "../support/log-replay.js";
import { makeContext, NOTHING_LEFT, recordingReporter, waitForEmpty } from "./helpers.js";

const DIGEST = "sha256:8c1c626558915ecba14a9b1f8b20dce4ba869984d4032c592d4dd6c67d8aab84";
/** undici's default body timeout, which @kubernetes/client-node 2.x leaves as it is. */
const UNDICI_BODY_TIMEOUT_MS = 300_000;

function recordedLog(scenario: string): Array<{ ms: number; text: string }> {
  const lines = readFileSync(`test/support/recordings/${scenario}/log-build.txt`, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((line) => {
      const space = line.indexOf(" ");
      return { ms: Date.parse(line.slice(0, space)), text: line.slice(space + 1) };
    });
  return lines.map((l) => ({ ms: l.ms - lines[0]!.ms, text: l.text }));
}

const KANIKO = recordedLog("kaniko-success-cold");
const KANIKO_TEXT = KANIKO.map((l) => l.text);
/** The RUN step's command line; its output (stdout) follows. */
const RUN_STEP = KANIKO.findIndex((l) => l.text.includes('msg="Running: [/bin/sh -c'));
/** Unpacking the base image: a minute for a real one (the recording's busybox was cached). */
const UNPACK = KANIKO.findIndex((l) => l.text.includes('msg="Unpacking rootfs'));

/** The recorded Kaniko log with a minute's unpack, then the RUN step silent for `silenceMs`. */
function silentStep(silenceMs: number): TimedLine[] {
  return KANIKO.map((l, i) => ({
    atMs: l.ms + (i > UNPACK ? 60_000 : 0) + (i > RUN_STEP ? silenceMs : 0),
    text: l.text,
  }));
}

function specFor(on: TestCluster, inputs: Record<string, string> = {}) {
  return parseBuildSpec(
    {
      context: ".",
      tags: "registry.example:5000/acme/web:1.0",
      namespace: "ci-builds",
      kubeconfig: on.kubeconfig(),
      ...inputs,
    },
    { workspace: makeContext(), kubeconfigPaths: [] },
  );
}

const logReads = (on: TestCluster) =>
  on.requests.filter((r) => r.stream === "log" && r.path.endsWith("/log")).length;

/** True when some line carries an earlier stamp than the line before it. */
function stampsGoBackwards(lines: LogLine[]): boolean {
  return lines.some((line, i) => i > 0 && Date.parse(line.time) < Date.parse(lines[i - 1]!.time));
}

async function withCluster<T>(
  options: Parameters<typeof startTestCluster>[0],
  fn: (on: TestCluster) => Promise<T>,
): Promise<T> {
  const on = await startTestCluster(options);
  try {
    on.createNamespace("ci-builds");
    return await fn(on);
  } finally {
    await on.close();
  }
}

describe("a build step silent for longer than the log stream's timeout", () => {
  // Recorded time × 0.01: undici's 300 s take 3 s, six minutes of silence 3.7 s. undici runs body
  // timeouts on its coarse timer (a tick every ~0.5 s, so 300 s ± 0.5 s on a real cluster): a
  // scaled timeout much below a few seconds would no longer be the same timeout.
  const timeScale = 0.01;
  const logStreamTimeoutMs = UNDICI_BODY_TIMEOUT_MS * timeScale;

  test.each([
    ["6 min 10 s", 370_000],
    ["11 min 40 s", 700_000],
  ])(
    "silent for %s: the whole log, in order, once, no warning, and a bounded number of reads",
    async (_label, silenceMs) => {
      await withCluster({ timeScale }, async (on) => {
        on.useScenario("kaniko-success-cold", { buildLogTimeline: silentStep(silenceMs) });
        const reporter = recordingReporter();
        const debug: string[] = [];
        reporter.debug = (message) => debug.push(message);
        const options: BuildOptions = { reporter, runId: "test", logStreamTimeoutMs };
        const result = await build(specFor(on), options);
        expect(result.digest).toBe(DIGEST);
        expect(reporter.buildLines.map((l) => l.text)).toEqual(KANIKO_TEXT);
        expect(reporter.warnings).toEqual([]);
        // What the silence cost, within the README's bound: one read, one more per stream timeout
        // the silence lasted, one as the pod's status catches up with the builder's end.
        const cuts = debug.filter((m) => /silent past its timeout/.test(m)).length;
        const reads = logReads(on);
        const bound = 2 + Math.floor(silenceMs / UNDICI_BODY_TIMEOUT_MS);
        console.log(
          `silent step of ${silenceMs / 1000} s, stream timeout ${UNDICI_BODY_TIMEOUT_MS / 1000} s (both × ${timeScale}): ${reads} log reads, ${cuts} cut by the timeout (bound ${bound})`,
        );
        expect(reads).toBeLessThanOrEqual(bound);
        expect(reads).toBeGreaterThan(cuts);
        // Silent for over two timeouts: the stream was cut and resumed, whatever the machine's load.
        if (silenceMs > 2 * UNDICI_BODY_TIMEOUT_MS) expect(cuts).toBeGreaterThanOrEqual(1);
        expect(await waitForEmpty(on)).toEqual(NOTHING_LEFT);
      });
    },
    30_000,
  );
});

describe("a live build", () => {
  test("lines reach the CI log while the builder runs, before its status says it terminated", async () => {
    await withCluster({}, async (on) => {
      // The recorded lines half a recorded second apart: the build runs for ~1 s of test time.
      on.useScenario("kaniko-success-cold", {
        buildLogTimeline: KANIKO.map((l, i) => ({ atMs: i * 500, text: l.text })),
      });
      const events: string[] = [];
      const builderState = () => {
        const pod = on.objects("pods", "ci-builds")[0];
        const status = (pod?.status?.containerStatuses ?? []).find((s: any) => s.name === "build");
        return Object.keys(status?.state ?? {})[0] ?? "none";
      };
      const reporter = recordingReporter();
      const buildLog = reporter.buildLog;
      reporter.buildLog = (line) => {
        events.push(`line while the builder is ${builderState()}`);
        buildLog(line);
      };
      const result = await build(specFor(on), { reporter, runId: "test" });
      expect(result.digest).toBe(DIGEST);
      expect(reporter.buildLines.map((l) => l.text)).toEqual(KANIKO_TEXT);
      // The first line was in the CI log while the pod's status still showed the builder running.
      expect(events[0]).toBe("line while the builder is running");
      expect(events.filter((e) => e.endsWith("running")).length).toBeGreaterThan(KANIKO.length / 2);
      expect(logReads(on)).toBeLessThanOrEqual(2);
    });
  });
});

describe("the builder's end", () => {
  test("ends the follow stream the kubelet would hold open until its next state check, and the rest is read at once", async () => {
    // Seed 2: the stream open at the exit would end on the kubelet's check 5 s after the last line,
    // long after the status says the builder terminated.
    await withCluster({ logs: { seed: 2 } }, async (on) => {
      on.useScenario("kaniko-success-cold", {
        buildLogTimeline: KANIKO.map((l, i) => ({ atMs: i * 100, text: l.text })),
      });
      const reporter = recordingReporter();
      const result = await build(specFor(on), { reporter, runId: "test" });
      expect(result.digest).toBe(DIGEST);
      expect(reporter.buildLines.map((l) => l.text)).toEqual(KANIKO_TEXT);
      const reads = on.requests.filter((r) => r.stream === "log");
      // The first read, open when the watch saw the end, was closed by the product; the second,
      // from the resume point, was read to the end of the file.
      expect(reads.map((r) => r.endedBy)).toEqual(["client", "server"]);
    });
  });
});

describe("stdout and stderr stamped apart, the status before or after the log's end (seeded)", () => {
  const RUN_FAILS = recordedLog("kaniko-run-fails").map((l) => l.text);
  const seeds = [1, 2, 3, 4, 5, 6, 7, 8];

  test.each(seeds)(
    "seed %i: every line of a successful and a failing build arrives once, in the node's order",
    async (seed) => {
      await withCluster({ logs: { seed } }, async (on) => {
        on.useScenario("kaniko-success-cold");
        const reporter = recordingReporter();
        await build(specFor(on), { reporter, runId: "test" });
        expect(reporter.buildLines.map((l) => l.text)).toEqual(KANIKO_TEXT);
        expect(stampsGoBackwards(reporter.buildLines)).toBe(true);

        on.useScenario("kaniko-run-fails");
        const failing = recordingReporter();
        const error = await build(specFor(on), { reporter: failing, runId: "test" }).catch(
          (e: unknown) => e as BuildFailure,
        );
        expect(error).toBeInstanceOf(BuildFailure);
        expect(failing.buildLines.map((l) => l.text)).toEqual(RUN_FAILS);
        // The cause in the failure message is the builder's last line, whichever pipe it came on.
        expect((error as BuildFailure).message).toContain(RUN_FAILS.at(-1)!.slice(0, 40));
      });
    },
    20_000,
  );

  test.each([5, 24, 30])(
    "a stream dropped after %i lines resumes without losing or repeating a line",
    async (afterLines) => {
      await withCluster({ logs: { seed: afterLines } }, async (on) => {
        on.useScenario("kaniko-success-cold", {
          buildLogTimeline: KANIKO.map((l, i) => ({ atMs: i * 50, text: l.text })),
        });
        on.faults.dropNextLog({ afterLines });
        const reporter = recordingReporter();
        await build(specFor(on), { reporter, runId: "test" });
        expect(reporter.buildLines.map((l) => l.text)).toEqual(KANIKO_TEXT);
        expect(logReads(on)).toBeGreaterThanOrEqual(2);
      });
    },
    20_000,
  );
});

describe("a stream the server ends cleanly while the builder still runs", () => {
  test("(an API server whose kubelet connection broke) is read on, and the log is whole", async () => {
    await withCluster({}, async (on) => {
      // Ten lines, then 5 s of test time before the rest: longer than the follower waits for a
      // status that trails the log's end.
      on.useScenario("kaniko-success-cold", {
        buildLogTimeline: KANIKO.map((l, i) => ({
          atMs: i < 10 ? i * 10 : 100_000 + i,
          text: l.text,
        })),
      });
      on.faults.dropNextLog({ afterLines: 10, graceful: true });
      const reporter = recordingReporter();
      const debug: string[] = [];
      reporter.debug = (message) => debug.push(message);
      await build(specFor(on), { reporter, runId: "test" });
      expect(reporter.buildLines.map((l) => l.text)).toEqual(KANIKO_TEXT);
      expect(debug).toContain("log stream of build closed while it was running; resuming");
      expect(reporter.warnings).toEqual([]);
    });
  }, 20_000);
});

describe("a log that cannot be read", () => {
  test("after 20 failed reads in a row the user is told the log stopped; the build's result stands", async () => {
    await withCluster({}, async (on) => {
      on.useScenario("kaniko-success-cold", {
        buildLogTimeline: KANIKO.map((l, i) => ({ atMs: i * 100, text: l.text })),
      });
      on.faults.failRequests({
        method: "GET",
        pathPattern: /\/pods\/[^/]+\/log$/,
        status: 500,
        times: 1000,
      });
      const reporter = recordingReporter();
      const result = await build(specFor(on), { reporter, runId: "test", logRetryDelayMs: 1 });
      expect(result.digest).toBe(DIGEST);
      expect(reporter.buildLines).toEqual([]);
      expect(reporter.warnings).toEqual([
        expect.stringMatching(
          /^Stopped following the log of build after 20 failed reads in a row \(500 .*\); the build goes on and its result is still reported$/,
        ),
      ]);
      expect(await waitForEmpty(on)).toEqual(NOTHING_LEFT);
    });
  });
});
