/** The HTTPS front: authentication, RBAC-style denials, faults, REST verbs, watch, pods/log, pods/attach. */
import { createServer, type Server } from "node:https";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import { WebSocketServer, type WebSocket } from "ws";
import type { Controllers } from "./controllers.js";
import { randomSuffix } from "./controllers.js";
import { defaultJob, defaultPod } from "./defaults.js";
import type { Kubelet } from "./kubelet.js";
import { applyPatch } from "./patch.js";
import { fieldSelector, labelSelector } from "./selectors.js";
import * as S from "./status.js";
import { ApiError } from "./status.js";
import {
  apiVersionOf,
  clone,
  RESOURCES,
  type Resource,
  type Store,
  type StoreEvent,
} from "./store.js";
import { applyFieldValidation, decodeSecretData, validateCreate } from "./validation.js";
import { allows, type Grants } from "./rbac.js";

export interface RequestRecord {
  method: string;
  path: string;
  query: string;
  status: number;
  stream?: "watch" | "log" | "attach";
  /** For a log stream: who ended it, the server (the log's end, a drop) or the client. */
  endedBy?: "server" | "client";
  /** The client's TCP port, as the API server's audit log records the source address. */
  peerPort?: number;
}

/** A bearer token's identity: RBAC grants, minus any requests a test forbids on top. */
export interface TokenIdentity {
  user: string;
  grants: Grants;
  forbid: ForbidRule[];
}

export interface ForbidRule {
  verb: string;
  resource: string;
  subresource?: string;
}

export interface Faults {
  /** `compact`: the history the watch could resume from is compacted as it drops (the resume gets 410). */
  dropWatch: Array<{ resource: string; afterEvents: number; compact?: boolean }>;
  /** graceful: the stream ends as if complete (a proxy whose upstream broke), not cut. */
  dropLog: Array<{ afterLines: number; graceful?: boolean }>;
  dropAttach: Array<{ afterBytes: number }>;
  /**
   * The next context upload's connection stalls after this many stdin bytes: the server reads no
   * more and never answers, whatever happens to the pod (a connection black-holed between the
   * API server and the node).
   */
  stallAttach: Array<{ afterBytes: number; onStalled: () => void }>;
  /** The next log stream sends what the container has logged so far, then nothing, and never ends. */
  stallLog: Array<{ onStalled: () => void }>;
  /**
   * Matching requests are held unanswered and never carried out, as if the client had not sent
   * them yet; for killing the client at an exact point.
   */
  hold: Array<{ method?: string; pathPattern: RegExp; onHeld: () => void }>;
  /** Requests that are carried out, but whose answer is a 504 Timeout (the client cannot tell). */
  loseResponse: Array<{ method?: string; pathPattern: RegExp; times: number }>;
  /** Requests held this long before they are carried out (a slow or overloaded API server). */
  delay: Array<{ method?: string; pathPattern: RegExp; ms: number; times: number }>;
  fail: Array<{
    method?: string;
    pathPattern: RegExp;
    status: 401 | 403 | 429 | 500 | 503;
    times: number;
    retryAfterSeconds?: number;
  }>;
}

export interface ApiServerOptions {
  gitVersion: string;
  minor: number;
  timeScale: number;
  attachProtocols: string[];
}

interface Route {
  resource: Resource;
  namespace?: string;
  name?: string;
  subresource?: string;
}

const GROUP_PATHS: Record<string, Resource[]> = {
  "/api/v1": ["pods", "secrets", "events", "namespaces"],
  "/apis/batch/v1": ["jobs"],
};

