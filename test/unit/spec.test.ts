import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse as parseYaml } from "yaml";
import { KANIKO_IMAGE } from "../../src/core/builders/kaniko.js";
import { rawSecretValues } from "../../src/core/spec/masking.js";
import { InputError } from "../../src/core/errors.js";
import { parseImageReference, splitList } from "../../src/core/spec/parse.js";
import {
  DEFAULT_CONTEXT_IMAGE,
  INPUT_NAMES,
  parseBuildSpec,
  type ParseEnvironment,
  type RawInputs,
} from "../../src/core/spec/spec.js";

let root: string;
let ws: string;
let outside: string;

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), "kib-spec-"));
  ws = join(root, "ws");
  outside = join(root, "outside");
  mkdirSync(join(ws, "app", "sub"), { recursive: true });
  mkdirSync(outside);
  writeFileSync(join(ws, "Dockerfile"), "FROM scratch\n");
  writeFileSync(join(ws, "app", "Dockerfile"), "FROM scratch\n");
  writeFileSync(join(ws, "app", "Dockerfile.prod"), "FROM scratch\n");
  writeFileSync(join(ws, "notadir.txt"), "x");
  writeFileSync(join(ws, "npmrc"), "//registry.npmjs.org/:_authToken=FILESECRET\n");
  writeFileSync(join(outside, "Dockerfile"), "FROM scratch\n");
  symlinkSync(outside, join(ws, "escape"));
  symlinkSync(join(outside, "Dockerfile"), join(ws, "Dockerfile.link"));
});

afterAll(() => rmSync(root, { recursive: true, force: true }));

const env = (): ParseEnvironment => ({ workspace: ws, kubeconfigPaths: ["/home/u/.kube/config"] });
const BASE: RawInputs = { tags: "ghcr.io/acme/web:1" };

function spec(extra: RawInputs) {
  return parseBuildSpec({ ...BASE, ...extra }, env());
}

function errorOf(extra: RawInputs): string {
  try {
    spec(extra);
  } catch (error) {
    if (error instanceof InputError) return error.message;
    throw error;
  }
  throw new Error("expected an InputError");
}

const HEX64 = "a".repeat(64);
const KUBECONFIG =
  "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: https://k:6443}\n";

describe("defaults", () => {
  test("only tags given", () => {
    const s = spec({});
    expect(s).toEqual({
      context: { kind: "dir", dir: expect.stringMatching(/ws$/) },
      dockerfile: "Dockerfile",
      tags: ["ghcr.io/acme/web:1"],
      buildArgs: [],
      labels: [],
      push: true,
      platforms: [],
      cacheFrom: [],
      cacheTo: [],
      secrets: [],
      cluster: { kubeconfigPaths: ["/home/u/.kube/config"] },
      builder: "kaniko",
      builderImage: KANIKO_IMAGE,
      contextImage: DEFAULT_CONTEXT_IMAGE,
      nodeSelector: {},
      tolerations: [],
      resources: { requests: {}, limits: {} },
      timeoutSeconds: 1800,
      scheduleTimeoutSeconds: 600,
      ttlSeconds: 600,
      keepJob: false,
      reuse: false,
      insecureRegistries: [],
      allowPrivileged: false,
      dryRun: false,
    });
  });

  test("empty strings mean unset", () => {
    const raw: RawInputs = { tags: "a/b:1" };
    for (const name of INPUT_NAMES) if (name !== "tags") raw[name] = "";
    expect(parseBuildSpec(raw, env()).timeoutSeconds).toBe(1800);
  });

  test("builder image defaults per builder", () => {
    expect(spec({ builder: "buildkit" }).builderImage).toMatch(/^moby\/buildkit:v[\d.]+-rootless$/);
  });

  test("in-cluster source and kube-context are passed on", () => {
    const inCluster = {
      host: "10.0.0.1",
      port: "443",
      serviceAccountDir: "/var/run/secrets/kubernetes.io/serviceaccount",
    };
    const s = parseBuildSpec({ ...BASE, "kube-context": "ci" }, { ...env(), inCluster });
    expect(s.cluster).toEqual({
      kubeconfigPaths: ["/home/u/.kube/config"],
      inCluster,
      context: "ci",
    });
  });

  test("INPUT_NAMES are action.yml's inputs without the preview ones", () => {
    const action = parseYaml(
      readFileSync(new URL("../../action.yml", import.meta.url), "utf8"),
    ) as {
      inputs: Record<string, { description: string }>;
    };
    const names = Object.keys(action.inputs).filter(
      (n) => !["preview", "github-token", "allow-fork-builds"].includes(n),
    );
    expect([...INPUT_NAMES]).toEqual(names);
    for (const input of Object.values(action.inputs))
      expect(input.description.length).toBeGreaterThan(10);
  });
});

describe("image references (distribution/reference)", () => {
  test.each([
    ["ubuntu", "docker.io", "library/ubuntu", undefined],
    ["acme/web:latest", "docker.io", "acme/web", "latest"],
    ["index.docker.io/acme/web", "docker.io", "acme/web", undefined],
    ["localhost/web", "localhost", "web", undefined],
    ["localhost:5000/a/b:c", "localhost:5000", "a/b", "c"],
    ["[::1]:5000/x:1", "[::1]:5000", "x", "1"],
    ["Registry.Example.COM/app:1", "Registry.Example.COM", "app", "1"],
    ["Acme/web:1", "Acme", "web", "1"],
    ["a.b/x__y/z--w.q_r:V1.0_a-b", "a.b", "x__y/z--w.q_r", "V1.0_a-b"],
    ["ghcr.io/acme/web:" + "t".repeat(128), "ghcr.io", "acme/web", "t".repeat(128)],
  ])("%s", (s, domain, path, tag) => {
    const ref = parseImageReference(s);
    expect(ref.domain).toBe(domain);
    expect(ref.path).toBe(path);
    expect(ref.tag).toBe(tag);
  });

  test("digest", () => {
    expect(parseImageReference(`busybox:1@sha256:${HEX64}`)).toEqual({
      domain: "docker.io",
      path: "library/busybox",
      tag: "1",
      digest: `sha256:${HEX64}`,
    });
  });
});

