/**
 * Pull-request previews end to end: the bundled action (dist/main.js) run as the runner runs it on
 * pull_request / pull_request_target / push events — a webhook payload file, GITHUB_* variables,
 * INPUT_* inputs — against the Kubernetes API test server, a local stand-in for api.github.com
 * (driven by the real @actions/github client inside the bundle) and a real OCI registry
 * (Debian's docker-registry) for the cleanup when the PR closes.
 */
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { RegistryClient } from "../../src/core/registry/index.js";
import { startFakeGitHub, type FakeGitHub } from "../preview/github-server.js";
import * as payloads from "../preview/payloads.js";
import { startTestCluster, type TestCluster } from "../support/cluster.js";
import {
  pushTestImage,
  registryAvailable,
  startRegistry,
  type TestRegistry,
} from "../support/registry.js";
import { makeContext } from "./helpers.js";
import { readFileCommands, startAction } from "./runner.js";

if (!registryAvailable()) {
  throw new Error(
    "docker-registry is not installed: run scripts/test-deps.sh (apt-get install docker-registry)",
  );
}

const NS = "ci-builds";
const REPO = "registry.example:5000/acme/web";
const TOKEN = "ghs_previewTestToken0123456789abcdefABCDEF";
const RUN_ID = "4242";
/** What the kaniko-success-cold recording reports as the pushed digest. */
const DIGEST = "sha256:8c1c626558915ecba14a9b1f8b20dce4ba869984d4032c592d4dd6c67d8aab84";
const PR = 12;
const HEAD_SHA = payloads.HEAD_SHA;
const SHORT = HEAD_SHA.slice(0, 7);
const NEXT_SHA = "f00dfacecafe0123456789abcdef0123456789ab";

let cluster: TestCluster;
let github: FakeGitHub;
beforeAll(async () => {
  cluster = await startTestCluster();
  cluster.createNamespace(NS);
  github = await startFakeGitHub();
});
afterAll(async () => {
  await github?.close();
  await cluster?.close();
});
beforeEach(() => {
  cluster.resetRequests();
  cluster.useScenario("kaniko-success-cold");
  github.comments.splice(0);
  github.requests.splice(0);
  github.commentWriteStatus = undefined;
});

type Payload = Record<string, unknown>;
const clone = <T>(value: T): T => structuredClone(value);

/** A pull_request synchronize payload for another push to PR 12 (new head, new merge commit). */
function synchronizeWith(headSha: string): Payload {
  const payload = clone(payloads.sameRepoSynchronize.payload) as Payload & {
    pull_request: { head: { sha: string }; merge_commit_sha: string };
  };
  payload.before = HEAD_SHA;
  payload.after = headSha;
  payload.pull_request.head.sha = headSha;
  payload.pull_request.merge_commit_sha = "0123456789abcdef0123456789abcdef01234567";
  return payload;
}

/** A push webhook to main, trimmed like payloads.ts. */
function pushPayload(): Payload {
  const repository = clone(payloads.sameRepoOpened.payload.repository as Payload);
  return {
    ref: "refs/heads/main",
    before: "9049f1265b7d61be4a8904a9a27120d2064dab3b",
    after: HEAD_SHA,
    created: false,
    deleted: false,
    forced: false,
    compare: "https://github.com/acme/web/compare/9049f1265b7d...6dcb09b5b578",
    head_commit: {
      id: HEAD_SHA,
      message: "Merge pull request #12",
      timestamp: "2025-01-01T00:00:00Z",
    },
    commits: [{ id: HEAD_SHA, message: "Merge pull request #12" }],
    pusher: { name: "octocat", email: "octocat@example.com" },
    repository,
    organization: { login: "acme" },
    sender: { login: "octocat", type: "User" },
  };
}

interface ActionResult {
  code: number | null;
  stdout: string;
  stderr: string;
  outputs: Record<string, string>;
  summary: string;
  /** Every Job seen in the cluster while the action ran (it deletes its Job when done). */
  jobs: any[];
  warnings: string[];
  errors: string[];
}

