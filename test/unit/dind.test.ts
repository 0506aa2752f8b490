import { execFile } from "node:child_process";
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Container, Pod } from "kubernetes-models/v1";
import { dind, dockerArgs, DIND_IMAGE, DIND_SCRIPT } from "../../src/core/builders/dind.js";
import { unsupportedInput } from "../../src/core/builders/index.js";
import type { RenderEnvironment } from "../../src/core/builders/types.js";
import type { BuildSpec } from "../../src/core/types.js";
import { specOf } from "./spec-fixture.js";

const FIXTURES = fileURLToPath(new URL("../support/recordings/", import.meta.url));

function spec(overrides: Partial<BuildSpec> = {}): BuildSpec {
  return specOf({
    context: { kind: "dir", dir: "/src/app" },
    tags: ["ghcr.io/acme/api:1.0"],
    builder: "dind",
    builderImage: DIND_IMAGE,
    allowPrivileged: true,
    ...overrides,
  });
}

const ENV: RenderEnvironment = { hasRegistryCredentials: false, hasBuildSecrets: false };

const HEAD = ["build", "--progress=plain", "-f", "/kaniko/buildcontext/Dockerfile"];
const TAG = ["-t", "ghcr.io/acme/api:1.0"];
const CONTEXT = "/kaniko/buildcontext";

describe("docker build args", () => {
  test.each<[string, Partial<BuildSpec>, string[]]>([
    ["one tag", {}, [...HEAD, ...TAG, CONTEXT]],
    [
      "several tags: one -t each",
      { tags: ["ghcr.io/acme/api:1.0", "docker.io/acme/api:1.0"] },
      [...HEAD, ...TAG, "-t", "docker.io/acme/api:1.0", CONTEXT],
    ],
    [
      "build-args, in order, values kept whole",
      {
        buildArgs: [
          { key: "VERSION", value: "1.2.3" },
          { key: "FLAGS", value: "a=b,c d" },
        ],
      },
      [...HEAD, ...TAG, "--build-arg", "VERSION=1.2.3", "--build-arg", "FLAGS=a=b,c d", CONTEXT],
    ],
    [
      "labels",
      { labels: [{ key: "org.opencontainers.image.title", value: "api" }] },
      [...HEAD, ...TAG, "--label", "org.opencontainers.image.title=api", CONTEXT],
    ],
    ["target", { target: "runtime" }, [...HEAD, ...TAG, "--target", "runtime", CONTEXT]],
    [
      "platforms, comma-joined as docker build takes them",
      { platforms: ["linux/amd64", "linux/arm64"] },
      [...HEAD, ...TAG, "--platform", "linux/amd64,linux/arm64", CONTEXT],
    ],
    [
      "secrets through BuildKit: one --secret per id; values never in args",
      { secrets: [{ id: "npmrc", value: Buffer.from("s3cr3t") }] },
      [...HEAD, ...TAG, "--secret", "id=npmrc,src=/run/secrets/k8s-image-build/npmrc", CONTEXT],
    ],
    [
      "cache-repo: the registry cache at <repo>:buildcache, exported mode=max and never failing the build",
      { cacheRepo: "ghcr.io/acme/api/cache" },
      [
        ...HEAD,
        ...TAG,
        "--cache-from",
        "type=registry,ref=ghcr.io/acme/api/cache:buildcache",
        "--cache-to",
        "type=registry,ref=ghcr.io/acme/api/cache:buildcache,mode=max,ignore-error=true",
        CONTEXT,
      ],
    ],
    [
      "buildx-style cache-from/cache-to passed through (a bare reference is a registry cache)",
      {
        cacheFrom: ["ghcr.io/acme/api:cache"],
        cacheTo: ["type=registry,ref=ghcr.io/acme/api:cache,mode=max"],
      },
      [
        ...HEAD,
        ...TAG,
        "--cache-from",
        "type=registry,ref=ghcr.io/acme/api:cache",
        "--cache-to",
        "type=registry,ref=ghcr.io/acme/api:cache,mode=max,ignore-error=true",
        CONTEXT,
      ],
    ],
    [
      "insecure cache registry: registry.insecure=true on its cache entries",
      {
        tags: ["10.88.0.1:5000/rec/app:1"],
        cacheRepo: "10.88.0.1:5000/rec/cache",
        insecureRegistries: ["10.88.0.1:5000"],
      },
      [
        ...HEAD,
        "-t",
        "10.88.0.1:5000/rec/app:1",
        "--cache-from",
        "type=registry,ref=10.88.0.1:5000/rec/cache:buildcache,registry.insecure=true",
        "--cache-to",
        "type=registry,ref=10.88.0.1:5000/rec/cache:buildcache,mode=max,registry.insecure=true,ignore-error=true",
        CONTEXT,
      ],
    ],
    [
      "Dockerfile in a subdirectory",
      { dockerfile: "./docker/api.Dockerfile" },
      [
        "build",
        "--progress=plain",
        "-f",
        "/kaniko/buildcontext/docker/api.Dockerfile",
        ...TAG,
        CONTEXT,
      ],
    ],
    [
      "git context: the daemon fetches it, -f inside the repository",
      { context: { kind: "git", url: "https://github.com/acme/api.git#main" } },
      [
        "build",
        "--progress=plain",
        "-f",
        "Dockerfile",
        ...TAG,
        "https://github.com/acme/api.git#main",
      ],
    ],
  ])("%s", (_name, overrides, expected) => {
    expect(dockerArgs(spec(overrides))).toEqual(expected);
  });
});

