import { podSecurityRefusal } from "../../src/core/job/preflight.js";
import type { Builder } from "../../src/core/builders/types.js";
import { buildkit } from "../../src/core/builders/buildkit.js";

/** Stand-in for the Kaniko builder (kaniko.ts is written elsewhere): only what preflight reads. */
const kanikoLike: Builder = {
  name: "kaniko",
  defaultImage: "ghcr.io/osscontainertools/kaniko:test",
  podSecurityLevel: "baseline",
  privileged: false,
  needsServerVersion: false,
  unsupported: () => undefined,
  render: () => {
    throw new Error("not used");
  },
};

const ENFORCE = "pod-security.kubernetes.io/enforce";

describe("podSecurityRefusal", () => {
  test.each<[string, Record<string, string> | undefined]>([
    ["no labels at all", undefined],
    ["labels without pod security", { "kubernetes.io/metadata.name": "ci" }],
    ["enforce=privileged", { [ENFORCE]: "privileged" }],
    [
      "only warn/audit stricter (not enforced)",
      {
        "pod-security.kubernetes.io/warn": "restricted",
        "pod-security.kubernetes.io/audit": "restricted",
      },
    ],
  ])("buildkit is admitted: %s", (_name, labels) => {
    expect(podSecurityRefusal("ci", labels, buildkit)).toBeUndefined();
  });

  test("buildkit in a baseline namespace: both ways out, kaniko included", () => {
    expect(podSecurityRefusal("ci", { [ENFORCE]: "baseline" }, buildkit)).toBe(
      'namespace "ci" enforces Pod Security level "baseline" (label pod-security.kubernetes.io/enforce), ' +
        'but the buildkit builder\'s pod needs "privileged": label the namespace pod-security.kubernetes.io/enforce=privileged ' +
        "(kubectl label namespace ci pod-security.kubernetes.io/enforce=privileged --overwrite), " +
        'or use builder: kaniko (its pod fits "baseline")',
    );
  });

  test("buildkit in a restricted namespace: kaniko is not offered (restricted refuses it too)", () => {
    const line = podSecurityRefusal("builds", { [ENFORCE]: "restricted" }, buildkit);
    expect(line).toBe(
      'namespace "builds" enforces Pod Security level "restricted" (label pod-security.kubernetes.io/enforce), ' +
        'but the buildkit builder\'s pod needs "privileged": label the namespace pod-security.kubernetes.io/enforce=privileged ' +
        "(kubectl label namespace builds pod-security.kubernetes.io/enforce=privileged --overwrite), " +
        "or build in a namespace that admits it",
    );
    expect(line).not.toContain("kaniko");
  });

  test("an unknown level is enforced as restricted and named as given", () => {
    const line = podSecurityRefusal("ci", { [ENFORCE]: "Baseline" }, buildkit);
    expect(line).toContain('level "Baseline" (not a level: enforced as restricted)');
    expect(line).not.toContain("kaniko");
  });

  test.each<[string, string | undefined]>([
    ["privileged", undefined],
    ["baseline", undefined],
    ["restricted", 'kaniko builder\'s pod needs "baseline"'],
  ])("kaniko in a %s namespace", (level, expected) => {
    const line = podSecurityRefusal("ci", { [ENFORCE]: level }, kanikoLike);
    if (expected === undefined) expect(line).toBeUndefined();
    else {
      expect(line).toContain(expected);
      expect(line).toContain("pod-security.kubernetes.io/enforce=baseline");
      expect(line).not.toContain("use builder: kaniko");
    }
  });

  test("every refusal is one line", () => {
    for (const level of ["baseline", "restricted", "bogus"]) {
      const line = podSecurityRefusal("ci", { [ENFORCE]: level }, buildkit);
      expect(line).toBeDefined();
      expect(line).not.toContain("\n");
    }
  });
});