/** Runs dist/main.js on `eventName` with `payload` written where GITHUB_EVENT_PATH points. */
async function runAction(
  eventName: string,
  payload: Payload,
  inputs: Record<string, string>,
): Promise<ActionResult> {
  const eventFile = join(mkdtempSync(join(tmpdir(), "kib-preview-event-")), "event.json");
  writeFileSync(eventFile, JSON.stringify(payload, null, 2));
  const pr = payload.pull_request as { number: number } | undefined;
  const env: NodeJS.ProcessEnv = {
    CI: "true",
    GITHUB_EVENT_NAME: eventName,
    GITHUB_EVENT_PATH: eventFile,
    GITHUB_REPOSITORY: "acme/web",
    GITHUB_REPOSITORY_OWNER: "acme",
    GITHUB_ACTOR: "octocat",
    // Under pull_request the runner checks out (and GITHUB_SHA names) the merge commit.
    GITHUB_SHA: pr ? payloads.MERGE_SHA : HEAD_SHA,
    GITHUB_REF: pr ? `refs/pull/${pr.number}/merge` : "refs/heads/main",
    GITHUB_API_URL: github.baseUrl,
    GITHUB_SERVER_URL: github.baseUrl,
    GITHUB_GRAPHQL_URL: `${github.baseUrl}/graphql`,
    GITHUB_RUN_ID: RUN_ID,
    GITHUB_RUN_NUMBER: "7",
    GITHUB_WORKFLOW: "preview",
    GITHUB_JOB: "preview",
  };
  const all: Record<string, string> = {
    context: ".",
    namespace: NS,
    kubeconfig: cluster.kubeconfig(),
    push: "true",
    builder: "kaniko",
    preview: "true",
    "github-token": TOKEN,
    ...inputs,
  };
  const jobs = new Map<string, any>();
  const watch = setInterval(() => {
    for (const job of cluster.objects("jobs", NS)) jobs.set(job.metadata.name, clone(job));
  }, 5);
  const run = startAction("main", { workspace: makeContext(), inputs: all, env });
  const { code, stdout, stderr } = await run.done;
  clearInterval(watch);
  const lines = stdout.split("\n");
  return {
    code,
    stdout,
    stderr,
    outputs: readFileCommands(run.files.output),
    summary: readFileSync(run.files.summary, "utf8"),
    jobs: [...jobs.values()],
    warnings: lines.filter((line) => line.startsWith("::warning")),
    errors: lines.filter((line) => line.startsWith("::error")),
  };
}

/** The build container's arguments of the one Job the run created. */
function builderArgs(result: ActionResult): string[] {
  expect(result.jobs).toHaveLength(1);
  const containers = result.jobs[0].spec.template.spec.containers as { args?: string[] }[];
  return containers.flatMap((c) => c.args ?? []);
}

const marker = (repository: string) => `<!-- k8s-image-build:preview:${repository} -->`;
const commentCalls = () => github.requests.filter((r) => /\/issues\/(\d+\/)?comments/.test(r.path));
const writes = () => commentCalls().filter((r) => r.method !== "GET");
const occurrences = (text: string, part: string) => text.split(part).length - 1;

