/**
 * How the test server's kubelet writes and serves container logs, as a node does:
 *
 * - Live: a build container is reported running while its lines arrive at their recorded pace
 *   (× timeScale). Its terminated status comes at the recorded time (the next relist after the
 *   exit). A follow stream open at the exit ends on the kubelet's state check 5 s after the last
 *   write, well after that status, or (seeded) at once when the container had exited before the
 *   stream read its last line; a log request made after the exit ends at the end of the file.
 * - Stamped per stream: containerd's CRI logger reads stdout and stderr in one goroutine each and
 *   stamps a line (time.Now) before it writes it to the shared file, so in the file a line can
 *   carry an earlier time than the one before it (seeded, reproducible).
 * - A build log can be given as a timeline (`buildLogTimeline`) to replay, e.g., a step that prints
 *   nothing for six minutes; what follows in the recording (the terminated status, events) moves
 *   along with it.
 */
import { EventEmitter } from "node:events";

/** One replay step; the kubelet applies them in time order. */
export type Item =
  | { t: number; order: number; kind: "pod"; object: any }
  | { t: number; order: number; kind: "event"; type: string; object: any }
  | {
      t: number;
      order: number;
      kind: "log";
      container: string;
      subMs: string;
      text: string;
      done?: boolean;
    }
  /**
   * "exit": the container exited, its log file is complete (a follow request from now on ends at
   * the end of the file); "streams": the follow streams already open notice it and end.
   */
  | {
      t: number;
      order: number;
      kind: "log-end";
      container: string;
      what: "exit" | "streams";
      done?: boolean;
    };

export interface LiveLine {
  /** epoch ms of the stamp (what sinceTime compares with) */
  t: number;
  stamp: string;
  text: string;
}

/** A line of a build log given with its time, in recorded milliseconds after the build starts. */
export interface TimedLine {
  atMs: number;
  text: string;
}

export interface LogFidelityOptions {
  /** Seeds the stamp skew and the order of log end and status (default 1, or $TEST_LOG_SEED). */
  seed?: number;
  /** How far back (live ms) a line's stamp may lie behind the line written before it; default 3. */
  stampSkewMs?: number;
}

