/** Shared by the integration tests: a build context on disk, a recording reporter, spec inputs. */
import { chmodSync, mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { LogLine, Reporter, UploadProgress } from "../../src/core/reporter.js";
import { BuildFailure } from "../../src/core/errors.js";
import type { TestCluster } from "../support/cluster.js";

/** The recorded context (Dockerfile, app.txt, .dockerignore) plus files .dockerignore must keep out. */
export function makeContext(extra: Record<string, string> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), "kib-context-"));
  const files: Record<string, string> = {
    Dockerfile:
      'FROM busybox\nCOPY app.txt /app/app.txt\nRUN echo "built at step 2" > /app/built.txt && ls -la /app\n',
    "app.txt": "hello from the build context\n",
    ".dockerignore": "secret.env\n*.log\n",
    "secret.env": "TOKEN=do-not-send\n",
    "debug.log": "noise\n",
    "src/main.sh": "#!/bin/sh\necho main\n",
    ".git/HEAD": "ref: refs/heads/main\n",
    ...extra,
  };
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(join(dir, path, ".."), { recursive: true });
    writeFileSync(join(dir, path), content);
  }
  chmodSync(join(dir, "src/main.sh"), 0o755);
  return dir;
}

export function addSymlink(dir: string, path: string, target: string): void {
  symlinkSync(target, join(dir, path));
}

export interface RecordedReporter extends Reporter {
  lines: string[];
  buildLines: LogLine[];
  warnings: string[];
  groups: string[];
  uploads: UploadProgress[];
  masked: string[];
}

export function recordingReporter(): RecordedReporter {
  const recorded: RecordedReporter = {
    lines: [],
    buildLines: [],
    warnings: [],
    groups: [],
    uploads: [],
    masked: [],
    info: (message) => recorded.lines.push(message),
    warn: (message) => {
      recorded.warnings.push(message);
      recorded.lines.push(`warning: ${message}`);
    },
    debug: () => {},
    async group(title, fn) {
      recorded.groups.push(title);
      return fn();
    },
    buildLog: (line) => {
      recorded.buildLines.push(line);
      recorded.lines.push(line.text);
    },
    upload: (progress) => recorded.uploads.push(progress),
    mask: (secret) => recorded.masked.push(secret),
  };
  return recorded;
}

/** What a build left in a namespace, by name. */
export function leftovers(cluster: TestCluster, namespace = "ci-builds") {
  const names = (resource: "jobs" | "pods" | "secrets") =>
    cluster.objects(resource, namespace).map((object) => object.metadata.name as string);
  return { jobs: names("jobs"), pods: names("pods"), secrets: names("secrets") };
}

export const NOTHING_LEFT = { jobs: [], pods: [], secrets: [] };

/** Waits (up to ms) for the garbage collector to finish what a delete started; returns what is left. */
export async function waitForEmpty(cluster: TestCluster, namespace = "ci-builds", ms = 5000) {
  const until = Date.now() + ms;
  for (;;) {
    const left = leftovers(cluster, namespace);
    if (left.jobs.length + left.pods.length + left.secrets.length === 0 || Date.now() > until)
      return left;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * A request to the test server outside client-node: a test's own hands (an admin deleting a pod,
 * a server-side dry run). The admin token unless another is given; the body is sent as JSON.
 */
export async function serverRequest(
  cluster: TestCluster,
  path: string,
  init: { method?: string; body?: unknown; token?: string } = {},
) {
  const { Agent, fetch } = await import("undici");
  return fetch(`${cluster.url}${path}`, {
    method: init.method ?? "GET",
    headers: {
      authorization: `Bearer ${init.token ?? cluster.adminToken}`,
      ...(init.body === undefined ? {} : { "content-type": "application/json" }),
    },
    ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
    dispatcher: new Agent({ connect: { ca: cluster.caPem } }),
  });
}

/** The BuildFailure a build ended with; a build that succeeds fails the test. */
export async function failureOf(run: Promise<unknown>): Promise<BuildFailure> {
  try {
    await run;
  } catch (error) {
    if (error instanceof BuildFailure) return error;
    throw error;
  }
  throw new Error("the build succeeded");
}
