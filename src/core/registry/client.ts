/**
 * A small OCI distribution API client on Node's global fetch: `/v2/` ping, Bearer token
 * challenges (WWW-Authenticate → token endpoint, with Basic credentials when given), Basic auth,
 * plain HTTP for insecure registries; resolve a tag, list tags (Link pagination), delete a
 * manifest. No environment, no CI knowledge.
 */

import { createHash } from "node:crypto";
import { ProxyAgent, fetch as undiciFetch } from "undici";

import { messageOf } from "../errors.js";
import { displayProxyUrl, proxyFor } from "../proxy.js";
import type { ProxySettings } from "../types.js";
import { apiHost } from "./reference.js";

export interface RegistryCredentials {
  username: string;
  password: string;
}

export type FetchFn = typeof globalThis.fetch;

export interface RegistryClientOptions {
  /** Used for Basic auth and for the token endpoint of a Bearer challenge. */
  credentials?: RegistryCredentials;
  /** Plain HTTP (an insecure registry). */
  insecure?: boolean;
  /** Per-request timeout; default 30 s. */
  timeoutMs?: number;
  signal?: AbortSignal;
  userAgent?: string;
  /** Replaces the global fetch (tests). */
  fetch?: FetchFn;
  /**
   * HTTPS_PROXY / HTTP_PROXY / NO_PROXY as the adapter read them: each request (the registry's
   * and its token endpoint's) goes through the proxy they choose for its URL.
   */
  proxy?: ProxySettings;
}

/** Every manifest media type a tag can point to; HEAD/GET send them all so no conversion happens. */
export const MANIFEST_ACCEPT = [
  "application/vnd.oci.image.index.v1+json",
  "application/vnd.oci.image.manifest.v1+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
  "application/vnd.docker.distribution.manifest.v2+json",
].join(", ");

const DIGEST_RE = /^sha256:[0-9a-f]{64}$/;

/** A registry answer the client cannot turn into a result; `code` is the distribution error code. */
export class RegistryError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly code?: string,
  ) {
    super(message);
    this.name = "RegistryError";
  }
}

export interface AuthChallenge {
  scheme: string;
  params: Record<string, string>;
}

/**
 * Parses a WWW-Authenticate header: `Bearer realm="https://…/token",service="x",scope="repository:a/b:pull,push"`.
 * Quoted values may contain commas; several challenges may follow each other.
 */
export function parseWwwAuthenticate(header: string): AuthChallenge[] {
  const challenges: AuthChallenge[] = [];
  let current: AuthChallenge | undefined;
  let i = 0;
  const n = header.length;
  const skip = (chars: string): void => {
    while (i < n && chars.includes(header[i]!)) i++;
  };
  while (i < n) {
    skip(" \t,");
    const start = i;
    while (i < n && !" \t,=".includes(header[i]!)) i++;
    const token = header.slice(start, i);
    if (token === "") break;
    skip(" \t");
    if (header[i] !== "=") {
      current = { scheme: token, params: {} };
      challenges.push(current);
      continue;
    }
    i++; // "="
    skip(" \t");
    let value = "";
    if (header[i] === '"') {
      i++;
      while (i < n && header[i] !== '"') {
        if (header[i] === "\\" && i + 1 < n) i++;
        value += header[i];
        i++;
      }
      i++; // closing quote
    } else {
      const vs = i;
      while (i < n && !" \t,".includes(header[i]!)) i++;
      value = header.slice(vs, i);
    }
    if (current) current.params[token.toLowerCase()] = value;
  }
  return challenges;
}

interface ErrorBody {
  errors?: { code?: string; message?: string }[];
}

async function readErrorBody(res: Response): Promise<{ code?: string; message?: string }> {
  try {
    const text = await res.text();
    const body = JSON.parse(text) as ErrorBody;
    const first = body.errors?.[0];
    return { code: first?.code, message: first?.message };
  } catch {
    return {};
  }
}

async function discard(res: Response): Promise<void> {
  try {
    await res.body?.cancel();
  } catch {
    // already consumed or closed
  }
}

