/**
 * Kaniko builds the image by snapshotting the build container's own filesystem, and it leaves out
 * of every snapshot each path on its ignore list: its default entries (pkg/util/fs_util.go
 * defaultIgnoreList: `/kaniko` — config.KanikoDir —, `/etc/mtab`, `/tmp/apt-key-gpghome*`) and
 * every mount point it finds in /proc/self/mountinfo (kaniko#2021). So whatever a Dockerfile's
 * RUN writes under a volume mounted into the build container is silently missing from the pushed
 * image (measured on a real cluster with the context at /workspace: "No files were changed,
 * appending empty layer").
 *
 * The rule this test holds the rendered pod to: every volumeMount of the build container lies
 * under /kaniko. That directory is Kaniko's own (the executor, its certificates, its docker config
 * live there), on its default ignore list, and never part of an image, so a Dockerfile has no
 * business writing there. Secrets and credentials are mounted there too (/kaniko/.docker), which is
 * why no separate exception for credential paths is needed. `/etc/mtab` and `/tmp/apt-key-gpghome`
 * are not directories a volume belongs in, and `/var/run` is ignored only through the
 * `--ignore-var-run` flag's default, which a user's image or flags may change: neither is allowed.
 */
import { renderManifests } from "../../src/core/job/manifests.js";
import type { BuildSpec } from "../../src/core/types.js";
import { specOf } from "./spec-fixture.js";

const ID = { jobName: "kib-abcdefgh", runId: "r", buildId: "abcdefgh" };
const ENV = { hasRegistryCredentials: false, hasBuildSecrets: false };

/** Kaniko's own directory (config.KanikoDir): on its default ignore list, never in an image. */
const KANIKO_DIR = "/kaniko";

function underKanikoDir(path: string): boolean {
  const clean = path.replace(/\/+$/, "");
  return clean === KANIKO_DIR || clean.startsWith(`${KANIKO_DIR}/`);
}

function buildMounts(spec: BuildSpec): string[] {
  const { job } = renderManifests(spec, ID, ENV);
  const container = job.spec!.template.spec!.containers.find((c) => c.name === "build")!;
  return (container.volumeMounts ?? []).map((mount) => mount.mountPath);
}

describe("the rendered Kaniko pod mounts nothing where a Dockerfile may write", () => {
  test.each<[string, Partial<BuildSpec>]>([
    ["a directory context", {}],
    [
      "with registry credentials",
      {
        registryAuth: {
          kind: "basic",
          username: "u",
          password: "p",
          registries: ["ghcr.io"],
        },
      },
    ],
    ["a Dockerfile in a subdirectory", { dockerfile: "app/Dockerfile" }],
    ["a git context", { context: { kind: "git", url: "https://git.example.com/acme/web.git" } }],
  ])("%s", (_name, over) => {
    const mounts = buildMounts(specOf(over));
    const outside = mounts.filter((path) => !underKanikoDir(path));
    expect(outside).toEqual([]);
  });

  test("the context is unpacked and read at one path under /kaniko, in both containers", () => {
    const { job } = renderManifests(specOf(), ID, ENV);
    const pod = job.spec!.template.spec!;
    const receiver = pod.initContainers![0]!;
    const build = pod.containers[0]!;
    expect(receiver.command).toEqual(["tar", "-xzf", "-", "-C", "/kaniko/buildcontext"]);
    expect(receiver.volumeMounts).toEqual([
      { name: "workspace", mountPath: "/kaniko/buildcontext" },
    ]);
    expect(build.volumeMounts).toContainEqual({
      name: "workspace",
      mountPath: "/kaniko/buildcontext",
    });
    expect(build.args).toEqual(
      expect.arrayContaining([
        "--context=dir:///kaniko/buildcontext",
        "--dockerfile=/kaniko/buildcontext/Dockerfile",
      ]),
    );
  });
});