/** mulberry32: small, seedable, good enough to pick skews and orders. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function hash(text: string): number {
  let h = 2166136261;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619);
  return h >>> 0;
}

export function stampNanos(stamp: string): bigint {
  const match = /^(.*)\.(\d{9})Z$/.exec(stamp);
  if (!match) return BigInt(Date.parse(stamp)) * 1_000_000n;
  return BigInt(Date.parse(`${match[1]}Z`)) * 1_000_000n + BigInt(match[2]!);
}

export function formatNano(ms: number, subMs = "000000"): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, `.$1${subMs}Z`);
}

function stampOf(nanos: bigint): { t: number; stamp: string } {
  const t = Number(nanos / 1_000_000n);
  return { t, stamp: formatNano(t, String(nanos % 1_000_000n).padStart(6, "0")) };
}

/** Which pipe a line came from: the builders log through logrus/buildctl on stderr. */
function streamOf(text: string): "stdout" | "stderr" {
  return /^(time="|level=|#\d+ |INFO|WARN|ERRO)/.test(text) ? "stderr" : "stdout";
}

/** Stamps a container's lines as the runtime does: each pipe's stamps increase, not the file's. */
export class Stamper {
  private readonly last = new Map<string, bigint>();
  private lastStream: string | undefined;
  constructor(
    private readonly random: () => number,
    private readonly skewMs: number,
  ) {}

  stamp(line: LiveLine): LiveLine {
    let nanos = stampNanos(line.stamp);
    const stream = streamOf(line.text);
    // Read from the other pipe: its reader may have stamped it a little before the write.
    if (this.lastStream !== undefined && stream !== this.lastStream)
      nanos -= BigInt(Math.floor(this.random() * this.skewMs * 1_000_000));
    const last = this.last.get(stream);
    if (last !== undefined && nanos <= last) nanos = last + 1n;
    this.last.set(stream, nanos);
    this.lastStream = stream;
    return { ...line, ...stampOf(nanos) };
  }
}

export class ContainerLog extends EventEmitter {
  readonly lines: LiveLine[] = [];
  /** The container exited: nothing more is written; a new follow request ends at the file's end. */
  exited = false;
  /** Open follow streams have ended too. */
  ended = false;
  constructor(private readonly stamper?: Stamper) {
    super();
  }
  push(line: LiveLine): void {
    if (this.ended) return;
    const stamped = this.stamper ? this.stamper.stamp(line) : line;
    this.lines.push(stamped);
    this.emit("line", stamped);
  }
  exit(): void {
    this.exited = true;
  }
  end(): void {
    if (this.ended) return;
    this.exited = true;
    this.ended = true;
    this.emit("end");
  }
}

/** Recorded ms between a container's last line and its exit (the log file closing). */
const EXIT_AFTER_LAST_LINE_MS = 20;
/**
 * The kubelet's follow loop, idle at the end of a log file, checks every 5 s whether the container
 * still runs (pkg/kubelet/kuberuntime/logs: stateCheckPeriod) and ends the stream when it does not.
 */
const KUBELET_STATE_CHECK_MS = 5000;

export class LogFidelity {
  private readonly seed: number;
  private readonly skewMs: number;
  private pods = 0;

  constructor(options: LogFidelityOptions = {}) {
    this.seed = options.seed ?? Number(process.env.TEST_LOG_SEED ?? 1);
    this.skewMs = options.stampSkewMs ?? 3;
  }

  /** One random sequence per pod and container, in the order pods start: reproducible per test. */
  random(podIndex: number, container: string): () => number {
    return seededRandom(this.seed ^ hash(`${podIndex}/${container}`));
  }

  nextPod(): number {
    return ++this.pods;
  }

  containerLog(podIndex: number, container: string): ContainerLog {
    return new ContainerLog(new Stamper(this.random(podIndex, `${container}/stamps`), this.skewMs));
  }

  /**
   * Makes a window of replay items live: a running frame for a container that logs but whose
   * recorded frames skip from waiting to terminated, and the end of each log at the container's
   * exit rather than at its terminated status.
   */
  live(items: Item[], podIndex: number): Item[] {
    const out = [...items];
    let order = Math.max(0, ...items.map((it) => it.order)) + 1;
    const containers = new Set<string>();
    for (const it of items) if (it.kind === "log") containers.add(it.container);
    for (const frame of items) {
      if (frame.kind !== "pod") continue;
      for (const s of statusesOf(frame.object)) if (s.state?.terminated) containers.add(s.name);
    }
    for (const name of containers) {
      const lines = items.filter(
        (it): it is Extract<Item, { kind: "log" }> => it.kind === "log" && it.container === name,
      );
      const terminatedFrame = items.find(
        (it): it is Extract<Item, { kind: "pod" }> =>
          it.kind === "pod" &&
          statusesOf(it.object).some((s) => s.name === name && s.state?.terminated),
      );
      if (!terminatedFrame) continue;
      const first = lines[0];
      const last = lines.at(-1);
      if (first && !this.shownRunning(items, name, terminatedFrame.t)) {
        const running = runningFrame(terminatedFrame.object, name, first.t - 1);
        if (running) out.push({ t: first.t - 1, order: order++, kind: "pod", object: running });
      }
      const random = this.random(podIndex, `${name}/end`);
      // The container exits after its last line, or later when it ran on silently (the status's
      // finishedAt, whole seconds, says how long), never after the status that reports it.
      const finishedAt = Date.parse(
        statusesOf(terminatedFrame.object).find((s) => s.name === name)?.state?.terminated
          ?.finishedAt ?? "",
      );
      const exit = Math.min(
        terminatedFrame.t,
        Math.max(last ? last.t + EXIT_AFTER_LAST_LINE_MS : 0, finishedAt || 0),
      );
      // A follow stream idle at the end of the file ends when the kubelet sees the container is no
      // longer running: at once when it had exited before the stream read its last line (seeded),
      // otherwise on the state check 5 s after the last write (and every 5 s after that).
      const lastWrite = last?.t ?? exit - Math.floor(random() * KUBELET_STATE_CHECK_MS);
      const checks = Math.max(1, Math.ceil((exit - lastWrite) / KUBELET_STATE_CHECK_MS));
      const end = random() < 0.3 ? exit : lastWrite + checks * KUBELET_STATE_CHECK_MS;
      out.push({ t: exit, order: order++, kind: "log-end", container: name, what: "exit" });
      out.push({ t: end, order: order++, kind: "log-end", container: name, what: "streams" });
    }
    const rank = { pod: 0, event: 1, log: 2, "log-end": 3 } as const;
    return out.sort((a, b) => a.t - b.t || rank[a.kind] - rank[b.kind] || a.order - b.order);
  }

  /** True when a recorded frame before the terminated one shows the container running. */
  private shownRunning(items: Item[], name: string, to: number): boolean {
    return items.some(
      (it) =>
        it.kind === "pod" &&
        it.t < to &&
        statusesOf(it.object).some((s) => s.name === name && s.state?.running),
    );
  }
}

function statusesOf(pod: any): any[] {
  return [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])];
}

