import { execFile } from "node:child_process";
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Container, Pod } from "kubernetes-models/v1";
import {
  buildah,
  buildahArgs,
  buildahRegistriesConf,
  BUILDAH_IMAGE,
  BUILDAH_REGISTRIES_DROP_IN,
  BUILDAH_SCRIPT,
} from "../../src/core/builders/buildah.js";
import { unsupportedInput } from "../../src/core/builders/index.js";
import type { RenderEnvironment } from "../../src/core/builders/types.js";
import type { BuildSpec } from "../../src/core/types.js";
import { specOf } from "./spec-fixture.js";

const FIXTURES = fileURLToPath(new URL("../support/recordings/", import.meta.url));

function spec(overrides: Partial<BuildSpec> = {}): BuildSpec {
  return specOf({
    context: { kind: "dir", dir: "/src/app" },
    tags: ["ghcr.io/acme/api:1.0"],
    builder: "buildah",
    builderImage: BUILDAH_IMAGE,
    ...overrides,
  });
}

const ENV: RenderEnvironment = {
  hasRegistryCredentials: false,
  hasBuildSecrets: false,
  serverMinorVersion: 26,
};

const HEAD = ["bud", "--isolation=chroot", "--storage-driver=vfs", "--format=docker"];
const FILE = ["-f", "/kaniko/buildcontext/Dockerfile"];
const TAG = ["-t", "ghcr.io/acme/api:1.0"];
const CONTEXT = "/kaniko/buildcontext";

describe("buildah args", () => {
  test.each<[string, Partial<BuildSpec>, string[]]>([
    ["one tag", {}, [...HEAD, ...FILE, ...TAG, CONTEXT]],
    [
      "several tags: one -t each",
      { tags: ["ghcr.io/acme/api:1.0", "ghcr.io/acme/api:latest"] },
      [...HEAD, ...FILE, ...TAG, "-t", "ghcr.io/acme/api:latest", CONTEXT],
    ],
    [
      "push false: the same build (the script skips the push)",
      { push: false },
      [...HEAD, ...FILE, ...TAG, CONTEXT],
    ],
    [
      "build-args, in order, values kept whole",
      {
        buildArgs: [
          { key: "VERSION", value: "1.2.3" },
          { key: "FLAGS", value: "a=b,c d" },
        ],
      },
      [...HEAD, ...FILE, ...TAG, "--build-arg=VERSION=1.2.3", "--build-arg=FLAGS=a=b,c d", CONTEXT],
    ],
    [
      "labels",
      { labels: [{ key: "org.opencontainers.image.title", value: "api" }] },
      [...HEAD, ...FILE, ...TAG, "--label=org.opencontainers.image.title=api", CONTEXT],
    ],
    ["target", { target: "runtime" }, [...HEAD, ...FILE, ...TAG, "--target=runtime", CONTEXT]],
    [
      "one platform",
      { platforms: ["linux/arm64"] },
      [...HEAD, ...FILE, ...TAG, "--platform=linux/arm64", CONTEXT],
    ],
    [
      "cache-repo: --layers with the repository as cache source and destination (as recorded)",
      { cacheRepo: "ghcr.io/acme/api/cache" },
      [
        ...HEAD,
        ...FILE,
        ...TAG,
        "--layers",
        "--cache-from=ghcr.io/acme/api/cache",
        "--cache-to=ghcr.io/acme/api/cache",
        CONTEXT,
      ],
    ],
    [
      "cache-ttl with cache-repo",
      { cacheRepo: "ghcr.io/acme/api/cache", cacheTtl: "168h" },
      [
        ...HEAD,
        ...FILE,
        ...TAG,
        "--layers",
        "--cache-from=ghcr.io/acme/api/cache",
        "--cache-to=ghcr.io/acme/api/cache",
        "--cache-ttl=168h",
        CONTEXT,
      ],
    ],
    [
      "secrets: one --secret per id, src in the mounted Secret; values never in args",
      {
        secrets: [
          { id: "npmrc", value: Buffer.from("//registry.npmjs.org/:_authToken=s3cr3t") },
          { id: "gh_token", value: Buffer.from("ghp_value") },
        ],
      },
      [
        ...HEAD,
        ...FILE,
        ...TAG,
        "--secret=id=npmrc,src=/run/secrets/k8s-image-build/npmrc",
        "--secret=id=gh_token,src=/run/secrets/k8s-image-build/gh_token",
        CONTEXT,
      ],
    ],
    [
      "insecure registries: nothing in bud's args (the registries.conf drop-in carries them)",
      { tags: ["10.88.0.1:5000/rec/app:1"], insecureRegistries: ["10.88.0.1:5000"] },
      [...HEAD, ...FILE, "-t", "10.88.0.1:5000/rec/app:1", CONTEXT],
    ],
    [
      "Dockerfile in a subdirectory",
      { dockerfile: "docker/./api.Dockerfile" },
      [...HEAD, "-f", "/kaniko/buildcontext/docker/api.Dockerfile", ...TAG, CONTEXT],
    ],
    [
      "git context: Buildah fetches it, the Dockerfile path is inside the repository",
      {
        context: { kind: "git", url: "https://github.com/acme/api.git#main:svc" },
        dockerfile: "Dockerfile",
      },
      [...HEAD, "-f", "Dockerfile", ...TAG, "https://github.com/acme/api.git#main:svc"],
    ],
  ])("%s", (_name, overrides, expected) => {
    expect(buildahArgs(spec(overrides))).toEqual(expected);
  });

  test("secret values appear nowhere in the rendered pod", () => {
    const value = "npm-token-0123456789-secret";
    const pod = buildah.render(spec({ secrets: [{ id: "npmrc", value: Buffer.from(value) }] }), {
      ...ENV,
      hasBuildSecrets: true,
    });
    expect(JSON.stringify(pod)).not.toContain(value);
  });
});