function basicHeader(c: RegistryCredentials): string {
  return `Basic ${Buffer.from(`${c.username}:${c.password}`).toString("base64")}`;
}

/** A manifest as the registry serves it. */
export interface ManifestRecord {
  digest: string;
  mediaType: string;
  bytes: Buffer;
}

/** Outcome of a manifest DELETE. */
export type DeleteOutcome =
  | { result: "deleted" }
  | { result: "not-found" }
  /** 405 / UNSUPPORTED: the registry does not allow deletes (storage.delete.enabled false, or by policy). */
  | { result: "unsupported"; message: string }
  /** 401/403 after authenticating: these credentials may not delete. */
  | { result: "denied"; message: string };

export class RegistryClient {
  readonly registry: string;
  readonly baseUrl: string;
  private readonly fetchFn: FetchFn;
  private readonly options: RegistryClientOptions;
  /** Bearer tokens by scope ("" when the challenge named none). */
  private readonly tokens = new Map<string, string>();
  /** Learnt from the first 401: how this registry wants to be authenticated. */
  private challenge: AuthChallenge | undefined;
  /** One connection pool per proxy URL. */
  private readonly proxyAgents = new Map<string, ProxyAgent>();

  constructor(registry: string, options: RegistryClientOptions = {}) {
    this.registry = registry;
    this.options = options;
    this.baseUrl = `${options.insecure ? "http" : "https"}://${apiHost(registry)}`;
    this.fetchFn = options.fetch ?? globalThis.fetch;
  }

  /** GET /v2/: checks the registry answers the distribution API and the credentials work. */
  async ping(): Promise<void> {
    const res = await this.request("GET", "/v2/", undefined);
    await discard(res);
    if (!res.ok) throw await this.failure(res, "GET /v2/");
  }

