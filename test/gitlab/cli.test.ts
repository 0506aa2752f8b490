/** The CLI as the GitLab job runs it: flags and KIB_ variables, help, dotenv, sections, GitLab defaults. */
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { parse } from "yaml";
import { cli, envName, helpText, parseCommandLine } from "../../src/cli/cli.js";
import { DOTENV_LIMIT_BYTES, dotenvOf } from "../../src/cli/dotenv.js";
import {
  applyMergeRequestPreview,
  repositoryOf,
  withGitLabRegistryDefault,
} from "../../src/cli/gitlab.js";
import { createCliReporter } from "../../src/cli/reporter.js";
import { InputError } from "../../src/core/errors.js";
import { INPUT_NAMES } from "../../src/core/spec/spec.js";
import type { BuildResult } from "../../src/core/types.js";
import { ROOT } from "./support/gcl.js";

const DIGEST = `sha256:${"ab".repeat(32)}`;
const SHA = "0123456789abcdef0123456789abcdef01234567";

function sink(): Writable & { text: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      chunks.push(chunk.toString("utf8"));
      done();
    },
  }) as Writable & { text: () => string };
  stream.text = () => chunks.join("");
  return stream;
}

function workspace(): string {
  const dir = mkdtempSync(join(tmpdir(), "kib-cli-"));
  writeFileSync(join(dir, "Dockerfile"), "FROM busybox\n");
  return dir;
}

async function run(argv: string[], env: NodeJS.ProcessEnv = {}) {
  const stdout = sink();
  const stderr = sink();
  const code = await cli({
    argv,
    env: { HOME: tmpdir(), ...env },
    stdout,
    stderr,
    cwd: workspace(),
  });
  return { code, stdout: stdout.text(), stderr: stderr.text() };
}

function result(overrides: Partial<BuildResult> = {}): BuildResult {
  return {
    digest: DIGEST,
    image: `registry.example/acme/web@${DIGEST}`,
    tags: ["registry.example/acme/web:1.0"],
    builder: "kaniko",
    namespace: "ci-builds",
    job: "kib-1",
    context: { files: 1, bytes: 10 },
    durations: {} as BuildResult["durations"],
    reused: false,
    ...overrides,
  };
}