describe("tags", () => {
  test.each([
    ["ghcr.io/acme/web:1", ["ghcr.io/acme/web:1"]],
    ["a/b:1,a/b:2", ["a/b:1", "a/b:2"]],
    ["a/b:1\na/b:2\n", ["a/b:1", "a/b:2"]],
    ["  a/b:1 , a/b:2 \r\n\n a/b:3  ", ["a/b:1", "a/b:2", "a/b:3"]],
    ["ubuntu", ["ubuntu"]],
    ["registry.example.com:443/app", ["registry.example.com:443/app"]],
  ])("%j", (tags, expected) => {
    expect(spec({ tags }).tags).toEqual(expected);
  });

  test.each([
    [
      "",
      'input "tags": at least one image reference to push is required (newline- or comma-separated)',
    ],
    [
      " ,\n ",
      'input "tags": at least one image reference to push is required (newline- or comma-separated)',
    ],
    [
      "acme/Web:1",
      'input "tags": "acme/Web:1" is not an image reference: repository name must be lowercase',
    ],
    ["web:", 'input "tags": "web:" is not an image reference: invalid reference format'],
    ["web:-x", 'input "tags": "web:-x" is not an image reference: invalid reference format'],
    ["a//b", 'input "tags": "a//b" is not an image reference: invalid reference format'],
    ["a:b:c", 'input "tags": "a:b:c" is not an image reference: invalid reference format'],
    [
      "https://ghcr.io/a",
      'input "tags": "https://ghcr.io/a" is not an image reference: invalid reference format',
    ],
    [
      "web:" + "t".repeat(129),
      `input "tags": "web:${"t".repeat(129)}" is not an image reference: invalid reference format`,
    ],
    [
      HEX64,
      `input "tags": "${HEX64}" is not an image reference: cannot specify 64-byte hexadecimal strings as a repository name`,
    ],
    [
      "ghcr.io/" + "a".repeat(250),
      `input "tags": "ghcr.io/${"a".repeat(250)}" is not an image reference: repository name must not be more than 255 characters`,
    ],
    [
      `a/b@sha256:${HEX64}`,
      `input "tags": "a/b@sha256:${HEX64}" carries a digest; a tag to push is name[:tag] (the digest is the build's output)`,
    ],
    [
      "a/b:1@sha256:abc",
      'input "tags": "a/b:1@sha256:abc" is not an image reference: invalid reference format',
    ],
    ["a/b:1\na/b:1", 'input "tags": "a/b:1" is listed twice'],
    ['"a/b:1', 'input "tags": an item starts with a double quote that is never closed'],
  ])("%j", (tags, message) => {
    expect(errorOf({ tags })).toBe(message);
  });
});

describe("build-args and labels", () => {
  test.each([
    ["A=1", [{ key: "A", value: "1" }]],
    [
      "A=1\nB=x=y\nC=",
      [
        { key: "A", value: "1" },
        { key: "B", value: "x=y" },
        { key: "C", value: "" },
      ],
    ],
    ["A=1,2", [{ key: "A", value: "1,2" }]],
    ["  A=a b  \n\n", [{ key: "A", value: "a b" }]],
    [
      '"M=line1\nline2"\nN=2',
      [
        { key: "M", value: "line1\nline2" },
        { key: "N", value: "2" },
      ],
    ],
    ['"Q=say ""hi"""', [{ key: "Q", value: 'say "hi"' }]],
  ])("%j", (input, expected) => {
    expect(spec({ "build-args": input }).buildArgs).toEqual(expected);
    expect(spec({ labels: input }).labels).toEqual(expected);
  });

  test.each([
    ["NOEQ", '"NOEQ" is not KEY=VALUE (one per line; the key non-empty, without spaces)'],
    ["=v", '"=v" is not KEY=VALUE (one per line; the key non-empty, without spaces)'],
    ["A B=1", '"A B=1" is not KEY=VALUE (one per line; the key non-empty, without spaces)'],
    ["A=1\nA=2", '"A" is given twice'],
  ])("%j", (input, detail) => {
    expect(errorOf({ "build-args": input })).toBe(`input "build-args": ${detail}`);
    expect(errorOf({ labels: input })).toBe(`input "labels": ${detail}`);
  });
});

describe("booleans (YAML 1.2 core)", () => {
  test.each([
    ["true", true],
    ["True", true],
    ["TRUE", true],
    ["false", false],
    ["False", false],
    ["FALSE", false],
  ])("%s", (v, expected) => {
    const s = spec({ push: v, "keep-job": v, "dry-run": v });
    expect([s.push, s.keepJob, s.dryRun]).toEqual([expected, expected, expected]);
  });

  test.each(["yes", "1", "tRue", "on", "y"])("%s", (v) => {
    for (const input of ["push", "keep-job", "dry-run"] as const) {
      expect(errorOf({ [input]: v })).toBe(
        `input "${input}": "${v}" is not a boolean; use one of true | True | TRUE | false | False | FALSE`,
      );
    }
  });
});

describe("namespace and service-account", () => {
  test.each(["ci-builds", "a", "x".repeat(63), "0abc"])("namespace %s", (ns) => {
    expect(spec({ namespace: ns }).namespace).toBe(ns);
  });

  const label =
    "must be a DNS-1123 label: lowercase letters, digits and '-', starting and ending with a letter or digit";
  test.each([
    ["Ci", label],
    ["-a", label],
    ["a-", label],
    ["a_b", label],
    ["a.b", label],
    ["x".repeat(64), "must be no more than 63 characters"],
  ])("namespace %s", (ns, detail) => {
    expect(errorOf({ namespace: ns })).toBe(`input "namespace": "${ns}" ${detail}`);
  });

  test.each(["builder", "a.b-c", "kib.builder.x"])("service-account %s", (sa) => {
    expect(spec({ "service-account": sa }).serviceAccount).toBe(sa);
  });

  const sub =
    "must be a DNS-1123 subdomain: lowercase letters, digits, '-' and '.', each part starting and ending with a letter or digit";
  test.each([
    ["Builder", sub],
    ["a..b", sub],
    ["a.-b", sub],
    ["x".repeat(254), "must be no more than 253 characters"],
  ])("service-account %s", (sa, detail) => {
    expect(errorOf({ "service-account": sa })).toBe(`input "service-account": "${sa}" ${detail}`);
  });
});

describe("builder", () => {
  test.each(["kaniko", "buildkit", "buildah"])("%s", (b) =>
    expect(spec({ builder: b }).builder).toBe(b),
  );
  test.each(["docker", "Kaniko", "img"])("%s", (b) => {
    expect(errorOf({ builder: b })).toBe(
      `input "builder": "${b}" is not a builder; use one of kaniko, buildkit, buildah, dind`,
    );
  });
  test.each([
    ["buildah", "quay.io/containers/buildah:v1.46.1"],
    ["dind", "docker.io/library/docker:29.9.2-dind"],
  ])("%s: its pinned default image", (b, image) => {
    expect(spec({ builder: b, "allow-privileged": "true" }).builderImage).toBe(image);
  });
});

