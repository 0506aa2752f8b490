/**
 * uploadContext against a small local attach endpoint: a websocket server that speaks the
 * Kubernetes channel protocol (v4 or v5) and feeds channel 0 into a real `tar -xzf - -C dir`,
 * closing its stdin when the socket closes — what a stdinOnce receiver sees.
 */
import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { createServer, type Server } from "node:http";
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { Readable, Transform } from "node:stream";
import { KubeConfig } from "@kubernetes/client-node";
import WebSocketClass, { WebSocketServer, type WebSocket } from "ws";
import { planContext, tarContext, type ContextPlan } from "../../src/core/context/index.js";
import { BuildFailure } from "../../src/core/errors.js";
import { uploadContext, type UploadTarget } from "../../src/core/context/upload.js";

const tmpRoots: string[] = [];
afterAll(() => {
  for (const d of tmpRoots) rmSync(d, { recursive: true, force: true });
});
function tmp(prefix: string): string {
  const d = mkdtempSync(path.join(tmpdir(), prefix));
  tmpRoots.push(d);
  return d;
}

interface Behaviour {
  protocol: "v4.channel.k8s.io" | "v5.channel.k8s.io";
  /** Receiver speed limit (bytes/s); unset = as fast as tar takes it. */
  bytesPerSecond?: number;
  /** After this many stdin bytes: send this on the status channel (after a stderr line, if any). */
  statusAfter?: { bytes: number; status: object; stderr?: string };
  /** After this many stdin bytes: close the socket with this code. */
  closeAfter?: { bytes: number; code: number };
  /** Refuse the upgrade with this HTTP status. */
  refuse?: number;
}

interface Session {
  url: string;
  protocol: string;
  received: number;
  openedAt: number;
  /** Resolves once the socket is closed and tar has exited (with its exit code). */
  done: Promise<number | null>;
  out: string;
}

class AttachServer {
  readonly server: Server;
  readonly wss = new WebSocketServer({
    noServer: true,
    handleProtocols: () => this.behaviour.protocol,
  });
  behaviour: Behaviour = { protocol: "v4.channel.k8s.io" };
  sessions: Session[] = [];
  /** Optional hook on every stdin chunk the server takes. */
  onReceive: ((total: number) => void) | null = null;

  constructor() {
    this.server = createServer((_req, res) => {
      res.statusCode = 404;
      res.end();
    });
    this.server.on("upgrade", (req, socket, head) => {
      if (this.behaviour.refuse) {
        socket.end(
          `HTTP/1.1 ${this.behaviour.refuse} Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`,
        );
        return;
      }
      if (req.headers.authorization !== "Bearer test-token") {
        socket.end("HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n");
        return;
      }
      this.wss.handleUpgrade(req, socket, head, (ws) => this.serve(ws, req.url ?? ""));
    });
  }