describe("flags and KIB_ variables", () => {
  test("every input has one documented variable name", () => {
    expect(envName("tags")).toBe("KIB_TAGS");
    expect(envName("docker-config-json")).toBe("KIB_DOCKER_CONFIG_JSON");
  });

  test("a flag wins over its variable; variables fill the rest; empty means unset", () => {
    const parsed = parseCommandLine(["build", "--tags", "a/b:1", "--no-push"], {
      KIB_TAGS: "c/d:2",
      KIB_NAMESPACE: "ci-builds",
      KIB_PUSH: "true",
      KIB_TARGET: "",
    });
    expect(parsed.raw).toEqual({ tags: "a/b:1", namespace: "ci-builds", push: "false" });
  });

  test("a repeated list flag adds a line; a repeated single flag keeps the last", () => {
    const parsed = parseCommandLine(
      ["build", "--tags", "a/b:1", "--tags", "a/b:2", "--namespace", "x", "--namespace", "y"],
      {},
    );
    expect(parsed.raw.tags).toBe("a/b:1\na/b:2");
    expect(parsed.raw.namespace).toBe("y");
  });

  test("preview: --preview / --no-preview over KIB_PREVIEW, which must be a boolean", () => {
    expect(parseCommandLine(["build"], { KIB_PREVIEW: "true" }).preview).toBe(true);
    expect(parseCommandLine(["build", "--no-preview"], { KIB_PREVIEW: "true" }).preview).toBe(
      false,
    );
    expect(parseCommandLine(["build", "--preview"], {}).preview).toBe(true);
    expect(parseCommandLine(["build"], {}).preview).toBe(false);
    expect(() => parseCommandLine(["build"], { KIB_PREVIEW: "maybe" })).toThrow(InputError);
    expect(() => parseCommandLine(["build"], { KIB_PREVIEW: "maybe" })).toThrow(
      /^input "preview": "maybe" is not a boolean/,
    );
  });

  test("allow-privileged: --allow-privileged or KIB_ALLOW_PRIVILEGED (what the GitLab job exports)", () => {
    expect(parseCommandLine(["build", "--allow-privileged"], {}).raw["allow-privileged"]).toBe(
      "true",
    );
    expect(
      parseCommandLine(["build"], { KIB_ALLOW_PRIVILEGED: "true" }).raw["allow-privileged"],
    ).toBe("true");
    expect(
      parseCommandLine(["build", "--no-allow-privileged"], { KIB_ALLOW_PRIVILEGED: "true" }).raw[
        "allow-privileged"
      ],
    ).toBe("false");
  });

  test("builder dind without allow-privileged: one error line, exit 1; with it the dry run prints the privileged pod", async () => {
    const refused = await run(["build", "--dry-run", "--tags", "a/b:1", "--builder", "dind"]);
    expect(refused.code).toBe(1);
    expect(refused.stderr.trim().split("\n")).toHaveLength(1);
    expect(refused.stderr).toMatch(
      /input "allow-privileged": builder: dind runs a privileged container/,
    );
    const allowed = await run(["build", "--dry-run", "--tags", "a/b:1", "--builder", "dind"], {
      KIB_ALLOW_PRIVILEGED: "true",
    });
    expect(allowed.code).toBe(0);
    expect(allowed.stdout).toMatch(/privileged: true/);
    expect(allowed.stdout).toMatch(/image: docker\.io\/library\/docker:\d+\.\d+\.\d+-dind/);
  });

  test("--dotenv and KIB_DOTENV", () => {
    expect(parseCommandLine(["build", "--dotenv", "a.env"], { KIB_DOTENV: "b.env" }).dotenv).toBe(
      "a.env",
    );
    expect(parseCommandLine(["build"], { KIB_DOTENV: "b.env" }).dotenv).toBe("b.env");
  });
});

test("--help lists every input with action.yml's description and its variable", async () => {
  const action = parse(readFileSync(join(ROOT, "action.yml"), "utf8")) as {
    inputs: Record<string, { description: string }>;
  };
  const { code, stdout } = await run(["--help"]);
  expect(code).toBe(0);
  expect(stdout).toBe(`${helpText()}\n`);
  for (const name of INPUT_NAMES) {
    const line = stdout.split("\n").find((l) => l.trimStart().startsWith(`--${name} `));
    expect([name, line]).toEqual([
      name,
      expect.stringContaining(action.inputs[name].description.replace(/\s*\n\s*/g, " ").trim()),
    ]);
    expect(line).toContain(`[${envName(name)}]`);
  }
  expect(stdout).toMatch(/--preview \/ --no-preview .*mr-<iid>.*\[KIB_PREVIEW\]/);
  expect(stdout).toMatch(/--dotenv <file> .*IMAGE_DIGEST.*\[KIB_DOTENV\]/);
});

