import { execFile } from "node:child_process";
import { mkdtemp, readFile, writeFile, chmod, rm, mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Container, Pod } from "kubernetes-models/v1";
import {
  buildkit,
  buildctlArgs,
  registryOf,
  BUILDKIT_IMAGE,
  BUILDKIT_METADATA_FILE,
  BUILDKIT_SCRIPT,
} from "../../src/core/builders/buildkit.js";
import type { RenderEnvironment } from "../../src/core/builders/types.js";
import type { BuildSpec } from "../../src/core/types.js";
import { specOf } from "./spec-fixture.js";

const FIXTURES = fileURLToPath(new URL("../support/recordings/", import.meta.url));

function spec(overrides: Partial<BuildSpec> = {}): BuildSpec {
  return specOf({
    context: { kind: "dir", dir: "/src/app" },
    tags: ["ghcr.io/acme/api:1.0"],
    builder: "buildkit",
    builderImage: BUILDKIT_IMAGE,
    contextImage: "busybox:1.37",
    ...overrides,
  });
}

const ENV: RenderEnvironment = {
  hasRegistryCredentials: false,
  hasBuildSecrets: false,
  serverMinorVersion: 26,
};

const HEAD = ["build", "--frontend", "dockerfile.v0"];
const LOCALS = [
  "--local",
  "context=/kaniko/buildcontext",
  "--local",
  "dockerfile=/kaniko/buildcontext",
  "--opt",
  "filename=Dockerfile",
];
const TAIL = ["--progress=plain", "--metadata-file", "/home/user/metadata.json"];
const OUT = ["--output", "type=image,name=ghcr.io/acme/api:1.0,push=true"];

