/**
 * action.yml, the GitHub workflows and the GitLab files against the schemas their platforms use:
 * GitHub's own parser (@actions/workflow-parser, the one behind GitHub's editor support) for
 * action.yml and workflows; GitLab's CI/CD schema for the template's spec: header (vendored
 * excerpt, test/release/schemas/) and, through gitlab-ci-local (which bundles GitLab's schema and
 * validates every pipeline it loads), for the job the template makes and the component project's
 * pipeline. Each validator is first shown to refuse a broken copy.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { NoOperationTraceWriter, parseWorkflow } from "@actions/workflow-parser";
import { parseAction } from "@actions/workflow-parser/actions/index";
import { Ajv } from "ajv";
import { parse, parseAllDocuments } from "yaml";
import { makeProject, ROOT, runGcl } from "../gitlab/support/gcl.js";

const read = (path: string) => readFileSync(join(ROOT, path), "utf8");

function actionErrors(content: string): string[] {
  const result = parseAction({ name: "action.yml", content }, new NoOperationTraceWriter());
  return result.context.errors.getErrors().map((e) => e.message);
}

function workflowErrors(name: string, content: string): string[] {
  const result = parseWorkflow({ name, content }, new NoOperationTraceWriter());
  return result.context.errors.getErrors().map((e) => e.message);
}

describe("action.yml against GitHub's action schema", () => {
  const action = read("action.yml");

  test("is valid, runs on node24 and has branding for the Marketplace", () => {
    expect(actionErrors(action)).toEqual([]);
    const parsed = parse(action) as { runs: { using: string }; branding?: Record<string, string> };
    expect(parsed.runs.using).toBe("node24");
    expect(parsed.branding).toEqual({ icon: expect.any(String), color: expect.any(String) });
  });

  test("the validator refuses a branding icon GitHub does not have, and an unknown key", () => {
    expect(actionErrors(action.replace(/icon: \S+/, "icon: no-such-icon"))).toEqual([
      expect.stringMatching(/Unexpected value 'no-such-icon'/),
    ]);
    expect(actionErrors(`${action}\nbrandng: {}\n`)).toEqual([
      expect.stringMatching(/Unexpected value 'brandng'/),
    ]);
  });
});

describe("the GitHub workflows against GitHub's workflow schema", () => {
  const files = readdirSync(join(ROOT, ".github/workflows")).filter((f) => /\.ya?ml$/.test(f));

  test("there are CI and release workflows", () => {
    expect(files.sort()).toEqual(["ci.yml", "release.yml"]);
  });

  test.each(files)("%s is valid", (file) => {
    expect(workflowErrors(file, read(`.github/workflows/${file}`))).toEqual([]);
  });

  test("the validator refuses a job without runs-on", () => {
    const broken = read(".github/workflows/ci.yml").replace(/runs-on:/, "runs_on:");
    expect(workflowErrors("ci.yml", broken)).toEqual(
      expect.arrayContaining([expect.stringMatching(/Required property is missing: runs-on/)]),
    );
  });

  test("CI runs .ci/run; a release tag moves the major tag after CI passed", () => {
    const ci = parse(read(".github/workflows/ci.yml")) as {
      jobs: Record<string, { steps: Array<{ run?: string }> }>;
    };
    expect(Object.values(ci.jobs).flatMap((j) => j.steps.map((s) => s.run))).toContain(
      "bash .ci/run",
    );
    const release = parse(read(".github/workflows/release.yml")) as {
      on: { push: { tags: string[] } };
      permissions: Record<string, string>;
      jobs: Record<string, { steps: Array<{ run?: string }> }>;
    };
    expect(release.on.push.tags).toEqual(["v[0-9]+.[0-9]+.[0-9]+"]);
    expect(release.permissions).toEqual({ contents: "write" });
    const runs = Object.values(release.jobs).flatMap((j) => j.steps.map((s) => s.run ?? ""));
    const at = (text: string) => runs.findIndex((r) => r.includes(text));
    expect(at("release.sh check")).toBeGreaterThanOrEqual(0);
    expect(at("release.sh check")).toBeLessThan(at("bash .ci/run"));
    expect(at("bash .ci/run")).toBeLessThan(at("release.sh move-major"));
  });
});

describe("the GitLab component against GitLab's CI/CD schema", () => {
  const schema = JSON.parse(read("test/release/schemas/gitlab-ci-spec.schema.json")) as object;
  const validateHeader = new Ajv({ allErrors: true, strict: false }).compile(schema);
  const header = () =>
    parseAllDocuments(read("gitlab/templates/build.yml"))[0]!.toJS() as {
      spec: { inputs: Record<string, Record<string, unknown>> };
    };

  test("the template's spec: header is valid", () => {
    expect(validateHeader(header())).toBe(true);
    expect(validateHeader.errors ?? []).toEqual([]);
  });

  test("the header schema refuses an unknown input keyword and a default of the wrong type", () => {
    const typo = header();
    typo.spec.inputs.stage!.descripton = "typo";
    expect(validateHeader(typo)).toBe(false);
    const wrongType = header();
    wrongType.spec.inputs["keep-job"]!.default = "no";
    expect(validateHeader(wrongType)).toBe(false);
  });

  const including = `include:
  - component: $CI_SERVER_FQDN/$CI_PROJECT_PATH/build@$CI_COMMIT_SHA
    inputs:
      tags: registry.example:5000/acme/web:1
`;

  test("gitlab-ci-local refuses a pipeline GitLab's schema refuses", async () => {
    const project = makeProject({
      pipeline: `${including}\nbroken:\n  script: [echo]\n  when: sometimes\n`,
    });
    const { code, output } = await runGcl(project, ["--preview"]);
    expect(code).not.toBe(0);
    expect(output).toMatch(/when/);
  }, 60_000);

  test("the job the template makes is valid", async () => {
    const project = makeProject({ pipeline: including });
    const { code, output } = await runGcl(project, ["--preview"]);
    expect({ code, output }).toEqual({ code: 0, output: expect.stringContaining("build-image:") });
  }, 60_000);

  test("the component project's pipeline (gitlab/.gitlab-ci.yml) is valid", async () => {
    const project = makeProject({
      pipeline: read("gitlab/.gitlab-ci.yml"),
      files: { Dockerfile: read("gitlab/Dockerfile") },
    });
    const { code, output } = await runGcl(project, ["--preview"]);
    expect({ code, output }).toEqual({ code: 0, output: expect.stringContaining("release:") });
  }, 60_000);

  test("the release job uses the GitLab CLI image, not the deprecated release-cli", () => {
    const pipeline = parse(read("gitlab/.gitlab-ci.yml")) as Record<
      string,
      { image?: string; release?: unknown }
    >;
    const releaseJobs = Object.values(pipeline).filter((job) => job?.release !== undefined);
    expect(releaseJobs.map((job) => job.image)).toEqual([
      "registry.gitlab.com/gitlab-org/cli:latest",
    ]);
    expect(read("gitlab/.gitlab-ci.yml")).not.toMatch(/release-cli:/);
  });
});