  async listen(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    for (const ws of this.wss.clients) ws.terminate();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private serve(ws: WebSocket, url: string): void {
    const b = this.behaviour;
    const out = tmp("k8sib-recv-");
    const tar = spawn("tar", ["-xzf", "-", "-C", out], { stdio: ["pipe", "ignore", "pipe"] });
    tar.stderr.resume();
    tar.stdin.on("error", () => {}); // EPIPE when tar gives up on a cut stream
    const session: Session = {
      url,
      protocol: ws.protocol,
      received: 0,
      openedAt: performance.now(),
      out,
      done: Promise.all([
        new Promise<number | null>((resolve) => tar.on("close", (code) => resolve(code))),
        new Promise<void>((resolve) => ws.on("close", () => resolve())),
      ]).then(([code]) => code),
    };
    this.sessions.push(session);

    // Throttle: hold the socket while tar (or the speed limit) is behind.
    let queue: Promise<void> = Promise.resolve();
    let pending = 0;
    const startedAt = performance.now();
    ws.on("message", (data: Buffer) => {
      if (data[0] !== 0) return;
      const payload = data.subarray(1);
      session.received += payload.length;
      this.onReceive?.(session.received);
      pending++;
      if (pending > 4) ws.pause();
      queue = queue.then(async () => {
        if (b.bytesPerSecond) {
          const due = startedAt + (session.received / b.bytesPerSecond) * 1000;
          const wait = due - performance.now();
          if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        }
        if (!tar.stdin.write(payload)) await new Promise((r) => tar.stdin.once("drain", r));
        pending--;
        if (pending <= 2) ws.resume();
      });
      if (b.statusAfter && session.received >= b.statusAfter.bytes) {
        const s = b.statusAfter;
        b.statusAfter = undefined;
        if (s.stderr) ws.send(Buffer.concat([Buffer.from([2]), Buffer.from(s.stderr)]));
        ws.send(Buffer.concat([Buffer.from([3]), Buffer.from(JSON.stringify(s.status))]));
      }
      if (b.closeAfter && session.received >= b.closeAfter.bytes) {
        const c = b.closeAfter;
        b.closeAfter = undefined;
        ws.close(c.code, "receiver went away");
      }
    });
    ws.on("close", () => {
      void queue.then(() => tar.stdin.end());
    });
  }
}

let server: AttachServer;
let target: UploadTarget;

beforeAll(async () => {
  server = new AttachServer();
  const url = await server.listen();
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromOptions({
    clusters: [{ name: "local", server: url, skipTLSVerify: true }],
    users: [{ name: "me", token: "test-token" }],
    contexts: [{ name: "local", cluster: "local", user: "me", namespace: "ns" }],
    currentContext: "local",
  });
  target = { kubeConfig, namespace: "ns", pod: "build-1", container: "context" };
});
afterAll(async () => {
  await server.close();
});
beforeEach(() => {
  server.behaviour = { protocol: "v4.channel.k8s.io" };
  server.onReceive = null;
});

function sha(file: string): string {
  return createHash("sha256").update(readFileSync(file)).digest("hex");
}

/** Same files, contents and modes? */
function expectSameTree(plan: ContextPlan, out: string): void {
  for (const e of plan.entries) {
    const got = statSync(path.join(out, e.path), { throwIfNoEntry: false });
    expect(got).toBeDefined();
    expect((got!.mode & 0o7777).toString(8)).toBe(e.mode.toString(8));
    if (e.type === "file")
      expect(sha(path.join(out, e.path))).toBe(sha(path.join(plan.dir, e.path)));
  }
}

function smallContext(): string {
  const dir = tmp("k8sib-src-");
  writeFileSync(path.join(dir, "Dockerfile"), "FROM scratch\nCOPY . /\n");
  mkdirSync(path.join(dir, "bin"));
  writeFileSync(path.join(dir, "bin/run"), "#!/bin/sh\necho hi\n");
  chmodSync(path.join(dir, "bin/run"), 0o755);
  for (let i = 0; i < 50; i++)
    writeFileSync(path.join(dir, `f${i}.txt`), `file ${i}\n`.repeat(i * 100));
  writeFileSync(path.join(dir, "blob"), randomBytes(2 * 1024 * 1024));
  return dir;
}

function openFds(): number {
  return readdirSync("/proc/self/fd").length;
}

describe.each(["v4.channel.k8s.io", "v5.channel.k8s.io"] as const)("over %s", (protocol) => {
  test("the context arrives whole; the source starts only once the socket is open; the disconnect is the EOF", async () => {
    server.behaviour = { protocol };
    const plan = await planContext(smallContext(), { dockerfile: "Dockerfile" });
    let sessionsAtStart = -1;
    const result = await uploadContext(
      target,
      () => {
        sessionsAtStart = server.sessions.length;
        return tarContext(plan);
      },
      {},
    );
    const session = server.sessions[server.sessions.length - 1];
    expect(sessionsAtStart).toBe(server.sessions.length); // the server had the connection before the tar started
    expect(session.protocol).toBe(protocol);
    expect(await session.done).toBe(0); // tar saw a complete archive and EOF
    expect(session.received).toBe(result.sentBytes);
    expectSameTree(plan, session.out);
    const url = new URL(session.url, "http://x");
    expect(url.pathname).toBe("/api/v1/namespaces/ns/pods/build-1/attach");
    expect(Object.fromEntries(url.searchParams)).toMatchObject({
      container: "context",
      stdin: "true",
      tty: "false",
    });
  });
});

test("backpressure: a 100 MB context into a slow receiver keeps what is buffered bounded", async () => {
  const dir = tmp("k8sib-big-");
  writeFileSync(path.join(dir, "Dockerfile"), "FROM scratch\n");
  // random-ish: a quarter random, the rest text, so gzip is quick and the receiver is the bottleneck
  const text = Buffer.from("the quick brown fox jumps over the lazy dog\n".repeat(36000)); // ~1.5 MB
  for (let i = 0; i < 50; i++)
    writeFileSync(
      path.join(dir, `part${String(i).padStart(2, "0")}`),
      Buffer.concat([randomBytes(512 * 1024), text]),
    );
  const plan = await planContext(dir, { dockerfile: "Dockerfile" });
  expect(plan.bytes).toBeGreaterThan(100e6);

  server.behaviour = { protocol: "v5.channel.k8s.io", bytesPerSecond: 8e6 };
  let pulled = 0;
  let received = 0;
  let maxInFlight = 0;
  const sample = (): void => {
    maxInFlight = Math.max(maxInFlight, pulled - received);
  };
  server.onReceive = (total) => {
    received = total;
    sample();
  };
  // The client socket's own buffer, read after every send (the same ws module client-node uses).
  let maxBufferedAmount = 0;
  let sends = 0;
  const realSend = WebSocketClass.prototype.send;
  WebSocketClass.prototype.send = function (this: WebSocket, ...args: unknown[]) {
    const r = (realSend as (...a: unknown[]) => void).apply(this, args);
    if (!(this as unknown as { _isServer: boolean })._isServer) {
      sends++;
      maxBufferedAmount = Math.max(maxBufferedAmount, this.bufferedAmount);
    }
    return r;
  } as typeof realSend;
  const progress: number[] = [];
  const highWaterMark = 1024 * 1024;
  const result = await uploadContext(
    target,
    () =>
      tarContext(plan, { gzipLevel: 1 }).pipe(
        new Transform({
          transform(chunk: Buffer, _enc, cb) {
            pulled += chunk.length;
            sample();
            cb(null, chunk);
          },
        }),
      ),
    { highWaterMark, onProgress: (_sent, elapsedMs) => progress.push(elapsedMs) },
  );
  WebSocketClass.prototype.send = realSend;
  const session = server.sessions[server.sessions.length - 1];
  expect(await session.done).toBe(0);
  expectSameTree(plan, session.out);
  expect(result.sentBytes).toBe(pulled);
  expect(result.sentBytes).toBeGreaterThan(25e6);

  // The socket's own buffer never goes past the high-water mark by more than one frame (256 KiB).
  // (Without the wait it reaches ~10 MB here: the whole lead the source gains on the receiver.)
  console.log(
    `upload backpressure: socket buffer max ${(maxBufferedAmount / 1e6).toFixed(2)} MB over ${sends} sends; ` +
      `max in flight source→receiver ${(maxInFlight / 1e6).toFixed(1)} MB of ${(result.sentBytes / 1e6).toFixed(1)} MB sent in ${(result.elapsedMs / 1000).toFixed(1)} s`,
  );
  expect(sends).toBeGreaterThan(100);
  expect(maxBufferedAmount).toBeLessThanOrEqual(highWaterMark + 256 * 1024 + 16);
  // End to end, bytes taken from the source but not yet at the receiver: that buffer plus the two
  // loopback kernel socket buffers and the receiver's small queue.
  expect(maxInFlight).toBeLessThan(16e6);

  // Progress: at most ~4 a second, plus the final one.
  expect(progress.length).toBeGreaterThan(2);
  expect(progress.length).toBeLessThanOrEqual(Math.ceil(result.elapsedMs / 250) + 2);
  for (let i = 1; i < progress.length - 1; i++)
    expect(progress[i] - progress[i - 1]).toBeGreaterThanOrEqual(249);
});

test("abort mid-way rejects with upload-failed, destroys the source and leaks no file handles", async () => {
  const dir = tmp("k8sib-abort-");
  writeFileSync(path.join(dir, "Dockerfile"), "FROM scratch\n");
  for (let i = 0; i < 8; i++) writeFileSync(path.join(dir, `r${i}`), randomBytes(4 * 1024 * 1024));
  const plan = await planContext(dir, { dockerfile: "Dockerfile" });
  server.behaviour = { protocol: "v4.channel.k8s.io", bytesPerSecond: 10e6 };
  const before = openFds();
  const abort = new AbortController();
  server.onReceive = (total) => {
    if (total > 3e6) abort.abort();
  };
  let src: Readable | null = null;
  const error = await uploadContext(
    target,
    () => {
      src = tarContext(plan, { gzipLevel: 1 });
      return src;
    },
    { signal: abort.signal, highWaterMark: 256 * 1024 },
  ).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(BuildFailure);
  expect((error as BuildFailure).kind).toBe("upload-failed");
  expect((error as BuildFailure).message).toMatch(
    /^uploading the build context to pod ns\/build-1 \(container context\) failed: cancelled after \d/,
  );
  expect((error as BuildFailure).message).not.toContain("\n");
  expect(src!.destroyed).toBe(true);
  const session = server.sessions[server.sessions.length - 1];
  expect(await session.done).not.toBe(0); // the receiver saw a cut stream, not a clean EOF
  await new Promise((r) => setTimeout(r, 200));
  expect(openFds()).toBe(before);
});

test("an already-aborted signal fails before connecting", async () => {
  const sessions = server.sessions.length;
  const abort = new AbortController();
  abort.abort();
  await expect(
    uploadContext(target, () => Readable.from([]), { signal: abort.signal }),
  ).rejects.toThrow(/failed: cancelled/);
  expect(server.sessions.length).toBe(sessions);
});

test("a Failure status on the error channel rejects with its message and the receiver's last stderr line", async () => {
  const plan = await planContext(smallContext(), { dockerfile: "Dockerfile" });
  server.behaviour = {
    protocol: "v5.channel.k8s.io",
    bytesPerSecond: 2e6,
    statusAfter: {
      bytes: 1000,
      stderr: "tar: short read\ntar: Error is not recoverable: exiting now\n",
      status: {
        metadata: {},
        status: "Failure",
        message: "container context is not running",
        reason: "BadRequest",
        code: 400,
      },
    },
  };
  let src: Readable | null = null;
  const error = (await uploadContext(target, () => (src = tarContext(plan)), {}).catch(
    (e: unknown) => e,
  )) as BuildFailure;
  expect(error).toBeInstanceOf(BuildFailure);
  expect(error.kind).toBe("upload-failed");
  expect(error.message).toContain("the API server reported: container context is not running");
  expect(error.message).toContain("the receiver said: tar: Error is not recoverable: exiting now");
  expect(src!.destroyed).toBe(true);
});

test("the server closing the socket mid-way rejects with the close code", async () => {
  const plan = await planContext(smallContext(), { dockerfile: "Dockerfile" });
  server.behaviour = {
    protocol: "v4.channel.k8s.io",
    bytesPerSecond: 2e6,
    closeAfter: { bytes: 1000, code: 1011 },
  };
  await expect(uploadContext(target, () => tarContext(plan), {})).rejects.toThrow(
    /failed: the connection closed after .* \(code 1011 receiver went away\)/,
  );
});

test("a refused attach (403) rejects with upload-failed and never starts the source", async () => {
  server.behaviour = { protocol: "v4.channel.k8s.io", refuse: 403 };
  let started = false;
  const error = (await uploadContext(
    target,
    () => {
      started = true;
      return Readable.from([]);
    },
    {},
  ).catch((e: unknown) => e)) as BuildFailure;
  expect(error).toBeInstanceOf(BuildFailure);
  expect(error.kind).toBe("upload-failed");
  expect(error.message).toMatch(/attach failed: .*403/);
  expect(started).toBe(false);
});

test("a source that fails rejects with upload-failed naming the cause", async () => {
  const source = (): Readable =>
    new Readable({
      read() {
        this.destroy(new Error("disk on fire"));
      },
    });
  await expect(uploadContext(target, source, {})).rejects.toThrow(
    /reading the context failed after 0\.0 MB: disk on fire/,
  );
});
