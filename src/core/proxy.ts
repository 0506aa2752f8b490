/**
 * Which proxy a request goes through, by the rules kubectl applies to HTTPS_PROXY, HTTP_PROXY and
 * NO_PROXY (Go's golang.org/x/net/http/httpproxy): https URLs use the HTTPS proxy, http URLs the
 * HTTP proxy; localhost and loopback addresses are never proxied; NO_PROXY is a comma-separated
 * list of host names (a name matches itself and its subdomains, ".name" only subdomains, "*."
 * like "."), IP addresses, CIDR ranges and any of these with ":port"; "*" turns proxies off.
 * The adapters read the variables; this module only decides.
 */
import { BlockList, isIP } from "node:net";
import type { ProxySettings } from "./types.js";

/** The proxy chosen for one URL and the variable it came from (for the log). */
export interface ChosenProxy {
  url: string;
  from: "HTTPS_PROXY" | "HTTP_PROXY";
}

function hostOf(url: URL): string {
  return url.hostname.replace(/^\[(.*)\]$/, "$1").toLowerCase();
}

function defaultPort(protocol: string): string {
  return protocol === "https:" || protocol === "wss:" ? "443" : "80";
}

function isLoopback(host: string): boolean {
  if (host === "localhost" || host.endsWith(".localhost")) return true;
  const family = isIP(host);
  if (family === 4) return host.startsWith("127.");
  if (family === 6) return host === "::1" || host === "0:0:0:0:0:0:0:1";
  return false;
}

/** One NO_PROXY entry against a host and port. */
function matchesEntry(entry: string, host: string, port: string): boolean {
  let pattern = entry.trim().toLowerCase();
  if (pattern === "") return false;
  if (pattern === "*") return true;
  // CIDR: 10.0.0.0/8, fd00::/8
  const slash = pattern.indexOf("/");
  if (slash > 0) {
    const net = pattern.slice(0, slash);
    const prefix = Number(pattern.slice(slash + 1));
    const family = isIP(net);
    const hostFamily = isIP(host);
    if (family === 0 || hostFamily !== family || !Number.isInteger(prefix)) return false;
    const list = new BlockList();
    const type = family === 4 ? "ipv4" : "ipv6";
    try {
      list.addSubnet(net, prefix, type);
    } catch {
      return false;
    }
    return list.check(host, type);
  }
  // host:port, [v6]:port
  let entryPort: string | undefined;
  const bracketed = /^\[(.+)\](?::(\d+))?$/.exec(pattern);
  if (bracketed) {
    pattern = bracketed[1]!;
    entryPort = bracketed[2];
  } else if (isIP(pattern) !== 6) {
    const m = /^(.*):(\d+)$/.exec(pattern);
    if (m) {
      pattern = m[1]!;
      entryPort = m[2];
    }
  }
  if (entryPort !== undefined && entryPort !== port) return false;
  if (isIP(pattern) !== 0) return isIP(host) !== 0 && pattern === host;
  if (pattern.startsWith("*.")) pattern = pattern.slice(1);
  if (pattern.startsWith(".")) return host.endsWith(pattern);
  return host === pattern || host.endsWith(`.${pattern}`);
}

/** A proxy URL as the variables allow it: "host:port" means http://host:port (as Go reads it). */
function normalizeProxyUrl(value: string): string {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(value) ? value : `http://${value}`;
}

/** The proxy for `target`, or undefined when none applies (no variable, NO_PROXY, loopback). */
export function proxyFor(
  settings: ProxySettings | undefined,
  target: string | URL,
): ChosenProxy | undefined {
  if (!settings) return undefined;
  const url = typeof target === "string" ? new URL(target) : target;
  const secure = url.protocol === "https:" || url.protocol === "wss:";
  const value = secure ? settings.httpsProxy : settings.httpProxy;
  if (!value) return undefined;
  const host = hostOf(url);
  if (isLoopback(host)) return undefined;
  const port = url.port || defaultPort(url.protocol);
  const noProxy = (settings.noProxy ?? "").split(",");
  if (noProxy.some((entry) => matchesEntry(entry, host, port))) return undefined;
  return { url: normalizeProxyUrl(value), from: secure ? "HTTPS_PROXY" : "HTTP_PROXY" };
}

/** A proxy URL for the log: the password (and a user name) never shown. */
export function displayProxyUrl(value: string): string {
  try {
    const url = new URL(value);
    if (url.username || url.password) {
      url.username = "***";
      url.password = "";
    }
    return url.toString().replace(/\/$/, "");
  } catch {
    return "(an unparsable proxy URL)";
  }
}
