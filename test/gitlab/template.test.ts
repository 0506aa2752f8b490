/**
 * Bad inputs to the component: GitLab's own checks (type, options, regex) stop the pipeline at
 * include time — as gitlab-ci-local reproduces them — and values those checks let through reach
 * the CLI, which fails the job with the engine's one-line error before touching any cluster.
 * Also the component project's release guard (gitlab/.gitlab-ci.yml, check-version).
 */
import { cpSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { jobOutput, makeProject, makeToolsDir, ROOT, runGcl } from "./support/gcl.js";

let tools: string;
beforeAll(async () => {
  tools = await makeToolsDir();
}, 120_000);

function including(inputs: string): string {
  return `include:
  - component: $CI_SERVER_FQDN/$CI_PROJECT_PATH/build@$CI_COMMIT_SHA
    inputs:
      tags: registry.example:5000/acme/web:1
${inputs}
`;
}

const INVALID = "This GitLab CI configuration is invalid: `templates/build.yml`: ";

test.each([
  ["a string for a boolean", '      push: "yes"', "`push` input: provided value is not a boolean."],
  [
    "a value outside options",
    "      builder: docker",
    "`builder` input: `docker` cannot be used because it is not in the list of allowed options.",
  ],
  [
    "a duration that fails the regex",
    "      timeout: soon",
    "`timeout` input: `soon` does not match required regex: ",
  ],
  ["a string for rules", "      rules: always", "`rules` input: provided value is not a array."],
])("include time: %s", async (_what, inputs, message) => {
  const project = makeProject({ pipeline: including(inputs) });
  const { code, output } = await runGcl(project, ["--list"]);
  expect(code).not.toBe(0);
  expect(output).toContain(`${INVALID}${message}`);
});

test("good inputs pass the include: the job is there under its `as` name, stage and rules", async () => {
  const project = makeProject({
    pipeline: `${including(`      as: web-image
      stage: package
      rules: [{if: '$CI_COMMIT_BRANCH == "main"'}]
      push: false
      builder: buildkit
      timeout: 1h30m`)}
stages: [package]
`,
  });
  const { code, output } = await runGcl(project, ["--list-csv"]);
  expect(output).toContain("web-image;package;on_success;false;");
  expect(code).toBe(0);
});

test.each([
  ["namespace: CI_Builds", /^error: input "namespace": "CI_Builds" /],
  ["tags: not a/Valid:tag!", /^error: input "tags": /],
  ["resources: 'limits: {memory: lots}'", /^error: input "resources": limits\.memory: /],
  ["node-selector: no-equals-sign", /^error: input "node-selector": /],
])(
  "a value the template lets through (%s) fails the job with one error line, exit 1",
  async (input, message) => {
    const project = makeProject({
      files: { Dockerfile: "FROM busybox\n" },
      pipeline: including(`      ${input.replace("tags: ", "context: .\n      tags: ")}`).replace(
        "      tags: registry.example:5000/acme/web:1\n      context: .\n      tags:",
        "      context: .\n      tags:",
      ),
    });
    const { code, output } = await runGcl(project, [], { toolsDir: tools });
    expect(code).not.toBe(0);
    expect(output).toMatch(/FAIL\s+build-image/);
    expect(output).toMatch(/build-image\s+\$ k8s-image-build build --dotenv build\.env 2>&1/);
    const printed = jobOutput(output, "build-image");
    expect(printed.filter((line) => line.startsWith("error:"))).toEqual([
      expect.stringMatching(message),
    ]);
    expect(printed).toHaveLength(1);
  },
  60_000,
);

describe("the component project's pipeline refuses a release tag the template does not pin", () => {
  const registryImage = "registry.gitlab.com/k8s-image-build/k8s-image-build";
  function componentProject() {
    return makeProject({
      pipeline: readFileSync(join(ROOT, "gitlab/.gitlab-ci.yml"), "utf8"),
      files: { Dockerfile: readFileSync(join(ROOT, "gitlab/Dockerfile"), "utf8") },
    });
  }
  const version = (
    JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string }
  ).version;

  test.each([
    [version, 0],
    ["9.9.9", 1],
  ])(
    "tag %s",
    async (tag, expected) => {
      const project = componentProject();
      cpSync(join(ROOT, "gitlab/templates/build.yml"), join(project, "templates/build.yml"));
      const { code, output } = await runGcl(
        project,
        [
          "check-version",
          "--variable",
          `CI_COMMIT_TAG=${tag}`,
          "--variable",
          `CI_REGISTRY_IMAGE=${registryImage}`,
          "--ignore-predefined-vars",
          "CI_COMMIT_TAG,CI_REGISTRY_IMAGE",
        ],
        { toolsDir: tools },
      );
      expect(code === 0 ? 0 : 1).toBe(expected);
      if (expected === 1) {
        expect(jobOutput(output, "check-version")).toContain(
          `templates/build.yml: the image input's default must be ${registryImage}/k8s-image-build:${tag} for release ${tag}`,
        );
      } else {
        expect(output).toMatch(/PASS\s+check-version/);
      }
    },
    60_000,
  );
});
