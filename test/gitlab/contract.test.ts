/**
 * The GitLab component's inputs against the action's and the CLI's: one name, one meaning.
 * The template is the single source of the GitLab input table (scripts/docs.mjs reads it).
 */
import { execFileSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse, parseAllDocuments } from "yaml";
import {
  BOOLEAN_INPUTS,
  CLI_INPUT_NAMES,
  envName,
  inputDoc,
  LIST_INPUTS,
} from "../../src/cli/cli.js";
import { INPUT_NAMES } from "../../src/core/spec/spec.js";
import { ROOT, TEMPLATE } from "./support/gcl.js";

interface SpecInput {
  type?: string;
  default?: unknown;
  options?: unknown[];
  regex?: string;
  description?: string;
}

const JOB_INPUTS = ["as", "stage", "rules", "image"];
const GITHUB_ONLY = ["github-token", "allow-fork-builds"];

const documents = parseAllDocuments(readFileSync(TEMPLATE, "utf8")).map(
  (doc) => doc.toJS() as Record<string, unknown>,
);
const header = documents[0] as { spec: { inputs: Record<string, SpecInput> } };
const inputs = header.spec.inputs;
const action = parse(readFileSync(join(ROOT, "action.yml"), "utf8")) as {
  inputs: Record<string, { description: string; default?: string; required?: boolean }>;
};

const oneLine = (text: string) => text.replace(/\s*\n\s*/g, " ").trim();

test("the template has a spec:inputs header and one job, and no global keywords", () => {
  expect(documents).toHaveLength(2);
  // GitLab's header takes spec:inputs (and, in newer versions, component/include) only: any other
  // key fails every include with "header:spec config contains unknown keys".
  expect(Object.keys(header)).toEqual(["spec"]);
  expect(Object.keys(header.spec)).toEqual(["inputs"]);
  const body = documents[1];
  expect(Object.keys(body)).toEqual(["$[[ inputs.as ]]"]);
  for (const global of [
    "default",
    "variables",
    "stages",
    "include",
    "workflow",
    "image",
    "services",
    "cache",
    "before_script",
    "after_script",
  ]) {
    expect(body).not.toHaveProperty(global);
  }
  const job = body["$[[ inputs.as ]]"] as Record<string, unknown>;
  expect(job.stage).toBe("$[[ inputs.stage ]]");
  expect(job.image).toBe("$[[ inputs.image ]]");
  expect(job.rules).toBe("$[[ inputs.rules ]]");
  expect(job.script).toContain("k8s-image-build build --dotenv build.env 2>&1");
  expect(job.artifacts).toEqual({ reports: { dotenv: "build.env" } });
});

test("every input has a description; the job inputs have their defaults and types", () => {
  for (const [name, input] of Object.entries(inputs)) {
    expect([name, typeof input.description === "string" && input.description.length > 10]).toEqual([
      name,
      true,
    ]);
    expect(["string", "boolean", "number", "array", undefined]).toContain(input.type);
  }
  expect(inputs.as.default).toBe("build-image");
  expect(inputs.stage.default).toBe("build");
  expect(inputs.rules.type).toBe("array");
  expect(inputs.preview).toMatchObject({ type: "boolean", default: false });
  expect(inputs.image.default).toMatch(
    /^registry\.gitlab\.com\/.+\/k8s-image-build:\d+\.\d+\.\d+$/,
  );
});

test("the default job image pins the package version", () => {
  const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string };
  expect(String(inputs.image.default).endsWith(`:${pkg.version}`)).toBe(true);
});

test("every action input but the GitHub-only ones is a template input, and every template input is a CLI input", () => {
  const actionNames = Object.keys(action.inputs).filter((name) => !GITHUB_ONLY.includes(name));
  const templateNames = Object.keys(inputs).filter((name) => !JOB_INPUTS.includes(name));
  expect(templateNames.sort()).toEqual(actionNames.sort());
  expect([...CLI_INPUT_NAMES].sort()).toEqual(templateNames.sort());
  // The engine's inputs are exactly the action's minus the adapters' own.
  expect([...INPUT_NAMES].sort()).toEqual(actionNames.filter((name) => name !== "preview").sort());
});

