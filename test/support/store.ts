/** The "etcd + registry" of the test server: objects, resourceVersions, watch history, deletion semantics. */
import { randomUUID } from "node:crypto";

export type Resource = "jobs" | "pods" | "secrets" | "events" | "namespaces";

export interface ResourceInfo {
  group: string;
  version: string;
  kind: string;
  namespaced: boolean;
}

export const RESOURCES: Record<Resource, ResourceInfo> = {
  jobs: { group: "batch", version: "v1", kind: "Job", namespaced: true },
  pods: { group: "", version: "v1", kind: "Pod", namespaced: true },
  secrets: { group: "", version: "v1", kind: "Secret", namespaced: true },
  events: { group: "", version: "v1", kind: "Event", namespaced: true },
  namespaces: { group: "", version: "v1", kind: "Namespace", namespaced: false },
};

export function apiVersionOf(resource: Resource): string {
  const info = RESOURCES[resource];
  return info.group ? `${info.group}/${info.version}` : info.version;
}

export type EventType = "ADDED" | "MODIFIED" | "DELETED";

export interface StoreEvent {
  rv: number;
  resource: Resource;
  type: EventType;
  object: any;
  prev?: any;
}

export function clone<T>(o: T): T {
  return o === undefined ? o : (JSON.parse(JSON.stringify(o)) as T);
}

export function nowIso(ms = Date.now()): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace(".000Z", "Z");
}

const key = (ns: string | undefined, name: string) => `${ns ?? ""}/${name}`;

export interface StoreOptions {
  /**
   * Events kept per resource for watches to resume from, like the API server's watch cache (100 by
   * default there, per resource type). A watch from a resourceVersion older than what is kept gets
   * 410 Gone. Default 20: small enough that a build's pod watch meets it.
   */
  watchWindow?: number;
}

export class Store {
  private rv = 1000;
  private readonly compacted = new Map<Resource, number>();
  private readonly data = new Map<Resource, Map<string, any>>();
  private readonly histories = new Map<Resource, StoreEvent[]>();
  private readonly listeners = new Set<(e: StoreEvent) => void>();
  readonly watchWindow: number;

  constructor(options: StoreOptions = {}) {
    this.watchWindow = Math.max(1, options.watchWindow ?? 20);
    for (const r of Object.keys(RESOURCES) as Resource[]) {
      this.data.set(r, new Map());
      this.histories.set(r, []);
    }
  }

  currentRV(): number {
    return this.rv;
  }

  /** Watches and exact lists of `resource` from resourceVersions below this get 410 Gone. */
  compactedRV(resource: Resource): number {
    return this.compacted.get(resource) ?? 0;
  }

  /** The events of `resource` a watch can still resume from, oldest first. */
  history(resource: Resource): readonly StoreEvent[] {
    return this.histories.get(resource)!;
  }

  /**
   * The history of one resource is compacted now: resumes from before now get 410. An unrelated write
   * comes first (on a cluster something always writes: leases, other namespaces), so even a watcher
   * that saw the newest event of this resource is behind.
   */
  compactResource(resource: Resource): void {
    this.compacted.set(resource, ++this.rv);
    this.histories.get(resource)!.splice(0);
  }

  /** Everything before now is gone (etcd compaction): every resume gets 410. */
  compact(): void {
    for (const r of Object.keys(RESOURCES) as Resource[]) {
      this.compacted.set(r, this.rv);
      this.histories.get(r)!.splice(0);
    }
  }