describe("buildah container", () => {
  test("defaults: a pinned release of the project's image, Pod Security privileged, not a privileged container", () => {
    expect(buildah.name).toBe("buildah");
    expect(buildah.defaultImage).toMatch(/^quay\.io\/containers\/buildah:v\d+\.\d+\.\d+$/);
    expect(buildah.podSecurityLevel).toBe("privileged");
    expect(buildah.privileged).toBe(false);
    expect(buildah.needsServerVersion).toBe(true);
  });

  test("the command is the sh -c script, its name, then buildah's arguments", () => {
    const { container } = buildah.render(spec(), ENV);
    expect(container.name).toBe("build");
    expect(container.command).toEqual(["sh", "-c", BUILDAH_SCRIPT, "buildah"]);
    expect(container.args).toEqual(buildahArgs(spec()));
    expect(BUILDAH_SCRIPT).not.toMatch(/set -x|echo "\$@"/);
  });

  test("security context and volumes match the recorded job.json that worked on the cluster", async () => {
    const job = JSON.parse(await readFile(join(FIXTURES, "buildah-success-cold/job.json"), "utf8"));
    const recorded = job.spec.template.spec.containers[0];
    const pod = buildah.render(spec(), { ...ENV, serverMinorVersion: 26 });
    expect(pod.container.securityContext).toEqual(recorded.securityContext);
    expect(pod.podAnnotations).toEqual(job.spec.template.metadata.annotations);
    expect("privileged" in (pod.container.securityContext ?? {})).toBe(false);
    expect("allowPrivilegeEscalation" in (pod.container.securityContext ?? {})).toBe(false);
  });

  test("server 1.30: AppArmor as the field, no annotation", () => {
    const pod = buildah.render(spec(), { ...ENV, serverMinorVersion: 30 });
    expect(pod.container.securityContext).toEqual({
      runAsUser: 0,
      capabilities: { drop: ["ALL"], add: ["SETUID", "SETGID", "SETFCAP"] },
      seccompProfile: { type: "Unconfined" },
      appArmorProfile: { type: "Unconfined" },
    });
    expect(pod.podAnnotations).toBeUndefined();
  });

  test("env: vfs and chroot, the tags to push, whether to push, the registries.conf drop-in", () => {
    const { container } = buildah.render(
      spec({
        tags: ["10.88.0.1:5000/rec/app:1", "ghcr.io/acme/api:1.0"],
        insecureRegistries: ["10.88.0.1:5000"],
      }),
      ENV,
    );
    expect(container.env).toEqual([
      { name: "STORAGE_DRIVER", value: "vfs" },
      { name: "BUILDAH_ISOLATION", value: "chroot" },
      { name: "KIB_TAGS", value: "10.88.0.1:5000/rec/app:1 ghcr.io/acme/api:1.0" },
      { name: "KIB_PUSH", value: "true" },
      { name: "KIB_INSECURE_REGISTRIES", value: "10.88.0.1:5000" },
      {
        name: "KIB_REGISTRIES_CONF",
        value:
          'unqualified-search-registries = ["docker.io"]\n\n[[registry]]\nlocation = "10.88.0.1:5000"\ninsecure = true',
      },
    ]);
  });

  test("registries.conf without insecure registries: only docker.io for short names", () => {
    expect(buildahRegistriesConf([])).toBe('unqualified-search-registries = ["docker.io"]');
  });

  test("volumes and mounts: container storage on an emptyDir; credentials through REGISTRY_AUTH_FILE; secrets read-only", () => {
    const plain = buildah.render(spec(), ENV);
    expect(plain.volumes).toEqual([{ name: "containers", emptyDir: {} }]);
    expect(plain.container.volumeMounts).toEqual([
      { name: "workspace", mountPath: "/kaniko/buildcontext" },
      { name: "containers", mountPath: "/var/lib/containers" },
    ]);
    expect(plain.container.env?.some((e) => e.name === "REGISTRY_AUTH_FILE")).toBe(false);

    const full = buildah.render(spec({ secrets: [{ id: "npmrc", value: Buffer.from("x") }] }), {
      ...ENV,
      hasRegistryCredentials: true,
      hasBuildSecrets: true,
    });
    expect(full.container.volumeMounts).toEqual([
      { name: "workspace", mountPath: "/kaniko/buildcontext" },
      { name: "containers", mountPath: "/var/lib/containers" },
      {
        name: "registry-credentials",
        mountPath: "/run/containers/k8s-image-build",
        readOnly: true,
      },
      { name: "build-secrets", mountPath: "/run/secrets/k8s-image-build", readOnly: true },
    ]);
    expect(full.container.env).toEqual(
      expect.arrayContaining([
        { name: "REGISTRY_AUTH_FILE", value: "/run/containers/k8s-image-build/config.json" },
      ]),
    );
  });

  test("resources from the spec go on the build container", () => {
    expect(buildah.render(spec(), ENV).container.resources).toBeUndefined();
    const some = buildah.render(
      spec({ resources: { requests: { cpu: "1" }, limits: { memory: "4Gi" } } }),
      ENV,
    );
    expect(some.container.resources).toEqual({ requests: { cpu: "1" }, limits: { memory: "4Gi" } });
  });

  test.each([26, 30])(
    "a whole rendered pod validates against the Kubernetes schema (1.%i)",
    (minor) => {
      const pod = buildah.render(
        spec({
          tags: ["ghcr.io/acme/api:1.0", "ghcr.io/acme/api:latest"],
          cacheRepo: "ghcr.io/acme/api/cache",
          secrets: [{ id: "npmrc", value: Buffer.from("x") }],
        }),
        { hasRegistryCredentials: true, hasBuildSecrets: true, serverMinorVersion: minor },
      );
      expect(() =>
        new Container(JSON.parse(JSON.stringify(pod.container))).validate(),
      ).not.toThrow();
      const manifest = new Pod({
        metadata: { name: "kib-test", annotations: pod.podAnnotations },
        spec: JSON.parse(
          JSON.stringify({
            restartPolicy: "Never",
            containers: [pod.container],
            volumes: [
              { name: "workspace", emptyDir: {} },
              { name: "registry-credentials", secret: { secretName: "kib-test-registry" } },
              { name: "build-secrets", secret: { secretName: "kib-test-secrets" } },
              ...pod.volumes,
            ],
          }),
        ),
      });
      expect(() => manifest.validate()).not.toThrow();
    },
  );
});

