/**
 * The sticky comment and GHCR cleanup through the real @actions/github client, against a local
 * HTTP server standing in for api.github.com.
 */
import { afterEach, beforeEach, describe, expect, it } from "@jest/globals";
import { getOctokit } from "@actions/github";

import { previewTagMatcher } from "../../src/core/spec/preview-tags.js";
import {
  cleanupPreviewImages,
  deleteGhcrPreviewVersions,
  detectPreviewEvent,
  removalCard,
  renderPreviewComment,
  upsertPreviewComment,
} from "../../src/github/preview/index.js";
import { startFakeGitHub, type FakeGitHub, type FakeVersion } from "./github-server.js";
import * as p from "./payloads.js";

const REPO = "ghcr.io/acme/web";
const target = { owner: "acme", repo: "web", issueNumber: 12 };
const d = (c: string) => `sha256:${c.repeat(64)}`;
const version = (id: number, digest: string, tags: string[]): FakeVersion => ({
  id,
  name: digest,
  metadata: { package_type: "container", container: { tags } },
});

let gh: FakeGitHub;
beforeEach(async () => {
  gh = await startFakeGitHub();
});
afterEach(async () => gh.close());

const client = () => getOctokit("ghs_test_token", { baseUrl: gh.baseUrl });

describe("sticky preview comment", () => {
  it("is created once, then updated in place (never a second) across two pushes, found past the first page", async () => {
    // A busy PR: 130 other comments before ours, so finding the marker needs the second page.
    for (let i = 0; i < 130; i++)
      gh.comments.push({
        id: i + 1,
        body: `comment ${i}`,
        user: { login: "someone", type: "User" },
      });
    // Another image repository's card and a quote of ours must not match.
    gh.comments.push({
      id: 500,
      body: "<!-- k8s-image-build:preview:ghcr.io/acme/other -->\nother",
      user: { login: "github-actions[bot]", type: "Bot" },
    });
    gh.comments.push({
      id: 501,
      body: "> <!-- k8s-image-build:preview:ghcr.io/acme/web -->",
      user: { login: "someone", type: "User" },
    });

    const push = async (sha: string, digestChar: string) => {
      const plan = detectPreviewEvent(p.synchronizeWithHead(sha), { repositories: [REPO] });
      if (plan.mode !== "build") throw new Error(plan.mode);
      const body = renderPreviewComment({
        repository: REPO,
        prNumber: 12,
        headSha: sha,
        state: "built",
        digest: d(digestChar),
        tags: plan.tags,
        builder: "kaniko",
        durationMs: 61_000,
        runUrl: "https://github.com/acme/web/actions/runs/7",
      });
      return upsertPreviewComment(client(), target, REPO, body);
    };

    const first = await push("1111111aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "a");
    expect(first).toMatchObject({ status: "created" });
    const second = await push("2222222bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", "b");
    expect(second).toEqual({
      status: "updated",
      commentId: (first as { commentId: number }).commentId,
      url: expect.any(String),
    });

    const ours = gh.comments.filter((c) =>
      c.body.startsWith("<!-- k8s-image-build:preview:ghcr.io/acme/web -->"),
    );
    expect(ours).toHaveLength(1);
    expect(ours[0]!.body).toContain(`ghcr.io/acme/web@${d("b")}`);
    expect(ours[0]!.body).toContain("ghcr.io/acme/web:pr-12-2222222");
    expect(ours[0]!.body).not.toContain(d("a"));
    expect(gh.requests.filter((r) => r.method === "POST")).toHaveLength(1);
    expect(gh.requests.filter((r) => r.method === "PATCH")).toHaveLength(1);
    expect(
      gh.requests.filter((r) => r.method === "GET" && /page=2/.test(r.path)).length,
    ).toBeGreaterThan(0);
    expect(gh.requests[0]!.authorization).toBe("token ghs_test_token");
  });

  it("after cleanup the same comment says the preview was removed", async () => {
    await upsertPreviewComment(
      client(),
      target,
      REPO,
      renderPreviewComment({
        repository: REPO,
        prNumber: 12,
        headSha: p.HEAD_SHA,
        state: "built",
        digest: d("c"),
      }),
    );
    const removed = renderPreviewComment(
      removalCard(
        {
          via: "ghcr",
          repository: REPO,
          report: {
            repository: REPO,
            deleted: [{ id: 1, digest: d("c"), tags: ["pr-12", "pr-12-6dcb09b"] }],
            kept: [],
            found: [],
            denied: false,
            warnings: [],
          },
        },
        12,
        p.HEAD_SHA,
      ),
    );
    expect(
      await upsertPreviewComment(client(), target, REPO, removed, { createIfMissing: false }),
    ).toMatchObject({ status: "updated" });
    expect(gh.comments).toHaveLength(1);
    expect(gh.comments[0]!.body).toMatch(/removed/);
    expect(gh.comments[0]!.body).toContain("deleted preview tags `pr-12`, `pr-12-6dcb09b`");
  });

  it("createIfMissing false: no comment is created for a removal", async () => {
    expect(
      await upsertPreviewComment(client(), target, REPO, "x", { createIfMissing: false }),
    ).toEqual({ status: "absent" });
    expect(gh.comments).toHaveLength(0);
  });

  it("403 (token lacks pull-requests: write) → a warning, not a throw", async () => {
    gh.commentWriteStatus = 403;
    const result = await upsertPreviewComment(client(), target, REPO, "body");
    expect(result.status).toBe("warning");
    expect((result as { warning: string }).warning).toMatch(
      /HTTP 403\): the github-token lacks pull-requests: write/,
    );
    expect((result as { warning: string }).warning).not.toContain("\n");
  });

  it("unreachable API → a warning, not a throw", async () => {
    const url = gh.baseUrl;
    await gh.close();
    gh = await startFakeGitHub(); // for afterEach
    const result = await upsertPreviewComment(
      getOctokit("t", { baseUrl: url }),
      target,
      REPO,
      "body",
    );
    expect(result.status).toBe("warning");
  });
});