  /** HEAD the manifest of `name:tag`; the digest, or undefined when the tag does not exist. */
  async resolveDigest(name: string, tag: string): Promise<string | undefined> {
    const path = `/v2/${name}/manifests/${encodeURIComponent(tag)}`;
    const scope = `repository:${name}:pull`;
    const head = await this.request("HEAD", path, scope, { Accept: MANIFEST_ACCEPT });
    await discard(head);
    if (head.status === 404) return undefined;
    if (!head.ok) throw await this.failure(head, `HEAD ${name}:${tag}`);
    const digest = head.headers.get("docker-content-digest");
    if (digest && DIGEST_RE.test(digest)) return digest;
    // Some registries leave the header off a HEAD: hash the manifest bytes as they are served.
    const get = await this.request("GET", path, scope, { Accept: MANIFEST_ACCEPT });
    if (get.status === 404) {
      await discard(get);
      return undefined;
    }
    if (!get.ok) throw await this.failure(get, `GET ${name}:${tag}`);
    const bytes = Buffer.from(await get.arrayBuffer());
    const header = get.headers.get("docker-content-digest");
    return header && DIGEST_RE.test(header)
      ? header
      : `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
  }

  /** All tags of a repository, following `Link: <…>; rel="next"`; [] when the repository is unknown. */
  async listTags(name: string, pageSize = 1000): Promise<string[]> {
    const tags: string[] = [];
    let next: string | undefined = `/v2/${name}/tags/list?n=${pageSize}`;
    const seen = new Set<string>();
    while (next !== undefined) {
      if (seen.has(next)) break; // a registry repeating its Link must not loop forever
      seen.add(next);
      const res = await this.request("GET", next, `repository:${name}:pull`, {
        Accept: "application/json",
      });
      if (res.status === 404) {
        await discard(res);
        return tags;
      }
      if (!res.ok) throw await this.failure(res, `list tags of ${name}`);
      const body = (await res.json()) as { tags?: string[] | null };
      tags.push(...(body.tags ?? []));
      next = nextLink(res.headers.get("link"), this.baseUrl);
    }
    return tags;
  }

  /** DELETE /v2/<name>/manifests/<digest>: removes the manifest and every tag pointing to it. */
  async deleteManifest(name: string, digest: string): Promise<DeleteOutcome> {
    if (!DIGEST_RE.test(digest)) throw new RegistryError(`not a sha256 digest: "${digest}"`, 0);
    const res = await this.request(
      "DELETE",
      `/v2/${name}/manifests/${digest}`,
      `repository:${name}:delete`,
    );
    if (res.status === 202 || res.status === 200 || res.status === 204) {
      await discard(res);
      return { result: "deleted" };
    }
    const { code, message } = await readErrorBody(res);
    if (res.status === 404 && code !== "UNSUPPORTED") return { result: "not-found" };
    if (res.status === 405 || code === "UNSUPPORTED") {
      return {
        result: "unsupported",
        message: `${this.registry} does not allow deleting manifests (${res.status}${code ? ` ${code}` : ""}${message ? `: ${message}` : ""})`,
      };
    }
    if (res.status === 401 || res.status === 403) {
      return {
        result: "denied",
        message: `${this.registry} refused to delete ${name}@${digest} (${res.status}${code ? ` ${code}` : ""}): the credentials lack delete permission`,
      };
    }
    throw new RegistryError(
      `DELETE ${name}@${digest} on ${this.registry}: HTTP ${res.status}${code ? ` ${code}` : ""}${message ? `: ${message}` : ""}`,
      res.status,
      code,
    );
  }

  /**
   * GET a manifest by tag or digest: its bytes as served, media type and digest; undefined when the
   * repository or reference does not exist. The digest is checked against the bytes when asked by
   * digest, so a registry cannot hand back something else.
   */
  async getManifest(name: string, reference: string): Promise<ManifestRecord | undefined> {
    const res = await this.request(
      "GET",
      `/v2/${name}/manifests/${encodeURIComponent(reference)}`,
      `repository:${name}:pull`,
      { Accept: MANIFEST_ACCEPT },
    );
    if (res.status === 404) {
      await discard(res);
      return undefined;
    }
    if (!res.ok) throw await this.failure(res, `GET manifest ${name}:${reference}`);
    const bytes = Buffer.from(await res.arrayBuffer());
    const computed = `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
    if (DIGEST_RE.test(reference) && computed !== reference) {
      throw new RegistryError(
        `GET manifest ${name}@${reference} on ${this.registry}: the bytes served hash to ${computed}`,
        res.status,
      );
    }
    const mediaType =
      res.headers.get("content-type")?.split(";")[0]?.trim() ||
      (JSON.parse(bytes.toString("utf8")) as { mediaType?: string }).mediaType ||
      "application/vnd.oci.image.manifest.v1+json";
    return { digest: computed, mediaType, bytes };
  }

  /** GET a blob's bytes (small ones: an image config); undefined when it does not exist. */
  async getBlob(name: string, digest: string): Promise<Buffer | undefined> {
    if (!DIGEST_RE.test(digest)) throw new RegistryError(`not a sha256 digest: "${digest}"`, 0);
    const res = await this.request("GET", `/v2/${name}/blobs/${digest}`, `repository:${name}:pull`);
    if (res.status === 404) {
      await discard(res);
      return undefined;
    }
    if (!res.ok) throw await this.failure(res, `GET blob ${name}@${digest}`);
    return Buffer.from(await res.arrayBuffer());
  }

  /**
   * Cross-repository blob mount (POST /v2/<name>/blobs/uploads/?mount=<digest>&from=<from>): the
   * registry links a blob it already holds into another repository without any bytes moving. True
   * when mounted (201); false when the registry started an upload instead (202: it cannot mount,
   * e.g. the source is not readable) — that upload is cancelled.
   */
  async mountBlob(name: string, digest: string, from: string): Promise<boolean> {
    if (!DIGEST_RE.test(digest)) throw new RegistryError(`not a sha256 digest: "${digest}"`, 0);
    const res = await this.request(
      "POST",
      `/v2/${name}/blobs/uploads/?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(from)}`,
      `repository:${name}:pull,push repository:${from}:pull`,
    );
    if (res.status === 201) {
      await discard(res);
      return true;
    }
    if (res.status === 202) {
      await discard(res);
      const location = res.headers.get("location");
      if (location) {
        const cancel = await this.request(
          "DELETE",
          new URL(location, this.baseUrl).toString(),
          `repository:${name}:pull,push`,
        );
        await discard(cancel);
      }
      return false;
    }
    throw await this.failure(res, `mount ${digest} from ${from} into ${name}`);
  }