describe("bad values get the engine's one-line errors", () => {
  test.each([
    [
      { KIB_TAGS: "registry.example/acme/web:1", KIB_NAMESPACE: "CI_Builds" },
      /^error: input "namespace": /,
    ],
    [
      { KIB_TAGS: "registry.example/acme/web:1", KIB_BUILDER: "docker" },
      /^error: input "builder": "docker" is not a builder/,
    ],
    [{ KIB_TAGS: "registry.example/acme/web:1", KIB_TIMEOUT: "soon" }, /^error: input "timeout": /],
    [
      { KIB_TAGS: "registry.example/acme/web:1", KIB_TIMEOUT: "5m", KIB_SCHEDULE_TIMEOUT: "10m" },
      /^error: input "schedule-timeout": "10m" is longer than timeout \(5m\)/,
    ],
    [{ KIB_TAGS: "" }, /^error: input "tags": at least one image reference/],
    [{ KIB_TAGS: "registry.example/acme/web:1", KIB_PUSH: "yes please" }, /^error: input "push": /],
  ])("%j", async (env, message) => {
    const { code, stdout, stderr } = await run(["build", "--dry-run"], env);
    expect(code).toBe(1);
    expect(stdout).toBe("");
    const lines = stderr.trimEnd().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(message);
  });

  test("an unknown flag is one line too, naming the flag it resembles", async () => {
    const { code, stderr } = await run(["build", "--tag", "x"]);
    expect(code).toBe(1);
    expect(stderr).toBe("error: unknown flag --tag (did you mean --tags?)\n");
  });
});

describe("the dotenv report", () => {
  test("IMAGE_DIGEST, IMAGE_REF and IMAGE_TAGS, one KEY=value line each", () => {
    const report = dotenvOf(
      result({ tags: ["registry.example/acme/web:1.0", "registry.example/acme/web:latest"] }),
    );
    expect(report.text).toBe(
      `IMAGE_DIGEST=${DIGEST}\nIMAGE_REF=registry.example/acme/web@${DIGEST}\nIMAGE_REUSED=false\nIMAGE_TAGS=registry.example/acme/web:1.0,registry.example/acme/web:latest\n`,
    );
    expect(report.warnings).toEqual([]);
  });

  test("stays within 5 KiB: IMAGE_TAGS keeps the whole tags that fit and says so", () => {
    const tags = Array.from(
      { length: 100 },
      (_, i) => `registry.example/acme/a-rather-long-repository-name/web:tag-number-${i}`,
    );
    const report = dotenvOf(result({ tags }));
    expect(Buffer.byteLength(report.text)).toBeLessThanOrEqual(DOTENV_LIMIT_BYTES);
    const lines = report.text.trimEnd().split("\n");
    expect(lines.map((line) => line.split("=")[0])).toEqual([
      "IMAGE_DIGEST",
      "IMAGE_REF",
      "IMAGE_REUSED",
      "IMAGE_TAGS",
    ]);
    const kept = lines[3].slice("IMAGE_TAGS=".length).split(",");
    expect(kept).toEqual(tags.slice(0, kept.length));
    expect(kept.length).toBeGreaterThan(10);
    expect(report.warnings).toEqual([
      expect.stringMatching(new RegExp(`^dotenv: IMAGE_TAGS lists ${kept.length} of 100 tags`)),
    ]);
  });

  test("refuses a value that would span lines", () => {
    expect(() => dotenvOf(result({ tags: ["a\nb"] }))).toThrow(/single-line/);
  });
});

describe("log sections", () => {
  test("GitLab's collapsible section markers under GitLab, a plain heading elsewhere", async () => {
    const out = sink();
    const gitlab = createCliReporter({
      gitlab: true,
      verbose: () => false,
      out,
      now: () => 1_700_000_000_000,
    });
    await gitlab.group("Upload context", async () => gitlab.info("sent"));
    await gitlab.group("Build (kaniko)", async () => undefined);
    expect(out.text()).toBe(
      "\x1b[0Ksection_start:1700000000:kib_1[collapsed=false]\r\x1b[0KUpload context\nsent\n\x1b[0Ksection_end:1700000000:kib_1\r\x1b[0K\n" +
        "\x1b[0Ksection_start:1700000000:kib_2[collapsed=false]\r\x1b[0KBuild (kaniko)\n\x1b[0Ksection_end:1700000000:kib_2\r\x1b[0K\n",
    );
    const plain = sink();
    const terminal = createCliReporter({ gitlab: false, verbose: () => false, out: plain });
    await terminal.group("Upload context", async () => undefined);
    expect(plain.text()).toBe("== Upload context\n");
  });

  test("a section is closed when its step fails", async () => {
    const out = sink();
    const reporter = createCliReporter({ gitlab: true, verbose: () => false, out, now: () => 0 });
    await expect(
      reporter.group("Build", async () => Promise.reject(new Error("boom"))),
    ).rejects.toThrow("boom");
    expect(out.text()).toMatch(/section_end:0:kib_1/);
  });
});

