/**
 * The builder's push, for the test kubelet (ScenarioOverrides.push): what Kaniko or BuildKit does
 * before it writes the digest to the termination log. It reads where to push from the live pod's
 * builder arguments (Kaniko `--destination`, BuildKit `--output type=image,name=…` and
 * `platform=…`), pushes a small real image there (an index of one image per platform when several
 * are asked for) and returns the digest. Each build pushes a new image, as a builder that stamps
 * its config's `created` time does, so an image that is found again was not built again.
 */
import { createHash } from "node:crypto";
import {
  RegistryClient,
  type FetchFn,
  type RegistryCredentials,
} from "../../src/core/registry/index.js";
import { splitRepository } from "../../src/core/registry/reference.js";

export interface PushedBuild {
  digest: string;
  /** The config's created time of the (first) image. */
  created: string;
  /** Where it went: "host/name:tag" as the builder was told. */
  destinations: string[];
}

interface Target {
  destinations: string[];
  platforms: string[];
}

/** Destinations and platforms from the builder container's arguments. */
function targetOf(pod: any): Target {
  const args: string[] = pod.spec.containers[0].args ?? [];
  const command: string[] = pod.spec.containers[0].command ?? [];
  const all = [...command, ...args];
  const destinations = all
    .filter((arg) => arg.startsWith("--destination="))
    .map((arg) => arg.slice("--destination=".length));
  let platforms: string[] = [];
  for (const [i, arg] of all.entries()) {
    if (arg === "--output" && all[i + 1]?.startsWith("type=image")) {
      const names = /"?name=([^"]+?)"?(,push=|,registry|$)/.exec(all[i + 1]!);
      if (names) destinations.push(...names[1]!.split(","));
    }
    if (arg === "--opt" && all[i + 1]?.startsWith("platform=")) {
      platforms = all[i + 1]!.slice("platform=".length).split(",");
    }
  }
  return { destinations, platforms };
}

const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX = "application/vnd.oci.image.index.v1+json";

async function pushImage(
  client: RegistryClient,
  name: string,
  seed: string,
  platform: string,
  created: string,
): Promise<{ digest: string; bytes: Buffer }> {
  const [os, architecture, variant] = platform.split("/");
  const layer = Buffer.from(`layer built for ${seed} on ${platform}\n`);
  const layerDigest = await client.putBlob(name, layer);
  const config = Buffer.from(
    JSON.stringify({
      architecture,
      os,
      ...(variant ? { variant } : {}),
      created,
      config: { Labels: { seed } },
      rootfs: { type: "layers", diff_ids: [layerDigest] },
    }),
  );
  const configDigest = await client.putBlob(name, config);
  const bytes = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: {
        mediaType: "application/vnd.oci.image.config.v1+json",
        digest: configDigest,
        size: config.length,
      },
      layers: [
        {
          mediaType: "application/vnd.oci.image.layer.v1.tar+gzip",
          digest: layerDigest,
          size: layer.length,
        },
      ],
    }),
  );
  const digest = await client.putManifest(
    name,
    `sha256:${createHash("sha256").update(bytes).digest("hex")}`,
    OCI_MANIFEST,
    bytes,
  );
  return { digest, bytes };
}

/** A push function for `cluster.useScenario(…, { push })`; `pushes` lists every build's push. */
export function builderPush(options: {
  credentials?: RegistryCredentials;
  pushes?: PushedBuild[];
  /** The builder's own fetch (benchmarks count the runner's requests apart from the builder's). */
  fetch?: FetchFn;
}): (pod: any) => Promise<string> {
  let count = 0;
  return async (pod) => {
    const { destinations, platforms } = targetOf(pod);
    if (destinations.length === 0) throw new Error("builderPush: the builder names no destination");
    const created = new Date(Date.UTC(2026, 0, 1, 0, 0, ++count)).toISOString();
    const seed = `${pod.metadata.name} ${count}`;
    let digest = "";
    for (const destination of destinations) {
      const { registry, name } = splitRepository(destination);
      const tag = /:([^:/]+)$/.exec(destination)?.[1] ?? "latest";
      const client = new RegistryClient(registry, {
        insecure: true,
        credentials: options.credentials,
        ...(options.fetch ? { fetch: options.fetch } : {}),
      });
      let mediaType = OCI_MANIFEST;
      let bytes: Buffer;
      if (platforms.length > 1) {
        const images = [];
        for (const platform of platforms) {
          images.push({ platform, ...(await pushImage(client, name, seed, platform, created)) });
        }
        mediaType = OCI_INDEX;
        bytes = Buffer.from(
          JSON.stringify({
            schemaVersion: 2,
            mediaType: OCI_INDEX,
            manifests: images.map((image) => {
              const [os, architecture, variant] = image.platform.split("/");
              return {
                mediaType: OCI_MANIFEST,
                digest: image.digest,
                size: image.bytes.length,
                platform: { os, architecture, ...(variant ? { variant } : {}) },
              };
            }),
          }),
        );
      } else {
        bytes = (await pushImage(client, name, seed, platforms[0] ?? "linux/amd64", created)).bytes;
      }
      digest = await client.putManifest(name, tag, mediaType, bytes);
    }
    options.pushes?.push({ digest, created, destinations });
    return digest;
  };
}