describe("same-repository pull request", () => {
  test("first push builds pr-N and pr-N-<head sha> with OCI labels and creates one comment; the next push updates it", async () => {
    const first = await runAction("pull_request", clone(payloads.sameRepoOpened.payload), {
      tags: REPO,
    });
    expect(first.stderr).toBe("");
    expect(first.errors).toEqual([]);
    expect(first.warnings).toEqual([]);
    expect(first.code).toBe(0);

    // The Job pushes the derived tags, from the PR head (not the merge commit GITHUB_SHA names).
    const args = builderArgs(first);
    const destinations = args.filter((a) => a.startsWith("--destination="));
    expect(destinations).toEqual([
      `--destination=${REPO}:pr-${PR}`,
      `--destination=${REPO}:pr-${PR}-${SHORT}`,
    ]);
    expect(args.join(" ")).not.toContain(payloads.MERGE_SHA.slice(0, 7));
    const labels = args.filter((a) => a.startsWith("--label="));
    expect(labels).toEqual(
      expect.arrayContaining([
        `--label=org.opencontainers.image.source=${github.baseUrl}/acme/web`,
        `--label=org.opencontainers.image.revision=${HEAD_SHA}`,
        `--label=k8s-image-build.preview=acme/web#${PR}`,
      ]),
    );
    const created = labels.find((a) => a.startsWith("--label=org.opencontainers.image.created="));
    expect(created).toBeDefined();
    const createdAt = Date.parse(created!.split("=").slice(2).join("="));
    expect(Math.abs(Date.now() - createdAt)).toBeLessThan(60_000);

    // Outputs.
    expect(first.outputs.digest).toBe(DIGEST);
    expect(first.outputs.image).toBe(`${REPO}@${DIGEST}`);
    expect(first.outputs.tags).toBe(`${REPO}:pr-${PR}\n${REPO}:pr-${PR}-${SHORT}`);
    expect(JSON.parse(first.outputs.metadata).tags).toEqual([
      `${REPO}:pr-${PR}`,
      `${REPO}:pr-${PR}-${SHORT}`,
    ]);

    // One comment, created through the API with the token, on PR 12 of acme/web.
    expect(writes()).toEqual([
      expect.objectContaining({ method: "POST", path: `/repos/acme/web/issues/${PR}/comments` }),
    ]);
    expect(commentCalls().every((r) => r.authorization === `token ${TOKEN}`)).toBe(true);
    expect(github.comments).toHaveLength(1);
    const comment = github.comments[0]!;
    expect(comment.body.startsWith(marker(REPO))).toBe(true);
    expect(comment.body).toContain(`${REPO}@${DIGEST}`);
    expect(comment.body).toContain(`docker pull ${REPO}@${DIGEST}`);
    expect(comment.body).toContain(`${REPO}:pr-${PR}-${SHORT}`);
    expect(comment.body).toContain("kaniko");
    expect(comment.body).toContain(`${github.baseUrl}/acme/web/actions/runs/${RUN_ID}`);
    expect(first.stdout).toContain(`preview: created the pull request comment for ${REPO}`);

    // The step summary shows the same card.
    expect(first.summary).toContain(`### Preview image for #${PR}: \`${REPO}\``);
    expect(first.summary).toContain(`docker pull ${REPO}@${DIGEST}`);
    expect(first.summary).toContain(`| Commit | \`${SHORT}\` |`);

    // The token is masked and never printed otherwise.
    expect(first.stdout).toContain(`::add-mask::${TOKEN}`);
    expect(occurrences(first.stdout, TOKEN)).toBe(1);

    // Second push: new head sha → new tags, same comment updated in place.
    const commentId = comment.id;
    github.requests.splice(0);
    cluster.resetRequests();
    const nextShort = NEXT_SHA.slice(0, 7);
    const second = await runAction("pull_request", synchronizeWith(NEXT_SHA), { tags: REPO });
    expect(second.code).toBe(0);
    expect(second.warnings).toEqual([]);
    expect(builderArgs(second).filter((a) => a.startsWith("--destination="))).toEqual([
      `--destination=${REPO}:pr-${PR}`,
      `--destination=${REPO}:pr-${PR}-${nextShort}`,
    ]);
    expect(second.outputs.tags).toBe(`${REPO}:pr-${PR}\n${REPO}:pr-${PR}-${nextShort}`);
    expect(writes()).toEqual([
      expect.objectContaining({
        method: "PATCH",
        path: `/repos/acme/web/issues/comments/${commentId}`,
      }),
    ]);
    expect(github.comments).toHaveLength(1);
    expect(github.comments[0]!.id).toBe(commentId);
    expect(github.comments[0]!.body).toContain(`\`${nextShort}\``);
    expect(github.comments[0]!.body).toContain(`${REPO}:pr-${PR}-${nextShort}`);
    expect(github.comments[0]!.body).not.toContain(`\`${SHORT}\``);
    expect(second.stdout).toContain(`preview: updated the pull request comment for ${REPO}`);
    expect(second.summary).toContain(`| Commit | \`${nextShort}\` |`);
  });

  test("a token without pull-requests: write → one warning, the step stays green with its outputs", async () => {
    github.commentWriteStatus = 403;
    const result = await runAction("pull_request", clone(payloads.sameRepoOpened.payload), {
      tags: REPO,
    });
    expect(result.code).toBe(0);
    expect(result.errors).toEqual([]);
    expect(result.outputs.digest).toBe(DIGEST);
    expect(result.outputs.tags).toBe(`${REPO}:pr-${PR}\n${REPO}:pr-${PR}-${SHORT}`);
    expect(result.warnings).toHaveLength(1);
    expect(result.warnings[0]).toMatch(/HTTP 403/);
    expect(result.warnings[0]).toMatch(/pull-requests: write/);
    expect(github.comments).toEqual([]);
    // The card is still in the step summary.
    expect(result.summary).toContain(`docker pull ${REPO}@${DIGEST}`);
  });

  test("no github-token → one warning, the step stays green, the card is in the summary", async () => {
    const result = await runAction("pull_request", clone(payloads.sameRepoOpened.payload), {
      tags: REPO,
      "github-token": "",
    });
    expect(result.code).toBe(0);
    expect(result.errors).toEqual([]);
    expect(result.outputs.tags).toBe(`${REPO}:pr-${PR}\n${REPO}:pr-${PR}-${SHORT}`);
    expect(result.warnings).toHaveLength(1);
    expect(result.warnings[0]).toMatch(/no github-token/);
    expect(github.requests).toEqual([]);
    expect(result.summary).toContain(`docker pull ${REPO}@${DIGEST}`);
  });
});

