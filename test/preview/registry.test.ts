/**
 * The OCI distribution client and the preview cleanup against a real registry (Debian's
 * docker-registry, installed by scripts/test-deps.sh), on loopback over plain HTTP.
 */
import { afterAll, beforeAll, describe, expect, it } from "@jest/globals";

import { previewTagMatcher, previewTags } from "../../src/core/spec/preview-tags.js";
import { RegistryClient, RegistryError, deletePreviewTags } from "../../src/core/registry/index.js";
import { cleanupPreviewImages, detectPreviewEvent } from "../../src/github/preview/index.js";
import * as payloads from "./payloads.js";
import { startConnectProxy } from "../support/connect-proxy.js";
import {
  TEST_PASSWORD,
  TEST_USER,
  pushTestImage,
  pushTestIndex,
  registryAvailable,
  startRegistry,
  type TestRegistry,
} from "../support/registry.js";

if (!registryAvailable()) {
  throw new Error(
    "docker-registry is not installed: run scripts/test-deps.sh (apt-get install docker-registry)",
  );
}

const SHA_A = "aaaaaaa1111111111111111111111111111111111";
const SHA_B = "bbbbbbb2222222222222222222222222222222222";

/** PR 12 pushed three times; its last push was also tagged as a release. Plus other PRs' and plain tags. */
async function seedRepository(client: RegistryClient, name: string) {
  const a = await pushTestImage(client, name, ["pr-12", "pr-12-aaaaaaa"], `${name}-a`);
  const b = await pushTestImage(client, name, ["pr-12", "pr-12-bbbbbbb"], `${name}-b`);
  const c = await pushTestImage(client, name, ["pr-12", "pr-12-ccccccc", "v1.0.0"], `${name}-c`);
  const other = await pushTestImage(
    client,
    name,
    ["pr-123", "pr-123-ddddddd", "pr-1"],
    `${name}-other`,
  );
  const latest = await pushTestImage(client, name, ["latest", "pr-12-final"], `${name}-latest`);
  return { a, b, c, other, latest };
}

