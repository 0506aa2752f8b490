import { getBuilder } from "../../src/core/builders/index.js";
import {
  KANIKO_IMAGE,
  kaniko,
  kanikoArgs,
  kanikoGitContext,
} from "../../src/core/builders/kaniko.js";
import type { BuildSpec } from "../../src/core/types.js";
import { specOf } from "./spec-fixture.js";

const baseSpec = specOf;

const BASE_ARGS = [
  "--context=dir:///kaniko/buildcontext",
  "--dockerfile=/kaniko/buildcontext/Dockerfile",
  "--destination=ghcr.io/acme/web:1",
  "--digest-file=/dev/termination-log",
];

describe("kanikoArgs", () => {
  test.each<[string, Partial<BuildSpec>, string[]]>([
    ["minimal", {}, BASE_ARGS],
    [
      "Dockerfile in a subdirectory",
      { dockerfile: "app/Dockerfile.prod" },
      [
        "--context=dir:///kaniko/buildcontext",
        "--dockerfile=/kaniko/buildcontext/app/Dockerfile.prod",
        "--destination=ghcr.io/acme/web:1",
        "--digest-file=/dev/termination-log",
      ],
    ],
    [
      "several tags",
      { tags: ["ghcr.io/acme/web:1", "ghcr.io/acme/web:latest", "docker.io/acme/web:1"] },
      [
        "--context=dir:///kaniko/buildcontext",
        "--dockerfile=/kaniko/buildcontext/Dockerfile",
        "--destination=ghcr.io/acme/web:1",
        "--destination=ghcr.io/acme/web:latest",
        "--destination=docker.io/acme/web:1",
        "--digest-file=/dev/termination-log",
      ],
    ],
    ["push: false", { push: false }, [...BASE_ARGS.slice(0, 3), "--no-push", BASE_ARGS[3]!]],
    ["target", { target: "runtime" }, [...BASE_ARGS, "--target=runtime"]],
    [
      "build args and labels (values with spaces, '=' and newlines stay one argument)",
      {
        buildArgs: [
          { key: "VERSION", value: "1.2 beta" },
          { key: "OPTS", value: "a=b=c" },
          { key: "EMPTY", value: "" },
        ],
        labels: [
          { key: "org.opencontainers.image.title", value: "Web app" },
          { key: "multi", value: "l1\nl2" },
        ],
      },
      [
        ...BASE_ARGS,
        "--build-arg=VERSION=1.2 beta",
        "--build-arg=OPTS=a=b=c",
        "--build-arg=EMPTY=",
        "--label=org.opencontainers.image.title=Web app",
        "--label=multi=l1\nl2",
      ],
    ],
    [
      "cache-repo",
      { cacheRepo: "ghcr.io/acme/web/cache" },
      [...BASE_ARGS, "--cache=true", "--cache-repo=ghcr.io/acme/web/cache"],
    ],
    [
      "cache-repo with cache-ttl",
      { cacheRepo: "ghcr.io/acme/web/cache", cacheTtl: "168h" },
      [...BASE_ARGS, "--cache=true", "--cache-repo=ghcr.io/acme/web/cache", "--cache-ttl=168h"],
    ],
    [
      "cache-repo with push: false (Kaniko needs --cache-repo then; it is given)",
      { cacheRepo: "registry:5000/cache", push: false },
      [
        ...BASE_ARGS.slice(0, 3),
        "--no-push",
        BASE_ARGS[3]!,
        "--cache=true",
        "--cache-repo=registry:5000/cache",
      ],
    ],
    [
      "insecure registries",
      { tags: ["registry:5000/web:1"], insecureRegistries: ["registry:5000", "mirror.local"] },
      [
        "--context=dir:///kaniko/buildcontext",
        "--dockerfile=/kaniko/buildcontext/Dockerfile",
        "--destination=registry:5000/web:1",
        "--digest-file=/dev/termination-log",
        "--insecure-registry=registry:5000",
        "--insecure-registry=mirror.local",
      ],
    ],
    [
      "git context with a branch",
      { context: { kind: "git", url: "https://github.com/acme/web.git#main" } },
      [
        "--context=git://github.com/acme/web.git",
        "--git=branch=main",
        "--dockerfile=Dockerfile",
        "--destination=ghcr.io/acme/web:1",
        "--digest-file=/dev/termination-log",
      ],
    ],
    [
      "git context, Dockerfile in the repository",
      {
        context: { kind: "git", url: "git://github.com/acme/web.git" },
        dockerfile: "docker/Dockerfile",
      },
      [
        "--context=git://github.com/acme/web.git",
        "--dockerfile=docker/Dockerfile",
        "--destination=ghcr.io/acme/web:1",
        "--digest-file=/dev/termination-log",
      ],
    ],
  ])("%s", (_name, over, expected) => {
    expect(kanikoArgs(baseSpec(over))).toEqual(expected);
  });

  test("every input at once", () => {
    const args = kanikoArgs(
      baseSpec({
        tags: ["ghcr.io/acme/web:1", "ghcr.io/acme/web:2"],
        dockerfile: "./build/Dockerfile",
        target: "prod",
        push: false,
        buildArgs: [{ key: "A", value: "1" }],
        labels: [{ key: "L", value: "2" }],
        cacheRepo: "ghcr.io/acme/cache",
        cacheTtl: "24h",
        insecureRegistries: ["registry:5000"],
      }),
    );
    expect(args).toEqual([
      "--context=dir:///kaniko/buildcontext",
      "--dockerfile=/kaniko/buildcontext/build/Dockerfile",
      "--destination=ghcr.io/acme/web:1",
      "--destination=ghcr.io/acme/web:2",
      "--no-push",
      "--digest-file=/dev/termination-log",
      "--target=prod",
      "--build-arg=A=1",
      "--label=L=2",
      "--cache=true",
      "--cache-repo=ghcr.io/acme/cache",
      "--cache-ttl=24h",
      "--insecure-registry=registry:5000",
    ]);
  });
});

