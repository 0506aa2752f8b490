/**
 * Pointing tags at an image that is already in the registry, through the distribution API only: in
 * the same repository a manifest PUT per tag; into another repository of the same registry the
 * blobs are mounted first (no bytes move), then each child manifest of an index by digest, then the
 * tags. Nothing is pulled or rebuilt.
 */
import { RegistryError, type ManifestRecord, type RegistryClient } from "./client.js";

const INDEX_TYPES = new Set([
  "application/vnd.oci.image.index.v1+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
]);

interface Descriptor {
  digest: string;
  mediaType?: string;
}

interface ManifestBody {
  mediaType?: string;
  manifests?: Descriptor[];
  config?: Descriptor;
  layers?: Descriptor[];
}

function bodyOf(manifest: ManifestRecord): ManifestBody {
  return JSON.parse(manifest.bytes.toString("utf8")) as ManifestBody;
}

export function isIndex(manifest: ManifestRecord): boolean {
  return INDEX_TYPES.has(manifest.mediaType) || bodyOf(manifest).manifests !== undefined;
}

/** The config and layer digests of an image manifest. */
function blobsOf(manifest: ManifestRecord): string[] {
  const body = bodyOf(manifest);
  return [body.config?.digest, ...(body.layers ?? []).map((layer) => layer.digest)].filter(
    (digest): digest is string => typeof digest === "string",
  );
}

async function mountAll(
  client: RegistryClient,
  target: string,
  source: string,
  blobs: string[],
): Promise<void> {
  for (const digest of new Set(blobs)) {
    if (!(await client.mountBlob(target, digest, source))) {
      throw new RegistryError(
        `${client.registry} would not mount ${digest} from ${source} into ${target}`,
        202,
      );
    }
  }
}

async function childOf(
  client: RegistryClient,
  name: string,
  descriptor: Descriptor,
): Promise<ManifestRecord> {
  const child = await client.getManifest(name, descriptor.digest);
  if (!child) {
    throw new RegistryError(`${name}@${descriptor.digest} (in an index) is missing`, 404);
  }
  return child;
}

/**
 * Makes `manifest` (held in repository `source`) available in repository `target` and puts it
 * under every tag in `tags`. Throws RegistryError when the registry refuses any step.
 */
export async function pointTagsAt(
  client: RegistryClient,
  source: string,
  manifest: ManifestRecord,
  target: string,
  tags: readonly string[],
): Promise<void> {
  if (source !== target) {
    if (isIndex(manifest)) {
      for (const descriptor of bodyOf(manifest).manifests ?? []) {
        const child = await childOf(client, source, descriptor);
        await mountAll(client, target, source, blobsOf(child));
        await client.putManifest(target, child.digest, child.mediaType, child.bytes);
      }
    } else {
      await mountAll(client, target, source, blobsOf(manifest));
    }
  }
  for (const tag of tags) {
    const digest = await client.putManifest(target, tag, manifest.mediaType, manifest.bytes);
    if (digest !== manifest.digest) {
      throw new RegistryError(
        `${client.registry} stored ${target}:${tag} as ${digest}, not ${manifest.digest}`,
        201,
      );
    }
  }
}

/**
 * When the image was built: the `created` time of its config (the first platform's, for an index),
 * as the builder wrote it. Undefined when the config has none.
 */
export async function imageCreated(
  client: RegistryClient,
  name: string,
  manifest: ManifestRecord,
): Promise<string | undefined> {
  let image = manifest;
  if (isIndex(manifest)) {
    const first = bodyOf(manifest).manifests?.[0];
    if (!first) return undefined;
    image = await childOf(client, name, first);
  }
  const configDigest = bodyOf(image).config?.digest;
  if (!configDigest) return undefined;
  const config = await client.getBlob(name, configDigest);
  if (!config) return undefined;
  const created = (JSON.parse(config.toString("utf8")) as { created?: unknown }).created;
  return typeof created === "string" && created !== "" ? created : undefined;
}
