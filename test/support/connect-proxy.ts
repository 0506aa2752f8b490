/**
 * A forward HTTP proxy on loopback, as a corporate proxy behaves for the tool: CONNECT tunnels
 * (https, wss) and absolute-form requests (plain http), each recorded. Host names ending in
 * `.proxied.test` exist only here (they resolve to 127.0.0.1 in the proxy), so a request for one
 * that does not go through the proxy fails to resolve.
 */
import { createServer, request as httpRequest, type IncomingMessage } from "node:http";
import { connect as netConnect, type AddressInfo, type Socket } from "node:net";
import type { Duplex } from "node:stream";

export const PROXIED_DOMAIN = ".proxied.test";

export interface ProxyTunnel {
  /** host:port the client asked for. */
  target: string;
  /** The local port of the proxy's connection to the target: the target sees it as the peer port. */
  upstreamPort?: number;
  proxyAuthorization?: string;
}

export interface ConnectProxy {
  url: string;
  tunnels: ProxyTunnel[];
  /** Absolute-form requests: "GET http://host:port/path". */
  forwarded: string[];
  close(): Promise<void>;
}

function resolveHost(host: string): string {
  return host.endsWith(PROXIED_DOMAIN) ? "127.0.0.1" : host;
}

function splitHostPort(target: string): { host: string; port: number } {
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(target);
  return m ? { host: m[1]!, port: Number(m[2]) } : { host: target, port: 443 };
}

export interface ConnectProxyOptions {
  /** "user:password": CONNECT without these Basic credentials is answered 407, as corporate proxies do. */
  credentials?: string;
}

export async function startConnectProxy(options: ConnectProxyOptions = {}): Promise<ConnectProxy> {
  const expected = options.credentials
    ? `Basic ${Buffer.from(options.credentials).toString("base64")}`
    : undefined;
  const tunnels: ProxyTunnel[] = [];
  const forwarded: string[] = [];
  const open = new Set<Duplex>();
  const track = (s: Duplex) => {
    open.add(s);
    s.once("close", () => open.delete(s));
  };

  const server = createServer((req, res) => {
    // Plain http through the proxy: the request line names the whole URL.
    let url: URL;
    try {
      url = new URL(req.url ?? "");
    } catch {
      res.writeHead(400).end("absolute-form request expected");
      return;
    }
    forwarded.push(`${req.method} ${url.toString()}`);
    const headers = { ...req.headers };
    delete headers["proxy-authorization"];
    delete headers["proxy-connection"];
    const upstream = httpRequest(
      {
        host: resolveHost(url.hostname),
        port: Number(url.port || 80),
        method: req.method,
        path: `${url.pathname}${url.search}`,
        headers,
      },
      (answer: IncomingMessage) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on("error", () => res.writeHead(502).end("upstream unreachable"));
    req.pipe(upstream);
  });
  server.on("connection", track);
  server.on("connect", (req: IncomingMessage, client: Duplex, head: Buffer) => {
    const target = req.url ?? "";
    const tunnel: ProxyTunnel = { target };
    const auth = req.headers["proxy-authorization"];
    if (auth) tunnel.proxyAuthorization = auth;
    tunnels.push(tunnel);
    if (expected !== undefined && auth !== expected) {
      client.end(
        'HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="proxy"\r\nContent-Length: 0\r\n\r\n',
      );
      return;
    }
    const { host, port } = splitHostPort(target);
    const upstream: Socket = netConnect(port, resolveHost(host), () => {
      tunnel.upstreamPort = upstream.localPort;
      client.write("HTTP/1.1 200 Connection Established\r\n\r\n");
      if (head.length > 0) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    track(upstream);
    upstream.on("error", () => {
      client.end("HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n");
    });
    client.on("error", () => upstream.destroy());
  });

  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    tunnels,
    forwarded,
    async close() {
      for (const s of open) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