describe("buildah.unsupported", () => {
  test("the common inputs are supported, one platform included", () => {
    expect(
      unsupportedInput(
        buildah,
        spec({
          platforms: ["linux/amd64"],
          secrets: [{ id: "a", value: Buffer.from("b") }],
          cacheRepo: "ghcr.io/acme/cache",
          cacheTtl: "24h",
          target: "t",
        }),
      ),
    ).toBeUndefined();
  });

  test("several platforms: one line naming builder: buildkit", () => {
    const r = unsupportedInput(buildah, spec({ platforms: ["linux/amd64", "linux/arm64"] }));
    expect(r?.input).toBe("platforms");
    expect(r?.detail).toMatch(/one platform.*builder: buildkit/);
  });

  test.each<[string, Partial<BuildSpec>]>([
    ["cache-from", { cacheFrom: ["type=registry,ref=ghcr.io/acme/api:cache"] }],
    ["cache-to", { cacheTo: ["type=registry,ref=ghcr.io/acme/api:cache"] }],
  ])("%s (buildx form) names the engines that read it and cache-repo", (input, overrides) => {
    const r = unsupportedInput(buildah, spec(overrides));
    expect(r?.input).toBe(input);
    expect(r?.detail).toMatch(/builder: buildkit or dind.*"cache-repo"/);
  });
});