describe("kanikoGitContext (Docker's <url>#<ref>[:<subdir>] → Kaniko's form)", () => {
  const SHA = "0123456789abcdef0123456789abcdef01234567";
  test.each([
    ["git://github.com/acme/web.git", "git://github.com/acme/web.git", []],
    ["https://github.com/acme/web.git", "git://github.com/acme/web.git", []],
    [
      "https://github.com/acme/web.git#main",
      "git://github.com/acme/web.git",
      ["--git=branch=main"],
    ],
    [
      "https://github.com/acme/web.git#v1.2.3",
      "git://github.com/acme/web.git",
      ["--git=branch=v1.2.3"],
    ],
    [
      "https://github.com/acme/web.git#refs/heads/main",
      "git://github.com/acme/web.git#refs/heads/main",
      [],
    ],
    [
      "https://github.com/acme/web.git#refs/pull/7/head",
      "git://github.com/acme/web.git#refs/pull/7/head",
      [],
    ],
    [`https://github.com/acme/web.git#${SHA}`, `git://github.com/acme/web.git#${SHA}`, []],
    [
      "https://github.com/acme/web.git#main:services/api",
      "git://github.com/acme/web.git",
      ["--git=branch=main", "--context-sub-path=services/api"],
    ],
    [
      "https://github.com/acme/web.git#:services/api",
      "git://github.com/acme/web.git",
      ["--context-sub-path=services/api"],
    ],
    [
      "https://git.example.com:8443/group/sub/web.git#main",
      "git://git.example.com:8443/group/sub/web.git",
      ["--git=branch=main"],
    ],
  ])("%s", (url, context, flags) => {
    expect(kanikoGitContext(url)).toEqual({ context, flags });
  });
});

describe("render", () => {
  test("minimal: the build container and its workspace mount", () => {
    const pod = kaniko.render(baseSpec(), {
      hasRegistryCredentials: false,
      hasBuildSecrets: false,
    });
    expect(pod).toEqual({
      container: {
        name: "build",
        image: KANIKO_IMAGE,
        args: BASE_ARGS,
        volumeMounts: [{ name: "workspace", mountPath: "/kaniko/buildcontext" }],
        terminationMessagePath: "/dev/termination-log",
        terminationMessagePolicy: "File",
      },
      volumes: [],
    });
  });

  test("credentials and resources", () => {
    const spec = baseSpec({
      builderImage: "registry.local/kaniko:v1.28.2",
      resources: { requests: { cpu: "1", memory: "2Gi" }, limits: { memory: "4Gi" } },
    });
    const pod = kaniko.render(spec, { hasRegistryCredentials: true, hasBuildSecrets: false });
    expect(pod.container.image).toBe("registry.local/kaniko:v1.28.2");
    expect(pod.container.env).toEqual([{ name: "DOCKER_CONFIG", value: "/kaniko/.docker" }]);
    expect(pod.container.volumeMounts).toEqual([
      { name: "workspace", mountPath: "/kaniko/buildcontext" },
      { name: "registry-credentials", mountPath: "/kaniko/.docker", readOnly: true },
    ]);
    expect(pod.container.resources).toEqual({
      requests: { cpu: "1", memory: "2Gi" },
      limits: { memory: "4Gi" },
    });
    expect(pod.container.securityContext).toBeUndefined();
    expect(pod.podSecurityContext).toBeUndefined();
  });

  test("only limits", () => {
    const pod = kaniko.render(
      baseSpec({ resources: { requests: {}, limits: { memory: "1Gi" } } }),
      {
        hasRegistryCredentials: false,
        hasBuildSecrets: false,
      },
    );
    expect(pod.container.resources).toEqual({ limits: { memory: "1Gi" } });
  });
});

describe("the Builder contract", () => {
  test("identity and pod security", () => {
    expect(getBuilder("kaniko")).toBe(kaniko);
    expect(kaniko.name).toBe("kaniko");
    expect(kaniko.defaultImage).toMatch(/^ghcr\.io\/osscontainertools\/kaniko:v\d+\.\d+\.\d+$/);
    expect(kaniko.podSecurityLevel).toBe("baseline");
    expect(kaniko.needsServerVersion).toBe(false);
  });

  test.each<[string, Partial<BuildSpec>, { input: string; detail: string } | undefined]>([
    ["nothing unusual", {}, undefined],
    [
      "platforms",
      { platforms: ["linux/amd64", "linux/arm64"] },
      {
        input: "platforms",
        detail:
          "Kaniko builds for the node it runs on and cannot build several platforms; use builder: buildkit for multi-platform images",
      },
    ],
    [
      "cache-from",
      { cacheFrom: ["type=registry,ref=a/b:c"] },
      {
        input: "cache-from",
        detail:
          'is BuildKit-only; Kaniko takes its registry cache from "cache-repo" (or use builder: buildkit)',
      },
    ],
    [
      "cache-to",
      { cacheTo: ["type=registry,ref=a/b:c"] },
      {
        input: "cache-to",
        detail:
          'is BuildKit-only; Kaniko takes its registry cache from "cache-repo" (or use builder: buildkit)',
      },
    ],
    [
      "secrets, whatever the image",
      { secrets: [{ id: "a", value: Buffer.from("TOPSECRET") }] },
      {
        input: "secrets",
        detail:
          "build secrets (secrets, secret-files) need builder: buildkit; Kaniko images differ in whether they take --secret",
      },
    ],
  ])("unsupported: %s", (_name, over, expected) => {
    expect(kaniko.unsupported(baseSpec(over))).toEqual(expected);
  });
});