describe("allow-privileged", () => {
  test("dind without it: one line naming the risk and the builders that need no privileged container", () => {
    expect(errorOf({ builder: "dind" })).toBe(
      'input "allow-privileged": builder: dind runs a privileged container (root on the node for anything that escapes the build); ' +
        "set allow-privileged: true to accept that, or use a builder without one: kaniko, buildkit, buildah",
    );
    expect(errorOf({ builder: "dind", "allow-privileged": "false" })).toMatch(
      /^input "allow-privileged": /,
    );
  });
  test.each(["true", "TRUE"])("dind with allow-privileged %s", (v) => {
    expect(spec({ builder: "dind", "allow-privileged": v }).allowPrivileged).toBe(true);
  });
  test("not a boolean: one line naming the input", () => {
    expect(errorOf({ "allow-privileged": "sure" })).toMatch(/^input "allow-privileged": /);
  });
  test("other builders ignore it (none of them is privileged)", () => {
    expect(spec({ builder: "buildah", "allow-privileged": "true" }).builder).toBe("buildah");
  });
});

describe("durations", () => {
  test.each([
    ["30m", 1800],
    ["1h30m", 5400],
    ["90s", 90],
    ["600", 600],
    ["1.5h", 5400],
    ["2h0m0s", 7200],
    ["1m30.5s", 91],
    ["168h", 604800],
  ])("%s", (v, seconds) => {
    expect(spec({ timeout: v }).timeoutSeconds).toBe(seconds);
    expect(spec({ ttl: v }).ttlSeconds).toBe(seconds);
  });

  const allowed =
    'a duration like "30m", "1h30m", "90s" or a whole number of seconds, between 1s and 168h';
  test.each([
    ["30d", `"30d" is not ${allowed}`],
    ["-5m", `"-5m" is not ${allowed}`],
    ["1h 30m", `"1h 30m" is not ${allowed}`],
    ["m", `"m" is not ${allowed}`],
    ["1.5", `"1.5" is not ${allowed}`],
    ["0", `"0" is out of range: must be between 1s and 168h`],
    ["0s", `"0s" is out of range: must be between 1s and 168h`],
    ["169h", `"169h" is out of range: must be between 1s and 168h`],
  ])("%s", (v, detail) => {
    expect(errorOf({ timeout: v })).toBe(`input "timeout": ${detail}`);
    expect(errorOf({ ttl: v })).toBe(`input "ttl": ${detail}`);
  });

  describe("schedule-timeout", () => {
    test("defaults to 10m, and to timeout when timeout is shorter (the user asked for nothing)", () => {
      expect(spec({}).scheduleTimeoutSeconds).toBe(600);
      expect(spec({ timeout: "5m" }).scheduleTimeoutSeconds).toBe(300);
      expect(spec({ timeout: "1h" }).scheduleTimeoutSeconds).toBe(600);
    });

    test.each([
      ["90s", {}, 90],
      ["30m", {}, 1800],
      ["1h", { timeout: "1h" }, 3600],
    ])("%s", (v, more, seconds) => {
      expect(spec({ "schedule-timeout": v, ...more }).scheduleTimeoutSeconds).toBe(seconds);
    });

    test("longer than timeout is an error: the deadline would end the build first", () => {
      expect(errorOf({ "schedule-timeout": "45m" })).toBe(
        'input "schedule-timeout": "45m" is longer than timeout (30m): the Job\'s deadline would end the build first; give at most the timeout',
      );
      expect(errorOf({ "schedule-timeout": "10m", timeout: "5m" })).toMatch(
        /^input "schedule-timeout": "10m" is longer than timeout \(5m\)/,
      );
    });

    test("parsed like the other durations", () => {
      expect(errorOf({ "schedule-timeout": "soon" })).toBe(
        `input "schedule-timeout": "soon" is not ${allowed}`,
      );
      expect(errorOf({ "schedule-timeout": "0s" })).toBe(
        'input "schedule-timeout": "0s" is out of range: must be between 1s and 168h',
      );
    });
  });

  test.each([
    ["168h", "168h"],
    ["3600", "3600s"],
  ])("cache-ttl %s", (v, out) => {
    expect(spec({ "cache-repo": "ghcr.io/acme/cache", "cache-ttl": v }).cacheTtl).toBe(out);
  });

  test.each([
    [
      { "cache-ttl": "1h" },
      'input "cache-ttl": needs "cache-repo": it is the age limit of that cache',
    ],
    [
      { "cache-repo": "ghcr.io/a/c", "cache-ttl": "2y" },
      'input "cache-ttl": "2y" is not a duration like "30m", "1h30m", "90s" or a whole number of seconds, between 1s and 8760h',
    ],
  ])("cache-ttl %j", (raw, message) => {
    expect(errorOf(raw)).toBe(message);
  });
});

describe("reuse", () => {
  const CACHE = { "cache-repo": "ghcr.io/acme/web/cache" };
  test.each([
    [{}, false],
    [CACHE, true],
    [{ ...CACHE, reuse: "auto" }, true],
    [{ ...CACHE, reuse: "AUTO" }, true],
    [{ ...CACHE, reuse: "true" }, true],
    [{ ...CACHE, reuse: "false" }, false],
    [{ ...CACHE, reuse: "never" }, false],
    [{ ...CACHE, reuse: "Never" }, false],
    [{ ...CACHE, push: "false" }, false],
    [{ reuse: "false" }, false],
  ])("%j → %s", (raw, reuse) => {
    expect(spec(raw).reuse).toBe(reuse);
  });

  test.each([
    [{ reuse: "yes" }, 'input "reuse": "yes" is not one of auto, never, true, false'],
    [
      { reuse: "true" },
      'input "reuse": needs "cache-repo": build keys are recorded as tags in that repository',
    ],
    [
      { ...CACHE, reuse: "true", push: "false" },
      'input "reuse": needs "push": true; an image that is not pushed cannot be reused',
    ],
  ])("%j", (raw, message) => {
    expect(errorOf(raw)).toBe(message);
  });
});