export function parseRoute(pathname: string): Route | undefined {
  for (const [prefix, resources] of Object.entries(GROUP_PATHS)) {
    if (!pathname.startsWith(prefix + "/")) continue;
    const parts = pathname
      .slice(prefix.length + 1)
      .split("/")
      .filter((p) => p)
      .map(decodeURIComponent);
    if (parts[0] === "namespaces" && parts.length >= 3) {
      const resource = parts[2] as Resource;
      if (!resources.includes(resource) || resource === "namespaces") return undefined;
      return { resource, namespace: parts[1], name: parts[3], subresource: parts[4] };
    }
    const resource = parts[0] as Resource;
    if (!resources.includes(resource)) return undefined;
    if (resource === "namespaces") return { resource, name: parts[1], subresource: parts[2] };
    if (parts.length === 1) return { resource };
    return undefined;
  }
  return undefined;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

export class ApiServer {
  readonly requests: RequestRecord[] = [];
  /** Every TLS handshake the server completed: a full one, or a resumed session (no certificate). */
  readonly handshakes: Array<{ resumed: boolean; protocol: string }> = [];
  readonly faults: Faults = {
    dropWatch: [],
    dropLog: [],
    dropAttach: [],
    stallAttach: [],
    stallLog: [],
    hold: [],
    loseResponse: [],
    delay: [],
    fail: [],
  };
  private readonly lostResponses = new WeakSet<IncomingMessage>();
  readonly tokens = new Map<string, TokenIdentity>();
  readonly server: Server;
  private readonly wss: WebSocketServer;
  private readonly sockets = new Set<Duplex>();
  private readonly streams = new Set<() => void>();
  /** The watches open now, each with the drop that cuts its connection. */
  private readonly openWatches = new Map<() => void, Resource>();

  /** Cuts every open watch of `resource` as a dropped connection would. */
  dropOpenWatches(resource: Resource): number {
    let n = 0;
    for (const [cut, r] of [...this.openWatches]) {
      if (r !== resource) continue;
      this.openWatches.delete(cut);
      cut();
      n++;
    }
    return n;
  }

  constructor(
    private readonly store: Store,
    private readonly controllers: Controllers,
    private readonly kubelet: Kubelet,
    private readonly opts: ApiServerOptions,
    tls: { certPem: string; keyPem: string },
  ) {
    this.server = createServer({ cert: tls.certPem, key: tls.keyPem }, (req, res) => {
      void this.handle(req, res);
    });
    this.server.on("connection", (s) => {
      this.sockets.add(s);
      s.on("close", () => this.sockets.delete(s));
    });
    this.server.on("secureConnection", (s) => {
      this.handshakes.push({ resumed: s.isSessionReused(), protocol: s.getProtocol() ?? "" });
      this.sockets.add(s);
      s.on("close", () => this.sockets.delete(s));
    });
    this.wss = new WebSocketServer({
      noServer: true,
      handleProtocols: (protocols) => {
        for (const p of protocols) if (this.opts.attachProtocols.includes(p)) return p;
        return false;
      },
    });
    this.server.on("upgrade", (req, socket, head) => void this.handleUpgrade(req, socket, head));
  }

  async close(): Promise<void> {
    for (const end of [...this.streams]) end();
    for (const c of this.wss.clients) c.terminate();
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  // ------------------------------------------------------------------ plumbing

  private record(
    req: IncomingMessage,
    status: number,
    stream?: RequestRecord["stream"],
  ): RequestRecord {
    const u = new URL(req.url ?? "/", "https://x");
    const r: RequestRecord = {
      method: req.method ?? "GET",
      path: u.pathname,
      query: u.search.replace(/^\?/, ""),
      status,
    };
    if (stream) r.stream = stream;
    if (req.socket.remotePort !== undefined) r.peerPort = req.socket.remotePort;
    this.requests.push(r);
    return r;
  }

  private send(
    req: IncomingMessage,
    res: ServerResponse,
    status: number,
    body: unknown,
    headers: Record<string, string | string[]> = {},
  ): void {
    if (this.lostResponses.has(req)) {
      // The work is done; the answer the client gets is the API server's own request timeout.
      this.lostResponses.delete(req);
      status = 504;
      body = {
        kind: "Status",
        apiVersion: "v1",
        metadata: {},
        status: "Failure",
        message:
          "Timeout: request did not complete within requested timeout - context deadline exceeded",
        reason: "Timeout",
        details: {},
        code: 504,
      };
      headers = {};
    }
    this.record(req, status);
    const text = JSON.stringify(body);
    res.writeHead(status, {
      "Content-Type": "application/json",
      "Cache-Control": "no-cache, private",
      ...headers,
      "Content-Length": Buffer.byteLength(text),
    });
    res.end(text);
  }

  private sendError(req: IncomingMessage, res: ServerResponse, err: unknown): void {
    if (err instanceof ApiError) return this.send(req, res, err.code, err.body, err.headers);
    console.error("test-server internal error", err);
    const e = S.internalError(String((err as Error)?.message ?? err));
    this.send(req, res, 500, e.body);
  }

  private authenticate(req: IncomingMessage): TokenIdentity {
    const h = req.headers.authorization ?? "";
    const m = /^Bearer\s+(.+)$/i.exec(h);
    const t = m ? this.tokens.get(m[1]!.trim()) : undefined;
    if (!t) throw S.unauthorized();
    return t;
  }

  private authorize(who: TokenIdentity, verb: string, route: Route): void {
    const info = RESOURCES[route.resource];
    // For a namespace itself the request's namespace is its name (the apiserver's RequestInfo).
    const namespace = route.resource === "namespaces" ? route.name : route.namespace;
    const granted = allows(who.grants, {
      verb,
      group: info.group,
      resource: route.resource,
      subresource: route.subresource,
      namespace,
      name: route.name,
    });
    const denied =
      !granted ||
      who.forbid.some(
        (r) =>
          (r.verb === "*" || r.verb === verb) &&
          (r.resource === "*" || r.resource === route.resource) &&
          (r.subresource ?? "") === (route.subresource ?? ""),
      );
    if (denied) {
      throw S.forbidden(
        who.user,
        verb,
        route.resource,
        route.subresource,
        info.group,
        namespace,
        route.name,
      );
    }
  }

  private injectedFault(
    req: IncomingMessage,
    pathname: string,
    who: TokenIdentity,
  ): ApiError | undefined {
    const f = this.faults.fail.find(
      (x) =>
        x.times > 0 &&
        (!x.method || x.method.toUpperCase() === req.method) &&
        (x.pathPattern.test(pathname) || x.pathPattern.test(req.url ?? "")),
    );
    if (!f) return undefined;
    f.times--;
    if (f.status === 401) return S.unauthorized();
    if (f.status === 403) {
      const route = parseRoute(pathname);
      const q = new URL(req.url ?? "/", "https://x").searchParams;
      if (route) {
        const verb = this.verbOf(req.method ?? "GET", route, q);
        return S.forbidden(
          who.user,
          verb,
          route.resource,
          route.subresource,
          RESOURCES[route.resource].group,
          route.namespace,
          route.name,
        );
      }
      return S.forbidden(who.user, "get", "", undefined, "", undefined, undefined);
    }
    if (f.status === 429) return S.tooManyRequests(f.retryAfterSeconds ?? 1);
    if (f.status === 503) return S.serviceUnavailable(f.retryAfterSeconds);
    return S.internalError("injected fault");
  }

  private verbOf(method: string, route: Route, q: URLSearchParams): string {
    switch (method) {
      case "GET":
        if (route.subresource) return "get";
        if (q.get("watch") === "true" || q.get("watch") === "1") return "watch";
        return route.name ? "get" : "list";
      case "POST":
        return "create";
      case "PUT":
        return "update";
      case "PATCH":
        return "patch";
      case "DELETE":
        return route.name ? "delete" : "deletecollection";
      default:
        return method.toLowerCase();
    }
  }

  // ------------------------------------------------------------------ HTTP

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const u = new URL(req.url ?? "/", "https://x");
    const q = u.searchParams;
    try {
      if (u.pathname === "/version") {
        const [major, minor] = this.opts.gitVersion.replace(/^v/, "").split(".");
        return this.send(req, res, 200, {
          major,
          minor,
          gitVersion: this.opts.gitVersion,
          gitCommit: "5c8ec9c1a3e0d7d0cd2d95e2d7b2c1c5e2f0a9b1",
          gitTreeState: "clean",
          buildDate: "2022-12-08T19:51:43Z",
          goVersion: "go1.19.4",
          compiler: "gc",
          platform: "linux/amd64",
        });
      }
      const who = this.authenticate(req);
      const held = this.faults.hold.findIndex(
        (x) =>
          (!x.method || x.method.toUpperCase() === req.method) && x.pathPattern.test(u.pathname),
      );
      if (held >= 0) {
        // Never answered, never carried out; the connection goes when the client does.
        this.faults.hold.splice(held, 1)[0]!.onHeld();
        return;
      }
      const fault = this.injectedFault(req, u.pathname, who);
      if (fault) throw fault;
      const delay = this.faults.delay.find(
        (x) =>
          x.times > 0 &&
          (!x.method || x.method.toUpperCase() === req.method) &&
          (x.pathPattern.test(u.pathname) || x.pathPattern.test(req.url ?? "")),
      );
      if (delay) {
        delay.times--;
        await new Promise((resolve) => setTimeout(resolve, delay.ms));
      }
      const lose = this.faults.loseResponse.find(
        (x) =>
          x.times > 0 &&
          (!x.method || x.method.toUpperCase() === req.method) &&
          x.pathPattern.test(u.pathname),
      );
      if (lose) {
        lose.times--;
        this.lostResponses.add(req);
      }
      const route = parseRoute(u.pathname);
      if (!route) {
        const nf = S.notFound("", "", "");
        nf.body.message = "the server could not find the requested resource";
        delete nf.body.details;
        throw nf;
      }
      const verb = this.verbOf(req.method ?? "GET", route, q);
      this.authorize(who, verb, route);
      if (route.resource === "namespaces")
        return await this.handleNamespaces(req, res, route, verb, q);
      if (route.subresource === "log" && route.resource === "pods" && verb === "get")
        return await this.handleLog(req, res, route, q);
      if (route.subresource)
        throw S.notFound(route.resource, RESOURCES[route.resource].group, route.name ?? "");
      switch (verb) {
        case "get":
          return this.handleGet(req, res, route);
        case "list":
          return this.handleList(req, res, route, q);
        case "watch":
          return this.handleWatch(req, res, route, q);
        case "create":
          return await this.handleCreate(req, res, route, q);
        case "patch":
          return await this.handlePatch(req, res, route, q);
        case "update":
          return await this.handleUpdate(req, res, route, q);
        case "delete":
          return await this.handleDelete(req, res, route, q);
        default:
          throw S.methodNotSupported(route.resource, RESOURCES[route.resource].group, verb);
      }
    } catch (err) {
      this.sendError(req, res, err);
    }
  }

  private async handleNamespaces(
    req: IncomingMessage,
    res: ServerResponse,
    route: Route,
    verb: string,
    q: URLSearchParams,
  ): Promise<void> {
    if (verb === "get" && route.name) {
      const ns = this.store.get("namespaces", undefined, route.name);
      if (!ns) throw S.notFound("namespaces", "", route.name);
      return this.send(req, res, 200, ns);
    }
    if (verb === "list") return this.handleList(req, res, route, q);
    if (verb === "watch") return this.handleWatch(req, res, route, q);
    throw S.methodNotSupported("namespaces", "", verb);
  }

  private requireNamespace(ns: string | undefined): void {
    if (ns && !this.store.get("namespaces", undefined, ns)) throw S.notFound("namespaces", "", ns);
  }

  private handleGet(req: IncomingMessage, res: ServerResponse, route: Route): void {
    const o = this.store.get(route.resource, route.namespace, route.name!);
    if (!o) throw S.notFound(route.resource, RESOURCES[route.resource].group, route.name!);
    this.send(req, res, 200, o);
  }

  private matcher(route: Route, q: URLSearchParams): (o: any) => boolean {
    const ls = labelSelector(q.get("labelSelector"));
    const fs = fieldSelector(route.resource, q.get("fieldSelector"));
    return (o) => (!route.namespace || o.metadata.namespace === route.namespace) && ls(o) && fs(o);
  }

  private checkExpired(resource: Resource, rv: string | null): void {
    const compacted = this.store.compactedRV(resource);
    if (rv && rv !== "0" && Number(rv) < compacted) {
      throw S.expired(`too old resource version: ${rv} (${compacted})`);
    }
  }

  private handleList(
    req: IncomingMessage,
    res: ServerResponse,
    route: Route,
    q: URLSearchParams,
  ): void {
    const match = this.matcher(route, q);
    const rv = q.get("resourceVersion");
    if (q.get("resourceVersionMatch") === "Exact") this.checkExpired(route.resource, rv);
    let items = this.store.list(route.resource, route.namespace).filter(match);
    const meta: any = { resourceVersion: String(this.store.currentRV()) };
    const cont = q.get("continue");
    if (cont) {
      let tok: { rv: number; start: string };
      try {
        tok = JSON.parse(Buffer.from(cont, "base64").toString("utf8"));
      } catch {
        throw S.badRequest("continue key is not valid: illegal base64 data at input byte 0");
      }
      if (tok.rv < this.store.compactedRV(route.resource)) {
        const e = S.expired(
          "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.",
        );
        throw e;
      }
      items = items.filter((o) => `${o.metadata.namespace ?? ""}/${o.metadata.name}` > tok.start);
      meta.resourceVersion = String(tok.rv);
    }
    const limit = Number(q.get("limit") ?? 0);
    if (limit > 0 && items.length > limit) {
      const last = items[limit - 1]!;
      meta.continue = Buffer.from(
        JSON.stringify({
          rv: Number(meta.resourceVersion),
          start: `${last.metadata.namespace ?? ""}/${last.metadata.name}`,
        }),
      ).toString("base64");
      meta.remainingItemCount = items.length - limit;
      items = items.slice(0, limit);
    }
    for (const i of items) {
      delete i.kind;
      delete i.apiVersion;
    }
    this.send(req, res, 200, {
      kind: `${RESOURCES[route.resource].kind}List`,
      apiVersion: apiVersionOf(route.resource),
      metadata: meta,
      items,
    });
  }

  private handleWatch(
    req: IncomingMessage,
    res: ServerResponse,
    route: Route,
    q: URLSearchParams,
  ): void {
    const match = this.matcher(route, q);
    const rv = q.get("resourceVersion");
    this.record(req, 200, "watch");
    res.writeHead(200, {
      "Content-Type": "application/json",
      "Cache-Control": "no-cache, private",
      "Transfer-Encoding": "chunked",
    });
    res.flushHeaders();
    const compacted = this.store.compactedRV(route.resource);
    if (rv && rv !== "0" && Number(rv) < compacted) {
      const err = S.expired(`too old resource version: ${rv} (${compacted})`);
      res.end(JSON.stringify({ type: "ERROR", object: err.body }) + "\n");
      return;
    }
    const dropIdx = this.faults.dropWatch.findIndex((d) => d.resource === route.resource);
    const drop = dropIdx >= 0 ? this.faults.dropWatch.splice(dropIdx, 1)[0] : undefined;
    let sent = 0;
    let ended = false;
    const timers: NodeJS.Timeout[] = [];
    const end = (graceful = true) => {
      if (ended) return;
      ended = true;
      unsubscribe();
      for (const t of timers) clearInterval(t);
      this.streams.delete(end);
      if (graceful) res.end();
      // A dropped connection: what was written is flushed, then the socket goes (no final chunk).
      else setTimeout(() => res.socket?.destroy(), 20);
      if (!graceful && drop?.compact) this.store.compactResource(route.resource);
    };
    this.streams.add(end);
    const cutOpen = () => end(false);
    this.openWatches.set(cutOpen, route.resource);
    res.on("close", () => this.openWatches.delete(cutOpen));
    const write = (type: string, object: any) => {
      if (ended) return;
      res.write(JSON.stringify({ type, object }) + "\n");
      if (type !== "BOOKMARK") sent++;
      if (drop && sent >= drop.afterEvents) end(false);
    };
    const relevant = (e: StoreEvent) => e.resource === route.resource;
    const deliver = (e: StoreEvent) => {
      if (!relevant(e)) return;
      const now = match(e.object);
      const before = e.prev ? match(e.prev) : false;
      if (e.type === "ADDED" && now) write("ADDED", e.object);
      else if (e.type === "MODIFIED") {
        if (now && before) write("MODIFIED", e.object);
        else if (now && !before) write("ADDED", e.object);
        else if (!now && before) write("DELETED", e.object);
      } else if (e.type === "DELETED" && (before || now)) write("DELETED", e.object);
    };
    let unsubscribe: () => void = () => {};
    if (drop && drop.afterEvents === 0) {
      end();
      return;
    }
    if (!rv || rv === "0") {
      for (const o of this.store.list(route.resource, route.namespace).filter(match))
        write("ADDED", o);
    } else {
      for (const e of this.store.history(route.resource)) if (e.rv > Number(rv)) deliver(e);
    }
    if (ended) return;
    unsubscribe = this.store.subscribe(deliver);
    req.on("close", end);
    res.on("close", end);
    if (q.get("allowWatchBookmarks") === "true") {
      const info = RESOURCES[route.resource];
      timers.push(
        setInterval(
          () =>
            write("BOOKMARK", {
              kind: info.kind,
              apiVersion: apiVersionOf(route.resource),
              metadata: {
                resourceVersion: String(this.store.currentRV()),
                creationTimestamp: null,
              },
            }),
          Math.max(200, 60000 * this.opts.timeScale),
        ),
      );
    }
    const timeout = Number(q.get("timeoutSeconds") ?? 0);
    if (timeout > 0) timers.push(setTimeout(end, timeout * 1000));
  }

  private async parseObject(req: IncomingMessage, route: Route): Promise<any> {
    const text = await readBody(req);
    try {
      const o = JSON.parse(text);
      if (!o || typeof o !== "object" || Array.isArray(o)) throw new Error("not an object");
      return o;
    } catch (e) {
      const kind = RESOURCES[route.resource].kind;
      throw S.badRequest(
        `${kind} in version "v1" cannot be handled as a ${kind}: ${(e as Error).message}`,
      );
    }
  }

  private checkKind(obj: any, route: Route): void {
    const info = RESOURCES[route.resource];
    const want = apiVersionOf(route.resource);
    if (obj.apiVersion && obj.apiVersion !== want)
      throw S.badRequest(
        `the API version in the data (${obj.apiVersion}) does not match the expected API version (${want})`,
      );
    if (obj.kind && obj.kind !== info.kind)
      throw S.badRequest(
        `${obj.kind} in version "${info.version}" cannot be handled as a ${info.kind}: no kind "${obj.kind}" is registered for version "${want}" in scheme "pkg/api/legacyscheme/scheme.go:30"`,
      );
  }

  private warningHeaders(warnings: string[]): Record<string, string | string[]> {
    return warnings.length ? { Warning: warnings.map((w) => `299 - ${JSON.stringify(w)}`) } : {};
  }

  private async handleCreate(
    req: IncomingMessage,
    res: ServerResponse,
    route: Route,
    q: URLSearchParams,
  ): Promise<void> {
    const obj = await this.parseObject(req, route);
    this.checkKind(obj, route);
    const info = RESOURCES[route.resource];
    obj.metadata ??= {};
    if (obj.metadata.namespace && obj.metadata.namespace !== route.namespace)
      throw S.badRequest(
        "the namespace of the provided object does not match the namespace sent on the request",
      );
    if (route.resource === "secrets") decodeSecretData(obj);
    const warnings = applyFieldValidation(route.resource, obj, q.get("fieldValidation"), info.kind);
    this.requireNamespace(route.namespace);
    obj.metadata.namespace = route.namespace;
    for (const f of [
      "uid",
      "resourceVersion",
      "creationTimestamp",
      "deletionTimestamp",
      "deletionGracePeriodSeconds",
      "selfLink",
      "managedFields",
    ])
      delete obj.metadata[f];
    if (!obj.metadata.name && obj.metadata.generateName) {
      let name: string;
      do name = `${obj.metadata.generateName}${randomSuffix()}`;
      while (this.store.get(route.resource, route.namespace, name));
      obj.metadata.name = name;
    }
    if (route.resource === "jobs") defaultJob(obj, this.opts.minor);
    if (route.resource === "pods") defaultPod(obj);
    if (route.resource === "secrets") obj.type ??= "Opaque";
    if (route.resource === "pods" && !obj.spec) obj.spec = {};
    validateCreate(route.resource, obj, info.kind, info.group);
    if (this.store.get(route.resource, route.namespace, obj.metadata.name))
      throw S.alreadyExists(route.resource, info.group, obj.metadata.name);
    if (q.get("dryRun") === "All") {
      obj.kind = info.kind;
      obj.apiVersion = apiVersionOf(route.resource);
      obj.metadata.creationTimestamp = new Date().toISOString().replace(/\.\d{3}Z$/, "Z");
      return this.send(req, res, 201, obj, this.warningHeaders(warnings));
    }
    const created = this.store.create(route.resource, obj);
    this.send(req, res, 201, created, this.warningHeaders(warnings));
  }

  private immutability(route: Route, before: any, after: any): void {
    const info = RESOURCES[route.resource];
    const errs: S.FieldError[] = [];
    if (after.metadata?.name !== before.metadata.name)
      throw S.badRequest(
        `the name of the object (${after.metadata?.name}) does not match the name on the URL (${before.metadata.name})`,
      );
    if (route.resource === "jobs") {
      if (JSON.stringify(after.spec?.selector) !== JSON.stringify(before.spec.selector))
        errs.push({
          type: "FieldValueInvalid",
          field: "spec.selector",
          detail: `Invalid value: ${JSON.stringify(after.spec?.selector)}: field is immutable`,
        });
      if (JSON.stringify(after.spec?.template) !== JSON.stringify(before.spec.template))
        errs.push({
          type: "FieldValueInvalid",
          field: "spec.template",
          detail: `Invalid value: ${JSON.stringify(after.spec?.template)}: field is immutable`,
        });
      if (after.spec?.completions !== before.spec.completions)
        errs.push({
          type: "FieldValueInvalid",
          field: "spec.completions",
          detail: `Invalid value: ${after.spec?.completions}: field is immutable`,
        });
    }
    if (route.resource === "secrets" && before.immutable) {
      if (JSON.stringify(after.data) !== JSON.stringify(before.data))
        errs.push({
          type: "FieldValueForbidden",
          field: "data",
          detail: "Forbidden: field is immutable when `immutable` is set",
        });
    }
    if (route.resource === "pods") {
      const strip = (p: any) =>
        JSON.stringify({
          ...p.spec,
          containers: p.spec.containers.map((c: any) => ({ ...c, image: "" })),
          activeDeadlineSeconds: 0,
          tolerations: [],
        });
      if (strip(after) !== strip(before))
        errs.push({
          type: "FieldValueForbidden",
          field: "spec",
          detail:
            "Forbidden: pod updates may not change fields other than `spec.containers[*].image`, `spec.initContainers[*].image`, `spec.activeDeadlineSeconds`, `spec.tolerations` (only additions to existing tolerations) or `spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
        });
    }
    if (errs.length) throw S.invalid(info.kind, info.group, before.metadata.name, errs);
  }

  private finishWrite(route: Route, before: any, after: any): any {
    // Server-owned metadata is kept; status is not writable through the main resource.
    after.metadata.uid = before.metadata.uid;
    after.metadata.creationTimestamp = before.metadata.creationTimestamp;
    after.metadata.namespace = before.metadata.namespace;
    if (before.metadata.deletionTimestamp)
      after.metadata.deletionTimestamp = before.metadata.deletionTimestamp;
    after.status = before.status;
    after.kind = before.kind;
    after.apiVersion = before.apiVersion;
    if (route.resource === "jobs" && JSON.stringify(after.spec) !== JSON.stringify(before.spec))
      after.metadata.generation = (before.metadata.generation ?? 1) + 1;
    else after.metadata.generation = before.metadata.generation;
    if (after.metadata.generation === undefined) delete after.metadata.generation;
    return after;
  }

  private async handlePatch(
    req: IncomingMessage,
    res: ServerResponse,
    route: Route,
    q: URLSearchParams,
  ): Promise<void> {
    const body = await readBody(req);
    const info = RESOURCES[route.resource];
    const cur = this.store.get(route.resource, route.namespace, route.name!);
    if (!cur) throw S.notFound(route.resource, info.group, route.name!);
    const ct = String(req.headers["content-type"] ?? "");
    let patched = applyPatch(ct, cur, body);
    this.checkResourceVersion(route, cur, patched);
    if (route.resource === "secrets") decodeSecretData(patched);
    const warnings = applyFieldValidation(
      route.resource,
      patched,
      q.get("fieldValidation"),
      info.kind,
    );
    this.immutability(route, cur, patched);
    patched = this.finishWrite(route, cur, patched);
    validateCreate(route.resource, patched, info.kind, info.group);
    if (q.get("dryRun") === "All")
      return this.send(req, res, 200, patched, this.warningHeaders(warnings));
    const out =
      JSON.stringify(patched) === JSON.stringify(cur)
        ? cur
        : (this.store.update(route.resource, patched) ?? patched);
    this.send(req, res, 200, out, this.warningHeaders(warnings));
  }

  /** Optimistic concurrency, as the API server does it: a stale resourceVersion is a 409 Conflict. */
  private checkResourceVersion(route: Route, cur: any, next: any): void {
    const version = next.metadata?.resourceVersion;
    if (version && version !== cur.metadata.resourceVersion) {
      throw S.conflict(
        route.resource,
        RESOURCES[route.resource].group,
        route.name!,
        "the object has been modified; please apply your changes to the latest version and try again",
      );
    }
  }

  private async handleUpdate(
    req: IncomingMessage,
    res: ServerResponse,
    route: Route,
    q: URLSearchParams,
  ): Promise<void> {
    const obj = await this.parseObject(req, route);
    this.checkKind(obj, route);
    const info = RESOURCES[route.resource];
    const cur = this.store.get(route.resource, route.namespace, route.name!);
    if (!cur) throw S.notFound(route.resource, info.group, route.name!);
    this.checkResourceVersion(route, cur, obj);
    if (route.resource === "secrets") decodeSecretData(obj);
    const warnings = applyFieldValidation(route.resource, obj, q.get("fieldValidation"), info.kind);
    this.immutability(route, cur, obj);
    const after = this.finishWrite(route, cur, obj);
    validateCreate(route.resource, after, info.kind, info.group);
    const out = this.store.update(route.resource, after) ?? after;
    this.send(req, res, 200, out, this.warningHeaders(warnings));
  }

  private async handleDelete(
    req: IncomingMessage,
    res: ServerResponse,
    route: Route,
    q: URLSearchParams,
  ): Promise<void> {
    const text = await readBody(req);
    let opts: any = {};
    if (text.trim()) {
      try {
        opts = JSON.parse(text);
      } catch (e) {
        throw S.badRequest(
          `DeleteOptions in version "v1" cannot be handled as a DeleteOptions: ${(e as Error).message}`,
        );
      }
    }
    const info = RESOURCES[route.resource];
    const cur = this.store.get(route.resource, route.namespace, route.name!);
    if (!cur) throw S.notFound(route.resource, info.group, route.name!);
    const pre = opts.preconditions ?? {};
    if (pre.uid && pre.uid !== cur.metadata.uid) {
      throw S.conflict(
        route.resource,
        info.group,
        route.name!,
        `Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${cur.metadata.uid}`,
      );
    }
    let policy: string | undefined = q.get("propagationPolicy") ?? opts.propagationPolicy;
    const orphan = q.get("orphanDependents") ?? opts.orphanDependents;
    if (!policy && orphan !== undefined && orphan !== null)
      policy = String(orphan) === "true" ? "Orphan" : "Background";
    if (policy && !["Background", "Foreground", "Orphan"].includes(policy)) {
      throw S.invalid("DeleteOptions", "", "", [
        {
          type: "FieldValueNotSupported",
          field: "propagationPolicy",
          detail: `Unsupported value: "${policy}": supported values: "Foreground", "Background", "Orphan", "nil"`,
        },
      ]);
    }
    // batch/v1 Jobs keep the legacy default of orphaning their pods (DefaultGarbageCollectionPolicy = OrphanDependents).
    policy ??= route.resource === "jobs" ? "Orphan" : "Background";
    const graceQ = q.get("gracePeriodSeconds") ?? opts.gracePeriodSeconds;
    const grace = graceQ === undefined || graceQ === null ? undefined : Number(graceQ);
    if (q.get("dryRun") === "All")
      return this.send(
        req,
        res,
        200,
        route.resource === "pods"
          ? cur
          : S.success(cur.metadata.name, info.group, route.resource, cur.metadata.uid),
      );
    const r = this.controllers.deleteWithPropagation(
      route.resource,
      cur,
      policy as "Background" | "Foreground" | "Orphan",
      grace,
    );
    if (!r) throw S.notFound(route.resource, info.group, route.name!);
    if (route.resource === "pods" || !r.deleted) return this.send(req, res, 200, r.object);
    this.send(
      req,
      res,
      200,
      S.success(cur.metadata.name, info.group, route.resource, cur.metadata.uid),
    );
  }

  // ------------------------------------------------------------------ pods/log

  private async handleLog(
    req: IncomingMessage,
    res: ServerResponse,
    route: Route,
    q: URLSearchParams,
  ): Promise<void> {
    const ns = route.namespace!;
    const name = route.name!;
    const pod = this.store.get("pods", ns, name);
    if (!pod) throw S.notFound("pods", "", name);
    const inits = (pod.spec.initContainers ?? []).map((c: any) => c.name as string);
    const mains = pod.spec.containers.map((c: any) => c.name as string);
    let container = q.get("container") ?? "";
    if (!container) {
      if (mains.length === 1) container = mains[0]!;
      else
        throw S.badRequest(
          `a container name must be specified for pod ${name}, choose one of: [${mains.join(" ")}]${inits.length ? ` or one of the init containers: [${inits.join(" ")}]` : ""}`,
        );
    }
    if (!inits.includes(container) && !mains.includes(container))
      throw S.badRequest(`container ${container} is not valid for pod ${name}`);
    for (const [key, label] of [
      ["tailLines", "tailLines"],
      ["limitBytes", "limitBytes"],
      ["sinceSeconds", "sinceSeconds"],
    ] as const) {
      const v = q.get(key);
      if (v !== null && (!/^-?\d+$/.test(v) || Number(v) < (key === "tailLines" ? 0 : 1))) {
        throw S.invalid("PodLogOptions", "", "", [
          {
            type: "FieldValueInvalid",
            field: label,
            detail: `Invalid value: ${v}: must be greater than ${key === "tailLines" ? "or equal to 0" : "0"}`,
          },
        ]);
      }
    }
    if (pod.spec.nodeName === undefined)
      throw S.badRequest(`pod ${name} does not have a host assigned`);
    const statuses = [
      ...(pod.status?.initContainerStatuses ?? []),
      ...(pod.status?.containerStatuses ?? []),
    ];
    const st = statuses.find((s: any) => s.name === container);
    const waiting = !st || st.state?.waiting || (!st.state?.running && !st.state?.terminated);
    if (waiting) {
      const reason = st?.state?.waiting?.reason ?? "ContainerCreating";
      const why =
        reason === "ErrImagePull"
          ? "image can't be pulled"
          : reason === "ImagePullBackOff"
            ? "trying and failing to pull image"
            : reason;
      throw S.badRequest(`container "${container}" in pod "${name}" is waiting to start: ${why}`);
    }
    if (this.kubelet.runtime(ns, name)?.containersRemoved && st?.containerID) {
      // The kubelet's GetContainerLogs fails (400), the API server passes its words on.
      throw S.badRequest(`unable to retrieve container logs for ${st.containerID}`);
    }
    const log = this.kubelet.log(ns, name, container);
    const follow = q.get("follow") === "true";
    const timestamps = q.get("timestamps") === "true";
    const sinceTimeQ = q.get("sinceTime");
    const sinceSeconds = q.get("sinceSeconds");
    // sinceTime travels to the kubelet as RFC3339 (whole seconds): lines in that second come again.
    let since = -Infinity;
    if (sinceTimeQ) {
      const t = Date.parse(sinceTimeQ);
      if (Number.isNaN(t))
        throw S.badRequest(
          `parsing time "${sinceTimeQ}" as "2006-01-02T15:04:05Z07:00": cannot parse "${sinceTimeQ}" as "2006"`,
        );
      since = Math.floor(t / 1000) * 1000;
    } else if (sinceSeconds) since = Date.now() - Number(sinceSeconds) * 1000;
    const tail = q.get("tailLines") !== null ? Number(q.get("tailLines")) : undefined;
    let budget = q.get("limitBytes") !== null ? Number(q.get("limitBytes")) : Infinity;
    const dropIdx = this.faults.dropLog.length ? 0 : -1;
    const drop = dropIdx >= 0 ? this.faults.dropLog.splice(0, 1)[0] : undefined;
    const stall = follow ? this.faults.stallLog.shift() : undefined;
    const record = this.record(req, 200, "log");
    res.writeHead(200, {
      "Content-Type": "text/plain",
      "Cache-Control": "no-cache, private",
      "Transfer-Encoding": "chunked",
    });
    res.flushHeaders();
    let written = 0;
    let ended = false;
    const end = (graceful = true) => {
      if (ended) return;
      ended = true;
      record.endedBy ??= "server";
      log?.off("line", onLine);
      log?.off("end", end);
      this.streams.delete(end);
      if (graceful) res.end();
      // A dropped connection: what was written is flushed, then the socket goes (no final chunk).
      else setTimeout(() => res.socket?.destroy(), 20);
    };
    const write = (l: { t: number; stamp: string; text: string }) => {
      if (ended || l.t < since) return;
      let s = (timestamps ? `${l.stamp} ` : "") + l.text + "\n";
      if (Buffer.byteLength(s) > budget) s = Buffer.from(s).subarray(0, budget).toString("utf8");
      budget -= Buffer.byteLength(s);
      res.write(s);
      written++;
      if (budget <= 0) end();
      else if (drop && written >= drop.afterLines) cut();
    };
    // A dropped connection, as a real one drops: the socket goes away mid-stream (no final chunk).
    const cut = () => end(drop?.graceful ?? false);
    const onLine = (l: any) => write(l);
    this.streams.add(end);
    if (drop && drop.afterLines === 0) return cut();
    let lines = (log?.lines ?? []).filter((l) => l.t >= since);
    if (tail !== undefined) lines = tail === 0 ? [] : lines.slice(-tail);
    for (const l of lines) write(l);
    if (stall) {
      // Open and silent from here on, even after the container ends.
      req.on("close", end);
      stall.onStalled();
      return;
    }
    // A container that has exited: the kubelet reads to the end of the file and stops.
    if (!follow || !log || log.exited) return end();
    log.on("line", onLine);
    log.once("end", end);
    const clientGone = () => {
      if (!ended) record.endedBy = "client";
      end();
    };
    req.on("close", clientGone);
    res.on("close", clientGone);
  }

  // ------------------------------------------------------------------ pods/attach

  private rejectUpgrade(
    req: IncomingMessage,
    socket: Duplex,
    status: number,
    body: unknown,
    contentType = "application/json",
  ): void {
    this.record(req, status, "attach");
    const text = typeof body === "string" ? body : JSON.stringify(body);
    socket.end(
      `HTTP/1.1 ${status} ${status === 400 ? "Bad Request" : status === 401 ? "Unauthorized" : status === 403 ? "Forbidden" : status === 404 ? "Not Found" : "Error"}\r\nContent-Type: ${contentType}\r\nContent-Length: ${Buffer.byteLength(text)}\r\nConnection: close\r\n\r\n${text}`,
    );
  }

  private async handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    socket.on("error", () => {});
    const u = new URL(req.url ?? "/", "https://x");
    const q = u.searchParams;
    const route = parseRoute(u.pathname);
    try {
      const who = this.authenticate(req);
      const fault = this.injectedFault(req, u.pathname, who);
      if (fault) throw fault;
      if (
        !route ||
        route.resource !== "pods" ||
        !route.name ||
        (route.subresource !== "attach" && route.subresource !== "exec")
      )
        throw S.badRequest("upgrade is only supported for pods/attach");
      this.authorize(who, "get", route);
      // From 1.35 websocket attach/exec also needs "create" (AuthorizePodWebsocketUpgradeCreatePermission).
      if (this.opts.minor >= 35) this.authorize(who, "create", route);
      if (route.subresource === "exec")
        throw S.badRequest("exec is not supported by the test server");
      const ns = route.namespace!;
      const pod = this.store.get("pods", ns, route.name);
      if (!pod) throw S.notFound("pods", "", route.name);
      const inits = (pod.spec.initContainers ?? []).map((c: any) => c.name as string);
      const mains = pod.spec.containers.map((c: any) => c.name as string);
      let container = q.get("container") ?? "";
      if (!container) {
        if (mains.length === 1) container = mains[0]!;
        else
          throw S.badRequest(
            `a container name must be specified for pod ${route.name}, choose one of: [${mains.join(" ")}]${inits.length ? ` or one of the init containers: [${inits.join(" ")}]` : ""}`,
          );
      }
      if (!inits.includes(container) && !mains.includes(container))
        throw S.badRequest(`container ${container} is not valid for pod ${route.name}`);
      const phase = pod.status?.phase;
      if (phase === "Succeeded" || phase === "Failed")
        throw S.badRequest(
          `cannot attach to a container in a completed pod; current phase is ${phase}`,
        );
      const statuses = [
        ...(pod.status?.initContainerStatuses ?? []),
        ...(pod.status?.containerStatuses ?? []),
      ];
      const st = statuses.find((s: any) => s.name === container);
      if (!st?.state?.running) {
        // The kubelet cannot find a running container; the apiserver relays its plain-text 500.
        return this.rejectUpgrade(
          req,
          socket,
          500,
          st?.state?.terminated
            ? `container ${container} is not running`
            : `container not found ("${container}")`,
          "text/plain; charset=utf-8",
        );
      }
      const offered = String(req.headers["sec-websocket-protocol"] ?? "")
        .split(",")
        .map((s) => s.trim())
        .filter((s) => s);
      if (!offered.some((p) => this.opts.attachProtocols.includes(p))) {
        throw S.badRequest(
          `unable to upgrade: no supported subprotocol among [${offered.join(" ")}] (server supports ${this.opts.attachProtocols.join(", ")})`,
        );
      }
      this.wss.handleUpgrade(req, socket, head, (ws) => {
        this.record(req, 101, "attach");
        this.attachSession(ws, ns, route.name!, container, q);
      });
    } catch (err) {
      const e = err instanceof ApiError ? err : S.internalError(String(err));
      this.rejectUpgrade(req, socket, e.code, e.body);
    }
  }

  private attachSession(
    ws: WebSocket,
    ns: string,
    podName: string,
    container: string,
    q: URLSearchParams,
  ): void {
    const rt = this.kubelet.runtime(ns, podName);
    const receiver = rt?.receiverContainer === container ? rt.receiver : undefined;
    const wantStdin = q.get("stdin") === "true" || q.get("stdin") === "1";
    const feeds = !!receiver && wantStdin && !receiver.claimed && !receiver.closed;
    if (feeds) receiver!.claimed = true;
    // A connection that drops mid-upload: the receiver's tar sees its input end early.
    const drop = feeds ? this.faults.dropAttach.shift() : undefined;
    const stall = feeds && !drop ? this.faults.stallAttach.shift() : undefined;
    let stalled = false;
    let received = 0;
    const v5 = ws.protocol === "v5.channel.k8s.io";
    const sock = (ws as any)._socket as Duplex | undefined;
    let finished = false;
    const finish = async () => {
      if (finished) return;
      finished = true;
      if (!feeds) return;
      receiver!.end();
      const code = await receiver!.exit;
      // A stalled connection tells the client nothing, not even how the receiver ended.
      if (stalled || ws.readyState !== ws.OPEN) return;
      // What BusyBox's tar said (the recording kaniko-upload-truncated has the same lines).
      if (code !== 0 && receiver!.stderr)
        ws.send(Buffer.concat([Buffer.from([2]), Buffer.from(receiver!.stderr)]));
      ws.send(
        Buffer.concat([
          Buffer.from([3]),
          Buffer.from(JSON.stringify({ metadata: {}, status: "Success" })),
        ]),
      );
      ws.close(1000);
    };
    if (feeds) {
      // The container ends while the client still sends (killed after the grace period of a
      // delete): the kubelet's stream ends with it, what it wrote to stderr first.
      void receiver!.exit.then(() => {
        if (finished || ws.readyState !== ws.OPEN) return;
        finished = true;
        if (receiver!.stderr)
          ws.send(Buffer.concat([Buffer.from([2]), Buffer.from(receiver!.stderr)]));
        ws.close(1000);
      });
    }
    ws.on("message", (data: Buffer, isBinary: boolean) => {
      const buf = Buffer.isBuffer(data) ? data : Buffer.from(data as any);
      if (buf.length === 0) return;
      let ch = buf[0]!;
      let payload = buf.subarray(1);
      if (!isBinary) {
        // base64.channel.k8s.io is not offered; a text frame carries the channel as its first char.
        ch = buf.toString("utf8").charCodeAt(0);
        payload = Buffer.from(buf.toString("utf8").slice(1));
      }
      if (ch === 255 && v5) {
        if (payload[0] === 0) void finish();
        return;
      }
      if (ch === 0 && feeds && !finished) {
        if (stalled) return;
        if (stall && received + payload.length > stall.afterBytes) {
          receiver!.write(payload.subarray(0, Math.max(0, stall.afterBytes - received)), () => {});
          stalled = true;
          sock?.pause();
          stall.onStalled();
          return;
        }
        if (drop && received + payload.length > drop.afterBytes) {
          receiver!.write(payload.subarray(0, Math.max(0, drop.afterBytes - received)), () => {});
          sock?.destroy();
          void finish();
          return;
        }
        received += payload.length;
        // Real backpressure: a full pipe into tar stops reading the client's socket.
        if (!receiver!.write(payload, () => !stalled && sock?.resume())) sock?.pause();
      }
    });
    ws.on("close", () => void finish());
    ws.on("error", () => void finish());

    if (!feeds) {
      // Without a stdin to feed, the stream ends when the container does.
      const log = rt?.logs.get(container);
      const done = () => {
        if (ws.readyState === ws.OPEN) {
          ws.send(
            Buffer.concat([
              Buffer.from([3]),
              Buffer.from(JSON.stringify({ metadata: {}, status: "Success" })),
            ]),
          );
          ws.close(1000);
        }
      };
      if (!log || log.ended) done();
      else log.once("end", done);
    }
  }
}

export function cloneList(o: any[]): any[] {
  return clone(o);
}
