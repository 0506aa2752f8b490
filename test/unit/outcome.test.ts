import { BuildFailure } from "../../src/core/errors.js";
import { digestOf } from "../../src/core/job/outcome.js";

const DIGEST = `sha256:${"0123456789abcdef".repeat(4)}`;

test.each([
  [{ exitCode: 0, message: `${DIGEST}\n` }, DIGEST],
  [{ exitCode: 0, message: DIGEST }, DIGEST],
])("a clean exit with %o gives the digest", (terminated, digest) => {
  expect(digestOf(terminated, { logTail: [] })).toBe(digest);
});

test.each([
  [
    { exitCode: 137, reason: "OOMKilled" },
    "oom-killed",
    /OOMKilled, limit 2Gi\); raise the memory limit/,
  ],
  [{ exitCode: 3, reason: "Error" }, "build-failed", /exit code 3: error: failed to solve/],
  [
    { exitCode: 0, message: "" },
    "digest-missing",
    /left no digest in its termination message \(got ""\)/,
  ],
  [{ exitCode: 0, message: "sha256:short" }, "digest-missing", /got "sha256:short"/],
])("%o → %s", (terminated, kind, message) => {
  let error: unknown;
  try {
    digestOf(terminated, {
      memoryLimit: "2Gi",
      logTail: ["#5 RUN make", "error: failed to solve"],
    });
  } catch (caught) {
    error = caught;
  }
  expect(error).toBeInstanceOf(BuildFailure);
  expect((error as BuildFailure).kind).toBe(kind);
  expect((error as BuildFailure).message).toMatch(message);
  expect((error as BuildFailure).logTail).toEqual(["#5 RUN make", "error: failed to solve"]);
});

test("a failure quoting a multi-line cluster message is still one line", () => {
  const webhook =
    'admission webhook "validate.kyverno.svc-fail" denied the request:\n\npolicy Pod/ci-builds/kib-x for resource violation:\n\nrequire-labels:\n  check-team: validation error: label team is required. rule check-team failed at path /metadata/labels/team/\n';
  const failure = new BuildFailure("api", `could not create Job kib-x: 400 ${webhook}`);
  expect(failure.message).not.toMatch(/\n/);
  expect(failure.message).toMatch(
    /denied the request: policy Pod\/ci-builds\/kib-x for resource violation: require-labels: check-team/,
  );
  expect(new BuildFailure("api", "x".repeat(5000)).message.length).toBeLessThanOrEqual(1000);
});

test("colour codes are removed from the failure's last lines, and a bare colour reset is not the cause", () => {
  // The recorded dind-run-fails log: the classic builder colours the step's stderr red.
  const logTail = [
    "about to fail",
    "\u001b[91mcompile error: missing semicolon",
    "The command '/bin/sh -c exit 3' returned a non-zero code: 3",
    "\u001b[0m",
  ];
  let failure: BuildFailure | undefined;
  try {
    digestOf({ exitCode: 3, reason: "Error" }, { logTail });
  } catch (error) {
    failure = error as BuildFailure;
  }
  expect(failure?.message).toBe(
    "the build failed with exit code 3: The command '/bin/sh -c exit 3' returned a non-zero code: 3",
  );
  expect(failure?.logTail).toEqual([
    "about to fail",
    "compile error: missing semicolon",
    "The command '/bin/sh -c exit 3' returned a non-zero code: 3",
  ]);
});