function isoSeconds(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace(".000Z", "Z");
}

/**
 * The frame a relist would have sent while the container ran: its terminated frame with that
 * container running (and ready) and, for a main container, the pod Running and Ready.
 */
function runningFrame(terminated: any, name: string, at: number): any | undefined {
  const frame = structuredClone(terminated);
  const init = (frame.status?.initContainerStatuses ?? []).find((s: any) => s.name === name);
  const main = (frame.status?.containerStatuses ?? []).find((s: any) => s.name === name);
  const status = init ?? main;
  if (!status?.state?.terminated) return undefined;
  const startedAt = status.state.terminated.startedAt ?? isoSeconds(at);
  status.state = { running: { startedAt } };
  status.ready = !init;
  if (main) {
    status.started = true;
    frame.status.phase = "Running";
    for (const c of frame.status.conditions ?? []) {
      if (c.type === "Initialized" || c.type === "Ready" || c.type === "ContainersReady") {
        if (c.status !== "True") c.lastTransitionTime = isoSeconds(at);
        c.status = "True";
        delete c.reason;
        delete c.message;
      }
    }
  }
  return frame;
}

/**
 * Replaces the build container's recorded lines with a timeline that starts where the recorded
 * log started; whatever the recording did after its last line (the status, events) moves by as
 * much as the timeline runs longer.
 */
export function retimeBuildLog(items: Item[], container: string, timeline: TimedLine[]): Item[] {
  const recorded = items.filter(
    (it): it is Extract<Item, { kind: "log" }> => it.kind === "log" && it.container === container,
  );
  if (!recorded.length) return items;
  const start = recorded[0]!.t;
  const recordedEnd = recorded.at(-1)!.t;
  const end = start + Math.max(0, ...timeline.map((l) => l.atMs));
  const shift = Math.max(0, end - recordedEnd);
  const out: Item[] = items
    .filter((it) => !(it.kind === "log" && it.container === container))
    .map((it) => (it.t > recordedEnd ? { ...it, t: it.t + shift } : it));
  let order = Math.max(0, ...items.map((it) => it.order)) + 1;
  timeline.forEach((line, i) =>
    out.push({
      t: start + line.atMs,
      order: order++,
      kind: "log",
      container,
      subMs: String(i % 1000000).padStart(6, "0"),
      text: line.text,
    }),
  );
  return out;
}
