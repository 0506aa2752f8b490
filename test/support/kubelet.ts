/**
 * A scripted kubelet: replays a recorded scenario onto a live pod (status frames, events, logs) with the
 * recorded delays × timeScale, waiting for the client where a real kubelet would (the stdin receiver).
 */
import { createHash, randomBytes } from "node:crypto";
import { eventName, involvedOf, recordEvent } from "./events.js";
import { Receiver } from "./receiver.js";
import { loadRecording, type Recording } from "./recordings.js";
import {
  ContainerLog,
  formatNano,
  LogFidelity,
  retimeBuildLog,
  type Item,
  type LogFidelityOptions,
  type TimedLine,
} from "./log-replay.js";
import type { Store, StoreEvent } from "./store.js";
import { nowIso } from "./store.js";

export interface ScenarioOverrides {
  digest?: string;
  buildLog?: string[];
  /** The build log as a timeline (e.g. a long silent step); the status follows its last line. */
  buildLogTimeline?: TimedLine[];
  /**
   * The builder's push, as a real builder does it before it writes the digest: called (and awaited)
   * once, just before the frame in which the builder terminates with a digest; what it returns is
   * the digest the termination message then carries.
   */
  push?: (pod: any) => Promise<string>;
}

/** A recorded pod frame in which the builder (the first container) ended with a digest. */
function builderEndsWithDigest(recorded: any): boolean {
  const message = recorded.status?.containerStatuses?.[0]?.state?.terminated?.message;
  return typeof message === "string" && message.startsWith("sha256:");
}

export { ContainerLog, formatNano, type LiveLine } from "./log-replay.js";

interface PodRuntime {
  ns: string;
  name: string;
  uid: string;
  logs: Map<string, ContainerLog>;
  /** The pod's place in the order pods started (seeds its log replay). */
  index: number;
  receiver?: Receiver;
  receiverContainer?: string;
  stopped: boolean;
  killing: boolean;
  wake: Set<() => void>;
  /** The recording's kubelet removes the containers once the pod fails (an eviction). */
  removesContainersOnFailure: boolean;
  /** The containers are gone: pods/log can no longer read them. */
  containersRemoved: boolean;
}

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** Rewrites a recorded object onto the live pod: names, uids, namespace, images, container IDs, times. */
class Mapper {
  private readonly re: RegExp;
  private readonly table = new Map<string, string>();
  constructor(
    private readonly rec: Recording,
    private readonly live: { ns: string; pod: any; jobName: string; jobUid: string },
    private readonly baseLive: number,
    private readonly baseRec: number,
    private readonly scale: number,
    private readonly containerIds: Map<string, string>,
  ) {
    const p = live.pod;
    const recPod = rec.pods[0]!.object;
    const t = this.table;
    t.set(`${rec.namespace}/${rec.podName}`, `${live.ns}/${p.metadata.name}`);
    t.set(`${rec.podName}_${rec.namespace}(`, `${p.metadata.name}_${live.ns}(`);
    t.set(rec.podName, p.metadata.name);
    t.set(rec.podUid, p.metadata.uid);
    if (rec.jobUid) t.set(rec.jobUid, live.jobUid);
    if (rec.jobName) t.set(rec.jobName, live.jobName);
    const pairs: Array<[any[], any[]]> = [
      [recPod.spec.initContainers ?? [], p.spec.initContainers ?? []],
      [recPod.spec.containers ?? [], p.spec.containers ?? []],
    ];
    for (const [rs, ls] of pairs)
      rs.forEach(
        (rc: any, i: number) => ls[i] && rc.image !== ls[i].image && t.set(rc.image, ls[i].image),
      );
    this.re = new RegExp(
      `containerd://[0-9a-f]{64}|${[...t.keys()]
        .sort((a, b) => b.length - a.length)
        .map(escapeRe)
        .join("|")}`,
      "g",
    );
  }
  time(recMs: number): number {
    return this.baseLive + (recMs - this.baseRec) * this.scale;
  }
  str(s: string): string {
    if (ISO.test(s)) {
      const frac = /\.(\d+)Z$/.exec(s)?.[1];
      const ms = this.time(Date.parse(s));
      if (!frac) return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace(".000Z", "Z");
      return new Date(ms)
        .toISOString()
        .replace(/\.(\d{3})Z$/, `.$1${frac.slice(3).padEnd(frac.length - 3, "0")}Z`);
    }
    return s.replace(this.re, (m) => {
      if (m.startsWith("containerd://")) {
        let id = this.containerIds.get(m);
        if (!id) this.containerIds.set(m, (id = `containerd://${randomBytes(32).toString("hex")}`));
        return id;
      }
      return this.table.get(m) ?? m;
    });
  }
  deep(o: any, keyName?: string): any {
    if (typeof o === "string")
      return keyName === "namespace" && o === this.rec.namespace ? this.live.ns : this.str(o);
    if (Array.isArray(o)) return o.map((x) => this.deep(x));
    if (o && typeof o === "object") {
      const out: any = {};
      for (const [k, v] of Object.entries(o)) out[k] = this.deep(v, k);
      return out;
    }
    return o;
  }
}

