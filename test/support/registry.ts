/**
 * A real OCI distribution registry for tests: Debian's `docker-registry` (distribution 2.8)
 * started on a free loopback port with filesystem storage in a temp dir. Install it with
 * `scripts/test-deps.sh`. Optional auth: htpasswd (Basic) or token (Bearer, with a token
 * server in this process that signs JWTs the registry verifies against a generated certificate).
 */

import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createHash, sign, X509Certificate } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createNetServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { RegistryClient } from "../../src/core/registry/index.js";

export const REGISTRY_BINARY = "docker-registry";

/** True when the registry binary is installed (scripts/test-deps.sh). */
export function registryAvailable(): boolean {
  return spawnSync(REGISTRY_BINARY, ["--version"], { stdio: "ignore" }).status === 0;
}

/** htpasswd user for the Basic-auth instance; the bcrypt hash below is of this password. */
export const TEST_USER = "preview";
export const TEST_PASSWORD = "preview-secret";
const TEST_PASSWORD_BCRYPT = "$2b$05$k8simagebuildpreviewtezVmycb8URfywLljWBScuvimZck1T5cC";

export type RegistryAuthMode = "none" | "htpasswd" | "token";

export interface StartRegistryOptions {
  /** storage.delete.enabled; default true. */
  deleteEnabled?: boolean;
  auth?: RegistryAuthMode;
  /**
   * auth "token" only: a request without credentials gets a token for pull alone, as public
   * repositories on Docker Hub or ghcr.io do; push then needs credentials.
   */
  anonymousPull?: boolean;
}

export interface TokenRequest {
  authorization?: string;
  service?: string;
  scopes: string[];
}