describe("OCI distribution client on a real registry", () => {
  let registry: TestRegistry;
  let client: RegistryClient;
  beforeAll(async () => {
    registry = await startRegistry({ deleteEnabled: true });
    client = new RegistryClient(registry.host, { insecure: true });
  });
  afterAll(async () => registry?.stop());

  it("pings /v2/, resolves tags to the pushed digest and lists tags across pages", async () => {
    await client.ping();
    const image = await pushTestImage(
      client,
      "acme/ping",
      ["one", "two", "three", "four", "five"],
      "ping",
    );
    expect(await client.resolveDigest("acme/ping", "three")).toBe(image.digest);
    expect(await client.resolveDigest("acme/ping", "missing")).toBeUndefined();
    expect(await client.resolveDigest("acme/nope", "x")).toBeUndefined();
    expect((await client.listTags("acme/ping", 2)).sort()).toEqual([
      "five",
      "four",
      "one",
      "three",
      "two",
    ]);
    expect(await client.listTags("acme/never-pushed")).toEqual([]);
  });

  it("resolves an OCI index tag to the index digest (Accept lists index media types)", async () => {
    const amd = await pushTestImage(client, "acme/multi", [], "amd");
    const arm = await pushTestImage(client, "acme/multi", [], "arm");
    const index = await pushTestIndex(client, "acme/multi", ["pr-7"], [amd, arm]);
    expect(await client.resolveDigest("acme/multi", "pr-7")).toBe(index);
  });

  it("cleanup deletes exactly the PR's preview tags and keeps a digest shared with a release tag", async () => {
    const repo = `${registry.host}/acme/web`;
    const { c, other, latest } = await seedRepository(client, "acme/web");

    const report = await deletePreviewTags(repo, previewTagMatcher("pr", 12), { insecure: true });

    expect(report.unsupported).toBe(false);
    expect(report.warnings).toEqual([]);
    expect(report.found.sort()).toEqual([
      "pr-12",
      "pr-12-aaaaaaa",
      "pr-12-bbbbbbb",
      "pr-12-ccccccc",
    ]);
    expect(report.deleted.map((d) => d.tags.sort())).toEqual(
      expect.arrayContaining([["pr-12-aaaaaaa"], ["pr-12-bbbbbbb"]]),
    );
    expect(report.deleted).toHaveLength(2);
    expect(report.kept).toEqual([
      {
        digest: c.digest,
        tags: expect.arrayContaining(["pr-12", "pr-12-ccccccc"]),
        sharedWith: ["v1.0.0"],
      },
    ]);

    const left = (await client.listTags("acme/web")).sort();
    expect(left).toEqual([
      "latest",
      "pr-1",
      "pr-12",
      "pr-12-ccccccc",
      "pr-12-final",
      "pr-123",
      "pr-123-ddddddd",
      "v1.0.0",
    ]);
    expect(await client.resolveDigest("acme/web", "v1.0.0")).toBe(c.digest);
    expect(await client.resolveDigest("acme/web", "pr-123")).toBe(other.digest);
    expect(await client.resolveDigest("acme/web", "latest")).toBe(latest.digest);
    expect(await client.resolveDigest("acme/web", "pr-12-aaaaaaa")).toBeUndefined();
  });

  it("cleanup by explicit tag list (full references) deletes only those tags' digests", async () => {
    const repo = `${registry.host}/acme/api`;
    const img = await pushTestImage(client, "acme/api", ["pr-5", "pr-5-abcdef0"], "api-5");
    await pushTestImage(client, "acme/api", ["pr-6", "pr-6-abcdef0"], "api-6");
    const report = await deletePreviewTags(repo, previewTags(repo, "pr", 5, "abcdef0123456789"), {
      insecure: true,
    });
    expect(report.deleted).toEqual([
      { digest: img.digest, tags: expect.arrayContaining(["pr-5", "pr-5-abcdef0"]) },
    ]);
    expect((await client.listTags("acme/api")).sort()).toEqual(["pr-6", "pr-6-abcdef0"]);
  });

  it("lists tags page by page following Link (distribution 2.8 answers in one page, so pages are served here)", async () => {
    const urls: string[] = [];
    const pages: Record<string, [string[], string | undefined]> = {
      "/v2/acme/paged/tags/list?n=2": [
        ["a", "b"],
        '</v2/acme/paged/tags/list?last=b&n=2>; rel="next"',
      ],
      "/v2/acme/paged/tags/list?last=b&n=2": [
        ["c", "d"],
        `<${registry.url}/v2/acme/paged/tags/list?last=d&n=2>; rel="next"`,
      ],
      "/v2/acme/paged/tags/list?last=d&n=2": [["e"], undefined],
    };
    const paged = new RegistryClient(registry.host, {
      insecure: true,
      fetch: async (input) => {
        const url = new URL(String(input));
        urls.push(url.pathname + url.search);
        const [tags, link] = pages[url.pathname + url.search]!;
        return new Response(JSON.stringify({ name: "acme/paged", tags }), {
          headers: link ? { Link: link } : {},
        });
      },
    });
    expect(await paged.listTags("acme/paged", 2)).toEqual(["a", "b", "c", "d", "e"]);
    expect(urls).toHaveLength(3);
  });

  it("end to end: the build plan's tags pushed on two pushes, then the closed event's cleanup", async () => {
    const repo = `${registry.host}/acme/site`;
    for (const [i, sha] of [SHA_A, SHA_B].entries()) {
      const plan = detectPreviewEvent(payloads.synchronizeWithHead(sha), { repositories: [repo] });
      if (plan.mode !== "build") throw new Error(plan.mode);
      await pushTestImage(
        client,
        "acme/site",
        plan.tags.map((t) => t.slice(t.lastIndexOf(":") + 1)),
        `site-${i}`,
      );
    }
    await pushTestImage(client, "acme/site", ["main"], "site-main");
    expect((await client.listTags("acme/site")).sort()).toEqual([
      "main",
      "pr-12",
      "pr-12-aaaaaaa",
      "pr-12-bbbbbbb",
    ]);

    const plan = detectPreviewEvent(payloads.sameRepoClosed, { repositories: [repo] });
    if (plan.mode !== "cleanup") throw new Error(plan.mode);
    const result = await cleanupPreviewImages({
      repositories: plan.repositories,
      number: plan.pr.number,
      insecureRegistries: [registry.host],
    });
    expect(result.warnings).toEqual([]);
    expect(result.repositories[0]).toMatchObject({
      via: "registry",
      report: { deleted: expect.any(Array) },
    });
    expect(await client.listTags("acme/site")).toEqual(["main"]);
  });

  it("behind HTTP_PROXY: every registry call goes through the proxy (a name only the proxy resolves)", async () => {
    const proxy = await startConnectProxy();
    try {
      const port = registry.host.split(":")[1];
      const host = `registry.proxied.test:${port}`;
      await pushTestImage(client, "acme/proxied", ["pr-12", "pr-12-aaaaaaa"], "proxied-pr");
      await pushTestImage(client, "acme/proxied", ["main"], "proxied-main");
      const result = await cleanupPreviewImages({
        repositories: [`${host}/acme/proxied`],
        number: 12,
        insecureRegistries: [host],
        proxy: { httpProxy: proxy.url, httpsProxy: proxy.url, noProxy: "localhost,.internal" },
      });
      expect(result.warnings).toEqual([]);
      expect(await client.listTags("acme/proxied")).toEqual(["main"]);
      const seen = proxy.forwarded.map((line) => line.replace(/sha256:[0-9a-f]{64}/, "<digest>"));
      expect(seen.sort()).toEqual([
        `DELETE http://${host}/v2/acme/proxied/manifests/<digest>`,
        `GET http://${host}/v2/acme/proxied/tags/list?n=1000`,
        `HEAD http://${host}/v2/acme/proxied/manifests/main`,
        `HEAD http://${host}/v2/acme/proxied/manifests/pr-12`,
        `HEAD http://${host}/v2/acme/proxied/manifests/pr-12-aaaaaaa`,
      ]);
      // NO_PROXY naming the registry: straight there, which this name cannot reach.
      const forwarded = proxy.forwarded.length;
      const bypassed = await cleanupPreviewImages({
        repositories: [`${host}/acme/proxied`],
        number: 12,
        insecureRegistries: [host],
        proxy: { httpProxy: proxy.url, noProxy: ".proxied.test" },
      });
      expect(bypassed.warnings[0]).toMatch(
        /^preview: could not remove the preview tags of registry\.proxied\.test:\d+\/acme\/proxied: GET http:\/\/registry\.proxied\.test/,
      );
      expect(proxy.forwarded.length).toBe(forwarded);
    } finally {
      await proxy.close();
    }
  });

  it("behind HTTPS_PROXY an https registry is reached through a CONNECT tunnel, and a failure names the proxy", async () => {
    const proxy = await startConnectProxy();
    try {
      // Nothing listens behind this name: the proxy refuses the tunnel (502), as a corporate proxy would.
      const https = new RegistryClient("registry.proxied.test:2", {
        proxy: { httpsProxy: proxy.url },
      });
      await expect(https.ping()).rejects.toThrow(
        /^GET https:\/\/registry\.proxied\.test:2\/v2\/ \(through http:\/\/127\.0\.0\.1:\d+, from HTTPS_PROXY\): ./,
      );
      expect(proxy.tunnels.map((t) => t.target)).toEqual(["registry.proxied.test:2"]);
    } finally {
      await proxy.close();
    }
  });

  it("cleanupPreviewImages turns an unreachable registry into a warning", async () => {
    const result = await cleanupPreviewImages({
      repositories: ["127.0.0.1:1/acme/web"],
      number: 12,
      insecureRegistries: ["127.0.0.1:1"],
    });
    expect(result.warnings).toHaveLength(1);
    expect(result.warnings[0]).toMatch(
      /^preview: could not remove the preview tags of 127\.0\.0\.1:1\/acme\/web: GET http:\/\/127\.0\.0\.1:1\/v2\/acme\/web\/tags\/list/,
    );
  });

  it("cleanup of a PR with nothing pushed is a no-op", async () => {
    const report = await deletePreviewTags(
      `${registry.host}/acme/web`,
      previewTagMatcher("pr", 999),
      { insecure: true },
    );
    expect(report).toMatchObject({
      deleted: [],
      kept: [],
      found: [],
      unsupported: false,
      warnings: [],
    });
  });
});