export interface KubeletOptions {
  timeScale: number;
  nodeName?: string;
  /** How logs are stamped and ended (as a node does; see log-replay.ts). */
  logs?: LogFidelityOptions;
}

export class Kubelet {
  private readonly pods = new Map<string, PodRuntime>();
  private readonly received = new Map<string, string>();
  private readonly receivers: Receiver[] = [];
  private closed = false;
  private readonly unsubscribe: () => void;
  private readonly logFidelity: LogFidelity;

  constructor(
    private readonly store: Store,
    private readonly opts: KubeletOptions,
  ) {
    this.logFidelity = new LogFidelity(opts.logs);
    this.unsubscribe = store.subscribe((e) => this.onStoreEvent(e));
  }

  close(): void {
    this.closed = true;
    this.unsubscribe();
    for (const rt of this.pods.values()) this.stop(rt);
    for (const r of this.receivers) r.kill();
  }

  receivedContext(podName: string): string | undefined {
    return this.received.get(podName);
  }

  runtime(ns: string, name: string): PodRuntime | undefined {
    for (const rt of this.pods.values()) if (rt.ns === ns && rt.name === name) return rt;
    return undefined;
  }

  log(ns: string, name: string, container: string): ContainerLog | undefined {
    return this.runtime(ns, name)?.logs.get(container);
  }

  /** Runs the pod: replays `scenario`, mapped onto the live pod and its Job. */
  start(pod: any, job: any, scenario: string, overrides: ScenarioOverrides): void {
    const rt: PodRuntime = {
      ns: pod.metadata.namespace,
      name: pod.metadata.name,
      uid: pod.metadata.uid,
      logs: new Map(),
      index: this.logFidelity.nextPod(),
      stopped: false,
      killing: false,
      wake: new Set(),
      removesContainersOnFailure: false,
      containersRemoved: false,
    };
    for (const c of [...(pod.spec.initContainers ?? []), ...pod.spec.containers])
      rt.logs.set(c.name, this.logFidelity.containerLog(rt.index, c.name));
    this.pods.set(rt.uid, rt);
    void this.run(rt, pod, job, scenario, overrides).catch((err) =>
      console.error("test-server kubelet failed", err),
    );
  }

