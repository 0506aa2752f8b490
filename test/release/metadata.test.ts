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