describe("resources", () => {
  test.each([
    [
      "requests:\n  cpu: 500m\n  memory: 1Gi\nlimits:\n  memory: 2Gi",
      { requests: { cpu: "500m", memory: "1Gi" }, limits: { memory: "2Gi" } },
    ],
    ["{requests: {cpu: '1'}}", { requests: { cpu: "1" }, limits: {} }],
    [
      "requests: {cpu: 0.5, memory: 129e6}",
      { requests: { cpu: "0.5", memory: "129e6" }, limits: {} },
    ],
    [
      "limits: {nvidia.com/gpu: 1, ephemeral-storage: 10G, hugepages-2Mi: 64Mi}",
      {
        requests: {},
        limits: { "nvidia.com/gpu": "1", "ephemeral-storage": "10G", "hugepages-2Mi": "64Mi" },
      },
    ],
    [
      "requests: {memory: 1Gi}\nlimits: {memory: 1024Mi}",
      { requests: { memory: "1Gi" }, limits: { memory: "1024Mi" } },
    ],
    [
      "requests: {cpu: .5}\nlimits: {cpu: 1e3, memory: +2E+9}",
      { requests: { cpu: ".5" }, limits: { cpu: "1e3", memory: "+2E+9" } },
    ],
  ])("%j", (v, expected) => {
    expect(spec({ resources: v }).resources).toEqual(expected);
  });

  test.each([
    ["cpu: 1", 'has "cpu"; only "requests" and "limits" are allowed'],
    ["requests: {cpu: 1x}", 'requests.cpu: "1x" is not a quantity'],
    ["requests: {cpu: -1}", 'requests.cpu: "-1" is not a quantity'],
    ["requests: {memory: 1gi}", 'requests.memory: "1gi" is not a quantity'],
    ["requests: {memory: 1 Gi}", 'requests.memory: "1 Gi" is not a quantity'],
    ["limits: {cpu: 1E3m}", 'limits.cpu: "1E3m" is not a quantity'],
    [
      "requests: {gpu: 1}",
      'unknown resource "gpu" in requests (cpu, memory, ephemeral-storage, or a domain-qualified name like nvidia.com/gpu)',
    ],
    [
      "requests: {memory: 2Gi}\nlimits: {memory: 1Gi}",
      "requests.memory (2Gi) is more than limits.memory (1Gi)",
    ],
    [
      "requests: {cpu: 1500m}\nlimits: {cpu: 1}",
      "requests.cpu (1500m) is more than limits.cpu (1)",
    ],
    [
      "[1, 2]",
      'must be a YAML mapping like "requests: {cpu: 500m, memory: 1Gi}" and/or "limits: {memory: 2Gi}"',
    ],
    ["requests: [1]", '"requests" must be a mapping of resource name to quantity'],
    ["requests: {cpu: {a: 1}}", "requests.cpu must be a quantity"],
    [
      "requests: {cpu: 1",
      'is not valid YAML; give a YAML mapping like "requests: {cpu: 500m, memory: 1Gi}" and/or "limits: {memory: 2Gi}"',
    ],
  ])("%j", (v, detail) => {
    expect(errorOf({ resources: v })).toBe(`input "resources": ${detail}`);
  });
});

describe("node-selector", () => {
  test.each([
    ["disktype=ssd", { disktype: "ssd" }],
    ["a=b,c=d", { a: "b", c: "d" }],
    [
      "kubernetes.io/arch=amd64\nnode.example.com/pool=builds",
      { "kubernetes.io/arch": "amd64", "node.example.com/pool": "builds" },
    ],
    ["empty=", { empty: "" }],
  ])("%j", (v, expected) => {
    expect(spec({ "node-selector": v }).nodeSelector).toEqual(expected);
  });

  test.each([
    ["noeq", '"noeq" is not key=value (a newline- or comma-separated list)'],
    [
      "bad!=x",
      `label key "bad!" name must be alphanumeric, '-', '_' or '.', starting and ending with an alphanumeric character`,
    ],
    ["a/b/c=d", "label key \"a/b/c\" may contain at most one '/'"],
    [
      "Bad.Prefix/x=y",
      `label key "Bad.Prefix/x" prefix must be a DNS-1123 subdomain: lowercase letters, digits, '-' and '.', each part starting and ending with a letter or digit`,
    ],
    [
      "k=bad value",
      `label value "bad value" must be empty or alphanumeric, '-', '_' or '.', starting and ending with an alphanumeric character`,
    ],
    ["k=" + "v".repeat(64), `label value "${"v".repeat(64)}" must be no more than 63 characters`],
    ["k=v\nk=w", '"k" is given twice'],
  ])("%j", (v, detail) => {
    expect(errorOf({ "node-selector": v })).toBe(`input "node-selector": ${detail}`);
  });
});

describe("tolerations", () => {
  test.each([
    [
      "- key: dedicated\n  operator: Equal\n  value: builds\n  effect: NoSchedule",
      [{ key: "dedicated", operator: "Equal", value: "builds", effect: "NoSchedule" }],
    ],
    ["- operator: Exists", [{ operator: "Exists" }]],
    ["- key: k\n  value: v", [{ key: "k", value: "v" }]],
    [
      "- {key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute, tolerationSeconds: 60}",
      [
        {
          key: "node.kubernetes.io/unreachable",
          operator: "Exists",
          effect: "NoExecute",
          tolerationSeconds: 60,
        },
      ],
    ],
    ['[{"key": "a", "effect": "PreferNoSchedule"}]', [{ key: "a", effect: "PreferNoSchedule" }]],
  ])("%j", (v, expected) => {
    expect(spec({ tolerations: v }).tolerations).toEqual(expected);
  });

  const shape = "(key, operator, value, effect, tolerationSeconds)";
  test.each([
    ["key: x", `must be a YAML list of tolerations ${shape}`],
    ["- [", `is not valid YAML; give a YAML list of tolerations ${shape}`],
    ["- just-a-string", "item 1 is not a mapping"],
    [
      "- foo: 1",
      'item 1 has unknown field "foo" (key, operator, value, effect, tolerationSeconds)',
    ],
    ["- key: k\n  operator: In", "item 1: operator must be Equal or Exists"],
    ["- value: x", "item 1: an empty key needs operator Exists"],
    [
      "- key: k\n  operator: Exists\n  value: v",
      "item 1: value must be empty with operator Exists",
    ],
    [
      "- key: k\n  effect: Sometimes",
      "item 1: effect must be one of NoSchedule, PreferNoSchedule, NoExecute",
    ],
    ["- key: k\n  tolerationSeconds: 5", "item 1: tolerationSeconds needs effect NoExecute"],
    [
      "- key: k\n  effect: NoExecute\n  tolerationSeconds: 1.5",
      "item 1: tolerationSeconds must be an integer",
    ],
    ["- key: k\n- key: 5", 'item 2: "key" must be a string'],
    [
      "- key: bad key",
      `item 1: key "bad key" name must be alphanumeric, '-', '_' or '.', starting and ending with an alphanumeric character`,
    ],
  ])("%j", (v, detail) => {
    expect(errorOf({ tolerations: v })).toBe(`input "tolerations": ${detail}`);
  });
});