  /** PUT a manifest under a tag or digest reference; returns its digest. */
  async putManifest(
    name: string,
    reference: string,
    mediaType: string,
    body: Uint8Array,
  ): Promise<string> {
    const res = await this.request(
      "PUT",
      `/v2/${name}/manifests/${reference}`,
      `repository:${name}:pull,push`,
      { "Content-Type": mediaType },
      body,
    );
    await discard(res);
    if (res.status !== 201) throw await this.failure(res, `PUT manifest ${name}:${reference}`);
    return (
      res.headers.get("docker-content-digest") ??
      `sha256:${createHash("sha256").update(body).digest("hex")}`
    );
  }

  /** Monolithic blob upload (POST then PUT ?digest=); returns the digest. */
  async putBlob(name: string, body: Uint8Array): Promise<string> {
    const digest = `sha256:${createHash("sha256").update(body).digest("hex")}`;
    const scope = `repository:${name}:pull,push`;
    const start = await this.request("POST", `/v2/${name}/blobs/uploads/`, scope);
    await discard(start);
    if (start.status !== 202) throw await this.failure(start, `start blob upload to ${name}`);
    const location = start.headers.get("location");
    if (!location)
      throw new RegistryError(`blob upload to ${name}: no Location header`, start.status);
    const url = new URL(location, this.baseUrl);
    url.searchParams.set("digest", digest);
    const put = await this.request(
      "PUT",
      url.toString(),
      scope,
      { "Content-Type": "application/octet-stream" },
      body,
    );
    await discard(put);
    if (put.status !== 201) throw await this.failure(put, `finish blob upload to ${name}`);
    return digest;
  }

  private async failure(res: Response, what: string): Promise<RegistryError> {
    const { code, message } = res.bodyUsed ? {} : await readErrorBody(res);
    const hint =
      res.status === 401
        ? this.options.credentials
          ? ": credentials rejected"
          : ": authentication required and no credentials given"
        : "";
    return new RegistryError(
      `${what} on ${this.registry}: HTTP ${res.status}${code ? ` ${code}` : ""}${message ? `: ${message}` : ""}${hint}`,
      res.status,
      code,
    );
  }

  /** One request with authentication: the known scheme first, then once more after a 401 challenge. */
  private async request(
    method: string,
    pathOrUrl: string,
    scope: string | undefined,
    headers: Record<string, string> = {},
    body?: Uint8Array,
  ): Promise<Response> {
    const url = /^https?:\/\//.test(pathOrUrl) ? pathOrUrl : `${this.baseUrl}${pathOrUrl}`;
    let auth = await this.authorization(scope, false);
    let res = await this.send(method, url, headers, auth, body);
    if (res.status !== 401) return res;
    const header = res.headers.get("www-authenticate");
    await discard(res);
    const challenge = header
      ? parseWwwAuthenticate(header).find((c) => /^(bearer|basic)$/i.test(c.scheme))
      : undefined;
    if (!challenge) return res;
    this.challenge = challenge;
    auth = await this.authorization(scope, true);
    if (auth === undefined) return res;
    res = await this.send(method, url, headers, auth, body);
    return res;
  }

  private async authorization(
    scope: string | undefined,
    afterChallenge: boolean,
  ): Promise<string | undefined> {
    const challenge = this.challenge;
    if (!challenge) return undefined;
    if (/^basic$/i.test(challenge.scheme)) {
      return this.options.credentials ? basicHeader(this.options.credentials) : undefined;
    }
    // Bearer: the challenge's own scope names what this request needs (registries send it);
    // before a challenge for this request, use the scope we compute.
    const wanted = afterChallenge ? (challenge.params.scope ?? scope ?? "") : (scope ?? "");
    if (!afterChallenge) {
      const cached = this.tokens.get(wanted);
      if (cached !== undefined) return `Bearer ${cached}`;
      // A Bearer registry seen before: ask for this request's scope up front instead of taking a 401.
      if (scope === undefined) return undefined;
    }
    const token = await this.fetchToken(challenge, wanted);
    this.tokens.set(wanted, token);
    if (scope !== undefined && scope !== wanted) this.tokens.set(scope, token);
    return `Bearer ${token}`;
  }

