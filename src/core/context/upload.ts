/**
 * Streams the build context into the pod's receiver: a `pods/attach` websocket to the init
 * container (`stdin: true, stdinOnce: true`, running `tar -xzf - -C /kaniko/buildcontext`), stdin frames
 * pumped by hand with backpressure on the socket's buffered amount, then a normal close, which
 * with `stdinOnce` is the receiver's EOF on every Kubernetes version (v4 and v5 channel protocols
 * alike: no reliance on v5's stream-close frame).
 *
 * client-node's `Attach` forwards stdin `data` events with no backpressure (a large context grew
 * the process to 280 MB) and loses bytes from a stream that flows before the socket is open, so
 * this uses its `WebSocketHandler` directly: the source is created only once the socket is open,
 * and each chunk waits while `bufferedAmount` is above the high-water mark.
 */
import { PassThrough, type Readable } from "node:stream";
import type { KubeConfig } from "@kubernetes/client-node";
// Not re-exported by the package index; the package has no "exports" map, so the file is reachable.
import { WebSocketHandler } from "@kubernetes/client-node/dist/web-socket-handler.js";
import { BuildFailure, oneLine } from "../errors.js";
import { own, release } from "./owned-buffers.js";

export interface UploadTarget {
  kubeConfig: KubeConfig;
  namespace: string;
  pod: string;
  container: string;
}

export interface UploadResult {
  /** Bytes of the source (the compressed tar) written to the socket. */
  sentBytes: number;
  /** From the socket opening to its close. */
  elapsedMs: number;
}

type Socket = Awaited<ReturnType<WebSocketHandler["connect"]>>;

const STDIN = 0;
const STDERR = 2;
const STATUS = 3;
/** Largest stdin frame: a big source chunk is split so no single frame is huge. */
const MAX_FRAME = 256 * 1024;
/**
 * Bytes the socket may hold unsent before the next frame waits: enough to keep a link busy (the
 * kernel's send buffer holds more); small, because what a garbage collection finds still queued
 * lives on to the next full one (owned-buffers.ts).
 */
const DEFAULT_HIGH_WATER_MARK = 1024 * 1024;
const PROGRESS_INTERVAL_MS = 250;
/** Fallback re-check of bufferedAmount when no write callback is pending. */
const POLL_MS = 25;

function describe(error: unknown): string {
  if (typeof error === "object" && error !== null) {
    // client-node rejects connect() with the ws ErrorEvent ({ message, error }), not an Error.
    if ("message" in error && typeof error.message === "string" && error.message)
      return error.message;
    if ("error" in error) return describe(error.error);
  }
  return String(error);
}

