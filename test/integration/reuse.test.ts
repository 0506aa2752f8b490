/**
 * Reuse against the Kubernetes API test server and a real registry (Debian's docker-registry with
 * token auth, as ghcr.io and Docker Hub do it: anonymous pull, push with credentials). The test
 * kubelet's builder pushes a real image before it reports the digest (test/support/builder-push.ts),
 * so what a second build finds in the registry is what the first one pushed.
 */
import { chmodSync, rmSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { build, type BuildOptions } from "../../src/core/build.js";
import { RegistryClient } from "../../src/core/registry/index.js";
import { parseBuildSpec, type RawInputs } from "../../src/core/spec/spec.js";
import type { BuildResult } from "../../src/core/types.js";
import { builderPush, type PushedBuild } from "../support/builder-push.js";
import { startTestCluster, type TestCluster } from "../support/cluster.js";
import {
  TEST_PASSWORD,
  TEST_USER,
  registryAvailable,
  startRegistry,
  type TestRegistry,
} from "../support/registry.js";
import { makeContext, NOTHING_LEFT, recordingReporter, waitForEmpty } from "./helpers.js";

if (!registryAvailable()) {
  throw new Error(
    "docker-registry is not installed: run scripts/test-deps.sh (apt-get install docker-registry)",
  );
}

let cluster: TestCluster;
let registry: TestRegistry;
let pushes: PushedBuild[];
/** The runner's view of the registry, with the same credentials the builds get. */
let client: RegistryClient;

beforeAll(async () => {
  registry = await startRegistry({ auth: "token", anonymousPull: true });
  cluster = await startTestCluster();
  cluster.createNamespace("ci-builds");
  client = new RegistryClient(registry.host, {
    insecure: true,
    credentials: { username: TEST_USER, password: TEST_PASSWORD },
  });
});
afterAll(async () => {
  await cluster?.close();
  await registry?.stop();
});
beforeEach(() => {
  pushes = [];
  cluster.resetRequests();
  cluster.useScenario("kaniko-success-cold", {
    push: builderPush({ credentials: { username: TEST_USER, password: TEST_PASSWORD }, pushes }),
  });
});

let repoCount = 0;
/** A fresh repository per test, so no test finds another's images. */
function freshRepo(): string {
  return `acme/web-${++repoCount}`;
}

function specFor(context: string, repo: string, inputs: RawInputs = {}) {
  return parseBuildSpec(
    {
      context: ".",
      tags: `${registry.host}/${repo}:1.0`,
      "cache-repo": `${registry.host}/${repo}/cache`,
      "insecure-registries": registry.host,
      "registry-username": TEST_USER,
      "registry-password": TEST_PASSWORD,
      namespace: "ci-builds",
      kubeconfig: cluster.kubeconfig(),
      ...inputs,
    },
    { workspace: context, kubeconfigPaths: [] },
  );
}

function jobsCreated(): number {
  return cluster.requests.filter(
    (request) => request.method === "POST" && /\/jobs$/.test(request.path),
  ).length;
}

async function run(spec: ReturnType<typeof specFor>, options: Partial<BuildOptions> = {}) {
  const reporter = recordingReporter();
  const result: BuildResult = await build(spec, {
    reporter,
    runId: "test",
    pendingGraceMs: 300,
    ...options,
  });
  return { result, reporter };
}

describe("reuse of an unchanged build", () => {
  test("a second identical build creates no Job, makes no API request and returns the first build's digest", async () => {
    const context = makeContext();
    const repo = freshRepo();
    const first = await run(specFor(context, repo));
    expect(first.result.reused).toBe(false);
    expect(jobsCreated()).toBe(1);
    expect(pushes).toHaveLength(1);
    expect(first.result.digest).toBe(pushes[0]!.digest);
    // The key is recorded next to the layer cache, pointing at what the builder pushed.
    const keyTag = `kib-${first.result.buildKey}`;
    expect(first.result.buildKey).toMatch(/^[0-9a-f]{64}$/);
    expect(await client.resolveDigest(`${repo}/cache`, keyTag)).toBe(first.result.digest);
    expect(first.reporter.lines.join("\n")).toContain("Reuse: no image for build key");
    expect(first.reporter.lines.join("\n")).toContain("Recorded build key");

    cluster.resetRequests();
    const second = await run(specFor(context, repo));
    expect(second.result).toMatchObject({
      reused: true,
      digest: first.result.digest,
      image: `${registry.host}/${repo}@${first.result.digest}`,
      tags: [`${registry.host}/${repo}:1.0`],
      builtAt: pushes[0]!.created,
      buildKey: first.result.buildKey,
      job: "",
    });
    expect(jobsCreated()).toBe(0);
    expect(cluster.requests).toEqual([]);
    expect(pushes).toHaveLength(1);
    const reused = second.reporter.lines.filter((line) => line.startsWith("Reused "));
    expect(reused).toEqual([
      expect.stringMatching(
        new RegExp(
          `^Reused ${first.result.digest} built ${pushes[0]!.created}: build key ${first.result.buildKey!.slice(0, 12)} .*unchanged.*no Job created$`,
        ),
      ),
    ]);
    expect(second.reporter.warnings).toEqual([]);
    expect(await waitForEmpty(cluster)).toEqual(NOTHING_LEFT);
  });

  test.each(["never", "false"])("reuse: %s builds although the key is recorded", async (reuse) => {
    const context = makeContext();
    const repo = freshRepo();
    await run(specFor(context, repo));
    cluster.resetRequests();
    const pushesBefore = pushes.length;
    const forced = await run(specFor(context, repo, { reuse }));
    expect(forced.result.reused).toBe(false);
    expect(jobsCreated()).toBe(1);
    expect(pushes.length - pushesBefore).toBe(1);
  });

  test("mtimes and files .dockerignore keeps out do not change the key", async () => {
    const context = makeContext();
    const repo = freshRepo();
    const first = await run(specFor(context, repo));
    utimesSync(join(context, "app.txt"), new Date(2001, 1, 1), new Date(2001, 1, 1));
    writeFileSync(join(context, "debug.log"), "other noise\n");
    writeFileSync(join(context, "secret.env"), "TOKEN=changed\n");
    cluster.resetRequests();
    const second = await run(specFor(context, repo));
    expect(second.result.reused).toBe(true);
    expect(second.result.digest).toBe(first.result.digest);
    expect(jobsCreated()).toBe(0);
  });
});

describe("any change to an input of the key builds", () => {
  const changes: Array<[string, (context: string) => RawInputs]> = [
    [
      "the Dockerfile's content",
      (c) => {
        writeFileSync(join(c, "Dockerfile"), "FROM busybox\nCOPY app.txt /srv/app.txt\n");
        return {};
      },
    ],
    [
      "a context file's content",
      (c) => {
        writeFileSync(join(c, "app.txt"), "hello from a changed context\n");
        return {};
      },
    ],
    [
      "a file's mode",
      (c) => {
        chmodSync(join(c, "app.txt"), 0o755);
        return {};
      },
    ],
    [
      "a new file in the context",
      (c) => {
        writeFileSync(join(c, "added.txt"), "new\n");
        return {};
      },
    ],
    [
      "a symlink's target",
      (c) => {
        rmSync(join(c, "link"));
        symlinkSync("src/main.sh", join(c, "link"));
        return {};
      },
    ],
    ["a build arg", () => ({ "build-args": "VERSION=2" })],
    ["the target stage", () => ({ target: "final" })],
    ["a label", () => ({ labels: "org.opencontainers.image.revision=abc" })],
    [
      "the builder image",
      () => ({ "builder-image": "ghcr.io/osscontainertools/kaniko:v1.25.0-debug" }),
    ],
  ];

  test.each(changes)("%s", async (_what, change) => {
    const context = makeContext();
    symlinkSync("app.txt", join(context, "link"));
    const repo = freshRepo();
    const first = await run(specFor(context, repo));
    expect(first.result.reused).toBe(false);
    const inputs = change(context);
    cluster.resetRequests();
    const second = await run(specFor(context, repo, inputs));
    expect(second.result.reused).toBe(false);
    expect(jobsCreated()).toBe(1);
    expect(second.result.digest).toBe(pushes[1]!.digest);
    expect(second.result.digest).not.toBe(first.result.digest);
    expect(second.result.buildKey).not.toBe(first.result.buildKey);
  });
});

describe("tags", () => {
  test("a reused multi-tag push points every tag, in this and another repository, at the same digest", async () => {
    const context = makeContext();
    const repo = freshRepo();
    const first = await run(specFor(context, repo));
    const other = freshRepo();
    const tags = [
      `${registry.host}/${repo}:1.0`,
      `${registry.host}/${repo}:latest`,
      `${registry.host}/${other}:2.0`,
    ];
    cluster.resetRequests();
    const second = await run(specFor(context, repo, { tags: tags.join(",") }));
    expect(second.result.reused).toBe(true);
    expect(second.result.tags).toEqual(tags);
    expect(jobsCreated()).toBe(0);
    expect(await client.resolveDigest(repo, "1.0")).toBe(first.result.digest);
    expect(await client.resolveDigest(repo, "latest")).toBe(first.result.digest);
    // Another repository: its blobs were mounted, so the image is whole there too.
    expect(await client.resolveDigest(other, "2.0")).toBe(first.result.digest);
    const manifest = await client.getManifest(other, first.result.digest);
    const body = JSON.parse(manifest!.bytes.toString("utf8"));
    for (const blob of [body.config.digest, ...body.layers.map((l: any) => l.digest)]) {
      expect(await client.getBlob(other, blob)).toBeDefined();
    }
  });
});

describe("multi-platform (BuildKit)", () => {
  test("the index is reused whole, in another repository too; another platform list builds", async () => {
    cluster.useScenario("buildkit-rootless-success-cold", {
      push: builderPush({ credentials: { username: TEST_USER, password: TEST_PASSWORD }, pushes }),
    });
    const context = makeContext();
    const repo = freshRepo();
    const inputs = { builder: "buildkit", platforms: "linux/amd64,linux/arm64" };
    const first = await run(specFor(context, repo, inputs));
    const index = await client.getManifest(repo, first.result.digest);
    expect(index?.mediaType).toBe("application/vnd.oci.image.index.v1+json");

    const other = freshRepo();
    cluster.resetRequests();
    const second = await run(
      specFor(context, repo, {
        ...inputs,
        tags: `${registry.host}/${repo}:1.0,${registry.host}/${other}:1.0`,
      }),
    );
    expect(second.result).toMatchObject({ reused: true, digest: first.result.digest });
    expect(jobsCreated()).toBe(0);
    expect(await client.resolveDigest(other, "1.0")).toBe(first.result.digest);
    for (const child of JSON.parse(index!.bytes.toString("utf8")).manifests) {
      const image = await client.getManifest(other, child.digest);
      expect(image).toBeDefined();
      const body = JSON.parse(image!.bytes.toString("utf8"));
      expect(await client.getBlob(other, body.config.digest)).toBeDefined();
    }

    cluster.resetRequests();
    const amd64 = await run(specFor(context, repo, { ...inputs, platforms: "linux/amd64" }));
    expect(amd64.result.reused).toBe(false);
    expect(jobsCreated()).toBe(1);
  });
});

describe("a git context", () => {
  /** `git ls-remote` as a remote whose main branch is at `commit` would answer. */
  const remoteAt = (commit: string) => async () => `${commit}\tHEAD\n${commit}\trefs/heads/main\n`;
  const A = "a".repeat(40);
  const B = "b".repeat(40);

  test("counts by the commit its ref resolves to: the same commit reuses, a new one builds", async () => {
    const repo = freshRepo();
    const gitSpec = () =>
      specFor(makeContext(), repo, { context: "https://github.com/acme/web.git#main" });
    const first = await run(gitSpec(), { gitLsRemote: remoteAt(A) });
    expect(first.result.reused).toBe(false);
    cluster.resetRequests();
    const same = await run(gitSpec(), { gitLsRemote: remoteAt(A) });
    expect(same.result).toMatchObject({ reused: true, digest: first.result.digest });
    expect(jobsCreated()).toBe(0);
    expect(same.reporter.lines.find((line) => line.startsWith("Reused "))).toContain(
      `commit ${A.slice(0, 12)}`,
    );
    cluster.resetRequests();
    const moved = await run(gitSpec(), { gitLsRemote: remoteAt(B) });
    expect(moved.result.reused).toBe(false);
    expect(jobsCreated()).toBe(1);
  });

  test("a ref that cannot be resolved builds, with one warning", async () => {
    const repo = freshRepo();
    const spec = specFor(makeContext(), repo, {
      context: "https://github.com/acme/web.git#no-such-branch",
    });
    const unresolved = await run(spec, { gitLsRemote: remoteAt(A) });
    expect(unresolved.result.reused).toBe(false);
    expect(jobsCreated()).toBe(1);
    expect(unresolved.reporter.warnings).toEqual([
      "Reuse: cannot resolve the commit of https://github.com/acme/web.git#no-such-branch (git ls-remote); building",
    ]);
  });
});

describe("a registry the runner cannot write", () => {
  test("an image found but not taggable: one warning, then a build (anonymous pull, push refused)", async () => {
    const context = makeContext();
    const repo = freshRepo();
    await run(specFor(context, repo));
    cluster.resetRequests();
    // No credentials on the runner side: the token server grants pull only. The builder pushes with its own.
    const readOnly = await run(
      specFor(context, repo, { "registry-username": "", "registry-password": "" }),
    );
    expect(readOnly.result.reused).toBe(false);
    expect(jobsCreated()).toBe(1);
    expect(readOnly.reporter.warnings).toEqual([
      expect.stringMatching(
        /^Reuse: found sha256:[0-9a-f]{64} for build key .* could not tag it .*401.*; building$/,
      ),
    ]);
  });

  test("a key not found and not recordable: one warning after the build", async () => {
    const context = makeContext();
    const repo = freshRepo();
    const readOnly = await run(
      specFor(context, repo, { "registry-username": "", "registry-password": "" }),
    );
    expect(readOnly.result.reused).toBe(false);
    expect(readOnly.reporter.warnings).toEqual([
      expect.stringMatching(
        /^Reuse: could not record build key .*401.*the next identical build will build again$/,
      ),
    ]);
  });

  test("a registry that cannot be read: one warning, then a build", async () => {
    const context = makeContext();
    const repo = freshRepo();
    const unreadable = await run(
      specFor(context, repo, { "registry-username": TEST_USER, "registry-password": "wrong" }),
    );
    expect(unreadable.result.reused).toBe(false);
    expect(jobsCreated()).toBe(1);
    expect(unreadable.reporter.warnings).toEqual([
      expect.stringMatching(
        /^Reuse: cannot read .*:kib-[0-9a-f]{64} \(.*credentials rejected.*\); building$/,
      ),
    ]);
  });
});
