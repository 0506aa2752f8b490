/** Loads the recorded scenarios (test/support/recordings/<name>/) and splits them into replayable timelines. */
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { COMPOSED } from "./composed.js";

export const RECORDINGS_DIR = join(dirname(fileURLToPath(import.meta.url)), "recordings");

export interface WatchLine {
  t: number;
  type: string;
  object: any;
}
export interface LogLine {
  /** epoch ms of the line's timestamp */
  t: number;
  /** the recorded sub-millisecond digits (6) of the RFC3339Nano stamp */
  subMs: string;
  text: string;
}

export interface Recording {
  name: string;
  job: any;
  pods: WatchLine[];
  events: WatchLine[];
  logs: Record<string, LogLine[]>;
  podName: string;
  podUid: string;
  jobName: string;
  jobUid: string;
  namespace: string;
  /** time of the pod's ADDED */
  t0: number;
  /** time the pod got a deletionTimestamp (what follows is the delete, not the kubelet) */
  deletionT: number;
  /** index in pods of the first frame where the stdin init container runs; -1 when it never does */
  gateIdx: number;
  /** exit code of the init container after the gate, when the recording shows it */
  receiverExit?: number;
  /**
   * The kubelet removed the pod's containers once it failed (an eviction): pods/log then answers
   * 400 "unable to retrieve container logs for containerd://…" — what the log files hold.
   */
  logsRemoved: boolean;
}

/** What a real pods/log answered once the containers were gone (kubelet GetContainerLogs). */
export const LOGS_REMOVED = /^unable to retrieve container logs for /;

function readWatch(file: string): WatchLine[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, "utf8")
    .split("\n")
    .filter((l) => l.trim())
    .map((l) => {
      const tab = l.indexOf("\t");
      const e = JSON.parse(l.slice(tab + 1));
      return { t: Number(l.slice(0, tab)), type: e.type, object: e.object };
    });
}

export function parseLogStamp(stamp: string): { t: number; subMs: string } {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?Z$/.exec(stamp);
  if (!m) return { t: Date.parse(stamp), subMs: "000000" };
  const frac = (m[2] ?? "").padEnd(9, "0");
  return { t: Date.parse(`${m[1]}.${frac.slice(0, 3)}Z`), subMs: frac.slice(3, 9) };
}

function readLog(file: string): LogLine[] {
  if (!existsSync(file)) return [];
  const text = readFileSync(file, "utf8");
  // Not a log: the kubelet's answer after the containers were removed (see logsRemoved).
  if (LOGS_REMOVED.test(text)) return [];
  return text
    .split("\n")
    .filter((l) => l.length > 0)
    .map((l) => {
      const sp = l.indexOf(" ");
      return { ...parseLogStamp(l.slice(0, sp)), text: l.slice(sp + 1) };
    });
}

const cache = new Map<string, Recording>();

export function scenarioNames(): string[] {
  return [
    "kaniko-success-cold",
    "kaniko-success-warm",
    "kaniko-run-fails",
    "kaniko-deadline",
    "kaniko-upload-truncated",
    "kaniko-oomkilled",
    "kaniko-image-pull-fails",
    "kaniko-unschedulable",
    "kaniko-missing-secret",
    "kaniko-kubelet-rejects",
    "kaniko-evicted",
    "kaniko-success-buildcontext",
    "buildkit-rootless-success-cold",
    "buildkit-rootless-run-fails",
    "buildah-success-cold",
    "buildah-run-fails",
    "dind-success-cold",
    "dind-run-fails",
  ];
}

export function loadRecording(name: string): Recording {
  const hit = cache.get(name);
  if (hit) return hit;
  const composed = COMPOSED[name];
  if (composed) {
    const rec = composed(loadRecording, assembleRecording);
    cache.set(name, rec);
    return rec;
  }
  const dir = join(RECORDINGS_DIR, name);
  if (!existsSync(dir))
    throw new Error(
      `test cluster: no recording "${name}" (have: ${[...scenarioNames(), ...Object.keys(COMPOSED)].join(", ")})`,
    );
  const pods = readWatch(join(dir, "pod-watch.jsonl"));
  const events = readWatch(join(dir, "events-watch.jsonl"));
  const job = JSON.parse(readFileSync(join(dir, "job.json"), "utf8"));
  const first = pods[0]!.object;
  const logs: Record<string, LogLine[]> = {};
  let logsRemoved = false;
  for (const c of [...(first.spec.initContainers ?? []), ...first.spec.containers]) {
    const file = join(dir, `log-${c.name}.txt`);
    logs[c.name] = readLog(file);
    if (existsSync(file) && LOGS_REMOVED.test(readFileSync(file, "utf8"))) logsRemoved = true;
  }
  const rec = assembleRecording({ name, job, pods, events, logs, logsRemoved });
  cache.set(name, rec);
  return rec;
}

export interface RecordingParts {
  name: string;
  job: any;
  pods: WatchLine[];
  events: WatchLine[];
  logs: Record<string, LogLine[]>;
  logsRemoved: boolean;
}

/** A replayable Recording from its timelines: names, uids, the receiver's gate and exit. */
export function assembleRecording(parts: RecordingParts): Recording {
  const { pods } = parts;
  const first = pods[0]!.object;
  const owner = first.metadata.ownerReferences?.[0] ?? {};
  const del = pods.find((p) => p.object.metadata.deletionTimestamp);
  const stdinInit = (first.spec.initContainers ?? []).find((c: any) => c.stdin)?.name;
  const gateIdx = stdinInit
    ? pods.findIndex((p) =>
        (p.object.status?.initContainerStatuses ?? []).some(
          (s: any) => s.name === stdinInit && s.state?.running,
        ),
      )
    : -1;
  let receiverExit: number | undefined;
  if (gateIdx >= 0) {
    for (const p of pods.slice(gateIdx)) {
      const s = (p.object.status?.initContainerStatuses ?? []).find(
        (x: any) => x.name === stdinInit,
      );
      if (s?.state?.terminated) {
        receiverExit = s.state.terminated.exitCode;
        break;
      }
    }
  }
  return {
    ...parts,
    podName: first.metadata.name,
    podUid: first.metadata.uid,
    jobName: owner.name,
    jobUid: owner.uid,
    namespace: first.metadata.namespace,
    t0: pods[0]!.t,
    deletionT: del ? del.t : Infinity,
    gateIdx,
    receiverExit,
  };
}