describe("$CI_REGISTRY credentials by default", () => {
  const ciEnv = {
    GITLAB_CI: "true",
    CI_REGISTRY: "registry.gitlab.example:5050",
    CI_REGISTRY_USER: "gitlab-ci-token",
    CI_REGISTRY_PASSWORD: "job-token-value-123",
  };

  test("a tag in $CI_REGISTRY without credentials: $CI_REGISTRY_USER / $CI_REGISTRY_PASSWORD for that registry only", () => {
    const { raw, note, secrets } = withGitLabRegistryDefault(
      { tags: "registry.gitlab.example:5050/acme/web:1\ndocker.io/acme/web:1" },
      ciEnv,
    );
    const config = JSON.parse(raw["docker-config-json"]!) as {
      auths: Record<string, { auth: string }>;
    };
    expect(Object.keys(config.auths)).toEqual(["registry.gitlab.example:5050"]);
    expect(
      Buffer.from(config.auths["registry.gitlab.example:5050"].auth, "base64").toString(),
    ).toBe("gitlab-ci-token:job-token-value-123");
    expect(note).toBe(
      "registry: no credentials given; pushing to registry.gitlab.example:5050 as $CI_REGISTRY_USER with $CI_REGISTRY_PASSWORD",
    );
    expect(secrets).toContain("job-token-value-123");
  });

  test("the cache repository counts too; other registries and given credentials do not", () => {
    expect(
      withGitLabRegistryDefault(
        { tags: "ghcr.io/acme/web:1", "cache-repo": "registry.gitlab.example:5050/acme/cache" },
        ciEnv,
      ).note,
    ).toBeDefined();
    expect(withGitLabRegistryDefault({ tags: "ghcr.io/acme/web:1" }, ciEnv).note).toBeUndefined();
    for (const given of [
      { "registry-username": "me", "registry-password": "pw" },
      { "docker-config-json": '{"auths":{}}' },
    ]) {
      const out = withGitLabRegistryDefault(
        { tags: "registry.gitlab.example:5050/acme/web:1", ...given },
        ciEnv,
      );
      expect(out.note).toBeUndefined();
      expect(out.raw).toEqual({ tags: "registry.gitlab.example:5050/acme/web:1", ...given });
    }
    expect(
      withGitLabRegistryDefault(
        { tags: "registry.gitlab.example:5050/acme/web:1" },
        { ...ciEnv, CI_REGISTRY_PASSWORD: "" },
      ).note,
    ).toBeUndefined();
  });

  test("the CLI prints the one line under GitLab only, and never the password", async () => {
    const inGitLab = await run(
      ["build", "--dry-run", "--tags", "registry.gitlab.example:5050/acme/web:1"],
      ciEnv,
    );
    expect(inGitLab.code).toBe(0);
    expect(inGitLab.stderr.split("\n").filter((line) => line.startsWith("registry: "))).toEqual([
      "registry: no credentials given; pushing to registry.gitlab.example:5050 as $CI_REGISTRY_USER with $CI_REGISTRY_PASSWORD",
    ]);
    expect(inGitLab.stdout).toMatch(/kind: Secret/);
    expect(inGitLab.stdout + inGitLab.stderr).not.toContain("job-token-value-123");
    expect(inGitLab.stdout + inGitLab.stderr).not.toContain(
      Buffer.from("gitlab-ci-token:job-token-value-123").toString("base64"),
    );

    const elsewhere = await run(
      ["build", "--dry-run", "--tags", "registry.gitlab.example:5050/acme/web:1"],
      { ...ciEnv, GITLAB_CI: undefined },
    );
    expect(elsewhere.code).toBe(0);
    expect(elsewhere.stderr).not.toMatch(/^registry: /m);
    expect(elsewhere.stdout).not.toMatch(/kind: Secret/);
  });
});