describe("the container script", () => {
  const DIGEST = "sha256:4f1e3c0e2b5e0b8f9b7a9a1f6e2b4b3d1c0e8f7a6b5c4d3e2f1a0b9c8d7e6f5a";

  /** Runs BUILDAH_SCRIPT with /bin/sh and a stand-in buildah on PATH that logs each call. */
  async function runScript(
    fake: string,
    env: Record<string, string>,
  ): Promise<{
    code: number;
    termination: string;
    calls: string[];
    dropIn: string;
    output: string;
  }> {
    const dir = await mkdtemp(join(tmpdir(), "kib-buildah-"));
    try {
      await mkdir(join(dir, "bin"));
      const term = join(dir, "termination-log");
      const dropIn = join(dir, "registries.conf.d", "zz.conf");
      await writeFile(
        join(dir, "bin", "buildah"),
        `#!/bin/sh\necho "$*" >> ${dir}/calls\n${fake}\n`,
      );
      await chmod(join(dir, "bin", "buildah"), 0o755);
      await writeFile(term, "");
      const script = BUILDAH_SCRIPT.replaceAll(BUILDAH_REGISTRIES_DROP_IN, dropIn)
        .replace("/etc/containers/registries.conf.d", join(dir, "registries.conf.d"))
        .replaceAll("/dev/termination-log", term)
        .replaceAll("/tmp/digest", join(dir, "digest"));
      const result = await new Promise<{ code: number; output: string }>((resolve) => {
        execFile(
          "/bin/sh",
          ["-c", script, "buildah", "bud", "-t", "a b", "/kaniko/buildcontext"],
          { env: { PATH: `${dir}/bin:/usr/bin:/bin`, ...env } },
          (error, stdout, stderr) =>
            resolve({
              code: error ? Number((error as { code?: number }).code ?? 1) : 0,
              output: stdout + stderr,
            }),
        );
      });
      const calls = (await readFile(join(dir, "calls"), "utf8").catch(() => ""))
        .split("\n")
        .filter(Boolean)
        .map((c) => c.replaceAll(term, "TERM").replaceAll(join(dir, "digest"), "/tmp/digest"));
      return {
        code: result.code,
        output: result.output,
        termination: await readFile(term, "utf8"),
        calls,
        dropIn: await readFile(dropIn, "utf8").catch(() => ""),
      };
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  /** The stand-in writes the digest where --digestfile points, as buildah push does. */
  const PUSH_WRITES_DIGEST = `case "$1" in push) for a; do case "$a" in --digestfile=*) printf '%s' '${DIGEST}' > "\${a#--digestfile=}";; esac; done;; esac`;

  const ENV_BASE = {
    KIB_TAGS: "10.88.0.1:5000/rec/app:1 ghcr.io/acme/api:1.0",
    KIB_PUSH: "true",
    KIB_INSECURE_REGISTRIES: "10.88.0.1:5000",
    KIB_REGISTRIES_CONF: buildahRegistriesConf(["10.88.0.1:5000"]),
  };

  test("success: bud, then one push per tag; only the first push's digest reaches the termination log", async () => {
    const r = await runScript(PUSH_WRITES_DIGEST, ENV_BASE);
    expect(r.code).toBe(0);
    expect(r.termination).toBe(DIGEST);
    expect(r.calls).toEqual([
      "bud -t a b /kaniko/buildcontext",
      "push --storage-driver=vfs --tls-verify=false --digestfile=TERM 10.88.0.1:5000/rec/app:1 docker://10.88.0.1:5000/rec/app:1",
      "push --storage-driver=vfs --digestfile=/tmp/digest ghcr.io/acme/api:1.0 docker://ghcr.io/acme/api:1.0",
    ]);
    expect(r.dropIn).toBe(`${ENV_BASE.KIB_REGISTRIES_CONF}\n`);
  });

  test("a failing bud keeps its exit code, pushes nothing and writes nothing", async () => {
    const r = await runScript(`[ "$1" = bud ] && exit 3`, ENV_BASE);
    expect(r.code).toBe(3);
    expect(r.termination).toBe("");
    expect(r.calls).toEqual(["bud -t a b /kaniko/buildcontext"]);
  });

  test("a failing push keeps its exit code", async () => {
    const r = await runScript(`[ "$1" = push ] && exit 125; exit 0`, ENV_BASE);
    expect(r.code).toBe(125);
    expect(r.calls).toHaveLength(2);
  });

  test("push false: no push; the built image's digest from buildah images", async () => {
    const r = await runScript(
      `[ "$1" = images ] && printf '%s\\n%s\\n' '${DIGEST}' 'sha256:other'; exit 0`,
      { ...ENV_BASE, KIB_PUSH: "false" },
    );
    expect(r.code).toBe(0);
    expect(r.termination).toBe(DIGEST);
    expect(r.calls).toEqual([
      "bud -t a b /kaniko/buildcontext",
      "images --storage-driver=vfs --no-trunc --format {{.Digest}} 10.88.0.1:5000/rec/app:1",
    ]);
  });

  test("the script never prints its arguments or environment", async () => {
    const r = await runScript(PUSH_WRITES_DIGEST, { ...ENV_BASE, SECRETISH: "do-not-print" });
    expect(r.output).toBe("");
  });
});