describe("buildkit args", () => {
  test.each<[string, Partial<BuildSpec>, string[]]>([
    ["one tag, pushed", {}, [...HEAD, ...LOCALS, ...OUT, ...TAIL]],
    [
      "several tags: the name field quoted for buildctl's CSV",
      { tags: ["ghcr.io/acme/api:1.0", "ghcr.io/acme/api:latest", "docker.io/acme/api:1.0"] },
      [
        ...HEAD,
        ...LOCALS,
        "--output",
        'type=image,"name=ghcr.io/acme/api:1.0,ghcr.io/acme/api:latest,docker.io/acme/api:1.0",push=true',
        ...TAIL,
      ],
    ],
    [
      "push false",
      { push: false },
      [...HEAD, ...LOCALS, "--output", "type=image,name=ghcr.io/acme/api:1.0,push=false", ...TAIL],
    ],
    [
      "build-args, in order, values kept whole",
      {
        buildArgs: [
          { key: "VERSION", value: "1.2.3" },
          { key: "FLAGS", value: "a=b,c d" },
        ],
      },
      [
        ...HEAD,
        ...LOCALS,
        "--opt",
        "build-arg:VERSION=1.2.3",
        "--opt",
        "build-arg:FLAGS=a=b,c d",
        ...OUT,
        ...TAIL,
      ],
    ],
    [
      "labels",
      {
        labels: [{ key: "org.opencontainers.image.source", value: "https://github.com/acme/api" }],
      },
      [
        ...HEAD,
        ...LOCALS,
        "--opt",
        "label:org.opencontainers.image.source=https://github.com/acme/api",
        ...OUT,
        ...TAIL,
      ],
    ],
    [
      "target",
      { target: "runtime" },
      [...HEAD, ...LOCALS, "--opt", "target=runtime", ...OUT, ...TAIL],
    ],
    [
      "platforms, comma list in one opt",
      { platforms: ["linux/amd64", "linux/arm64"] },
      [...HEAD, ...LOCALS, "--opt", "platform=linux/amd64,linux/arm64", ...OUT, ...TAIL],
    ],
    [
      "cache-repo: registry import + export, mode=max, ignore-error",
      { cacheRepo: "ghcr.io/acme/api/cache" },
      [
        ...HEAD,
        ...LOCALS,
        "--import-cache",
        "type=registry,ref=ghcr.io/acme/api/cache:buildcache",
        "--export-cache",
        "type=registry,ref=ghcr.io/acme/api/cache:buildcache,mode=max,ignore-error=true",
        ...OUT,
        ...TAIL,
      ],
    ],
    [
      "cache-from / cache-to buildx-style, ignore-error added",
      {
        cacheFrom: ["type=registry,ref=ghcr.io/acme/api:cache"],
        cacheTo: ["type=registry,ref=ghcr.io/acme/api:cache,mode=max"],
      },
      [
        ...HEAD,
        ...LOCALS,
        "--import-cache",
        "type=registry,ref=ghcr.io/acme/api:cache",
        "--export-cache",
        "type=registry,ref=ghcr.io/acme/api:cache,mode=max,ignore-error=true",
        ...OUT,
        ...TAIL,
      ],
    ],
    [
      "cache-to with ignore-error given: kept as the user wrote it",
      { cacheTo: ["type=registry,ref=ghcr.io/acme/api:cache,ignore-error=false"] },
      [
        ...HEAD,
        ...LOCALS,
        "--export-cache",
        "type=registry,ref=ghcr.io/acme/api:cache,ignore-error=false",
        ...OUT,
        ...TAIL,
      ],
    ],
    [
      "a quoted CSV field in a cache entry stays quoted",
      { cacheTo: ['type=s3,region=eu-west-1,bucket=b,"name=a,b"'] },
      [
        ...HEAD,
        ...LOCALS,
        "--export-cache",
        'type=s3,region=eu-west-1,bucket=b,"name=a,b",ignore-error=true',
        ...OUT,
        ...TAIL,
      ],
    ],
    [
      "cache-from bare reference (buildx shorthand) means a registry ref",
      { cacheFrom: ["ghcr.io/acme/api:cache"] },
      [
        ...HEAD,
        ...LOCALS,
        "--import-cache",
        "type=registry,ref=ghcr.io/acme/api:cache",
        ...OUT,
        ...TAIL,
      ],
    ],
    [
      "cache-repo and cache-from/to together: cache-repo first",
      {
        cacheRepo: "ghcr.io/acme/api/cache",
        cacheFrom: ["type=registry,ref=ghcr.io/acme/base:cache"],
        cacheTo: ["type=inline"],
      },
      [
        ...HEAD,
        ...LOCALS,
        "--import-cache",
        "type=registry,ref=ghcr.io/acme/api/cache:buildcache",
        "--export-cache",
        "type=registry,ref=ghcr.io/acme/api/cache:buildcache,mode=max,ignore-error=true",
        "--import-cache",
        "type=registry,ref=ghcr.io/acme/base:cache",
        "--export-cache",
        "type=inline,ignore-error=true",
        ...OUT,
        ...TAIL,
      ],
    ],
    [
      "insecure registry: output and cache refs on it get registry.insecure=true",
      {
        tags: ["10.88.0.1:5000/rec/app:1"],
        cacheRepo: "10.88.0.1:5000/rec/cache",
        cacheFrom: [
          "type=registry,ref=10.88.0.1:5000/rec/other:cache",
          "type=registry,ref=ghcr.io/acme/api:cache",
        ],
        insecureRegistries: ["10.88.0.1:5000"],
      },
      [
        ...HEAD,
        ...LOCALS,
        "--import-cache",
        "type=registry,ref=10.88.0.1:5000/rec/cache:buildcache,registry.insecure=true",
        "--export-cache",
        "type=registry,ref=10.88.0.1:5000/rec/cache:buildcache,mode=max,registry.insecure=true,ignore-error=true",
        "--import-cache",
        "type=registry,ref=10.88.0.1:5000/rec/other:cache,registry.insecure=true",
        "--import-cache",
        "type=registry,ref=ghcr.io/acme/api:cache",
        "--output",
        "type=image,name=10.88.0.1:5000/rec/app:1,push=true,registry.insecure=true",
        ...TAIL,
      ],
    ],
    [
      "insecure registry that no tag uses: no flag",
      { insecureRegistries: ["10.88.0.1:5000"] },
      [...HEAD, ...LOCALS, ...OUT, ...TAIL],
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
        ...LOCALS,
        "--secret",
        "id=npmrc,src=/run/secrets/k8s-image-build/npmrc",
        "--secret",
        "id=gh_token,src=/run/secrets/k8s-image-build/gh_token",
        ...OUT,
        ...TAIL,
      ],
    ],
    [
      "git context: the frontend fetches it, no locals",
      { context: { kind: "git", url: "https://github.com/acme/api.git#main" } },
      [
        ...HEAD,
        "--opt",
        "context=https://github.com/acme/api.git#main",
        "--opt",
        "filename=Dockerfile",
        ...OUT,
        ...TAIL,
      ],
    ],
    [
      "git context with the Dockerfile in a subdirectory",
      {
        context: { kind: "git", url: "https://github.com/acme/api.git" },
        dockerfile: "docker/api.Dockerfile",
      },
      [
        ...HEAD,
        "--opt",
        "context=https://github.com/acme/api.git",
        "--opt",
        "filename=docker/api.Dockerfile",
        ...OUT,
        ...TAIL,
      ],
    ],
    [
      "Dockerfile in a subdirectory: its directory is the dockerfile local",
      { dockerfile: "docker/build/api.Dockerfile" },
      [
        ...HEAD,
        "--local",
        "context=/kaniko/buildcontext",
        "--local",
        "dockerfile=/kaniko/buildcontext/docker/build",
        "--opt",
        "filename=api.Dockerfile",
        ...OUT,
        ...TAIL,
      ],
    ],
    [
      "Dockerfile given as ./Dockerfile",
      { dockerfile: "./Dockerfile" },
      [...HEAD, ...LOCALS, ...OUT, ...TAIL],
    ],
    [
      "everything at once, in a fixed order",
      {
        tags: ["ghcr.io/acme/api:1.0", "ghcr.io/acme/api:latest"],
        target: "runtime",
        platforms: ["linux/amd64", "linux/arm64"],
        buildArgs: [{ key: "VERSION", value: "1.0" }],
        labels: [{ key: "team", value: "api" }],
        secrets: [{ id: "npmrc", value: Buffer.from("x") }],
        cacheRepo: "ghcr.io/acme/api/cache",
      },
      [
        ...HEAD,
        ...LOCALS,
        "--opt",
        "target=runtime",
        "--opt",
        "platform=linux/amd64,linux/arm64",
        "--opt",
        "build-arg:VERSION=1.0",
        "--opt",
        "label:team=api",
        "--secret",
        "id=npmrc,src=/run/secrets/k8s-image-build/npmrc",
        "--import-cache",
        "type=registry,ref=ghcr.io/acme/api/cache:buildcache",
        "--export-cache",
        "type=registry,ref=ghcr.io/acme/api/cache:buildcache,mode=max,ignore-error=true",
        "--output",
        'type=image,"name=ghcr.io/acme/api:1.0,ghcr.io/acme/api:latest",push=true',
        ...TAIL,
      ],
    ],
  ])("%s", (_name, overrides, expected) => {
    const s = spec(overrides);
    expect(buildctlArgs(s)).toEqual(expected);
    expect(buildkit.render(s, ENV).container.args).toEqual(expected);
  });

  test("secret values appear nowhere in the rendered pod", () => {
    const s = spec({ secrets: [{ id: "npmrc", value: Buffer.from("TOKEN-abc123") }] });
    const pod = buildkit.render(s, { ...ENV, hasBuildSecrets: true });
    expect(JSON.stringify(pod)).not.toContain("TOKEN-abc123");
  });

  test.each([
    ["ghcr.io/acme/api:1", "ghcr.io"],
    ["10.88.0.1:5000/rec/app:1", "10.88.0.1:5000"],
    ["localhost/app", "localhost"],
    ["acme/api:1", "docker.io"],
    ["ubuntu", "docker.io"],
    ["Registry.Example.com/a/b@sha256:" + "0".repeat(64), "registry.example.com"],
  ])("registryOf(%s) = %s", (ref, registry) => {
    expect(registryOf(ref)).toBe(registry);
  });
});

