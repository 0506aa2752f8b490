/** What users read before they run anything: action.yml, the GitLab template, LICENSE, versions. */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse, parseAllDocuments } from "yaml";

const ROOT = join(import.meta.dirname, "../..");
const read = (path: string) => readFileSync(join(ROOT, path), "utf8");

interface InputDoc {
  description: string;
  default?: unknown;
}
const actionInputs = (parse(read("action.yml")) as { inputs: Record<string, InputDoc> }).inputs;
const templateInputs = (
  parseAllDocuments(read("gitlab/templates/build.yml"))[0]!.toJS() as {
    spec: { inputs: Record<string, InputDoc> };
  }
).spec.inputs;

const DURATION = /^([0-9]+(\.[0-9]*)?(ns|us|ms|s|m|h))+$/;

describe.each([
  ["action.yml", actionInputs],
  ["gitlab/templates/build.yml", templateInputs],
])("%s", (_file, inputs) => {
  test("an input whose default is a duration says it takes a duration, not seconds", () => {
    const durations = Object.entries(inputs).filter(([, doc]) =>
      DURATION.test(String(doc.default)),
    );
    expect(durations.map(([name]) => name)).toEqual(expect.arrayContaining(["timeout", "ttl"]));
    for (const [name, doc] of durations) {
      expect([name, doc.description]).toEqual([name, expect.stringMatching(/as a duration like/)]);
      expect([name, doc.description]).not.toEqual([name, expect.stringMatching(/^Seconds/)]);
    }
  });
});

describe("a release people can use", () => {
  const version = (JSON.parse(read("package.json")) as { version: string }).version;
  const major = version.split(".")[0]!;

  test("LICENSE is the MIT licence package.json names", () => {
    expect((JSON.parse(read("package.json")) as { license: string }).license).toBe("MIT");
    expect(read("LICENSE")).toMatch(/^MIT License\n\nCopyright \(c\) \d{4} /);
    expect(read("LICENSE")).toContain('THE SOFTWARE IS PROVIDED "AS IS"');
  });

  test("the README's examples name this release: uses: …@v<major>, component …@<version>", () => {
    const readmes = [read("README.md"), read("gitlab/README.md")].join("\n");
    const uses = [...readmes.matchAll(/uses: \S+\/k8s-image-build@(\S+)/g)].map((m) => m[1]);
    expect(uses.length).toBeGreaterThan(0);
    expect(new Set(uses)).toEqual(new Set([`v${major}`]));
    const components = [...readmes.matchAll(/component: \S+\/build@(\d\S*)/g)].map((m) => m[1]);
    expect(components.length).toBeGreaterThan(0);
    expect(new Set(components)).toEqual(new Set([version]));
    const pinned = [...readmes.matchAll(/k8s-image-build:(\d+\.\d+\.\d+)/g)].map((m) => m[1]);
    expect(new Set(pinned)).toEqual(new Set([version]));
    expect(read("gitlab/README.md")).toContain(`ref: ${version}`);
  });

  test("the README says which runner version runs node24 actions", () => {
    expect(read("README.md")).toMatch(/runner v2\.327\.1 or later/);
  });
});
