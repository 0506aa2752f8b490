/**
 * Follows one container's log with timestamps=true until the container has ended, resuming a
 * dropped stream with sinceTime and dropping the lines already delivered, so the CI log gets
 * every line once and in order.
 */
import { Writable } from "node:stream";
import { Log, type KubeConfig } from "@kubernetes/client-node";
import { apiStatus, sleep } from "./api-errors.js";
import { isBodyTimeout, withBodyTimeout } from "./log-stream-config.js";
import type { LogLine } from "../reporter.js";

/** RFC3339(Nano) → nanoseconds since the epoch; kubelet trims trailing zeros, so strings do not sort. */
export function timestampNanos(timestamp: string): bigint | undefined {
  const match = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$/.exec(
    timestamp,
  );
  if (!match) return undefined;
  const seconds = Date.parse(`${match[1]}${match[3]}`);
  if (Number.isNaN(seconds)) return undefined;
  const fraction = (match[2] ?? "").padEnd(9, "0");
  return BigInt(seconds) * 1_000_000n + BigInt(fraction);
}

/**
 * How far before the newest line a resumed read starts. A node stamps stdout and stderr separately,
 * so a line written after another can carry an earlier time; the API server also cuts sinceTime to
 * whole seconds. Starting a second early keeps every such line in the resumed read.
 */
const RESUME_MARGIN_NANOS = 1_000_000_000n;
const NANOS_PER_SECOND = 1_000_000_000n;

/**
 * Remembers what was delivered across reconnects. A resumed read (sinceTime) repeats, in the log's
 * own order, every line at or after the resume point that an earlier read delivered, then goes on
 * with new lines. So the first lines of a resumed read are matched against the delivered ones by
 * (timestamp, text), counting repeats; the first line that does not match ends the replay and
 * everything after it is new. No line is dropped for being older than another: out of order is not
 * the same as already seen.
 */
export class LogPosition {
  private newest: bigint | undefined;
  /** Delivered lines at or after the resume point, by timestamp and text: how many of each. */
  private readonly delivered = new Map<string, { nanos: bigint; count: number }>();
  /** Where the current read started (undefined: from the beginning). */
  private streamFrom: bigint | undefined;
  private replaying = false;
  private readonly replayed = new Map<string, number>();

  /** Where to resume, RFC3339 in whole seconds (what the API server passes to the kubelet). */
  get sinceTime(): string | undefined {
    const from = this.resumeFrom();
    if (from === undefined) return undefined;
    const seconds = from / NANOS_PER_SECOND;
    return new Date(Number(seconds) * 1000).toISOString().replace(/\.\d{3}Z$/, "Z");
  }

  private resumeFrom(): bigint | undefined {
    if (this.newest === undefined) return undefined;
    const from = this.newest - RESUME_MARGIN_NANOS;
    return from - (((from % NANOS_PER_SECOND) + NANOS_PER_SECOND) % NANOS_PER_SECOND);
  }

  /** A new read starts at sinceTime: what it repeats is matched against what was delivered. */
  startStream(): void {
    this.streamFrom = this.resumeFrom();
    this.replaying = this.streamFrom !== undefined && this.delivered.size > 0;
    this.replayed.clear();
  }

  /** True when the line is new and should be delivered. */
  accept(timestamp: string, text: string): boolean {
    const nanos = timestampNanos(timestamp);
    if (nanos === undefined) return true;
    const key = `${nanos} ${text}`;
    if (this.replaying) {
      // Older than what was asked for: the server resent the start of the log.
      if (this.streamFrom !== undefined && nanos < this.streamFrom) return false;
      const seen = (this.replayed.get(key) ?? 0) + 1;
      this.replayed.set(key, seen);
      if (seen <= (this.delivered.get(key)?.count ?? 0)) return false;
      this.replaying = false;
      this.replayed.clear();
    }
    const entry = this.delivered.get(key);
    if (entry) entry.count++;
    else this.delivered.set(key, { nanos, count: 1 });
    if (this.newest === undefined || nanos > this.newest) this.advance(nanos);
    return true;
  }