describe("context and file", () => {
  test.each([
    [{}, "", "Dockerfile"],
    [{ context: "." }, "", "Dockerfile"],
    [{ context: "./app/" }, "app", "Dockerfile"],
    [{ context: "app", file: "app/Dockerfile.prod" }, "app", "Dockerfile.prod"],
    [{ file: "app/Dockerfile.prod" }, "", "app/Dockerfile.prod"],
    [{ file: "./app/../Dockerfile" }, "", "Dockerfile"],
  ])("%j", (raw, dir, dockerfile) => {
    const s = spec(raw);
    expect(s.context).toEqual({ kind: "dir", dir: join(ws, dir) });
    expect(s.dockerfile).toBe(dockerfile);
  });

  test("an absolute path inside the workspace", () => {
    expect(spec({ context: join(ws, "app") }).context).toEqual({
      kind: "dir",
      dir: join(ws, "app"),
    });
  });

  test.each([
    [
      { context: "git://github.com/acme/web.git#main" },
      "git://github.com/acme/web.git#main",
      "Dockerfile",
    ],
    [
      { context: "https://github.com/acme/web.git", file: "docker/Dockerfile" },
      "https://github.com/acme/web.git",
      "docker/Dockerfile",
    ],
    [
      { context: "https://github.com/acme/web.git#v1.2:svc", file: "./Dockerfile" },
      "https://github.com/acme/web.git#v1.2:svc",
      "Dockerfile",
    ],
  ])("git %j", (raw, url, dockerfile) => {
    const s = spec(raw);
    expect(s.context).toEqual({ kind: "git", url });
    expect(s.dockerfile).toBe(dockerfile);
  });

  test.each([
    [{ context: "../" }, 'input "context": "../" leaves the workspace; give a path inside it'],
    [
      { context: "app/../.." },
      'input "context": "app/../.." leaves the workspace; give a path inside it',
    ],
    [
      { context: "escape" },
      'input "context": "escape" leaves the workspace; give a path inside it',
    ],
    [{ context: "/" }, 'input "context": "/" leaves the workspace; give a path inside it'],
    [{ context: "nope" }, 'input "context": "nope" does not exist under the workspace'],
    [{ context: "notadir.txt" }, 'input "context": "notadir.txt" is not a directory'],
    [
      { context: "app/sub" },
      'input "file": no Dockerfile in the context directory; give its path with "file"',
    ],
    [
      { context: "app", file: "Dockerfile" },
      'input "file": "Dockerfile" is outside the context directory; only the context is sent to the cluster',
    ],
    [
      { file: "../outside/Dockerfile" },
      'input "file": "../outside/Dockerfile" leaves the workspace; give a path inside it',
    ],
    [
      { file: "Dockerfile.link" },
      'input "file": "Dockerfile.link" leaves the workspace; give a path inside it',
    ],
    [{ file: "missing" }, 'input "file": "missing" does not exist under the workspace'],
    [{ file: "app" }, 'input "file": "app" is not a file'],
    [
      { context: "https://github.com/acme/web" },
      'input "context": "https://github.com/acme/web" is not a git URL: an https context must end in .git (optionally #ref[:subdir])',
    ],
    [
      { context: "http://example.com/a.git" },
      'input "context": "http://example.com/a.git" is not supported: give a directory in the workspace or a git URL (git://… or https://….git)',
    ],
    [
      { context: "s3://bucket/ctx.tar.gz" },
      'input "context": "s3://bucket/ctx.tar.gz" is not supported: give a directory in the workspace or a git URL (git://… or https://….git)',
    ],
    [
      { context: "git@github.com:acme/web.git" },
      'input "context": "git@github.com:acme/web.git": SSH git URLs are not supported; use https://….git',
    ],
    [
      { context: "https://x.example/a.git#main#abc" },
      'input "context": "https://x.example/a.git#main#abc" has more than one \'#\'; use <url>#<ref>[:<subdir>]',
    ],
    [
      { context: "https://x.example/a.git#main:../up" },
      'input "context": "https://x.example/a.git#main:../up" has a subdirectory that leaves the repository',
    ],
    [
      { context: "git://github.com/acme/web.git", file: "../Dockerfile" },
      'input "file": "../Dockerfile" must be a path inside the git repository',
    ],
    [
      { context: "git://github.com/acme/web.git", file: "/etc/passwd" },
      'input "file": "/etc/passwd" must be a path inside the git repository',
    ],
  ])("%j", (raw, message) => {
    expect(errorOf(raw)).toBe(message);
  });

  test("credentials in a git URL are refused without echoing them", () => {
    const message = errorOf({ context: "https://bot:TOPSECRET@github.com/acme/web.git" });
    expect(message).toBe(
      'input "context": a git URL with credentials in it would be visible in the Job; use a public URL (the value is not shown)',
    );
  });
});