describe("buildkit container", () => {
  test("the command is a small sh -c script around buildctl-daemonless.sh", () => {
    const { container } = buildkit.render(spec(), ENV);
    expect(container.name).toBe("build");
    expect(container.image).toBe(BUILDKIT_IMAGE);
    expect(container.command).toEqual(["sh", "-c", BUILDKIT_SCRIPT, "buildkit"]);
    expect(BUILDKIT_SCRIPT).toBe(
      `buildctl-daemonless.sh "$@" && sed -n 's/.*"containerimage\\.digest": *"\\(sha256:[0-9a-f]*\\)".*/\\1/p' ` +
        `/home/user/metadata.json | head -n 1 > /dev/termination-log`,
    );
    expect(BUILDKIT_SCRIPT).not.toMatch(/\bjq\b/);
  });

  test("defaults: pinned rootless image, privileged PSA level, asks for the server version", () => {
    expect(buildkit.name).toBe("buildkit");
    expect(buildkit.defaultImage).toMatch(/^moby\/buildkit:v\d+\.\d+\.\d+-rootless$/);
    expect(buildkit.podSecurityLevel).toBe("privileged");
    expect(buildkit.needsServerVersion).toBe(true);
  });

  test("env: the no-process-sandbox flag and DOCKER_CONFIG", () => {
    const { container } = buildkit.render(spec(), ENV);
    expect(container.env).toEqual(
      expect.arrayContaining([
        { name: "BUILDKITD_FLAGS", value: "--oci-worker-no-process-sandbox" },
        { name: "DOCKER_CONFIG", value: "/home/user/.docker" },
      ]),
    );
  });

  test("server 1.26: seccomp field, AppArmor by pod annotation (as recorded on the real cluster)", () => {
    const pod = buildkit.render(spec(), { ...ENV, serverMinorVersion: 26 });
    expect(pod.container.securityContext).toEqual({
      runAsUser: 1000,
      runAsGroup: 1000,
      seccompProfile: { type: "Unconfined" },
    });
    expect(pod.podAnnotations).toEqual({
      "container.apparmor.security.beta.kubernetes.io/build": "unconfined",
    });
  });

  test.each([30, 31, 35])(
    "server 1.%i: AppArmor as the appArmorProfile field, no annotation",
    (minor) => {
      const pod = buildkit.render(spec(), { ...ENV, serverMinorVersion: minor });
      expect(pod.container.securityContext).toEqual({
        runAsUser: 1000,
        runAsGroup: 1000,
        seccompProfile: { type: "Unconfined" },
        appArmorProfile: { type: "Unconfined" },
      });
      expect(pod.podAnnotations).toBeUndefined();
    },
  );

  test("server version unknown: the annotation, which every version honours", () => {
    const pod = buildkit.render(spec(), { hasRegistryCredentials: false, hasBuildSecrets: false });
    expect(pod.podAnnotations).toEqual({
      "container.apparmor.security.beta.kubernetes.io/build": "unconfined",
    });
    expect(pod.container.securityContext?.appArmorProfile).toBeUndefined();
  });

  test("allowPrivilegeEscalation and privileged stay unset (no_new_privs breaks newuidmap)", () => {
    for (const minor of [26, 30]) {
      const sc =
        buildkit.render(spec(), { ...ENV, serverMinorVersion: minor }).container.securityContext ??
        {};
      expect("allowPrivilegeEscalation" in sc).toBe(false);
      expect("privileged" in sc).toBe(false);
    }
  });

  test("security context matches the recorded job.json that worked on the cluster", async () => {
    const job = JSON.parse(
      await readFile(join(FIXTURES, "buildkit-rootless-success-cold/job.json"), "utf8"),
    );
    const recorded = job.spec.template.spec.containers[0];
    const pod = buildkit.render(spec(), { ...ENV, serverMinorVersion: 26 });
    expect(pod.container.securityContext).toEqual(recorded.securityContext);
    expect(pod.podAnnotations).toEqual(job.spec.template.metadata.annotations);
    expect(pod.container.env).toEqual(expect.arrayContaining(recorded.env));
    // The recording read the context at /workspace; every builder now reads it at CONTEXT_DIR
    // (/kaniko/buildcontext, Kaniko's convention): the path is neutral to BuildKit.
    expect(pod.container.volumeMounts).toEqual(
      recorded.volumeMounts.map((m: { name: string; mountPath: string }) =>
        m.name === "workspace" ? { ...m, mountPath: "/kaniko/buildcontext" } : m,
      ),
    );
    expect(pod.volumes).toEqual(
      job.spec.template.spec.volumes.filter((v: { name: string }) => v.name !== "workspace"),
    );
  });

  test("volumes and mounts without credentials or secrets", () => {
    const pod = buildkit.render(spec(), ENV);
    expect(pod.volumes).toEqual([{ name: "buildkitd", emptyDir: {} }]);
    expect(pod.container.volumeMounts).toEqual([
      { name: "workspace", mountPath: "/kaniko/buildcontext" },
      { name: "buildkitd", mountPath: "/home/user/.local/share/buildkit" },
    ]);
  });

  test("volumes and mounts with registry credentials and build secrets (read-only)", () => {
    const pod = buildkit.render(spec({ secrets: [{ id: "npmrc", value: Buffer.from("x") }] }), {
      ...ENV,
      hasRegistryCredentials: true,
      hasBuildSecrets: true,
    });
    expect(pod.volumes).toEqual([{ name: "buildkitd", emptyDir: {} }]);
    expect(pod.container.volumeMounts).toEqual([
      { name: "workspace", mountPath: "/kaniko/buildcontext" },
      { name: "buildkitd", mountPath: "/home/user/.local/share/buildkit" },
      { name: "registry-credentials", mountPath: "/home/user/.docker", readOnly: true },
      { name: "build-secrets", mountPath: "/run/secrets/k8s-image-build", readOnly: true },
    ]);
  });

  test("resources from the spec go on the build container", () => {
    const none = buildkit.render(spec(), ENV).container;
    expect(none.resources).toBeUndefined();
    const some = buildkit.render(
      spec({ resources: { requests: { cpu: "1", memory: "2Gi" }, limits: { memory: "4Gi" } } }),
      ENV,
    ).container;
    expect(some.resources).toEqual({
      requests: { cpu: "1", memory: "2Gi" },
      limits: { memory: "4Gi" },
    });
  });

  test.each([26, 30])(
    "a whole rendered container and pod validate against the Kubernetes schema (1.%i)",
    (minor) => {
      const s = spec({
        tags: ["ghcr.io/acme/api:1.0", "ghcr.io/acme/api:latest"],
        platforms: ["linux/amd64", "linux/arm64"],
        cacheRepo: "ghcr.io/acme/api/cache",
        secrets: [{ id: "npmrc", value: Buffer.from("x") }],
        resources: { requests: { cpu: "500m" }, limits: { memory: "4Gi" } },
      });
      const pod = buildkit.render(s, {
        hasRegistryCredentials: true,
        hasBuildSecrets: true,
        serverMinorVersion: minor,
      });
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

describe("the container script", () => {
  /** Runs BUILDKIT_SCRIPT with /bin/sh and a stand-in buildctl-daemonless.sh on PATH. */
  async function runScript(
    fake: string,
  ): Promise<{ code: number; termination: string; argv: string }> {
    const dir = await mkdtemp(join(tmpdir(), "kib-buildkit-"));
    try {
      await mkdir(join(dir, "bin"));
      const meta = join(dir, "metadata.json");
      const term = join(dir, "termination-log");
      await writeFile(
        join(dir, "bin", "buildctl-daemonless.sh"),
        `#!/bin/sh\necho "$@" > ${dir}/argv\n${fake}\n`,
      );
      await chmod(join(dir, "bin", "buildctl-daemonless.sh"), 0o755);
      await writeFile(term, "");
      const script = BUILDKIT_SCRIPT.replace(BUILDKIT_METADATA_FILE, meta).replace(
        "/dev/termination-log",
        term,
      );
      const code = await new Promise<number>((resolve) => {
        execFile(
          "/bin/sh",
          ["-c", script, "buildkit", "build", "--opt", "build-arg:A=b c"],
          { env: { PATH: `${dir}/bin:/usr/bin:/bin`, META: meta } },
          (error) => resolve(error ? Number((error as { code?: number }).code ?? 1) : 0),
        );
      });
      const argv = await readFile(join(dir, "argv"), "utf8").catch(() => "");
      return { code, termination: await readFile(term, "utf8"), argv };
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  const DIGEST = "sha256:8a110cb588de1d7e4a8d90f76f5dbe2deed45b134c2d0e90d3d30e07351e0729";

  test("success: only the digest reaches the termination log (indented metadata, as buildctl writes it)", async () => {
    const metadata = {
      "containerimage.config.digest": "sha256:" + "5".repeat(64),
      "containerimage.descriptor": {
        mediaType: "application/vnd.oci.image.index.v1+json",
        digest: "sha256:" + "1".repeat(64),
      },
      "containerimage.digest": DIGEST,
      "image.name": "ghcr.io/acme/api:1.0,ghcr.io/acme/api:latest",
    };
    const r = await runScript(`cat > "$META" <<'EOF'\n${JSON.stringify(metadata, null, 2)}\nEOF`);
    expect(r).toEqual({
      code: 0,
      termination: `${DIGEST}\n`,
      argv: "build --opt build-arg:A=b c\n",
    });
  });

  test("success with compact metadata JSON", async () => {
    const r = await runScript(
      `printf '%s' '{"containerimage.config.digest":"sha256:${"5".repeat(64)}","containerimage.digest":"${DIGEST}"}' > "$META"`,
    );
    // No newline at the end of the file: GNU sed adds none, BusyBox sed does; readers trim.
    expect(r.termination.trimEnd()).toBe(DIGEST);
  });

  test("a failing build keeps buildctl's exit code and writes nothing", async () => {
    const r = await runScript("exit 3");
    expect(r.code).toBe(3);
    expect(r.termination).toBe("");
  });
});

describe("insecure registries reach the daemon: pulls over plain HTTP too", () => {
  /**
   * The stock rootless image as it behaves: buildctl-daemonless.sh starts buildkitd with
   * $BUILDKITD_FLAGS (word-split), and buildkitd reads --config, else its rootless default
   * ~/.config/buildkit/buildkitd.toml, which the image does not carry. This stand-in buildkitd
   * prints the configuration it would run with.
   */
  async function daemonConfigOf(s: BuildSpec): Promise<string> {
    const { container } = buildkit.render(s, ENV);
    const dir = await mkdtemp(join(tmpdir(), "kib-buildkitd-"));
    try {
      await mkdir(join(dir, "bin"));
      await mkdir(join(dir, "home"));
      const daemonless = [
        "#!/bin/sh",
        "config=",
        "for flag in $BUILDKITD_FLAGS; do",
        '  case "$flag" in --config=*) config="${flag#--config=}";; esac',
        "done",
        '[ -n "$config" ] || config="$HOME/.config/buildkit/buildkitd.toml"',
        `if [ -f "$config" ]; then cat "$config"; else echo "(no buildkitd.toml)"; fi > ${dir}/daemon-config`,
        `printf '{"containerimage.digest":"sha256:${"a".repeat(64)}"}' > ${dir}/metadata.json`,
      ].join("\n");
      await writeFile(join(dir, "bin", "buildctl-daemonless.sh"), `${daemonless}\n`);
      await chmod(join(dir, "bin", "buildctl-daemonless.sh"), 0o755);
      const script = container
        .command![2]!.replace(BUILDKIT_METADATA_FILE, join(dir, "metadata.json"))
        .replace("/dev/termination-log", join(dir, "termination-log"));
      const env: Record<string, string> = {
        PATH: `${dir}/bin:/usr/bin:/bin`,
        HOME: join(dir, "home"),
      };
      for (const e of container.env ?? []) env[e.name] = e.value ?? "";
      await new Promise<void>((resolve, reject) =>
        execFile("/bin/sh", ["-c", script, "buildkit", ...container.args!], { env }, (error) =>
          error ? reject(error) : resolve(),
        ),
      );
      return await readFile(join(dir, "daemon-config"), "utf8");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  test("every insecure registry gets http = true and insecure = true in the daemon's buildkitd.toml", async () => {
    const s = spec({ insecureRegistries: ["mirror.internal:5000", "10.0.0.5:5000"] });
    expect(await daemonConfigOf(s)).toBe(
      '[registry."mirror.internal:5000"]\n  http = true\n  insecure = true\n\n' +
        '[registry."10.0.0.5:5000"]\n  http = true\n  insecure = true\n\n',
    );
  });

  test("without insecure registries the pod is unchanged: no config, the plain script", async () => {
    const s = spec();
    expect(await daemonConfigOf(s)).toBe("(no buildkitd.toml)\n");
    const { container } = buildkit.render(s, ENV);
    expect(container.command).toEqual(["sh", "-c", BUILDKIT_SCRIPT, "buildkit"]);
    expect(container.env?.map((e) => e.name)).not.toContain("BUILDKITD_TOML");
  });
});

describe("buildkit.unsupported", () => {
  test("the common inputs are all supported", () => {
    expect(
      buildkit.unsupported(
        spec({
          platforms: ["linux/amd64"],
          secrets: [{ id: "a", value: Buffer.from("b") }],
          cacheRepo: "ghcr.io/acme/cache",
          cacheFrom: ["type=registry,ref=ghcr.io/acme/api:cache"],
          cacheTo: ["type=registry,ref=ghcr.io/acme/api:cache"],
          context: { kind: "git", url: "https://github.com/acme/api.git" },
          target: "t",
        }),
      ),
    ).toBeUndefined();
  });

  test("cache-ttl is Kaniko-only", () => {
    const r = buildkit.unsupported(spec({ cacheTtl: "168h" }));
    expect(r?.input).toBe("cache-ttl");
    expect(r?.detail).toMatch(/Kaniko-only/);
  });
});

describe("buildkit.warningFor", () => {
  const warn = (line: string) => buildkit.warningFor?.(line);

  async function recordedLines(scenario: string): Promise<string[]> {
    const text = await readFile(join(FIXTURES, scenario, "log-build.txt"), "utf8");
    // `<RFC3339Nano> <line>`: follow.ts hands builders the line without the timestamp.
    return text.split("\n").map((l) => l.replace(/^\S+ ?/, ""));
  }

  test.each(["buildkit-rootless-success-cold", "buildkit-rootless-run-fails"])(
    "no warning for any line of the recorded %s log (first-run cache import miss included)",
    async (scenario) => {
      const lines = await recordedLines(scenario);
      expect(lines.length).toBeGreaterThan(10);
      expect(lines.map(warn).filter((w) => w !== undefined)).toEqual([]);
    },
  );

  // v0.11.6 ignored registry.insecure=true on --import-cache: the import failed on every build,
  // silently as far as the build's result goes. That is exactly what deserves a warning.
  test.each(["buildkit-privileged-success-cold", "buildkit-privileged-run-fails"])(
    "the recorded %s log: one warning, for the cache import that could never work",
    async (scenario) => {
      const warnings = (await recordedLines(scenario)).map(warn).filter((w) => w !== undefined);
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatch(
        /^BuildKit could not import the registry cache, building without it: failed to do request: Head "https:\/\/10\.88\.0\.1:5000\/v2\/rec\/bk-cache-[a-z-]+\/manifests\/latest": http: server gave HTTP response to HTTPS client$/,
      );
    },
  );

  test.each([
    // The recorded first-run miss: printed as a step error and again in the closing error block.
    "#4 importing cache manifest from 10.88.0.1:5000/rec/bkr-cache-success-cold:buildcache",
    "#4 ERROR: failed to configure registry cache importer: 10.88.0.1:5000/rec/bkr-cache-success-cold:buildcache: not found",
    " > importing cache manifest from 10.88.0.1:5000/rec/bkr-cache-success-cold:buildcache:",
    // A successful export.
    "#10 exporting content cache",
    "#10 exporting cache to registry",
    "#10 preparing build cache for export 0.0s done",
    "#10 DONE 0.0s",
    // A failing RUN is an error, not a warning.
    ' > [2/2] RUN echo "about to fail" && exit 3:',
    'error: failed to solve: process "/bin/sh -c exit 3" did not complete successfully: exit code: 3',
  ])("no warning: %s", (line) => {
    expect(warn(line)).toBeUndefined();
  });

  test.each([
    // v0.11.x (the recordings' version) names the registry cache export step "exporting content cache".
    [" > exporting content cache:", "exporting content cache"],
    // Later versions: "exporting cache to registry" (cache/remotecache/registry), and the other exporters.
    [" > exporting cache to registry:", "exporting cache to registry"],
    [" > exporting cache to registry:\r", "exporting cache to registry"],
    [" > exporting cache to Amazon S3:", "exporting cache to Amazon S3"],
    [" > exporting to GitHub Actions Cache:", "exporting to GitHub Actions Cache"],
  ])("a failed, ignored cache export warns once, at the closing error block: %j", (line, step) => {
    const w = warn(line);
    expect(w).toContain(`"${step}"`);
    expect(w).toMatch(/ignored \(ignore-error=true\)/);
    expect(w).not.toContain("\n");
  });

  test("a cache import that fails for another reason than a first-run miss warns with the cause", () => {
    const w = warn(
      "#4 ERROR: failed to configure registry cache importer: ghcr.io/acme/api/cache:buildcache: unexpected status from HEAD request: 401 Unauthorized",
    );
    expect(w).toBe(
      "BuildKit could not import the registry cache, building without it: ghcr.io/acme/api/cache:buildcache: unexpected status from HEAD request: 401 Unauthorized",
    );
  });
});