  private sleepUntil(rt: PodRuntime, at: number): Promise<void> {
    const ms = at - Date.now();
    if (ms <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        rt.wake.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      rt.wake.add(done);
    });
  }

  private stop(rt: PodRuntime): void {
    rt.stopped = true;
    for (const w of [...rt.wake]) w();
    rt.receiver?.kill();
    for (const l of rt.logs.values()) l.end();
  }

  private items(
    rec: Recording,
    fromT: number,
    toT: number,
    includeFrom: boolean,
    live: any,
    overrides: ScenarioOverrides,
  ): Item[] {
    const hasInit = (live.spec.initContainers ?? []).length > 0;
    const inWindow = (t: number) =>
      (includeFrom ? t >= fromT : t > fromT) && t <= toT && t < rec.deletionT;
    const out: Item[] = [];
    let order = 0;
    rec.pods.forEach((p, i) => {
      if (i === 0 || p.type !== "MODIFIED" || p.object.metadata.deletionTimestamp) return;
      if (inWindow(p.t) && !(includeFrom && p.t === fromT && i === 0))
        out.push({ t: p.t, order: order++, kind: "pod", object: p.object });
    });
    for (const e of rec.events) {
      if (!inWindow(e.t)) continue;
      if (e.object.involvedObject?.kind !== "Pod") continue; // the Job's events come from our job controller
      if (!hasInit && /initContainers/.test(e.object.involvedObject?.fieldPath ?? "")) continue;
      out.push({ t: e.t, order: order++, kind: "event", type: e.type, object: e.object });
    }
    const recPod = rec.pods[0]!.object;
    const recInit = (recPod.spec.initContainers ?? []).map((c: any) => c.name);
    const recMain = recPod.spec.containers.map((c: any) => c.name);
    const liveName = (c: string) => {
      const ii = recInit.indexOf(c);
      if (ii >= 0) return live.spec.initContainers?.[ii]?.name as string | undefined;
      const mi = recMain.indexOf(c);
      return mi >= 0 ? (live.spec.containers[mi]?.name as string | undefined) : undefined;
    };
    for (const [c, lines] of Object.entries(rec.logs)) {
      const name = liveName(c);
      if (!name) continue;
      let use = lines.map((l) => ({ t: l.t, subMs: l.subMs, text: l.text }));
      if (overrides.buildLog && c === recMain[0]) {
        const span = lines.length ? [lines[0]!.t, lines[lines.length - 1]!.t] : [fromT, fromT];
        const n = overrides.buildLog.length;
        use = overrides.buildLog.map((text, i) => ({
          t: span[0]! + (n > 1 ? ((span[1]! - span[0]!) * i) / (n - 1) : 0),
          subMs: String(i % 1000000).padStart(6, "0"),
          text,
        }));
      }
      for (const l of use) {
        const inLogWindow = (includeFrom ? l.t >= fromT : l.t > fromT) && l.t <= toT;
        if (inLogWindow)
          out.push({
            t: l.t,
            order: order++,
            kind: "log",
            container: name,
            subMs: l.subMs,
            text: l.text,
          });
      }
    }
    const build = liveName(recMain[0]);
    const timed =
      overrides.buildLogTimeline && build
        ? retimeBuildLog(out, build, overrides.buildLogTimeline)
        : out;
    const rank = { pod: 0, event: 1, log: 2, "log-end": 3 } as const;
    return timed.sort((a, b) => a.t - b.t || rank[a.kind] - rank[b.kind] || a.order - b.order);
  }

  private async run(
    rt: PodRuntime,
    pod: any,
    job: any,
    scenario: string,
    overrides: ScenarioOverrides,
  ): Promise<void> {
    const rec = loadRecording(scenario);
    rt.removesContainersOnFailure = rec.logsRemoved;
    const live = { ns: rt.ns, pod, jobName: job.metadata.name, jobUid: job.metadata.uid };
    const ids = new Map<string, string>();
    const stdinInit = (pod.spec.initContainers ?? []).find((c: any) => c.stdin);
    const hasInit = (pod.spec.initContainers ?? []).length > 0;
    const gate = hasInit && rec.gateIdx >= 0 ? rec.pods[rec.gateIdx]! : undefined;
    const eventNames = new Map<string, string>();
    const m1 = new Mapper(rec, live, Date.now(), rec.t0, this.opts.timeScale, ids);
    const first = this.logFidelity.live(
      this.items(rec, rec.t0, gate ? gate.t : Infinity, true, pod, overrides),
      rt.index,
    );
    if (!(await this.play(rt, first, m1, pod, overrides, eventNames, gate))) return;
    if (!gate) return;
    // The receiver runs: wait for the client's upload (a real kubelet waits on the container's stdin).
    let exit = 0;
    if (stdinInit && rt.receiver) {
      exit = await Promise.race([
        rt.receiver.exit,
        new Promise<number>((r) => rt.wake.add(() => r(-1))),
      ]);
      if (rt.stopped || exit < 0) return;
    }
    const recExit = rec.receiverExit ?? 0;
    const cont =
      (exit === 0) === (recExit === 0)
        ? rec
        : loadRecording(exit === 0 ? "kaniko-success-cold" : "kaniko-upload-truncated");
    const cgate = cont.pods[cont.gateIdx]!;
    const m2 = new Mapper(cont, live, Date.now(), cgate.t, this.opts.timeScale, ids);
    const eventNames2 = cont === rec ? eventNames : new Map<string, string>();
    if (cont !== rec) for (const [k, v] of eventNames) eventNames2.set(k, v);
    const rest = this.logFidelity.live(
      this.items(cont, cgate.t, Infinity, false, pod, overrides),
      rt.index,
    );
    await this.play(rt, rest, m2, pod, overrides, eventNames2, undefined);
  }

  /** Applies items in time; false when the pod went away. */
  private async play(
    rt: PodRuntime,
    items: Item[],
    m: Mapper,
    pod: any,
    overrides: ScenarioOverrides,
    eventNames: Map<string, string>,
    gate: { object: any } | undefined,
  ): Promise<boolean> {
    for (const it of items) {
      if ((it.kind === "log" || it.kind === "log-end") && it.done) continue;
      await this.sleepUntil(rt, m.time(it.t));
      if (rt.stopped || rt.killing || this.closed) return false;
      if (it.kind === "pod") {
        if (overrides.push && !overrides.digest && builderEndsWithDigest(it.object)) {
          overrides.digest = await overrides.push(pod);
          if (rt.stopped || rt.killing || this.closed) return false;
        }
        this.applyPod(rt, it.object, m, pod, overrides, items);
        if (gate && it.object === gate.object) this.startReceiver(rt, pod);
      } else if (it.kind === "event") this.applyEvent(rt, it.type, it.object, m, eventNames);
      else if (it.kind === "log-end") {
        if (it.what === "exit") rt.logs.get(it.container)?.exit();
        else rt.logs.get(it.container)?.end();
        it.done = true;
      } else {
        rt.logs
          .get(it.container)
          ?.push({ t: m.time(it.t), stamp: formatNano(m.time(it.t), it.subMs), text: it.text });
        it.done = true;
      }
    }
    return !rt.stopped;
  }

  private startReceiver(rt: PodRuntime, pod: any): void {
    const c = (pod.spec.initContainers ?? []).find((x: any) => x.stdin);
    if (!c || rt.receiver) return;
    const r = new Receiver(rt.name, c);
    rt.receiver = r;
    rt.receiverContainer = c.name;
    this.receivers.push(r);
    this.received.set(rt.name, r.dir);
  }

  private applyPod(
    rt: PodRuntime,
    recObj: any,
    m: Mapper,
    pod: any,
    overrides: ScenarioOverrides,
    items: Item[],
  ): void {
    const status = m.deep(recObj.status ?? {});
    const hasInit = (pod.spec.initContainers ?? []).length > 0;
    const recPod = recObj;
    const rename = (
      list: any[] | undefined,
      recList: any[] | undefined,
      liveList: any[] | undefined,
    ) => {
      for (const s of list ?? []) {
        const i = (recList ?? []).findIndex((c: any) => c.name === s.name);
        const lc = i >= 0 ? liveList?.[i] : undefined;
        if (lc) {
          s.name = lc.name;
          if (s.image !== lc.image) {
            s.image = lc.image;
            s.imageID = `${lc.image.replace(/[:@].*$/, "")}@sha256:${createHash("sha256").update(lc.image).digest("hex")}`;
          }
        }
      }
    };
    rename(status.initContainerStatuses, recPod.spec.initContainers, pod.spec.initContainers);
    rename(status.containerStatuses, recPod.spec.containers, pod.spec.containers);
    const main = status.containerStatuses?.[0];
    if (overrides.digest && main?.state?.terminated?.message?.startsWith("sha256:"))
      main.state.terminated.message = overrides.digest;
    if (!hasInit) {
      delete status.initContainerStatuses;
      for (const c of status.conditions ?? []) {
        if (c.type === "Initialized" && c.status === "False") {
          c.status = "True";
          delete c.reason;
          delete c.message;
        }
      }
    }
    this.store.mutate("pods", rt.ns, rt.name, (p) => {
      if (p.metadata.deletionTimestamp) return false;
      p.status = status;
      if (recObj.spec?.nodeName && !p.spec.nodeName)
        p.spec.nodeName = this.opts.nodeName ?? recObj.spec.nodeName;
    });
    // Containers that terminated: their logs are complete (unless the replay ends them itself,
    // at the container's exit).
    for (const s of [
      ...(status.initContainerStatuses ?? []),
      ...(status.containerStatuses ?? []),
    ]) {
      if (!s.state?.terminated) continue;
      const log = rt.logs.get(s.name);
      if (!log || log.ended) continue;
      if (
        items.some(
          (it) =>
            it.kind === "log-end" && it.what === "streams" && it.container === s.name && !it.done,
        )
      )
        continue;
      for (const it of items) {
        if (it.kind === "log" && it.container === s.name && !it.done) {
          log.push({ t: m.time(it.t), stamp: formatNano(m.time(it.t), it.subMs), text: it.text });
          it.done = true;
        }
      }
      log.end();
    }
    if (status.phase === "Failed" && rt.removesContainersOnFailure) {
      // An evicted pod's containers are removed with it: their logs are gone.
      rt.containersRemoved = true;
      for (const log of rt.logs.values()) log.end();
    }
  }

  private applyEvent(
    rt: PodRuntime,
    type: string,
    recEv: any,
    m: Mapper,
    names: Map<string, string>,
  ): void {
    const ev = m.deep(recEv);
    const livePod = this.store.get("pods", rt.ns, rt.name);
    if (!livePod) return;
    const recName = recEv.metadata.name;
    const existing = names.get(recName);
    if (type === "MODIFIED" && existing) {
      this.store.mutate("events", rt.ns, existing, (e) => {
        e.count = ev.count;
        e.lastTimestamp = ev.lastTimestamp;
        e.message = ev.message;
        if (ev.series) e.series = ev.series;
      });
      return;
    }
    const name = eventName(rt.name);
    names.set(recName, name);
    ev.metadata = { name, namespace: rt.ns };
    ev.involvedObject.resourceVersion = livePod.metadata.resourceVersion;
    this.store.create("events", ev);
  }

  private onStoreEvent(e: StoreEvent): void {
    if (e.resource !== "pods") return;
    const rt = this.pods.get(e.object.metadata.uid);
    if (!rt) return;
    if (e.type === "DELETED") {
      this.stop(rt);
      this.pods.delete(rt.uid);
      return;
    }
    const md = e.object.metadata;
    // A delete, graceful or forced (grace 0: SIGKILL at once), stops what still runs.
    if (md.deletionTimestamp && !rt.killing && !rt.stopped) {
      rt.killing = true;
      for (const w of [...rt.wake]) w();
      void this.kill(rt).catch((err) => console.error("test-server kubelet kill failed", err));
    }
  }

  /** Graceful termination: Killing events, containers stopped, pod Failed, then the final zero-grace delete. */
  private async kill(rt: PodRuntime): Promise<void> {
    const s = this.opts.timeScale;
    await new Promise((r) => setTimeout(r, 9 * s));
    let pod = this.store.get("pods", rt.ns, rt.name);
    if (!pod) return;
    const running: Array<{ name: string; init: boolean }> = [];
    for (const c of pod.status?.initContainerStatuses ?? [])
      if (c.state?.running) running.push({ name: c.name, init: true });
    for (const c of pod.status?.containerStatuses ?? [])
      if (c.state?.running) running.push({ name: c.name, init: false });
    for (const c of running) {
      recordEvent(
        this.store,
        involvedOf(pod, `spec.${c.init ? "initContainers" : "containers"}{${c.name}}`),
        {
          reason: "Killing",
          message: `Stopping container ${c.name}`,
          type: "Normal",
          component: "kubelet",
          host: pod.spec.nodeName,
        },
      );
    }
    // SIGTERM. The builder stops as recorded (Kaniko exits 2 about half a second later); the
    // receiver, PID 1 without a handler, ignores it: the grace period runs out, then SIGKILL (137).
    const graceMs =
      (pod.metadata.deletionGracePeriodSeconds ?? pod.spec.terminationGracePeriodSeconds ?? 30) *
      1000 *
      s;
    let receiverExit: number | undefined;
    const receiver = rt.receiver;
    if (receiver && running.some((c) => c.name === rt.receiverContainer)) {
      if (receiver.terminate()) receiverExit = await receiver.exit;
      else {
        let timer: NodeJS.Timeout | undefined;
        receiverExit = await Promise.race([
          receiver.exit,
          new Promise<number>((resolve) => {
            timer = setTimeout(() => {
              receiver.kill();
              void receiver.exit.then(resolve);
            }, graceMs);
          }),
        ]);
        clearTimeout(timer);
      }
    } else {
      receiver?.kill();
    }
    const builderStops = Math.min(500 * s, graceMs);
    if (receiverExit === undefined) await new Promise((r) => setTimeout(r, builderStops));
    const exitOnTerm = (init: boolean, name: string) => {
      if (name === rt.receiverContainer && receiverExit !== undefined) return receiverExit;
      if (builderStops < 500 * s) return 137;
      return init ? 143 : 2;
    };
    if (running.length) {
      this.store.mutate("pods", rt.ns, rt.name, (p) => {
        const now = nowIso();
        const stopIt = (cs: any, init: boolean) => {
          if (!cs.state?.running) return;
          cs.state = {
            terminated: {
              exitCode: exitOnTerm(init, cs.name),
              reason: exitOnTerm(init, cs.name) === 0 ? "Completed" : "Error",
              startedAt: cs.state.running.startedAt,
              finishedAt: now,
              containerID: cs.containerID,
            },
          };
          cs.ready = false;
          if (!init) cs.started = false;
        };
        for (const c of p.status.initContainerStatuses ?? []) stopIt(c, true);
        for (const c of p.status.containerStatuses ?? []) stopIt(c, false);
        p.status.phase = "Failed";
        for (const c of p.status.conditions ?? []) {
          if (c.type === "Ready" || c.type === "ContainersReady") {
            if (c.status === "True") c.lastTransitionTime = now;
            c.status = "False";
            c.reason = "PodFailed";
            delete c.message;
          }
        }
      });
    }
    for (const l of rt.logs.values()) l.end();
    await new Promise((r) => setTimeout(r, 4 * s));
    pod = this.store.get("pods", rt.ns, rt.name);
    if (!pod) return;
    // The kubelet's final delete (grace 0); finalizers may still hold the object.
    this.store.mutate("pods", rt.ns, rt.name, (p) => {
      p.metadata.deletionTimestamp = nowIso();
      p.metadata.deletionGracePeriodSeconds = 0;
    });
  }
}