  /** A newer line: what lies before the next resume point can never be repeated again. */
  private advance(nanos: bigint): void {
    const before = this.resumeFrom();
    this.newest = nanos;
    const from = this.resumeFrom()!;
    if (before === from) return;
    for (const [key, entry] of this.delivered) if (entry.nanos < from) this.delivered.delete(key);
  }
}

export interface FollowLogOptions {
  kubeConfig: KubeConfig;
  namespace: string;
  pod: string;
  container: string;
  onLine(line: LogLine): void;
  /** Resolves true once the pod watch has seen the container terminated (waits up to ms for it). */
  waitForTermination(ms: number): Promise<boolean>;
  /** True once the pod watch has seen the container terminated. */
  isTerminated(): boolean;
  /** True once the pod is gone: nothing more can be read. */
  podGone(): boolean;
  /**
   * Settles once the pod watch sees the container terminated (or the pod gone). A follow stream
   * open at that moment is ended and the rest read at once: the kubelet would keep it open until
   * its next check of the container's state, up to 5 s after the last line.
   */
  terminated?: Promise<unknown>;
  signal: AbortSignal;
  /** A stream that ended early and is resumed (for debug output). */
  onRetry?(message: string): void;
  /** The follower gave up: the log is incomplete (the build itself goes on). */
  onGiveUp?(message: string): void;
  /**
   * How long a stream may stay silent before the HTTP client ends it (then it is resumed). Default:
   * undici's own body timeout, 300 s. Tests scale it down.
   */
  streamTimeoutMs?: number;
  /** First pause before a failed read is retried (grows with each failure, up to 10×); default 200. */
  retryDelayMs?: number;
}

/** Failed reads in a row, none of which delivered a line, before the follower gives up. */
export const MAX_FAILED_READS = 20;

interface StreamOutcome {
  /** Lines this read delivered (new ones only). */
  delivered: number;
  error?: unknown;
}

function splitTimestamp(raw: string): { time: string; text: string } {
  const space = raw.indexOf(" ");
  if (space > 0 && timestampNanos(raw.slice(0, space)) !== undefined) {
    return { time: raw.slice(0, space), text: raw.slice(space + 1) };
  }
  return { time: "", text: raw };
}

/** Streams one log request; lines are passed on as they complete. */
async function streamOnce(
  options: FollowLogOptions,
  kubeConfig: KubeConfig,
  position: LogPosition,
  signal: AbortSignal,
): Promise<StreamOutcome> {
  position.startStream();
  let partial = "";
  let delivered = 0;
  let settled = false;
  const deliver = (raw: string) => {
    // After an abort, what the pipe still holds is left to the next read (it repeats it).
    if (settled) return;
    const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    const { time, text } = splitTimestamp(line);
    if (time && !position.accept(time, text)) return;
    delivered++;
    options.onLine({ container: options.container, time, text });
  };
  return new Promise<StreamOutcome>((resolve) => {
    let abort: (() => void) | undefined;
    const settle = (error?: unknown) => {
      if (settled) return;
      settled = true;
      if (abort) signal.removeEventListener("abort", abort);
      resolve(error === undefined ? { delivered } : { delivered, error });
    };
    const sink = new Writable({
      decodeStrings: true,
      write(chunk: Buffer, _encoding, callback) {
        const lines = (partial + chunk.toString("utf8")).split("\n");
        partial = lines.pop() ?? "";
        for (const line of lines) deliver(line);
        callback();
      },
      final(callback) {
        // A clean end: the last line may have no newline.
        if (partial) deliver(partial);
        partial = "";
        callback();
        settle();
      },
    });
    // client-node pipes the response into `sink` but does not listen for the response's errors:
    // catch them here, or a dropped connection would be an uncaught exception. A line cut short is
    // dropped: the resumed read repeats it whole.
    sink.on("pipe", (source) => {
      source.on("error", (error: unknown) => {
        partial = "";
        settle(error ?? new Error("stream error"));
      });
    });
    new Log(kubeConfig)
      .log(options.namespace, options.pod, options.container, sink, {
        follow: true,
        timestamps: true,
        sinceTime: position.sinceTime,
      })
      .then((controller) => {
        abort = () => {
          controller.abort();
          settle(new Error("read ended by the follower"));
        };
        if (signal.aborted) abort();
        else signal.addEventListener("abort", abort, { once: true });
      })
      .catch((error: unknown) => settle(error ?? new Error("log request failed")));
  });
}