describe("kubeconfig", () => {
  test.each([
    ["raw", KUBECONFIG, KUBECONFIG.trim()],
    ["base64", Buffer.from(KUBECONFIG).toString("base64"), KUBECONFIG],
    [
      "wrapped base64",
      Buffer.from(KUBECONFIG)
        .toString("base64")
        .replace(/(.{20})/g, "$1\n"),
      KUBECONFIG,
    ],
    ["minimal", "current-context: x", "current-context: x"],
  ])("%s", (_name, v, content) => {
    expect(spec({ kubeconfig: v }).cluster.kubeconfigContent).toBe(content);
  });

  test("a path to a kubeconfig file (kubectl's --kubeconfig, a GitLab File variable): its content, and where it came from", () => {
    const file = join(root, "gitlab-file-variable-KUBECONFIG");
    writeFileSync(file, KUBECONFIG);
    const cluster = spec({ kubeconfig: file }).cluster;
    expect(cluster.kubeconfigContent).toBe(KUBECONFIG);
    expect(cluster.kubeconfigFile).toBe(file);
    // base64 in the file (a File variable pasted from `base64 -w0 ~/.kube/config`)
    writeFileSync(file, Buffer.from(KUBECONFIG).toString("base64"));
    expect(spec({ kubeconfig: file }).cluster.kubeconfigContent).toBe(KUBECONFIG);
    // "~/" from the home directory the adapter names (an input reaches no shell to expand it)
    mkdirSync(join(root, "home", ".kube"), { recursive: true });
    writeFileSync(join(root, "home", ".kube", "config"), KUBECONFIG);
    const fromHome = parseBuildSpec(
      { tags: "ghcr.io/acme/web:1", kubeconfig: "~/.kube/config" },
      { ...env(), home: join(root, "home") },
    ).cluster;
    expect(fromHome.kubeconfigFile).toBe(join(root, "home", ".kube", "config"));
    // relative to the workspace
    writeFileSync(join(ws, "kubeconfig.yaml"), KUBECONFIG);
    expect(spec({ kubeconfig: "kubeconfig.yaml" }).cluster.kubeconfigFile).toBe(
      join(ws, "kubeconfig.yaml"),
    );
  });

  test("a path that does not exist, or a file that is no kubeconfig, is named", () => {
    expect(errorOf({ kubeconfig: "/home/me/.kube/config" })).toBe(
      'input "kubeconfig": there is no file /home/me/.kube/config; give the path of a kubeconfig file, its YAML, or base64 of it',
    );
    expect(errorOf({ kubeconfig: "notadir.txt" })).toBe(
      `input "kubeconfig": the file ${join(ws, "notadir.txt")} is neither kubeconfig YAML nor base64 of it`,
    );
  });

  test.each([
    ["plain text", "not a kubeconfig SECRETISH"],
    ["base64 of text", Buffer.from("hello SECRETISH").toString("base64")],
    ["broken YAML", "clusters: [SECRETISH"],
    ["a YAML list", "- SECRETISH"],
    ["JSON without kubeconfig keys", '{"token": "SECRETISH"}'],
  ])("%s", (_name, v) => {
    const message = errorOf({ kubeconfig: v });
    expect(message).toBe(
      'input "kubeconfig": is neither the path of a kubeconfig file, kubeconfig YAML nor base64 of it (the value is not shown)',
    );
    expect(message).not.toContain("SECRETISH");
  });
});

describe("registry credentials", () => {
  test("basic: registries of tags, cache-repo and cache refs, Docker Hub by its config key", () => {
    const s = spec({
      tags: "ghcr.io/acme/web:1\nacme/web:1\nghcr.io/acme/web:2",
      "cache-repo": "registry.example.com:5000/cache",
      "registry-username": "bot",
      "registry-password": "p@ss:word=1",
    });
    expect(s.registryAuth).toEqual({
      kind: "basic",
      username: "bot",
      password: "p@ss:word=1",
      registries: ["ghcr.io", "https://index.docker.io/v1/", "registry.example.com:5000"],
    });
  });

  test("basic with BuildKit cache-from/cache-to refs", () => {
    const s = spec({
      builder: "buildkit",
      "cache-from": "type=registry,ref=quay.io/acme/cache:a",
      "cache-to": "mirror.example.com/acme/cache:b",
      "registry-username": "bot",
      "registry-password": "pw",
    });
    expect(s.registryAuth).toMatchObject({
      registries: ["ghcr.io", "quay.io", "mirror.example.com"],
    });
  });

  const config = { auths: { "ghcr.io": { auth: "Ym90OnB3" } } };
  test.each([
    ["raw", JSON.stringify(config, null, 2)],
    ["base64", Buffer.from(JSON.stringify(config)).toString("base64")],
  ])("docker-config-json %s", (_name, v) => {
    expect(spec({ "docker-config-json": v }).registryAuth).toEqual({
      kind: "docker-config-json",
      json: JSON.stringify(config),
    });
  });

  test("docker-config-json from a workstation: helper keys are dropped when every entry holds its credentials", () => {
    const laptop = {
      auths: { "ghcr.io": { auth: "Ym90OnB3" }, "quay.io": { username: "u", password: "p" } },
      credsStore: "desktop",
      credHelpers: { "ghcr.io": "gcloud" },
      currentContext: "desktop-linux",
    };
    expect(spec({ "docker-config-json": JSON.stringify(laptop) }).registryAuth).toEqual({
      kind: "docker-config-json",
      json: JSON.stringify({
        auths: laptop.auths,
        currentContext: "desktop-linux",
      }),
    });
  });

  test.each([
    [
      "credsStore with empty entries (Docker Desktop)",
      { auths: { "ghcr.io": {}, "https://index.docker.io/v1/": {} }, credsStore: "desktop" },
      'input "docker-config-json": the credentials for ghcr.io, https://index.docker.io/v1/ are kept by docker-credential-desktop on the machine this config.json comes from, not in the file, and the build pod has no such helper; give a config.json whose "auths" entries hold "auth" (docker login with DOCKER_CONFIG set to an empty directory writes one), or use registry-username and registry-password',
    ],
    [
      "credHelpers for one registry",
      {
        auths: { "quay.io": { auth: "SECRETISH" } },
        credHelpers: { "123.dkr.ecr.us-east-1.amazonaws.com": "ecr-login" },
      },
      'input "docker-config-json": the credentials for 123.dkr.ecr.us-east-1.amazonaws.com are kept by docker-credential-ecr-login on the machine',
    ],
    [
      "credsStore and no entries at all",
      { auths: {}, credsStore: "osxkeychain" },
      'input "docker-config-json": the credentials are kept by docker-credential-osxkeychain on the machine',
    ],
  ])("docker-config-json: %s is refused in one line", (_name, config, message) => {
    const m = errorOf({ "docker-config-json": JSON.stringify(config) });
    expect(m.startsWith(message)).toBe(true);
    expect(m).not.toContain("\n");
    expect(m).not.toContain("SECRETISH");
  });

  test.each([
    [
      { "registry-username": "bot" },
      'input "registry-password": is required when "registry-username" is set',
    ],
    [
      { "registry-password": "SECRETISH" },
      'input "registry-username": is required when "registry-password" is set',
    ],
    [
      { "registry-username": "a:b", "registry-password": "SECRETISH" },
      "input \"registry-username\": must not contain ':' or whitespace",
    ],
    [
      {
        "registry-username": "bot",
        "registry-password": "SECRETISH",
        "docker-config-json": '{"auths":{}}',
      },
      'input "docker-config-json": cannot be combined with "registry-username"/"registry-password"; give one kind of credentials',
    ],
    [
      { "docker-config-json": "SECRETISH" },
      'input "docker-config-json": must be a Docker config.json with an "auths" object, raw or base64 (the value is not shown)',
    ],
    [
      { "docker-config-json": '{"credsStore": "SECRETISH"}' },
      'input "docker-config-json": must be a Docker config.json with an "auths" object, raw or base64 (the value is not shown)',
    ],
    [
      { "docker-config-json": '{"auths": ["SECRETISH"]}' },
      'input "docker-config-json": must be a Docker config.json with an "auths" object, raw or base64 (the value is not shown)',
    ],
  ])("%j", (raw, message) => {
    const m = errorOf(raw);
    expect(m).toBe(message);
    expect(m).not.toContain("SECRETISH");
  });
});

