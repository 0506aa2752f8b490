/** Proxy choice by kubectl's rules (Go's httpproxy), and the variables the adapters read. */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { displayProxyUrl, proxyFor } from "../../src/core/proxy.js";
import { secretsOf } from "../../src/core/spec/masking.js";
import { parseBuildSpec } from "../../src/core/spec/spec.js";
import { proxyEnvironment } from "../../src/environment.js";

const P = { httpsProxy: "http://proxy.corp:3128", httpProxy: "http://plain.corp:8080" };

describe("proxyFor", () => {
  test("https and wss use HTTPS_PROXY; http uses HTTP_PROXY; none without the variable", () => {
    expect(proxyFor(P, "https://api.example.com:6443")).toEqual({
      url: "http://proxy.corp:3128",
      from: "HTTPS_PROXY",
    });
    expect(proxyFor(P, "wss://api.example.com:6443/x")?.url).toBe("http://proxy.corp:3128");
    expect(proxyFor(P, "http://registry.local:5000/v2/")).toEqual({
      url: "http://plain.corp:8080",
      from: "HTTP_PROXY",
    });
    expect(proxyFor({ httpProxy: P.httpProxy }, "https://api.example.com")).toBeUndefined();
    expect(proxyFor(undefined, "https://api.example.com")).toBeUndefined();
  });

  test("host:port without a scheme is an http proxy", () => {
    expect(proxyFor({ httpsProxy: "proxy.corp:3128" }, "https://a.example")?.url).toBe(
      "http://proxy.corp:3128",
    );
  });

  test("localhost and loopback addresses are never proxied", () => {
    for (const url of ["https://localhost:6443", "https://127.0.0.1:6443", "https://[::1]:6443"])
      expect(proxyFor(P, url)).toBeUndefined();
  });

  test.each([
    ["*", "https://anything.example", false],
    ["example.com", "https://example.com", false],
    ["example.com", "https://api.example.com", false],
    ["example.com", "https://notexample.com", true],
    [".example.com", "https://example.com", true],
    [".example.com", "https://api.example.com", false],
    ["*.example.com", "https://api.example.com", false],
    ["*.example.com", "https://example.com", true],
    ["api.example.com:6443", "https://api.example.com:6443", false],
    ["api.example.com:443", "https://api.example.com:6443", true],
    ["api.example.com:443", "https://api.example.com", false],
    ["10.0.0.0/8", "https://10.96.0.1", false],
    ["10.0.0.0/8", "https://192.168.1.1", true],
    ["192.168.1.10", "https://192.168.1.10:6443", false],
    ["fd00::/8", "https://[fd00::1]:6443", false],
    ["localhost, .svc ,.cluster.local", "https://kubernetes.default.svc", false],
    ["EXAMPLE.com", "https://API.example.COM", false],
  ])("NO_PROXY=%j for %s: proxied %s", (noProxy, url, proxied) => {
    expect(proxyFor({ ...P, noProxy }, url) !== undefined).toBe(proxied);
  });
});

describe("proxyEnvironment (what the adapters read)", () => {
  test("upper case first, then lower case, as kubectl reads them; empty is unset", () => {
    expect(
      proxyEnvironment({
        HTTPS_PROXY: "http://upper:1",
        https_proxy: "http://lower:1",
        http_proxy: "http://plain:2",
        no_proxy: ".svc",
      }),
    ).toEqual({ httpsProxy: "http://upper:1", httpProxy: "http://plain:2", noProxy: ".svc" });
    expect(proxyEnvironment({ HTTPS_PROXY: "", https_proxy: "http://lower:1" })).toEqual({
      httpsProxy: "http://lower:1",
    });
    expect(proxyEnvironment({ NO_PROXY: "*" })).toBeUndefined();
  });
});

test("a proxy URL is shown without its credentials", () => {
  expect(displayProxyUrl("http://user:s3cret@proxy.corp:3128")).toBe("http://***@proxy.corp:3128");
  expect(displayProxyUrl("http://proxy.corp:3128/")).toBe("http://proxy.corp:3128");
});

test("a proxy password is among the values to mask", () => {
  const ws = mkdtempSync(join(tmpdir(), "kib-proxy-"));
  writeFileSync(join(ws, "Dockerfile"), "FROM scratch\n");
  const spec = parseBuildSpec(
    { tags: "registry.example/acme/web:1" },
    {
      workspace: ws,
      kubeconfigPaths: [],
      proxy: { httpsProxy: "http://ci:pa%24%24word@proxy.corp:3128" },
    },
  );
  expect(spec.cluster.proxy).toEqual({ httpsProxy: "http://ci:pa%24%24word@proxy.corp:3128" });
  expect(secretsOf(spec)).toContain("pa$$word");
});