function mb(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

export async function uploadContext(
  target: UploadTarget,
  source: () => Readable,
  opts: {
    signal?: AbortSignal;
    onProgress?: (sentBytes: number, elapsedMs: number) => void;
    highWaterMark?: number;
  },
): Promise<UploadResult> {
  const { signal, onProgress } = opts;
  const highWaterMark = opts.highWaterMark ?? DEFAULT_HIGH_WATER_MARK;
  const where = `pod ${target.namespace}/${target.pod} (container ${target.container})`;
  const fail = (detail: string): BuildFailure =>
    new BuildFailure(
      "upload-failed",
      oneLine(`uploading the build context to ${where} failed: ${detail}`),
    );

  if (signal?.aborted) throw fail("cancelled");

  // Everything the socket tells us, gathered before and after it opens.
  let failure: BuildFailure | null = null;
  let stderrTail = "";
  let closing = false; // we started the close
  let closed = false;
  let sourceDone = false; // every source byte went to the socket
  let receiverDone = false; // …and the receiver then reported Success
  let sentBytes = 0;
  let wake: (() => void) | null = null;
  const wakeUp = (): void => {
    const w = wake;
    wake = null;
    w?.();
  };
  let src: Readable | null = null;
  let ws: Socket | null = null;

  const withStderr = (detail: string): string => {
    const last = stderrTail.trim().split("\n").pop()?.trim();
    return last ? `${detail}; the receiver said: ${last}` : detail;
  };
  const setFailure = (f: BuildFailure): void => {
    if (failure) return;
    failure = f;
    if (src && !src.destroyed) src.destroy(f);
    wakeUp();
  };

  const onBinary = (stream: number, data: Buffer): boolean => {
    if (stream === STDERR) {
      stderrTail = (stderrTail + data.toString("utf8")).slice(-4096);
    } else if (stream === STATUS && !closing) {
      let status: { status?: string; message?: string; reason?: string } = {};
      try {
        status = JSON.parse(data.toString("utf8")) as typeof status;
      } catch {
        status = { status: "Failure", message: data.toString("utf8") };
      }
      if (status.status === "Success" && sourceDone) {
        receiverDone = true; // it had everything; the close that follows is not a failure
        return true;
      }
      setFailure(
        fail(
          withStderr(
            status.status === "Success"
              ? `the receiver finished after ${mb(sentBytes)}, before the context was fully sent`
              : `the API server reported: ${status.message ?? status.reason ?? "Failure"}`,
          ),
        ),
      );
    }
    return true; // we close the socket ourselves
  };

  const onAbort = (): void => {
    setFailure(fail(`cancelled after ${mb(sentBytes)}`));
    ws?.terminate();
  };
  signal?.addEventListener("abort", onAbort, { once: true });

  try {
    // client-node's handler with inert streams: its CloseStream handling must not touch process.stdin.
    const inert = {
      stdin: new PassThrough(),
      stdout: new PassThrough(),
      stderr: new PassThrough(),
    };
    const handler = new WebSocketHandler(target.kubeConfig, undefined, inert);
    const query = new URLSearchParams({
      container: target.container,
      stdin: "true",
      stdout: "false",
      stderr: "true",
      tty: "false",
    });
    const path = `/api/v1/namespaces/${encodeURIComponent(target.namespace)}/pods/${encodeURIComponent(target.pod)}/attach?${query}`;

    const connecting = handler.connect(path, null, onBinary);
    const socket = await new Promise<Socket>((resolve, reject) => {
      const onCancel = (): void => reject(fail("cancelled"));
      signal?.addEventListener("abort", onCancel, { once: true });
      connecting.then(
        (s) => {
          signal?.removeEventListener("abort", onCancel);
          if (signal?.aborted) {
            s.terminate();
            return;
          }
          resolve(s);
        },
        (error: unknown) => {
          signal?.removeEventListener("abort", onCancel);
          reject(fail(`attach failed: ${describe(error)}`));
        },
      );
    });
    ws = socket;
    const started = performance.now();
    const elapsed = (): number => performance.now() - started;

    const socketClosed = new Promise<void>((resolve) => {
      socket.on("close", (code: number, reason: Buffer) => {
        closed = true;
        if (!closing && !receiverDone) {
          const why = reason.length ? `${code} ${reason.toString("utf8")}` : String(code);
          setFailure(
            fail(withStderr(`the connection closed after ${mb(sentBytes)} (code ${why})`)),
          );
        }
        wakeUp();
        resolve();
      });
    });
    socket.on("error", (error: Error) =>
      setFailure(fail(withStderr(`connection error after ${mb(sentBytes)}: ${describe(error)}`))),
    );
    if (socket.readyState !== socket.OPEN) {
      setFailure(fail(withStderr("the connection closed as it opened")));
    }

    const waitBelow = async (limit: number): Promise<void> => {
      while (!failure && !closed && socket.bufferedAmount > limit) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(() => {
            wake = null;
            resolve();
          }, POLL_MS);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
    };
    const send = (frame: Buffer): void => {
      socket.send(frame, { binary: true }, () => {
        // Written to the socket (ws sends a masked copy): the frame is done.
        release(frame);
        wakeUp();
      });
    };

    let lastProgress = -Infinity;
    const progress = (force: boolean): void => {
      if (!onProgress) return;
      const now = elapsed();
      if (!force && now - lastProgress < PROGRESS_INTERVAL_MS) return;
      lastProgress = now;
      onProgress(sentBytes, now);
    };

    // Only now, with the socket open, does the source start.
    if (!failure) {
      src = source();
      try {
        for await (const chunk of src as AsyncIterable<Buffer | string>) {
          if (failure) break;
          const data = typeof chunk === "string" ? Buffer.from(chunk) : chunk;
          for (let offset = 0; offset < data.length; offset += MAX_FRAME) {
            const part = data.subarray(offset, Math.min(offset + MAX_FRAME, data.length));
            const frame = own(Buffer.allocUnsafe(part.length + 1));
            frame[0] = STDIN;
            part.copy(frame, 1);
            send(frame);
            sentBytes += part.length;
            await waitBelow(highWaterMark);
            if (failure) break;
          }
          // Copied into frames: a buffer the context pipeline allocated is done.
          release(data);
          progress(false);
        }
      } catch (error) {
        if (!failure)
          setFailure(
            fail(
              withStderr(`reading the context failed after ${mb(sentBytes)}: ${describe(error)}`),
            ),
          );
      }
    }

    if (!failure) {
      sourceDone = true;
      // Everything handed to the kernel, then a normal close: with stdinOnce, that is the EOF.
      await waitBelow(0);
    }
    if (failure) throw failure;
    closing = true;
    progress(true);
    if (!closed) socket.close(1000);
    await socketClosed;
    if (failure) throw failure;
    return { sentBytes, elapsedMs: elapsed() };
  } catch (error) {
    const f = error instanceof BuildFailure ? error : fail(describe(error));
    failure ??= f;
    throw failure;
  } finally {
    signal?.removeEventListener("abort", onAbort);
    const s: Readable | null = src;
    if (s && !s.destroyed) s.destroy();
    const w: Socket | null = ws;
    if (w && !closed && !closing) w.terminate();
  }
}