describe("registry with deletes disabled", () => {
  let registry: TestRegistry;
  beforeAll(async () => {
    registry = await startRegistry({ deleteEnabled: false });
  });
  afterAll(async () => registry?.stop());

  it("gives a warning in the report, not a throw, and leaves every tag", async () => {
    const client = new RegistryClient(registry.host, { insecure: true });
    await seedRepository(client, "acme/web");
    const before = (await client.listTags("acme/web")).sort();

    const report = await deletePreviewTags(
      `${registry.host}/acme/web`,
      previewTagMatcher("pr", 12),
      { insecure: true },
    );

    expect(report.unsupported).toBe(true);
    expect(report.deleted).toEqual([]);
    expect(report.warnings).toHaveLength(1);
    expect(report.warnings[0]).toMatch(/does not allow deleting manifests \(405 UNSUPPORTED/);
    expect(report.warnings[0]).toMatch(/storage\.delete\.enabled/);
    expect((await client.listTags("acme/web")).sort()).toEqual(before);
  });

  it("deleteManifest reports unsupported", async () => {
    const client = new RegistryClient(registry.host, { insecure: true });
    const img = await pushTestImage(client, "acme/one", ["pr-1"], "one");
    expect(await client.deleteManifest("acme/one", img.digest)).toMatchObject({
      result: "unsupported",
    });
  });
});

describe("registry with token (Bearer) auth", () => {
  let registry: TestRegistry;
  beforeAll(async () => {
    registry = await startRegistry({ auth: "token" });
  });
  afterAll(async () => registry?.stop());

  it("follows the WWW-Authenticate challenge to the token endpoint with Basic credentials", async () => {
    const credentials = { username: TEST_USER, password: TEST_PASSWORD };
    const client = new RegistryClient(registry.host, { insecure: true, credentials });
    await seedRepository(client, "acme/web");
    const report = await deletePreviewTags(
      `${registry.host}/acme/web`,
      previewTagMatcher("pr", 12),
      { insecure: true, credentials },
    );
    expect(report.deleted).toHaveLength(2);
    expect(report.kept.map((k) => k.sharedWith)).toEqual([["v1.0.0"]]);
    expect(registry.tokenRequests.length).toBeGreaterThan(0);
    expect(registry.tokenRequests.every((r) => r.service === "test-registry")).toBe(true);
    expect(registry.tokenRequests.flatMap((r) => r.scopes)).toEqual(
      expect.arrayContaining(["repository:acme/web:delete"]),
    );
  });

  it("wrong credentials: one clear RegistryError, not a cryptic failure", async () => {
    const client = new RegistryClient(registry.host, {
      insecure: true,
      credentials: { username: TEST_USER, password: "wrong" },
    });
    await expect(client.listTags("acme/web")).rejects.toThrow(
      /token endpoint http:\/\/127\.0\.0\.1:\d+\/token for 127\.0\.0\.1:\d+: credentials rejected/,
    );
  });

  it("no credentials: the token endpoint refuses anonymous access", async () => {
    const client = new RegistryClient(registry.host, { insecure: true });
    await expect(client.ping()).rejects.toThrow(
      /anonymous access refused; give registry credentials/,
    );
  });
});

describe("registry with htpasswd (Basic) auth", () => {
  let registry: TestRegistry;
  beforeAll(async () => {
    registry = await startRegistry({ auth: "htpasswd" });
  });
  afterAll(async () => registry?.stop());

  it("answers the Basic challenge with the credentials", async () => {
    const client = new RegistryClient(registry.host, {
      insecure: true,
      credentials: { username: TEST_USER, password: TEST_PASSWORD },
    });
    await client.ping();
    const img = await pushTestImage(client, "acme/basic", ["pr-3"], "basic");
    expect(await client.resolveDigest("acme/basic", "pr-3")).toBe(img.digest);
    expect(await client.deleteManifest("acme/basic", img.digest)).toEqual({ result: "deleted" });
    expect(await client.resolveDigest("acme/basic", "pr-3")).toBeUndefined();
  });

  it("without credentials says so", async () => {
    const client = new RegistryClient(registry.host, { insecure: true });
    const error = await client.ping().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RegistryError);
    expect((error as RegistryError).status).toBe(401);
    expect((error as RegistryError).message).toMatch(
      /authentication required and no credentials given/,
    );
  });
});