function describeError(error: unknown): string {
  const status = apiStatus(error);
  if (status) return `${status.code}${status.message ? ` ${status.message}` : ""}`;
  return error instanceof Error ? error.message : String(error);
}

/**
 * Delivers the container's whole log once; returns when the container has ended and all is read.
 *
 * What it costs: one read, plus one per silent stretch as long as the stream timeout (a step that
 * prints nothing for 6 minutes costs one more read with undici's 300 s), plus one per stream the
 * network or server cut, plus at most a few while the pod's status catches up with a container that
 * has ended. Reads that fail without delivering anything are retried with a growing pause, at most
 * MAX_FAILED_READS in a row; then the follower says so and stops (the build's result stands).
 */
export async function followLog(options: FollowLogOptions): Promise<{ requests: number }> {
  const position = new LogPosition();
  const kubeConfig =
    options.streamTimeoutMs === undefined
      ? options.kubeConfig
      : withBodyTimeout(options.kubeConfig, options.streamTimeoutMs);
  // Aborted once the watch sees the container terminated: ends a read the kubelet holds open.
  const ended = new AbortController();
  options.terminated?.then(
    () => ended.abort(),
    () => ended.abort(),
  );
  let failures = 0;
  let requests = 0;
  try {
    let terminatedAtStart = options.isTerminated();
    while (!options.signal.aborted) {
      terminatedAtStart = terminatedAtStart || options.isTerminated();
      requests++;
      const outcome = await streamOnce(
        options,
        kubeConfig,
        position,
        terminatedAtStart ? options.signal : AbortSignal.any([options.signal, ended.signal]),
      );
      if (options.signal.aborted) break;
      if (outcome.delivered > 0) failures = 0;
      if (!terminatedAtStart && ended.signal.aborted) {
        // The container ended while this read was open: one read from the resume point returns
        // the rest at once (a container that has exited is read to the end of its file).
        terminatedAtStart = true;
        continue;
      }
      if (outcome.error !== undefined) {
        const status = apiStatus(outcome.error);
        if (options.podGone() || status?.code === 404) break;
        // A step that prints nothing for longer than the stream timeout: the client ended a healthy
        // stream. Resume at once; it is not a failure.
        if (isBodyTimeout(outcome.error)) {
          options.onRetry?.(`log stream of ${options.container} silent past its timeout; resuming`);
          continue;
        }
        failures++;
        if (failures > MAX_FAILED_READS) {
          options.onGiveUp?.(
            `Stopped following the log of ${options.container} after ${MAX_FAILED_READS} failed reads in a row (${describeError(outcome.error)}); the build goes on and its result is still reported`,
          );
          break;
        }
        // 400 "waiting to start" or a dropped connection: wait briefly and resume from the last line.
        if (status?.code !== 400) {
          options.onRetry?.(
            `log stream of ${options.container} interrupted (${describeError(outcome.error)}); resuming`,
          );
        }
        const pause = options.retryDelayMs ?? 200;
        await sleep(Math.min(pause * failures, pause * 10), options.signal);
        continue;
      }
      failures = 0;
      // The stream ended cleanly: the container ended, or the server closed a live stream. Only a
      // stream that started after the watch had seen the container terminated is known to be
      // whole; otherwise one more read from the resume point (accept() drops what it repeats).
      if (terminatedAtStart) break;
      if (await options.waitForTermination(3000)) {
        terminatedAtStart = true;
        continue;
      }
      if (options.podGone()) break;
      options.onRetry?.(`log stream of ${options.container} closed while it was running; resuming`);
    }
  } finally {
    ended.abort();
  }
  return { requests };
}