describe("insecure-registries", () => {
  test.each([
    ["registry:5000", ["registry:5000"]],
    [
      "10.0.0.1:5000, localhost:5000\nregistry.local",
      ["10.0.0.1:5000", "localhost:5000", "registry.local"],
    ],
    ["[::1]:5000", ["[::1]:5000"]],
    ["http://registry:5000/", ["registry:5000"]],
    ["a:1,a:1", ["a:1"]],
  ])("%j", (v, expected) => {
    expect(spec({ "insecure-registries": v }).insecureRegistries).toEqual(expected);
  });

  test.each([
    ["bad host!", '"bad host!" is not a registry host[:port]'],
    ["registry:99999", '"registry:99999" has a port outside 1-65535'],
    ["registry/path", '"registry/path" is not a registry host[:port]'],
    ["-registry", '"-registry" is not a registry host[:port]'],
  ])("%j", (v, detail) => {
    expect(errorOf({ "insecure-registries": v })).toBe(`input "insecure-registries": ${detail}`);
  });
});

describe("secrets and secret-files", () => {
  test("values keep '=' and come out as bytes; files are read as bytes", () => {
    const s = spec({
      builder: "buildkit",
      secrets: "npmrc=//registry.npmjs.org/:_authToken=abc=\ntoken=t0k",
      "secret-files": "cert=npmrc",
    });
    expect(s.secrets.map((x) => [x.id, x.value.toString("utf8")])).toEqual([
      ["npmrc", "//registry.npmjs.org/:_authToken=abc="],
      ["token", "t0k"],
      ["cert", "//registry.npmjs.org/:_authToken=FILESECRET\n"],
    ]);
    expect(Buffer.isBuffer(s.secrets[0]!.value)).toBe(true);
  });

  test("a quoted value spans lines", () => {
    const s = spec({
      builder: "buildkit",
      secrets: '"pem=-----BEGIN-----\nSECRET\n-----END-----"',
    });
    expect(s.secrets[0]!.value.toString()).toBe("-----BEGIN-----\nSECRET\n-----END-----");
  });

  test.each([
    [
      { secrets: "SECRETISH" },
      'input "secrets": entry 1 is not id=value (one per line; the value is not shown)',
    ],
    [
      { secrets: "a=1\n=SECRETISH" },
      'input "secrets": entry 2 is not id=value (one per line; the value is not shown)',
    ],
    [
      { secrets: "bad id!=SECRETISH" },
      `input "secrets": secret id "bad id!" may only hold letters, digits, '.', '_' and '-'`,
    ],
    [
      { secrets: "a=" },
      'input "secrets": secret "a" is empty (is the CI secret it comes from set?)',
    ],
    [{ secrets: "a=SECRETISH\na=SECRETISH" }, 'input "secrets": secret id "a" is given twice'],
    [
      { secrets: "a=SECRETISH", "secret-files": "a=npmrc" },
      'input "secret-files": secret id "a" is given twice',
    ],
    [{ "secret-files": "cert" }, 'input "secret-files": "cert" is not id=path (one per line)'],
    [
      { "secret-files": "cert=missing.pem" },
      'input "secret-files": cannot read "missing.pem" for secret "cert"',
    ],
    [{ "secret-files": "cert=app" }, 'input "secret-files": "app" for secret "cert" is not a file'],
    [
      { secrets: "a=SECRETISH", builder: "kaniko" },
      'input "secrets": build secrets (secrets, secret-files) need builder: buildkit; Kaniko images differ in whether they take --secret',
    ],
  ])("%j", (raw, message) => {
    const m = errorOf(raw);
    expect(m).toBe(message);
    expect(m).not.toContain("SECRETISH");
    expect(m).not.toContain("FILESECRET");
  });

  test("too large for a Secret", () => {
    expect(errorOf({ secrets: `big=${"x".repeat(1_000_001)}` })).toBe(
      'input "secrets": build secrets add up to 1000001 bytes; a Kubernetes Secret holds at most 1000000',
    );
  });

  test("buildkit accepts secrets", () => {
    expect(spec({ builder: "buildkit", secrets: "a=1" }).secrets).toHaveLength(1);
  });
});