test("same meaning as the action: same description text, same default, same options", () => {
  for (const name of INPUT_NAMES) {
    const ours = inputs[name];
    const theirs = action.inputs[name];
    // The template may add a GitLab sentence (the agent's context, $CI_REGISTRY_USER); it keeps the action's.
    expect([name, oneLine(ours.description ?? "").includes(oneLine(theirs.description))]).toEqual([
      name,
      true,
    ]);
    if (theirs.default !== undefined)
      expect([name, String(ours.default)]).toEqual([name, String(theirs.default)]);
    else if (theirs.required) expect([name, ours.default]).toEqual([name, undefined]);
    else expect([name, ours.default]).toEqual([name, ""]);
    // Explicit types: GitLab's CI schema (editors, test/release/schemas.test.ts) applies the
    // default's type check of every type to an input without one, so only a null default passes.
    const expectedType = BOOLEAN_INPUTS.has(name) ? "boolean" : "string";
    expect([name, ours.type]).toEqual([name, expectedType]);
  }
  expect(inputs.builder.options).toEqual(["kaniko", "buildkit", "buildah", "dind"]);
  expect(action.inputs.builder.description).toMatch(/kaniko, buildkit, buildah or dind/);
});

test("the job hands every input to the CLI as its KIB_ variable", () => {
  const body = readFileSync(TEMPLATE, "utf8").split(/^---$/m)[1];
  for (const name of CLI_INPUT_NAMES) {
    const reference = `$[[ inputs.${name} ]]`;
    if (BOOLEAN_INPUTS.has(name)) {
      // Booleans inside the script text: GitLab then renders them as the strings true/false.
      expect([name, body.includes(`${envName(name)}="${reference}"`)]).toEqual([name, true]);
    } else {
      expect([name, body.includes(`    ${envName(name)}: "${reference}"`)]).toEqual([name, true]);
    }
  }
  expect(LIST_INPUTS.has("tags")).toBe(true);
});

test("the CLI's help descriptions are the action's, and preview is described for GitLab", () => {
  for (const name of INPUT_NAMES) {
    expect([name, inputDoc(name)?.description]).toEqual([
      name,
      oneLine(action.inputs[name].description),
    ]);
  }
  expect(inputDoc("preview")?.description).toBe(inputs.preview.description);
});

test("scripts/docs.mjs renders the GitLab input table from the template, and gitlab/README.md carries it", () => {
  const dir = mkdtempSync(join(tmpdir(), "kib-docs-"));
  mkdirSync(join(dir, "scripts"));
  mkdirSync(join(dir, "gitlab/templates"), { recursive: true });
  mkdirSync(join(dir, "src/cli"), { recursive: true });
  cpSync(join(ROOT, "scripts/docs.mjs"), join(dir, "scripts/docs.mjs"));
  cpSync(join(ROOT, "action.yml"), join(dir, "action.yml"));
  cpSync(TEMPLATE, join(dir, "gitlab/templates/build.yml"));
  symlinkSync(join(ROOT, "node_modules"), join(dir, "node_modules"));
  writeFileSync(
    join(dir, "README.md"),
    "<!-- gitlab-inputs:start -->\n<!-- gitlab-inputs:end -->\n",
  );
  execFileSync(process.execPath, ["scripts/docs.mjs"], { cwd: dir });
  const table = readFileSync(join(dir, "README.md"), "utf8");
  for (const name of Object.keys(inputs)) expect(table).toContain(`| \`${name}\` |`);
  expect(table).toContain("(one of `kaniko`, `buildkit`, `buildah`, `dind`)");
  // The component's own README shows the same generated table.
  const readme = readFileSync(join(ROOT, "gitlab/README.md"), "utf8");
  const start = readme.indexOf("<!-- gitlab-inputs:start -->");
  const end = readme.indexOf("<!-- gitlab-inputs:end -->");
  expect(start).toBeGreaterThan(-1);
  expect(readme.slice(start, end + "<!-- gitlab-inputs:end -->".length)).toBe(table.trim());
});