  subscribe(fn: (e: StoreEvent) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private emit(e: StoreEvent): void {
    const history = this.histories.get(e.resource)!;
    history.push(e);
    while (history.length > this.watchWindow) this.compacted.set(e.resource, history.shift()!.rv);
    for (const l of [...this.listeners]) {
      try {
        l(e);
      } catch (err) {
        // A listener's bug must not break the store.
        console.error("test-server listener failed", err);
      }
    }
  }

  get(resource: Resource, ns: string | undefined, name: string): any | undefined {
    return clone(this.data.get(resource)!.get(key(ns, name)));
  }

  /** Objects in etcd key order (namespace/name). */
  list(resource: Resource, ns?: string): any[] {
    const out: any[] = [];
    for (const [k, v] of [...this.data.get(resource)!.entries()].sort(([a], [b]) =>
      a < b ? -1 : a > b ? 1 : 0,
    )) {
      if (ns === undefined || k.startsWith(`${ns}/`)) out.push(clone(v));
    }
    return out;
  }

  findByUid(uid: string): { resource: Resource; object: any } | undefined {
    for (const [resource, m] of this.data) {
      for (const o of m.values())
        if (o.metadata?.uid === uid) return { resource, object: clone(o) };
    }
    return undefined;
  }

  /** Inserts a fully defaulted object: assigns uid, creationTimestamp, resourceVersion. */
  create(resource: Resource, obj: any): any {
    const info = RESOURCES[resource];
    const o = clone(obj);
    o.kind = info.kind;
    o.apiVersion = apiVersionOf(resource);
    o.metadata.uid ??= randomUUID();
    o.metadata.creationTimestamp ??= nowIso();
    o.metadata.resourceVersion = String(++this.rv);
    this.data.get(resource)!.set(key(o.metadata.namespace, o.metadata.name), o);
    this.emit({ rv: this.rv, resource, type: "ADDED", object: clone(o) });
    return clone(o);
  }

  /**
   * Writes a changed object (MODIFIED). An object that is being deleted, has no finalizers left and a
   * zero grace period is removed instead, as the registry does on update.
   */
  update(resource: Resource, obj: any): any {
    const m = this.data.get(resource)!;
    const k = key(obj.metadata.namespace, obj.metadata.name);
    const prev = m.get(k);
    if (!prev) return undefined;
    const o = clone(obj);
    o.metadata.resourceVersion = String(++this.rv);
    if (o.metadata.finalizers && o.metadata.finalizers.length === 0) delete o.metadata.finalizers;
    m.set(k, o);
    this.emit({ rv: this.rv, resource, type: "MODIFIED", object: clone(o), prev: clone(prev) });
    if (
      o.metadata.deletionTimestamp &&
      !o.metadata.finalizers?.length &&
      (o.metadata.deletionGracePeriodSeconds ?? 0) === 0
    ) {
      return this.remove(resource, o.metadata.namespace, o.metadata.name);
    }
    return clone(o);
  }

  /** Changes an object through fn (returns undefined when it is gone). */
  mutate(
    resource: Resource,
    ns: string | undefined,
    name: string,
    fn: (o: any) => void | false,
  ): any | undefined {
    const cur = this.get(resource, ns, name);
    if (!cur) return undefined;
    const before = JSON.stringify(cur);
    if (fn(cur) === false) return cur;
    if (JSON.stringify(cur) === before) return cur;
    return this.update(resource, cur);
  }

  /** Removes the object now (DELETED, with a new resourceVersion as etcd reports it). */
  remove(resource: Resource, ns: string | undefined, name: string): any | undefined {
    const m = this.data.get(resource)!;
    const k = key(ns, name);
    const prev = m.get(k);
    if (!prev) return undefined;
    m.delete(k);
    const o = clone(prev);
    o.metadata.resourceVersion = String(++this.rv);
    this.emit({ rv: this.rv, resource, type: "DELETED", object: clone(o), prev: clone(prev) });
    return o;
  }

  /**
   * The registry's delete: pods get a grace period (0 when unscheduled or finished), finalizers keep the
   * object with a deletionTimestamp. Returns the object as the DELETE response carries it and whether it is gone.
   */
  delete(
    resource: Resource,
    ns: string | undefined,
    name: string,
    opts: { gracePeriodSeconds?: number; addFinalizer?: string } = {},
  ): { object: any; deleted: boolean } | undefined {
    const cur = this.get(resource, ns, name);
    if (!cur) return undefined;
    const md = cur.metadata;
    if (resource === "pods") {
      let grace = opts.gracePeriodSeconds ?? cur.spec?.terminationGracePeriodSeconds ?? 30;
      const phase = cur.status?.phase;
      if (!cur.spec?.nodeName || phase === "Succeeded" || phase === "Failed") grace = 0;
      if (md.deletionTimestamp && (md.deletionGracePeriodSeconds ?? 0) <= grace) {
        return { object: cur, deleted: false };
      }
      md.deletionTimestamp = nowIso(Date.now() + grace * 1000);
      md.deletionGracePeriodSeconds = grace;
      if (opts.addFinalizer && !md.finalizers?.includes(opts.addFinalizer))
        md.finalizers = [...(md.finalizers ?? []), opts.addFinalizer];
      const after = this.update(resource, cur);
      const gone = !this.get(resource, ns, name);
      return { object: after, deleted: gone };
    }
    if (opts.addFinalizer && !md.finalizers?.includes(opts.addFinalizer))
      md.finalizers = [...(md.finalizers ?? []), opts.addFinalizer];
    if (md.finalizers?.length) {
      if (!md.deletionTimestamp) {
        md.deletionTimestamp = nowIso();
        md.deletionGracePeriodSeconds = 0;
      }
      return { object: this.update(resource, cur), deleted: false };
    }
    return { object: this.remove(resource, ns, name), deleted: true };
  }
}
