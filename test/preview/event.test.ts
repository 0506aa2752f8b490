/** Event detection and fork gating from realistic webhook payloads. */
import { describe, expect, it } from "@jest/globals";

import { InputError } from "../../src/core/errors.js";
import { detectPreviewEvent, type PreviewPlan } from "../../src/github/preview/index.js";
import * as p from "./payloads.js";

const repositories = ["ghcr.io/acme/web", "registry.example.com:5000/team/web"];
const now = new Date("2025-06-01T12:00:00Z");

describe("detectPreviewEvent", () => {
  const table: [string, ReturnType<typeof p.ctx>, boolean, PreviewPlan["mode"]][] = [
    ["same-repo PR opened", p.sameRepoOpened, false, "build"],
    ["same-repo PR synchronize", p.sameRepoSynchronize, false, "build"],
    ["same-repo PR closed (merged)", p.sameRepoClosed, false, "cleanup"],
    ["same-repo PR under pull_request_target", p.sameRepoTargetOpened, false, "build"],
    ["fork PR under pull_request", p.forkOpened, false, "refuse"],
    [
      "fork PR under pull_request, allow-fork-builds does not help (no secrets)",
      p.forkOpened,
      true,
      "refuse",
    ],
    ["fork PR under pull_request closed", p.forkClosed, false, "skip"],
    ["fork PR under pull_request_target", p.forkTargetOpened, false, "refuse"],
    ["fork PR under pull_request_target with allow-fork-builds", p.forkTargetOpened, true, "build"],
    ["fork PR under pull_request_target closed", p.forkTargetClosed, false, "cleanup"],
    ["PR from a deleted fork", p.deletedForkOpened, false, "refuse"],
    ["push event", p.pushEvent, false, "none"],
  ];
  it.each(table)("%s → %s", (_name, context, allowForkBuilds, mode) => {
    expect(detectPreviewEvent(context, { repositories, allowForkBuilds, now }).mode).toBe(mode);
  });

  it("build: pr-<N> and pr-<N>-<short head sha> (the head, not the merge commit) per repository, with OCI labels", () => {
    const plan = detectPreviewEvent(p.sameRepoSynchronize, { repositories, now });
    if (plan.mode !== "build") throw new Error(plan.mode);
    expect(plan.tags).toEqual([
      "ghcr.io/acme/web:pr-12",
      "ghcr.io/acme/web:pr-12-6dcb09b",
      "registry.example.com:5000/team/web:pr-12",
      "registry.example.com:5000/team/web:pr-12-6dcb09b",
    ]);
    expect(plan.tags.join()).not.toContain(p.MERGE_SHA.slice(0, 7));
    expect(plan.labels).toEqual([
      { key: "org.opencontainers.image.source", value: "https://github.com/acme/web" },
      { key: "org.opencontainers.image.revision", value: p.HEAD_SHA },
      { key: "org.opencontainers.image.created", value: "2025-06-01T12:00:00.000Z" },
      { key: "k8s-image-build.preview", value: "acme/web#12" },
    ]);
    expect(plan.pr).toEqual({
      number: 12,
      headSha: p.HEAD_SHA,
      baseRepository: "acme/web",
      headRepository: "acme/web",
      isFork: false,
      url: "https://github.com/acme/web/pull/12",
    });
    expect(plan.notes).toEqual([]);
  });

  it("fork under pull_request: one clear line about missing secrets, before any cluster call", () => {
    const plan = detectPreviewEvent(p.forkOpened, { repositories, now });
    if (plan.mode !== "refuse") throw new Error(plan.mode);
    expect(plan.message).not.toContain("\n");
    expect(plan.message).toMatch(/PR #12 comes from the fork mallory\/web/);
    expect(plan.message).toMatch(/no secrets/);
    expect(plan.message).toMatch(/nothing was submitted/);
  });

  it("fork under pull_request_target: refused with one line saying why it is dangerous", () => {
    const plan = detectPreviewEvent(p.forkTargetOpened, { repositories, now });
    if (plan.mode !== "refuse") throw new Error(plan.mode);
    expect(plan.message).not.toContain("\n");
    expect(plan.message).toMatch(
      /refusing to build the head of fork PR #12 \(mallory\/web\) under pull_request_target/,
    );
    expect(plan.message).toMatch(/secrets and a write token/);
    expect(plan.message).toMatch(/allow-fork-builds: true/);
  });

  it("pull_request_target builds note the checkout ref and, for forks, the override", () => {
    const plan = detectPreviewEvent(p.forkTargetOpened, {
      repositories,
      allowForkBuilds: true,
      now,
    });
    if (plan.mode !== "build") throw new Error(plan.mode);
    expect(plan.tags[1]).toBe("ghcr.io/acme/web:pr-12-6dcb09b");
    expect(plan.notes.join("\n")).toMatch(/checks out the base branch/);
    expect(plan.notes.join("\n")).toMatch(/allow-fork-builds is true/);
  });

  it("closed → cleanup of the repositories, no build", () => {
    const plan = detectPreviewEvent(p.sameRepoClosed, { repositories, now });
    expect(plan).toMatchObject({ mode: "cleanup", repositories, pr: { number: 12 } });
  });

  it("other events: says once that preview does nothing here", () => {
    const plan = detectPreviewEvent(p.pushEvent, {
      repositories: ["ghcr.io/acme/web:latest"],
      now,
    });
    expect(plan).toEqual({
      mode: "none",
      note: expect.stringMatching(/preview: true has no effect on push events/),
    });
  });

  it("tags with a tag or digest are refused with one line on PR events", () => {
    expect(() =>
      detectPreviewEvent(p.sameRepoOpened, { repositories: ["ghcr.io/acme/web:latest"] }),
    ).toThrow(InputError);
    expect(() =>
      detectPreviewEvent(p.sameRepoOpened, { repositories: ["ghcr.io/acme/web:latest"] }),
    ).toThrow(
      /^input "tags": "ghcr\.io\/acme\/web:latest" has a tag; with preview: true give image repositories only/,
    );
  });
});