describe("dind container", () => {
  test("defaults: a pinned docker:<version>-dind, Pod Security privileged, a privileged container", () => {
    expect(dind.name).toBe("dind");
    expect(dind.defaultImage).toMatch(/^docker\.io\/library\/docker:\d+\.\d+\.\d+-dind$/);
    expect(dind.podSecurityLevel).toBe("privileged");
    expect(dind.privileged).toBe(true);
  });

  test("privileged: true, as recorded (SYS_ADMIN and NET_ADMIN alone fail at the first RUN)", async () => {
    const job = JSON.parse(await readFile(join(FIXTURES, "dind-success-cold/job.json"), "utf8"));
    const recorded = job.spec.template.spec.containers[0];
    const pod = dind.render(spec(), ENV);
    expect(pod.container.securityContext).toEqual(recorded.securityContext);
    expect(pod.volumes).toEqual(
      job.spec.template.spec.volumes.filter((v: { name: string }) => v.name !== "workspace"),
    );
    // The recording mounted the context at /workspace; the product's one path for every builder is
    // CONTEXT_DIR (where Kaniko never snapshots). The other mounts are as recorded.
    expect(pod.container.volumeMounts).toEqual(
      recorded.volumeMounts.map((mount: { name: string; mountPath: string }) =>
        mount.name === "workspace" ? { ...mount, mountPath: "/kaniko/buildcontext" } : mount,
      ),
    );
  });

  test("the command is the sh -c script, then docker's arguments; env carries dockerd's flags and the tags", () => {
    const { container } = dind.render(
      spec({
        tags: ["10.88.0.1:5000/rec/app:1", "10.88.0.1:5000/rec/app:latest"],
        insecureRegistries: ["10.88.0.1:5000", "mirror.local"],
        push: false,
      }),
      ENV,
    );
    expect(container.command).toEqual(["sh", "-c", DIND_SCRIPT, "dind"]);
    expect(container.args?.[0]).toBe("build");
    expect(container.env).toEqual([
      {
        name: "KIB_DOCKERD_FLAGS",
        value: "--insecure-registry=10.88.0.1:5000 --insecure-registry=mirror.local",
      },
      { name: "KIB_TAGS", value: "10.88.0.1:5000/rec/app:1 10.88.0.1:5000/rec/app:latest" },
      { name: "KIB_PUSH", value: "false" },
      { name: "DOCKER_CONFIG", value: "/root/.docker" },
    ]);
  });

  test("registry credentials: the Secret's config.json as one file in DOCKER_CONFIG; build secrets read-only", () => {
    const pod = dind.render(spec({ secrets: [{ id: "npmrc", value: Buffer.from("x") }] }), {
      hasRegistryCredentials: true,
      hasBuildSecrets: true,
    });
    expect(pod.container.volumeMounts).toEqual([
      { name: "workspace", mountPath: "/kaniko/buildcontext" },
      { name: "docker", mountPath: "/var/lib/docker" },
      {
        name: "registry-credentials",
        mountPath: "/root/.docker/config.json",
        subPath: "config.json",
        readOnly: true,
      },
      { name: "build-secrets", mountPath: "/run/secrets/k8s-image-build", readOnly: true },
    ]);
  });

  test("a whole rendered pod validates against the Kubernetes schema", () => {
    const pod = dind.render(
      spec({
        cacheRepo: "ghcr.io/acme/api/cache",
        secrets: [{ id: "npmrc", value: Buffer.from("x") }],
        resources: { requests: { cpu: "1" }, limits: { memory: "4Gi" } },
      }),
      { hasRegistryCredentials: true, hasBuildSecrets: true },
    );
    expect(pod.container.resources).toEqual({ requests: { cpu: "1" }, limits: { memory: "4Gi" } });
    expect(() => new Container(JSON.parse(JSON.stringify(pod.container))).validate()).not.toThrow();
    const manifest = new Pod({
      metadata: { name: "kib-test" },
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
  });
});

describe("dind refusals", () => {
  test("without allow-privileged: one line naming the risk and the daemonless builders", () => {
    const r = unsupportedInput(dind, spec({ allowPrivileged: false }));
    expect(r?.input).toBe("allow-privileged");
    expect(r?.detail).toBe(
      "builder: dind runs a privileged container (root on the node for anything that escapes the build); " +
        "set allow-privileged: true to accept that, or use a builder without one: kaniko, buildkit, buildah",
    );
  });

  test("with allow-privileged every common input is taken", () => {
    expect(
      unsupportedInput(
        dind,
        spec({
          platforms: ["linux/amd64", "linux/arm64"],
          secrets: [{ id: "a", value: Buffer.from("b") }],
          cacheRepo: "ghcr.io/acme/cache",
          cacheFrom: ["ghcr.io/acme/api:cache"],
          target: "t",
        }),
      ),
    ).toBeUndefined();
  });

  test("cache-ttl names the builders that take it", () => {
    const r = unsupportedInput(dind, spec({ cacheRepo: "ghcr.io/acme/cache", cacheTtl: "24h" }));
    expect(r?.input).toBe("cache-ttl");
    expect(r?.detail).toMatch(/builder: kaniko or buildah/);
  });
});

describe("the container script", () => {
  const DIGEST = "sha256:335288d3124f6da2340d4cde20b25050cfdf76bbcf3ea2c70cf06fb3f9a9006a";

  /**
   * Runs DIND_SCRIPT with /bin/sh and stand-ins on PATH: the image's entrypoint runs its arguments, `dockerd`
   * answers after a moment (a ready file), `docker` logs each call and behaves as `fake` says.
   */
  async function runScript(
    fake: string,
    env: Record<string, string>,
    dockerd = `sleep 0.3; touch "$DIR/ready"; sleep 1`,
  ): Promise<{ code: number; termination: string; calls: string[]; output: string }> {
    const dir = await mkdtemp(join(tmpdir(), "kib-dind-"));
    try {
      await mkdir(join(dir, "bin"));
      const term = join(dir, "termination-log");
      const bins: Record<string, string> = {
        "dockerd-entrypoint.sh": `exec "$@"`,
        dockerd: `echo "dockerd $*" >> "$DIR/calls"\n${dockerd}`,
        docker: `if [ "$1" = info ]; then [ -f "$DIR/ready" ]; exit $?; fi\necho "docker $*" >> "$DIR/calls"\n${fake}`,
      };
      for (const [name, body] of Object.entries(bins)) {
        await writeFile(join(dir, "bin", name), `#!/bin/sh\n${body}\n`);
        await chmod(join(dir, "bin", name), 0o755);
      }
      await writeFile(term, "");
      const script = DIND_SCRIPT.replaceAll("/dev/termination-log", term)
        .replaceAll("/var/log/dockerd.log", join(dir, "dockerd.log"))
        .replaceAll("/tmp/push.out", join(dir, "push.out"));
      const result = await new Promise<{ code: number; output: string }>((resolve) => {
        execFile(
          "/bin/sh",
          ["-c", script, "dind", "build", "-t", "a b", "/kaniko/buildcontext"],
          { env: { PATH: `${dir}/bin:/usr/bin:/bin`, DIR: dir, ...env } },
          (error, stdout, stderr) =>
            resolve({
              code: error ? Number((error as { code?: number }).code ?? 1) : 0,
              output: stdout + stderr,
            }),
        );
      });
      const calls = (await readFile(join(dir, "calls"), "utf8").catch(() => ""))
        .split("\n")
        .filter(Boolean);
      return { ...result, termination: await readFile(term, "utf8"), calls };
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  const PUSH_PRINTS_DIGEST = `[ "$1" = push ] && printf 'The push refers to repository [x]\\n%s: digest: %s size: 942\\n' "\${2##*:}" '${DIGEST}'; exit 0`;
  const ENV_BASE = {
    KIB_DOCKERD_FLAGS: "--insecure-registry=10.88.0.1:5000",
    KIB_TAGS: "10.88.0.1:5000/rec/app:1 10.88.0.1:5000/rec/app:latest",
    KIB_PUSH: "true",
  };

  test("success: dockerd with its flags, the ready time first, build, a push per tag, only the digest in the termination log", async () => {
    const r = await runScript(PUSH_PRINTS_DIGEST, ENV_BASE);
    expect(r.code).toBe(0);
    expect(r.termination).toBe(DIGEST);
    expect(r.calls).toEqual([
      "dockerd --host=unix:///var/run/docker.sock --insecure-registry=10.88.0.1:5000",
      "docker build -t a b /kaniko/buildcontext",
      "docker push 10.88.0.1:5000/rec/app:1",
      "docker push 10.88.0.1:5000/rec/app:latest",
    ]);
    const lines = r.output.split("\n").filter(Boolean);
    expect(lines[0]).toMatch(/^dockerd ready after \d+ ms$/);
    // The push output is shown in the log.
    expect(lines).toContain(`1: digest: ${DIGEST} size: 942`);
    expect(lines).toContain(`latest: digest: ${DIGEST} size: 942`);
  });

  test("a failing build keeps docker's exit code, pushes nothing and writes nothing", async () => {
    const r = await runScript(`[ "$1" = build ] && exit 3; exit 0`, ENV_BASE);
    expect(r.code).toBe(3);
    expect(r.termination).toBe("");
    expect(r.calls.filter((c) => c.startsWith("docker push"))).toEqual([]);
  });

  test("a failing push shows its output and keeps its exit code", async () => {
    const r = await runScript(
      `[ "$1" = push ] && { echo "denied: requested access to the resource is denied"; exit 1; }; exit 0`,
      ENV_BASE,
    );
    expect(r.code).toBe(1);
    expect(r.output).toContain("denied: requested access to the resource is denied");
    expect(r.termination).toBe("");
  });

  test("dockerd that exits before it answers: the end of its log, exit 1, no build", async () => {
    const r = await runScript(
      PUSH_PRINTS_DIGEST,
      ENV_BASE,
      `echo "failed to start daemon: boom" >&2; exit 1`,
    );
    expect(r.code).toBe(1);
    expect(r.output).toContain("dockerd did not start; the end of its log:");
    expect(r.output).toContain("failed to start daemon: boom");
    expect(r.calls.filter((c) => c.startsWith("docker "))).toEqual([]);
  });

  test("push false: no push; the image id of the first tag", async () => {
    const r = await runScript(`[ "$1" = image ] && printf '%s\\n' '${DIGEST}'; exit 0`, {
      ...ENV_BASE,
      KIB_PUSH: "false",
    });
    expect(r.code).toBe(0);
    expect(r.termination).toBe(DIGEST);
    expect(r.calls).toContain("docker image inspect --format {{.Id}} 10.88.0.1:5000/rec/app:1");
    expect(r.calls.filter((c) => c.startsWith("docker push"))).toEqual([]);
  });
});