describe("platforms, cache-from, cache-to", () => {
  test.each([
    ["linux/amd64,linux/arm64", ["linux/amd64", "linux/arm64"]],
    ["linux/arm/v7\nlinux/amd64/v2", ["linux/arm/v7", "linux/amd64/v2"]],
  ])("platforms %j", (v, expected) => {
    expect(spec({ builder: "buildkit", platforms: v }).platforms).toEqual(expected);
  });

  test.each([
    ["linux", '"linux" is not os/arch[/variant] in lowercase (e.g. linux/amd64, linux/arm/v7)'],
    [
      "Linux/amd64",
      '"Linux/amd64" is not os/arch[/variant] in lowercase (e.g. linux/amd64, linux/arm/v7)',
    ],
    [
      "linux/amd64/v2/x",
      '"linux/amd64/v2/x" is not os/arch[/variant] in lowercase (e.g. linux/amd64, linux/arm/v7)',
    ],
    [
      "linux//v7",
      '"linux//v7" is not os/arch[/variant] in lowercase (e.g. linux/amd64, linux/arm/v7)',
    ],
    ["linux/amd64,linux/amd64", '"linux/amd64" is listed twice'],
  ])("platforms %j", (v, detail) => {
    expect(errorOf({ builder: "buildkit", platforms: v })).toBe(`input "platforms": ${detail}`);
  });

  test.each([
    ["type=registry,ref=ghcr.io/a/b:cache", "type=registry,ref=ghcr.io/a/b:cache"],
    ["ghcr.io/a/b:cache", "ghcr.io/a/b:cache"],
    [
      "type=registry,ref=ghcr.io/a/b:cache,mode=max,ignore-error=false",
      "type=registry,ref=ghcr.io/a/b:cache,mode=max,ignore-error=false",
    ],
  ])("cache entry %j", (v, expected) => {
    const s = spec({ builder: "buildkit", "cache-from": v, "cache-to": v });
    expect([s.cacheFrom, s.cacheTo]).toEqual([[expected], [expected]]);
  });

  test("cache-to type=inline", () => {
    expect(spec({ builder: "buildkit", "cache-to": "type=inline" }).cacheTo).toEqual([
      "type=inline",
    ]);
  });

  test.each([
    ["type=gha", '"type=gha": type=gha cannot be reached from a build pod; use type=registry'],
    ["type=registry", '"type=registry" needs ref=<image reference>'],
    [
      "type=foo,ref=a/b",
      '"type=foo,ref=a/b" has unknown type "foo" (registry, inline, local, gha, s3, azblob)',
    ],
    ["ref=a/b:c", '"ref=a/b:c" needs type=registry (or inline)'],
    [
      "type=registry,ref=a/B:c",
      '"a/B:c" is not an image reference: repository name must be lowercase',
    ],
    [
      "type=registry,ref=a/b,mode=all",
      '"type=registry,ref=a/b,mode=all" has mode=all; use min or max',
    ],
    ["type=registry,,ref=a/b", '"type=registry,,ref=a/b" has a field "" that is not key=value'],
    [
      "bad/ref/x:y@",
      '"bad/ref/x:y@" is not an image reference or a type=…,ref=… cache entry: invalid reference format',
    ],
  ])("cache-from %j", (v, detail) => {
    expect(errorOf({ builder: "buildkit", "cache-from": v })).toBe(`input "cache-from": ${detail}`);
  });

  test.each([
    [
      { platforms: "linux/arm64" },
      'input "platforms": Kaniko builds for the node it runs on and cannot build several platforms; use builder: buildkit for multi-platform images',
    ],
    [
      { "cache-from": "ghcr.io/a/b:c" },
      'input "cache-from": is BuildKit-only; Kaniko takes its registry cache from "cache-repo" (or use builder: buildkit)',
    ],
    [
      { "cache-to": "ghcr.io/a/b:c" },
      'input "cache-to": is BuildKit-only; Kaniko takes its registry cache from "cache-repo" (or use builder: buildkit)',
    ],
  ])("kaniko refuses %j", (raw, message) => {
    expect(errorOf(raw)).toBe(message);
  });
});

describe("images, target, cache-repo", () => {
  test.each([
    ["builder-image", `ghcr.io/osscontainertools/kaniko:v1.28.2@sha256:${HEX64}`],
    ["context-image", "busybox:1.36"],
    ["context-image", "registry.local:5000/tools/busybox"],
  ] as const)("%s %s", (input, v) => {
    const s = spec({ [input]: v });
    expect(input === "builder-image" ? s.builderImage : s.contextImage).toBe(v);
  });

  test.each([
    [
      "builder-image",
      "Kaniko",
      '"Kaniko" is not an image reference: repository name must be lowercase',
    ],
    [
      "builder-image",
      `k@md5:${"0".repeat(32)}`,
      `"k@md5:${"0".repeat(32)}" is not an image reference: unsupported digest algorithm "md5"`,
    ],
    [
      "context-image",
      `b@sha256:${"0".repeat(63)}`,
      `"b@sha256:${"0".repeat(63)}" is not an image reference: invalid checksum digest length`,
    ],
    [
      "context-image",
      `b@sha256:${"A".repeat(64)}`,
      `"b@sha256:${"A".repeat(64)}" is not an image reference: invalid checksum digest format`,
    ],
  ] as const)("%s %s", (input, v, detail) => {
    expect(errorOf({ [input]: v })).toBe(`input "${input}": ${detail}`);
  });

  test.each(["build", "Build-Stage_1.x"])("target %s", (t) =>
    expect(spec({ target: t }).target).toBe(t),
  );
  test.each(["1stage", "a b", "-x"])("target %s", (t) => {
    expect(errorOf({ target: t })).toBe(
      `input "target": "${t}" is not a stage name (a letter, then letters, digits, '-', '_' or '.')`,
    );
  });

  test("cache-repo", () =>
    expect(spec({ "cache-repo": "ghcr.io/acme/web/cache" }).cacheRepo).toBe(
      "ghcr.io/acme/web/cache",
    ));
  test.each([
    [
      "ghcr.io/acme/cache:tag",
      '"ghcr.io/acme/cache:tag" must be a repository without tag or digest (e.g. ghcr.io/acme/web/cache)',
    ],
    [
      "ghcr.io/Acme/cache",
      '"ghcr.io/Acme/cache" is not a repository: repository name must be lowercase',
    ],
  ])("cache-repo %s", (v, detail) => {
    expect(errorOf({ "cache-repo": v })).toBe(`input "cache-repo": ${detail}`);
  });
});

describe("splitList", () => {
  test.each([
    ["a,b", true, ["a", "b"]],
    ["a,b", false, ["a,b"]],
    ['"a,b",c', true, ["a,b", "c"]],
    ['"x" ,y', true, ["x", "y"]],
    ["\r\n a \r\n", false, ["a"]],
  ])("%j comma=%s", (raw, comma, expected) => {
    expect(splitList(raw, { comma })).toEqual(expected);
  });

  test("text after a closing quote", () => {
    expect(() => splitList('"a"b', { comma: true })).toThrow(
      "text follows a closing double quote before the end of the item",
    );
  });
});

test("masking before parsing: a kubeconfig path is shown, kubeconfig content and other secrets are masked", () => {
  expect(
    rawSecretValues({
      kubeconfig: "/builds/acme/web.tmp/CLUSTER_KUBECONFIG",
      "registry-password": "hunter2",
    }),
  ).toEqual(["hunter2"]);
  expect(rawSecretValues({ kubeconfig: "~/.kube/config" })).toEqual([]);
  const content = "apiVersion: v1\nclusters: []";
  expect(rawSecretValues({ kubeconfig: content })).toEqual([content]);
  const base64 = Buffer.from(content).toString("base64");
  expect(rawSecretValues({ kubeconfig: base64 })).toEqual([base64]);
});