describe("GHCR cleanup through the Packages API", () => {
  it("deletes only versions whose tags are all this PR's preview tags (org package)", async () => {
    gh.packages.org.set("acme/web", [
      version(1, d("1"), ["pr-12", "pr-12-6dcb09b"]),
      version(2, d("2"), ["pr-12-aaaaaaa"]),
      version(3, d("3"), ["pr-12-bbbbbbb", "v1.0.0"]),
      version(4, d("4"), ["pr-123"]),
      version(5, d("5"), []),
      version(6, d("6"), ["latest"]),
    ]);
    const report = await deleteGhcrPreviewVersions(client(), REPO, previewTagMatcher("pr", 12));
    expect(report.owner).toEqual({ kind: "org", login: "acme", packageName: "web" });
    expect(report.deleted.map((v) => v.id)).toEqual([1, 2]);
    expect(report.kept).toEqual([
      { id: 3, digest: d("3"), tags: ["pr-12-bbbbbbb"], sharedWith: ["v1.0.0"] },
    ]);
    expect(report.warnings).toEqual([]);
    expect(gh.packages.org.get("acme/web")!.map((v) => v.id)).toEqual([3, 4, 5, 6]);
    expect(gh.requests.filter((r) => r.method === "DELETE").map((r) => r.path)).toEqual([
      "/orgs/acme/packages/container/web/versions/1",
      "/orgs/acme/packages/container/web/versions/2",
    ]);
  });

  it("falls back to the user's package, nested package names encoded", async () => {
    gh.packages.user.set("octocat/web/api", [version(9, d("9"), ["pr-12"])]);
    const report = await deleteGhcrPreviewVersions(
      client(),
      "ghcr.io/octocat/web/api",
      previewTagMatcher("pr", 12),
    );
    expect(report.owner).toEqual({ kind: "user", login: "octocat", packageName: "web/api" });
    expect(report.deleted.map((v) => v.id)).toEqual([9]);
    expect(
      gh.requests.some(
        (r) =>
          r.method === "DELETE" &&
          r.path === "/users/octocat/packages/container/web%2Fapi/versions/9",
      ),
    ).toBe(true);
  });

  it("403 on delete → a warning naming the permission, versions kept", async () => {
    gh.packages.org.set("acme/web", [
      version(1, d("1"), ["pr-12"]),
      version(2, d("2"), ["pr-12-aaaaaaa"]),
    ]);
    gh.packageDeleteStatus = 403;
    const report = await deleteGhcrPreviewVersions(client(), REPO, previewTagMatcher("pr", 12));
    expect(report.denied).toBe(true);
    expect(report.deleted).toEqual([]);
    expect(report.warnings).toHaveLength(1);
    expect(report.warnings[0]).toMatch(/\(HTTP 403\): the github-token needs "packages: write"/);
    expect(gh.requests.filter((r) => r.method === "DELETE")).toHaveLength(1); // stops after the first refusal
  });

  it("package not found → a warning", async () => {
    const report = await deleteGhcrPreviewVersions(client(), REPO, previewTagMatcher("pr", 12));
    expect(report.warnings[0]).toMatch(/was not found, or the github-token cannot see it/);
  });

  it("cleanupPreviewImages routes ghcr.io to the Packages API and warns without a token", async () => {
    gh.packages.org.set("acme/web", [version(1, d("1"), ["pr-12"])]);
    const withToken = await cleanupPreviewImages({
      repositories: [REPO],
      number: 12,
      octokit: client(),
    });
    expect(withToken.repositories[0]).toMatchObject({
      via: "ghcr",
      report: { deleted: [{ id: 1 }] },
    });
    const without = await cleanupPreviewImages({ repositories: [REPO], number: 12 });
    expect(without.warnings[0]).toMatch(
      /deleted through the GitHub Packages API: give github-token with "packages: write"/,
    );
  });
});
