/** Pure pieces: tag derivation, label set, repository validation, header parsing, credentials, the card. */
import { describe, expect, it } from "@jest/globals";

import {
  isPreviewTagOf,
  previewLabels,
  previewTagNames,
  previewTags,
  validatePreviewRepositories,
  validatePreviewRepository,
} from "../../src/core/spec/preview-tags.js";
import {
  credentialsForRegistry,
  isInsecureRegistry,
  nextLink,
  parseWwwAuthenticate,
  splitRepository,
} from "../../src/core/registry/index.js";
import {
  formatDuration,
  renderPreviewCard,
  renderPreviewComment,
  runUrl,
} from "../../src/github/preview/index.js";

const SHA = "0123456789abcdef0123456789abcdef01234567";

describe("preview tags", () => {
  it("derives pr-<N>-<7 hex> for GitHub and mr-<iid>-<8 hex> (GitLab's CI_COMMIT_SHORT_SHA)", () => {
    expect(previewTags("ghcr.io/acme/web", "pr", 12, SHA)).toEqual([
      "ghcr.io/acme/web:pr-12",
      "ghcr.io/acme/web:pr-12-0123456",
    ]);
    expect(previewTags("localhost:5000/web", "mr", 3, SHA)).toEqual([
      "localhost:5000/web:mr-3",
      "localhost:5000/web:mr-3-01234567",
    ]);
    expect(previewTagNames("pr", 1, SHA)).toEqual(["pr-1", "pr-1-0123456"]);
  });

  it("rejects a bad number or sha", () => {
    expect(() => previewTags("a/b", "pr", 0, SHA)).toThrow(/positive integer/);
    expect(() => previewTags("a/b", "pr", 1, "HEAD")).toThrow(/head commit SHA/);
  });

  it("matches every push's tags of one PR and nothing else", () => {
    for (const t of ["pr-12", "pr-12-0123456", "pr-12-abcdef0"])
      expect(isPreviewTagOf(t, "pr", 12)).toBe(true);
    for (const t of [
      "pr-123",
      "pr-1",
      "pr-12-final",
      "pr-12-0123456789",
      "mr-12",
      "v1.0.0",
      "latest",
      "xpr-12",
    ])
      expect(isPreviewTagOf(t, "pr", 12)).toBe(false);
    expect(isPreviewTagOf("mr-12-01234567", "mr", 12)).toBe(true);
    expect(isPreviewTagOf("mr-12-0123456", "mr", 12)).toBe(false);
  });

  it("labels", () => {
    const labels = previewLabels({
      sourceUrl: "https://gitlab.com/g/p",
      revision: SHA,
      preview: "g/p!5",
      created: new Date(0),
    });
    expect(Object.fromEntries(labels.map((l) => [l.key, l.value]))).toEqual({
      "org.opencontainers.image.source": "https://gitlab.com/g/p",
      "org.opencontainers.image.revision": SHA,
      "org.opencontainers.image.created": "1970-01-01T00:00:00.000Z",
      "k8s-image-build.preview": "g/p!5",
    });
  });

  it("validates repositories only, one line each", () => {
    expect(validatePreviewRepository(" ghcr.io/acme/web ")).toBe("ghcr.io/acme/web");
    expect(validatePreviewRepository("localhost:5000/web")).toBe("localhost:5000/web");
    expect(validatePreviewRepository("nginx")).toBe("nginx");
    expect(() => validatePreviewRepository("localhost:5000/web:pr")).toThrow(/has a tag/);
    expect(() => validatePreviewRepository(`ghcr.io/acme/web@sha256:${"a".repeat(64)}`)).toThrow(
      /has a digest/,
    );
    expect(() => validatePreviewRepository("ghcr.io/Acme/Web")).toThrow(
      /not a valid image repository/,
    );
    expect(() => validatePreviewRepositories([" ", ""])).toThrow(/at least one image repository/);
    expect(validatePreviewRepositories(["a/b", "a/b", "c/d"])).toEqual(["a/b", "c/d"]);
  });
});