  private async fetchToken(challenge: AuthChallenge, scope: string): Promise<string> {
    const realm = challenge.params.realm;
    if (!realm) throw new RegistryError(`${this.registry}: Bearer challenge without a realm`, 401);
    const url = new URL(realm);
    if (challenge.params.service) url.searchParams.set("service", challenge.params.service);
    for (const s of scope.split(" ").filter((x) => x !== "")) url.searchParams.append("scope", s);
    const headers: Record<string, string> = { Accept: "application/json" };
    if (this.options.credentials) headers.Authorization = basicHeader(this.options.credentials);
    const res = await this.send("GET", url.toString(), headers, headers.Authorization);
    if (!res.ok) {
      await discard(res);
      const why =
        res.status === 401 || res.status === 403
          ? this.options.credentials
            ? "credentials rejected"
            : "anonymous access refused; give registry credentials"
          : `HTTP ${res.status}`;
      throw new RegistryError(
        `token endpoint ${url.origin}${url.pathname} for ${this.registry}: ${why}`,
        res.status,
      );
    }
    const body = (await res.json()) as { token?: string; access_token?: string };
    const token = body.token ?? body.access_token;
    if (!token)
      throw new RegistryError(
        `token endpoint for ${this.registry} answered without a token`,
        res.status,
      );
    return token;
  }

  private proxyAgent(proxyUrl: string): ProxyAgent {
    let agent = this.proxyAgents.get(proxyUrl);
    if (!agent) {
      // Plain-http registries through an http proxy as absolute-form requests, as curl and Go
      // send them (proxies commonly allow CONNECT to port 443 only); https ones through CONNECT.
      agent = new ProxyAgent({ uri: proxyUrl, proxyTunnel: false });
      this.proxyAgents.set(proxyUrl, agent);
    }
    return agent;
  }

  private async send(
    method: string,
    url: string,
    headers: Record<string, string>,
    authorization: string | undefined,
    body?: Uint8Array,
  ): Promise<Response> {
    const h: Record<string, string> = { ...headers };
    if (authorization) h.Authorization = authorization;
    if (this.options.userAgent) h["User-Agent"] = this.options.userAgent;
    const timeout = AbortSignal.timeout(this.options.timeoutMs ?? 30_000);
    const signal = this.options.signal ? AbortSignal.any([this.options.signal, timeout]) : timeout;
    const init = {
      method,
      headers: h,
      body: body === undefined ? undefined : new Uint8Array(body),
      signal,
      redirect: "follow" as const,
    };
    const proxy = this.options.fetch ? undefined : proxyFor(this.options.proxy, url);
    try {
      if (proxy === undefined) return await this.fetchFn(url, init);
      // undici's own fetch with its ProxyAgent.
      const response = await undiciFetch(url, { ...init, dispatcher: this.proxyAgent(proxy.url) });
      return response as unknown as Response;
    } catch (error) {
      // fetch's own message is "fetch failed"; the reason is its cause (duck-typed: errors may come
      // from another realm).
      const inner =
        typeof error === "object" && error !== null && "cause" in error ? error.cause : undefined;
      const cause = messageOf(inner ?? error);
      const route = proxy ? ` (through ${displayProxyUrl(proxy.url)}, from ${proxy.from})` : "";
      throw new RegistryError(`${method} ${url}${route}: ${cause}`, 0);
    }
  }
}

/** The `rel="next"` target of a Link header, resolved against the registry base URL. */
export function nextLink(link: string | null, baseUrl: string): string | undefined {
  if (!link) return undefined;
  for (const part of link.split(/,(?=\s*<)/)) {
    const m = /^\s*<([^>]*)>\s*;(.*)$/.exec(part);
    if (m && /(?:^|;)\s*rel="?next"?\s*(?:;|$)/i.test(m[2]!)) {
      return new URL(m[1]!, baseUrl).toString();
    }
  }
  return undefined;
}
