/**
 * Follows one container's log with timestamps=true until the container has ended, resuming a
 * dropped stream with sinceTime and dropping the lines already delivered, so the CI log gets
 * every line once and in order.
 */
import { Writable } from "node:stream";
import { Log, type KubeConfig } from "@kubernetes/client-node";
import { apiStatus, sleep } from "./api-errors.js";
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

/** Remembers the position in a log across reconnects: the newest timestamp and how many lines carried it. */
export class LogPosition {
  private last: bigint | undefined;
  private lastText: string | undefined;
  private deliveredAtLast = 0;
  private seenAtLastThisStream = 0;

  /** Where to resume: the newest timestamp delivered (the server repeats lines at it; accept() drops them). */
  get sinceTime(): string | undefined {
    return this.lastText;
  }

  startStream(): void {
    this.seenAtLastThisStream = 0;
  }

  /** True when the line is new and should be delivered. */
  accept(timestamp: string): boolean {
    const nanos = timestampNanos(timestamp);
    if (nanos === undefined) return true;
    if (this.last !== undefined && nanos < this.last) return false;
    if (this.last !== undefined && nanos === this.last) {
      this.seenAtLastThisStream++;
      if (this.seenAtLastThisStream <= this.deliveredAtLast) return false;
      this.deliveredAtLast++;
      return true;
    }
    this.last = nanos;
    this.lastText = timestamp;
    this.deliveredAtLast = 1;
    this.seenAtLastThisStream = 1;
    return true;
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
  signal: AbortSignal;
  onRetry?(message: string): void;
}

interface StreamOutcome {
  clean: boolean;
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
  position: LogPosition,
  controllerRef: { current?: AbortController },
): Promise<StreamOutcome> {
  position.startStream();
  let partial = "";
  const deliver = (raw: string) => {
    const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    const { time, text } = splitTimestamp(line);
    if (time && !position.accept(time)) return;
    options.onLine({ container: options.container, time, text });
  };
  return new Promise<StreamOutcome>((resolve) => {
    let settled = false;
    const settle = (outcome: StreamOutcome) => {
      if (settled) return;
      settled = true;
      resolve(outcome);
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
        settle({ clean: true });
      },
    });
    // client-node pipes the response into `sink` but does not listen for the response's errors:
    // catch them here, or a dropped connection would be an uncaught exception.
    sink.on("pipe", (source) => {
      source.on("error", (error: unknown) => {
        partial = "";
        settle({ clean: false, error });
      });
    });
    const log = new Log(options.kubeConfig);
    log
      .log(options.namespace, options.pod, options.container, sink, {
        follow: true,
        timestamps: true,
        sinceTime: position.sinceTime,
      })
      .then((controller) => {
        controllerRef.current = controller;
        if (options.signal.aborted) controller.abort();
      })
      .catch((error: unknown) => settle({ clean: false, error }));
  });
}

/** Delivers the container's whole log once; returns when the container has ended and all is read. */
export async function followLog(options: FollowLogOptions): Promise<void> {
  const position = new LogPosition();
  const controllerRef: { current?: AbortController } = {};
  const onAbort = () => controllerRef.current?.abort();
  options.signal.addEventListener("abort", onAbort, { once: true });
  let failures = 0;
  try {
    let terminatedAtStart = options.isTerminated();
    while (!options.signal.aborted) {
      terminatedAtStart = terminatedAtStart || options.isTerminated();
      const outcome = await streamOnce(options, position, controllerRef);
      if (options.signal.aborted) return;
      if (outcome.error !== undefined) {
        const status = apiStatus(outcome.error);
        if (options.podGone() || status?.code === 404) return;
        failures++;
        if (failures > 20) return;
        // 400 "waiting to start" or a dropped connection: wait briefly and resume from the last line.
        if (status?.code !== 400) {
          const reason = status
            ? `${status.code}`
            : outcome.error instanceof Error
              ? outcome.error.message
              : "error";
          options.onRetry?.(`log stream of ${options.container} interrupted (${reason}); resuming`);
        }
        await sleep(Math.min(200 * failures, 2000), options.signal);
        continue;
      }
      failures = 0;
      // The stream ended cleanly: the container ended, or the server closed a live stream. Only a
      // stream that ended after the watch had seen the container terminated is known to be whole;
      // otherwise one more read from the last line (the server repeats it; accept() drops it).
      if (terminatedAtStart) return;
      if (await options.waitForTermination(3000)) {
        terminatedAtStart = true;
        continue;
      }
      if (options.podGone()) return;
      options.onRetry?.(`log stream of ${options.container} closed while it was running; resuming`);
    }
  } finally {
    options.signal.removeEventListener("abort", onAbort);
  }
}