describe("registry helpers", () => {
  it("splits repositories like Docker does", () => {
    expect(splitRepository("ghcr.io/acme/web")).toEqual({ registry: "ghcr.io", name: "acme/web" });
    expect(splitRepository("localhost:5000/web:tag")).toEqual({
      registry: "localhost:5000",
      name: "web",
    });
    expect(splitRepository("localhost/web")).toEqual({ registry: "localhost", name: "web" });
    expect(splitRepository("nginx")).toEqual({ registry: "docker.io", name: "library/nginx" });
    expect(splitRepository("acme/web@sha256:abc")).toEqual({
      registry: "docker.io",
      name: "acme/web",
    });
    expect(splitRepository("docker.io/nginx")).toEqual({
      registry: "docker.io",
      name: "library/nginx",
    });
    expect(isInsecureRegistry("127.0.0.1:5000", ["http://127.0.0.1:5000/"])).toBe(true);
    expect(isInsecureRegistry("127.0.0.1:5000", ["127.0.0.1"])).toBe(false);
  });

  it("parses WWW-Authenticate challenges (quoted commas included)", () => {
    expect(
      parseWwwAuthenticate(
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:samalba/my-app:pull,push"',
      ),
    ).toEqual([
      {
        scheme: "Bearer",
        params: {
          realm: "https://auth.docker.io/token",
          service: "registry.docker.io",
          scope: "repository:samalba/my-app:pull,push",
        },
      },
    ]);
    expect(
      parseWwwAuthenticate('Basic realm="Registry Realm", Bearer realm=x,error=invalid_token'),
    ).toEqual([
      { scheme: "Basic", params: { realm: "Registry Realm" } },
      { scheme: "Bearer", params: { realm: "x", error: "invalid_token" } },
    ]);
  });

  it("follows Link rel=next", () => {
    expect(nextLink('</v2/a/tags/list?last=b&n=2>; rel="next"', "http://r:5000")).toBe(
      "http://r:5000/v2/a/tags/list?last=b&n=2",
    );
    expect(
      nextLink(
        '<https://x/v2/a/tags/list?last=b>; rel="prev", <https://x/p2>; rel=next',
        "http://r",
      ),
    ).toBe("https://x/p2");
    expect(nextLink(null, "http://r")).toBeUndefined();
  });

  it("finds credentials in basic auth and docker config JSON", () => {
    expect(
      credentialsForRegistry(
        { kind: "basic", username: "u", password: "p", registries: ["ghcr.io"] },
        "ghcr.io",
      ),
    ).toEqual({ username: "u", password: "p" });
    expect(
      credentialsForRegistry(
        { kind: "basic", username: "u", password: "p", registries: ["ghcr.io"] },
        "quay.io",
      ),
    ).toBeUndefined();
    const json = JSON.stringify({
      auths: {
        "https://index.docker.io/v1/": { auth: Buffer.from("me:pa:ss").toString("base64") },
        "quay.io": { username: "q", password: "w" },
      },
    });
    expect(credentialsForRegistry({ kind: "docker-config-json", json }, "docker.io")).toEqual({
      username: "me",
      password: "pa:ss",
    });
    expect(credentialsForRegistry({ kind: "docker-config-json", json }, "quay.io")).toEqual({
      username: "q",
      password: "w",
    });
  });
});

describe("preview card", () => {
  const digest = `sha256:${"b".repeat(64)}`;
  it("built: image with digest, pull command, duration, builder, run link", () => {
    const md = renderPreviewCard({
      repository: "ghcr.io/acme/web",
      prNumber: 12,
      headSha: SHA,
      state: "built",
      digest,
      tags: ["ghcr.io/acme/web:pr-12", "ghcr.io/acme/web:pr-12-0123456"],
      builder: "kaniko",
      durationMs: 83_400,
      runUrl: runUrl("https://github.com", "acme/web", 42, 2),
    });
    expect(md).toContain(`| Image | \`ghcr.io/acme/web@${digest}\` |`);
    expect(md).toContain(`docker pull ghcr.io/acme/web@${digest}`);
    expect(md).toContain("| Build time | 1m 23s |");
    expect(md).toContain("| Builder | kaniko |");
    expect(md).toContain("(https://github.com/acme/web/actions/runs/42/attempts/2)");
    expect(md).not.toContain("k8s-image-build:preview");
    expect(
      renderPreviewComment({
        repository: "ghcr.io/acme/web",
        prNumber: 12,
        headSha: SHA,
        state: "built",
        digest,
      }).split("\n")[0],
    ).toBe("<!-- k8s-image-build:preview:ghcr.io/acme/web -->");
  });

  it("removed: deleted, kept (shared) and warnings", () => {
    const md = renderPreviewCard({
      repository: "r/x",
      prNumber: 3,
      headSha: SHA,
      state: "removed",
      removal: {
        deletedTags: ["pr-3"],
        kept: [{ tags: ["pr-3-0123456"], sharedWith: ["v1"] }],
        warnings: ["registry said no"],
      },
    });
    expect(md).toMatch(/removed/);
    expect(md).toContain("deleted preview tags `pr-3`");
    expect(md).toContain("Kept `pr-3-0123456`: the image is also tagged `v1`.");
    expect(md).toContain("> registry said no");
  });

  it("formats durations", () => {
    expect(formatDuration(999)).toBe("1s");
    expect(formatDuration(45_000)).toBe("45s");
    expect(formatDuration(3_723_000)).toBe("1h 2m 3s");
  });
});
