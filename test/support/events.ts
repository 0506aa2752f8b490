/** core/v1 Events as the controllers' event recorder (record.EventRecorder) writes them. */
import type { Store } from "./store.js";
import { nowIso } from "./store.js";

let seq = 0;
/** Event names are "<object>.<hex of UnixNano>", unique per event. */
export function eventName(objectName: string): string {
  const nanos = BigInt(Date.now()) * 1000000n + BigInt(seq++ % 1000000);
  return `${objectName}.${nanos.toString(16)}`;
}

export interface Involved {
  kind: string;
  namespace: string;
  name: string;
  uid: string;
  apiVersion: string;
  resourceVersion: string;
  fieldPath?: string;
}

export function recordEvent(
  store: Store,
  involved: Involved,
  e: {
    reason: string;
    message: string;
    type: "Normal" | "Warning";
    component: string;
    host?: string;
  },
): any {
  const now = nowIso();
  const source: Record<string, string> = { component: e.component };
  if (e.host) source.host = e.host;
  return store.create("events", {
    metadata: { name: eventName(involved.name), namespace: involved.namespace },
    involvedObject: { ...involved },
    reason: e.reason,
    message: e.message,
    source,
    firstTimestamp: now,
    lastTimestamp: now,
    count: 1,
    type: e.type,
    eventTime: null,
    reportingComponent: "",
    reportingInstance: "",
  });
}

export function involvedOf(obj: any, fieldPath?: string): Involved {
  const i: Involved = {
    kind: obj.kind,
    namespace: obj.metadata.namespace,
    name: obj.metadata.name,
    uid: obj.metadata.uid,
    apiVersion: obj.apiVersion,
    resourceVersion: obj.metadata.resourceVersion,
  };
  if (fieldPath) i.fieldPath = fieldPath;
  return i;
}
