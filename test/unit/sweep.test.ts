/** What `cleanup` selects by: the labels every build object carries from its creation. */
import { renderBuildManifests } from "../../src/core/build.js";
import { BUILDKIT_IMAGE } from "../../src/core/builders/buildkit.js";
import { LABEL_MANAGED_BY, LABEL_RUN_ID } from "../../src/core/job/manifests.js";
import { sweepSelector } from "../../src/core/job/sweep.js";
import { runIdOf } from "../../src/cli/run-id.js";
import { cleanupHelpText, parseOlderThan } from "../../src/cli/cleanup.js";
import { helpText } from "../../src/cli/cli.js";
import { specOf } from "./spec-fixture.js";

test("every Secret is created with the Job's tool and run labels, so cleanup finds it before it has an owner", () => {
  const manifests = renderBuildManifests(
    specOf({
      registryAuth: { kind: "basic", username: "u", password: "p", registries: ["ghcr.io"] },
      secrets: [{ id: "npmrc", value: Buffer.from("token") }],
      builder: "buildkit",
      builderImage: BUILDKIT_IMAGE,
    }),
    "gitlab-8812",
  );
  expect(manifests.secrets).toHaveLength(2);
  for (const secret of manifests.secrets) {
    expect(secret.metadata?.ownerReferences).toBeUndefined();
    expect(secret.metadata?.labels).toEqual(manifests.job.metadata?.labels);
    expect(secret.metadata?.labels?.[LABEL_RUN_ID]).toBe("gitlab-8812");
    expect(secret.metadata?.labels?.[LABEL_MANAGED_BY]).toBe("k8s-image-build");
  }
});

test("the selectors: one run's objects, or every build object", () => {
  expect(sweepSelector({ runId: "gitlab-8812" })).toBe(
    "app.kubernetes.io/managed-by=k8s-image-build,k8s-image-build/run-id=gitlab-8812",
  );
  // The same label-safe form the build writes.
  expect(sweepSelector({ runId: "feature/x " })).toBe(
    "app.kubernetes.io/managed-by=k8s-image-build,k8s-image-build/run-id=feature-x",
  );
  expect(sweepSelector({ createdBefore: new Date() })).toBe(
    "app.kubernetes.io/managed-by=k8s-image-build,k8s-image-build/build-id",
  );
});

test("the run id: the GitLab job, else the GitHub run, else local", () => {
  expect(runIdOf({ CI_JOB_ID: "8812", GITHUB_RUN_ID: "1" })).toBe("gitlab-8812");
  expect(runIdOf({ GITHUB_RUN_ID: "4242" })).toBe("4242");
  expect(runIdOf({})).toBe("local");
});

test("--older-than takes the durations timeout takes", () => {
  expect(parseOlderThan("2h")).toBe(7200);
  expect(parseOlderThan("1h30m")).toBe(5400);
  expect(parseOlderThan("600")).toBe(600);
  expect(() => parseOlderThan("2 days")).toThrow(
    '--older-than: "2 days" is not a duration; use a duration like 30m, 2h or 1h30m, or whole seconds',
  );
});

test("the help names the cleanup subcommand and its flags", () => {
  expect(helpText()).toContain("k8s-image-build cleanup [--older-than <duration>] [flags]");
  expect(helpText()).toMatch(/--state-file <file> .*\[KIB_STATE_FILE\]/);
  expect(cleanupHelpText()).toMatch(/--older-than <duration> .*\[KIB_OLDER_THAN\]/);
});