describe("merge-request previews", () => {
  const mrEnv = {
    CI_MERGE_REQUEST_IID: "12",
    CI_COMMIT_SHA: SHA,
    CI_PROJECT_URL: "https://gitlab.example.com/acme/web",
    CI_PROJECT_PATH: "acme/web",
  };

  test("mr-<iid> and mr-<iid>-<short sha> in each tag's repository, and labels naming the MR", () => {
    const { raw, note } = applyMergeRequestPreview(
      {
        tags: "registry.example:5000/acme/web:1.0, registry.example:5000/acme/web:latest\nghcr.io/acme/web",
        labels: "team=web",
      },
      mrEnv,
    );
    expect(raw.tags!.split("\n")).toEqual([
      "registry.example:5000/acme/web:mr-12",
      "registry.example:5000/acme/web:mr-12-01234567",
      "ghcr.io/acme/web:mr-12",
      "ghcr.io/acme/web:mr-12-01234567",
    ]);
    expect(note).toBe(`preview: merge request !12: pushing ${raw.tags!.split("\n").join(", ")}`);
    const labels = raw.labels!.split("\n");
    expect(labels[0]).toBe("team=web");
    expect(labels).toEqual(
      expect.arrayContaining([
        "org.opencontainers.image.source=https://gitlab.example.com/acme/web",
        `org.opencontainers.image.revision=${SHA}`,
        "k8s-image-build.preview=acme/web!12",
      ]),
    );
  });

  test("a merged-results pipeline names the source branch's head, not the merge commit", () => {
    const head = "fedcba9876543210fedcba9876543210fedcba98";
    const { raw } = applyMergeRequestPreview(
      { tags: "ghcr.io/acme/web:1" },
      { ...mrEnv, CI_MERGE_REQUEST_SOURCE_BRANCH_SHA: head },
    );
    expect(raw.tags).toBe("ghcr.io/acme/web:mr-12\nghcr.io/acme/web:mr-12-fedcba98");
  });

  test("outside a merge request the tags stay as given", () => {
    const raw = { tags: "ghcr.io/acme/web:1" };
    const out = applyMergeRequestPreview(raw, { CI_COMMIT_SHA: SHA });
    expect(out.raw).toBe(raw);
    expect(out.note).toMatch(/^preview: not a merge-request pipeline/);
  });

  test("a tag with a digest is one input error", () => {
    expect(() => applyMergeRequestPreview({ tags: `ghcr.io/acme/web@${DIGEST}` }, mrEnv)).toThrow(
      /^input "tags": .* has a digest/,
    );
    expect(repositoryOf("registry.example:5000/acme/web:1.0")).toBe(
      "registry.example:5000/acme/web",
    );
    expect(repositoryOf("registry.example:5000/acme/web")).toBe("registry.example:5000/acme/web");
  });

  test("through the CLI: KIB_PREVIEW=true in an MR pipeline renders the Job with the preview tags", async () => {
    const { code, stdout, stderr } = await run(["build", "--dry-run"], {
      ...mrEnv,
      KIB_PREVIEW: "true",
      KIB_TAGS: "registry.example:5000/acme/web:1.0",
    });
    expect(code).toBe(0);
    expect(stderr).toContain(
      "preview: merge request !12: pushing registry.example:5000/acme/web:mr-12, registry.example:5000/acme/web:mr-12-01234567",
    );
    expect(stdout).toContain("registry.example:5000/acme/web:mr-12-01234567");
    expect(stdout).not.toContain("registry.example:5000/acme/web:1.0");
  });
});