describe("fork gating", () => {
  test("pull_request from a fork: one error explaining forks get no secrets, no Kubernetes request", async () => {
    const result = await runAction("pull_request", clone(payloads.forkOpened.payload), {
      tags: REPO,
    });
    expect(result.code).toBe(1);
    expect(result.errors).toHaveLength(1);
    expect(result.errors[0]).toMatch(/^::error::k8s-image-build failed: preview: PR #12/);
    expect(result.errors[0]).toContain("mallory/web");
    expect(result.errors[0]).toMatch(/no secrets/);
    expect(result.errors[0]).toMatch(/nothing was submitted/);
    expect(cluster.requests).toEqual([]);
    expect(result.jobs).toEqual([]);
    expect(github.requests).toEqual([]);
    expect(result.outputs).toEqual({});
  });

  test("pull_request_target from a fork without allow-fork-builds: refused, naming the danger", async () => {
    const result = await runAction(
      "pull_request_target",
      clone(payloads.forkTargetOpened.payload),
      {
        tags: REPO,
      },
    );
    expect(result.code).toBe(1);
    expect(result.errors).toHaveLength(1);
    expect(result.errors[0]).toMatch(/^::error::k8s-image-build failed: preview: refusing/);
    expect(result.errors[0]).toContain("pull_request_target");
    expect(result.errors[0]).toMatch(/secrets/);
    expect(result.errors[0]).toMatch(/exfiltrate credentials/);
    expect(result.errors[0]).toContain("allow-fork-builds: true");
    expect(cluster.requests).toEqual([]);
    expect(result.jobs).toEqual([]);
    expect(github.requests).toEqual([]);
  });

  test("pull_request_target from a fork with allow-fork-builds: true builds the fork's head and says so", async () => {
    const result = await runAction(
      "pull_request_target",
      clone(payloads.forkTargetOpened.payload),
      {
        tags: REPO,
        "allow-fork-builds": "true",
      },
    );
    expect(result.code).toBe(0);
    expect(result.errors).toEqual([]);
    expect(builderArgs(result).filter((a) => a.startsWith("--destination="))).toEqual([
      `--destination=${REPO}:pr-${PR}`,
      `--destination=${REPO}:pr-${PR}-${SHORT}`,
    ]);
    expect(result.stdout).toContain("because allow-fork-builds is true");
    expect(result.stdout).toContain("ref: ${{ github.event.pull_request.head.sha }}");
    expect(github.comments).toHaveLength(1);
  });

  test("pull_request closed from a fork (no secrets): nothing built, nothing cleaned, a green step", async () => {
    // Forks get no secrets: the kubeconfig input is empty; the read-only github.token is still there.
    const result = await runAction("pull_request", clone(payloads.forkClosed.payload), {
      tags: REPO,
      kubeconfig: "",
    });
    expect(result.errors).toEqual([]);
    expect(result.warnings).toEqual([]);
    expect(result.code).toBe(0);
    expect(cluster.requests).toEqual([]);
    expect(result.jobs).toEqual([]);
    expect(github.requests).toEqual([]);
    expect(occurrences(result.stdout, "nothing to clean up")).toBe(1);
  });
});

describe("pull request closed: cleanup in a real registry", () => {
  let registry: TestRegistry;
  let client: RegistryClient;
  let repo: string;
  const NAME = "acme/web";

  beforeAll(async () => {
    registry = await startRegistry({ deleteEnabled: true });
    client = new RegistryClient(registry.host, { insecure: true });
    repo = `${registry.host}/${NAME}`;
  });
  afterAll(async () => registry?.stop());

  test("deletes exactly the PR's preview tags, keeps a release-shared digest and other PRs, updates the comment", async () => {
    const latest = await pushTestImage(client, NAME, [`pr-${PR}`, `pr-${PR}-${SHORT}`], "latest");
    const older = await pushTestImage(client, NAME, [`pr-${PR}-aaaaaaa`], "older");
    const released = await pushTestImage(client, NAME, [`pr-${PR}-bbbbbbb`, "v1.0.0"], "release");
    const other = await pushTestImage(client, NAME, ["pr-13", "pr-13-ccccccc"], "other");
    // The comment the earlier builds left on the PR.
    github.comments.push({
      id: 77,
      body: `${marker(repo)}\n### Preview image for #${PR}: \`${repo}\`\n`,
      user: { login: "github-actions[bot]", type: "Bot" },
    });

    const result = await runAction("pull_request", clone(payloads.sameRepoClosed.payload), {
      tags: repo,
      "insecure-registries": registry.host,
      // A closed PR's workflow may skip the checkout: cleanup does not look for a context.
      context: "not-checked-out",
    });
    expect(result.stderr).toBe("");
    expect(result.errors).toEqual([]);
    expect(result.warnings).toEqual([]);
    expect(result.code).toBe(0);

    // Nothing built.
    expect(cluster.requests).toEqual([]);
    expect(result.jobs).toEqual([]);
    expect(result.outputs).toEqual({});

    // Exactly the PR's preview digests are gone.
    expect((await client.listTags(NAME)).sort()).toEqual([
      `pr-${PR}-bbbbbbb`,
      "pr-13",
      "pr-13-ccccccc",
      "v1.0.0",
    ]);
    expect(await client.resolveDigest(NAME, `pr-${PR}`)).toBeUndefined();
    expect(await client.resolveDigest(NAME, `pr-${PR}-${SHORT}`)).toBeUndefined();
    expect(await client.resolveDigest(NAME, `pr-${PR}-aaaaaaa`)).toBeUndefined();
    expect(await client.resolveDigest(NAME, "v1.0.0")).toBe(released.digest);
    expect(await client.resolveDigest(NAME, "pr-13")).toBe(other.digest);
    expect(latest.digest).not.toBe(older.digest);

    // The comment says the preview was removed (still one comment, updated in place).
    expect(writes()).toEqual([
      expect.objectContaining({ method: "PATCH", path: "/repos/acme/web/issues/comments/77" }),
    ]);
    expect(github.comments).toHaveLength(1);
    const body = github.comments[0]!.body;
    expect(body.startsWith(marker(repo))).toBe(true);
    expect(body).toContain(`### Preview image for #${PR} removed`);
    expect(body).toContain(`\`pr-${PR}\``);
    expect(body).toContain(`\`pr-${PR}-${SHORT}\``);
    expect(body).toContain(`\`pr-${PR}-aaaaaaa\``);
    expect(body).toMatch(/Kept `pr-12-bbbbbbb`: the image is also tagged `v1\.0\.0`/);
    expect(result.summary).toContain(`### Preview image for #${PR} removed`);
  });

  test("a registry with deletes disabled: one warning, a green step, the tags left in place", async () => {
    const readOnly = await startRegistry({ deleteEnabled: false });
    try {
      const roClient = new RegistryClient(readOnly.host, { insecure: true });
      const roRepo = `${readOnly.host}/${NAME}`;
      await pushTestImage(roClient, NAME, [`pr-${PR}`, `pr-${PR}-${SHORT}`], "ro");
      const result = await runAction("pull_request", clone(payloads.sameRepoClosed.payload), {
        tags: roRepo,
        "insecure-registries": readOnly.host,
      });
      expect(result.code).toBe(0);
      expect(result.errors).toEqual([]);
      expect(result.warnings).toHaveLength(1);
      expect(result.warnings[0]).toMatch(/storage\.delete\.enabled/);
      expect(result.warnings[0]).toContain(roRepo);
      expect(cluster.requests).toEqual([]);
      expect((await roClient.listTags(NAME)).sort()).toEqual([`pr-${PR}`, `pr-${PR}-${SHORT}`]);
      // No earlier comment: none is created just to say nothing was removed.
      expect(writes()).toEqual([]);
      expect(result.summary).toContain("storage.delete.enabled");
    } finally {
      await readOnly.stop();
    }
  });
});

test("push event with preview: true builds with the tags as given and says once that preview does nothing", async () => {
  const tag = `${REPO}:1.0`;
  const result = await runAction("push", pushPayload(), { tags: tag });
  expect(result.code).toBe(0);
  expect(result.errors).toEqual([]);
  expect(result.warnings).toEqual([]);
  expect(builderArgs(result).filter((a) => a.startsWith("--destination="))).toEqual([
    `--destination=${tag}`,
  ]);
  expect(builderArgs(result).some((a) => a.includes("k8s-image-build.preview"))).toBe(false);
  expect(result.outputs.tags).toBe(tag);
  expect(result.outputs.digest).toBe(DIGEST);
  expect(occurrences(result.stdout, "preview: true has no effect on push events")).toBe(1);
  expect(github.requests).toEqual([]);
  expect(result.summary).not.toContain("Preview image");
});