export interface TestRegistry {
  /** `127.0.0.1:<port>`: the registry host part of image references. */
  host: string;
  /** `http://127.0.0.1:<port>` */
  url: string;
  /** Token requests seen by the token server (auth "token" only). */
  tokenRequests: TokenRequest[];
  /** Registry process output, for failure messages. */
  log(): string;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

const b64url = (data: Buffer | string): string => Buffer.from(data).toString("base64url");

interface TokenServer {
  realm: string;
  certPath: string;
  requests: TokenRequest[];
  close(): Promise<void>;
}

async function startTokenServer(
  dir: string,
  service: string,
  issuer: string,
  anonymousPull = false,
): Promise<TokenServer> {
  const selfsigned = await import("selfsigned");
  const pems = await selfsigned.generate(
    [{ name: "commonName", value: "k8s-image-build test token issuer" }],
    {
      keySize: 2048,
      algorithm: "sha256",
    },
  );
  const certPath = join(dir, "token-root.pem");
  await writeFile(certPath, pems.cert);
  const x5c = [new X509Certificate(pems.cert).raw.toString("base64")];
  const requests: TokenRequest[] = [];
  const expected = `Basic ${Buffer.from(`${TEST_USER}:${TEST_PASSWORD}`).toString("base64")}`;

  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? "/", "http://localhost");
    const scopes = url.searchParams.getAll("scope");
    requests.push({
      authorization: req.headers.authorization,
      service: url.searchParams.get("service") ?? undefined,
      scopes,
    });
    const anonymous = anonymousPull && req.headers.authorization === undefined;
    if (req.headers.authorization !== expected && !anonymous) {
      res.writeHead(401, { "Content-Type": "application/json" });
      res.end(JSON.stringify({ details: "bad credentials" }));
      return;
    }
    const access = scopes.flatMap((scope) => {
      const m = /^([^:]+):(.+):([^:]+)$/.exec(scope);
      const actions = m?.[3]!.split(",").filter((action) => !anonymous || action === "pull");
      return m && actions?.length ? [{ type: m[1], name: m[2], actions }] : [];
    });
    const now = Math.floor(Date.now() / 1000);
    const header = { typ: "JWT", alg: "RS256", x5c };
    const claims = {
      iss: issuer,
      sub: TEST_USER,
      aud: service,
      exp: now + 300,
      nbf: now - 10,
      iat: now,
      jti: createHash("sha256").update(`${now}${Math.random()}`).digest("hex"),
      access,
    };
    const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    const token = `${input}.${b64url(sign("sha256", Buffer.from(input), pems.private))}`;
    res.writeHead(200, { "Content-Type": "application/json" });
    res.end(
      JSON.stringify({
        token,
        access_token: token,
        expires_in: 300,
        issued_at: new Date().toISOString(),
      }),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    realm: `http://127.0.0.1:${port}/token`,
    certPath,
    requests,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** Starts one registry and waits until `/v2/` answers. */
export async function startRegistry(options: StartRegistryOptions = {}): Promise<TestRegistry> {
  const dir = await mkdtemp(join(tmpdir(), "k8s-image-build-registry-"));
  const mode = options.auth ?? "none";
  let tokenServer: TokenServer | undefined;
  let auth: Record<string, unknown> | undefined;
  if (mode === "htpasswd") {
    const path = join(dir, "htpasswd");
    await writeFile(path, `${TEST_USER}:${TEST_PASSWORD_BCRYPT}\n`);
    auth = { htpasswd: { realm: "test-registry", path } };
  } else if (mode === "token") {
    tokenServer = await startTokenServer(
      dir,
      "test-registry",
      "test-issuer",
      options.anonymousPull ?? false,
    );
    auth = {
      token: {
        realm: tokenServer.realm,
        service: "test-registry",
        issuer: "test-issuer",
        rootcertbundle: tokenServer.certPath,
      },
    };
  }

  let lastError: Error | undefined;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const config = {
      version: "0.1",
      log: { level: "info", accesslog: { disabled: true } },
      storage: {
        filesystem: { rootdirectory: join(dir, "storage") },
        delete: { enabled: options.deleteEnabled ?? true },
        maintenance: { uploadpurging: { enabled: false } },
      },
      http: { addr: `127.0.0.1:${port}`, secret: "k8s-image-build-test-secret" },
      ...(auth ? { auth } : {}),
    };
    const configPath = join(dir, "config.yml");
    await writeFile(configPath, JSON.stringify(config, null, 2)); // JSON is YAML
    const child: ChildProcess = spawn(REGISTRY_BINARY, ["serve", configPath], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout?.on("data", (d: Buffer) => (output += d.toString()));
    child.stderr?.on("data", (d: Buffer) => (output += d.toString()));
    const exited = new Promise<number | null>((resolve) =>
      child.once("exit", (code) => resolve(code)),
    );
    let exitCode: number | null | undefined;
    void exited.then((code) => (exitCode = code));

    const url = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 15_000;
    let up = false;
    while (Date.now() < deadline && exitCode === undefined) {
      try {
        const res = await fetch(`${url}/v2/`, { signal: AbortSignal.timeout(1000) });
        await res.body?.cancel();
        if (res.status === 200 || res.status === 401) {
          up = true;
          break;
        }
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    if (up) {
      const stop = async (): Promise<void> => {
        if (exitCode === undefined) {
          child.kill("SIGTERM");
          const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
          await exited;
          clearTimeout(timer);
        }
        await tokenServer?.close();
        await rm(dir, { recursive: true, force: true });
      };
      return {
        host: `127.0.0.1:${port}`,
        url,
        tokenRequests: tokenServer?.requests ?? [],
        log: () => output,
        stop,
      };
    }
    if (exitCode === undefined) {
      child.kill("SIGKILL");
      await exited;
    }
    lastError = new Error(`docker-registry did not start on port ${port}:\n${output}`);
  }
  await tokenServer?.close();
  await rm(dir, { recursive: true, force: true });
  throw lastError ?? new Error("docker-registry did not start");
}

export interface PushedImage {
  digest: string;
  /** Manifest bytes as pushed. */
  manifest: Buffer;
}

/**
 * Pushes a small single-layer OCI image (distinct per `seed`) through the distribution API and
 * tags it with every tag in `tags`; returns the manifest digest.
 */
export async function pushTestImage(
  client: RegistryClient,
  name: string,
  tags: string[],
  seed: string,
): Promise<PushedImage> {
  const layer = Buffer.from(`layer for ${seed}\n`);
  const layerDigest = await client.putBlob(name, layer);
  const config = Buffer.from(
    JSON.stringify({
      architecture: "amd64",
      os: "linux",
      config: { Labels: { seed } },
      rootfs: { type: "layers", diff_ids: [layerDigest] },
    }),
  );
  const configDigest = await client.putBlob(name, config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
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
  const digest = `sha256:${createHash("sha256").update(manifest).digest("hex")}`;
  for (const tag of tags) {
    await client.putManifest(name, tag, "application/vnd.oci.image.manifest.v1+json", manifest);
  }
  if (tags.length === 0)
    await client.putManifest(name, digest, "application/vnd.oci.image.manifest.v1+json", manifest);
  return { digest, manifest };
}

/** Pushes an OCI image index over the given manifests under `tags`; returns its digest. */
export async function pushTestIndex(
  client: RegistryClient,
  name: string,
  tags: string[],
  images: PushedImage[],
): Promise<string> {
  const index = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.index.v1+json",
      manifests: images.map((image, i) => ({
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        digest: image.digest,
        size: image.manifest.length,
        platform: { architecture: i === 0 ? "amd64" : "arm64", os: "linux" },
      })),
    }),
  );
  for (const tag of tags)
    await client.putManifest(name, tag, "application/vnd.oci.image.index.v1+json", index);
  return `sha256:${createHash("sha256").update(index).digest("hex")}`;
}
