/** Label and field selectors, parsed and matched like k8s.io/apimachinery/pkg/labels and /fields. */
import { badRequest } from "./status.js";

type Op = "=" | "!=" | "in" | "notin" | "exists" | "!";
interface Requirement {
  key: string;
  op: Op;
  values: string[];
}

export type Matcher = (obj: any) => boolean;

function splitTopLevel(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = "";
  for (const ch of s) {
    if (ch === "(") depth++;
    if (ch === ")") depth--;
    if (ch === "," && depth === 0) {
      out.push(cur);
      cur = "";
    } else cur += ch;
  }
  out.push(cur);
  return out.map((p) => p.trim()).filter((p) => p.length > 0);
}

function parseLabelRequirement(part: string): Requirement {
  let m = /^([^\s!=()]+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(part);
  if (m)
    return {
      key: m[1]!,
      op: m[2] as Op,
      values: m[3]!
        .split(",")
        .map((v) => v.trim())
        .filter((v) => v),
    };
  m = /^!\s*([^\s!=()]+)$/.exec(part);
  if (m) return { key: m[1]!, op: "!", values: [] };
  m = /^([^\s!=()]+)\s*(==|=|!=)\s*([^\s!=(),]*)$/.exec(part);
  if (m) return { key: m[1]!, op: m[2] === "!=" ? "!=" : "=", values: [m[3]!] };
  m = /^([^\s!=()]+)$/.exec(part);
  if (m) return { key: m[1]!, op: "exists", values: [] };
  throw badRequest(`unable to parse requirement: found '${part}', expected: identifier`);
}

function matchRequirement(r: Requirement, get: (key: string) => string | undefined): boolean {
  const v = get(r.key);
  switch (r.op) {
    case "=":
      return v !== undefined && v === r.values[0];
    case "!=":
      return v === undefined || v !== r.values[0];
    case "in":
      return v !== undefined && r.values.includes(v);
    case "notin":
      return v === undefined || !r.values.includes(v);
    case "exists":
      return v !== undefined;
    case "!":
      return v === undefined;
  }
}

export function labelSelector(sel: string | null | undefined): Matcher {
  if (!sel) return () => true;
  const reqs = splitTopLevel(sel).map(parseLabelRequirement);
  return (obj) => {
    const labels: Record<string, string> = obj?.metadata?.labels ?? {};
    return reqs.every((r) =>
      matchRequirement(r, (k) =>
        Object.prototype.hasOwnProperty.call(labels, k) ? labels[k] : undefined,
      ),
    );
  };
}

/** The field labels each resource's field selector accepts (GetAttrs / AddFieldLabelConversionFunc). */
const FIELD_LABELS: Record<string, Record<string, (o: any) => string>> = {
  pods: {
    "spec.nodeName": (o) => o.spec?.nodeName ?? "",
    "spec.restartPolicy": (o) => o.spec?.restartPolicy ?? "",
    "spec.schedulerName": (o) => o.spec?.schedulerName ?? "",
    "spec.serviceAccountName": (o) => o.spec?.serviceAccountName ?? "",
    "spec.hostNetwork": (o) => String(o.spec?.hostNetwork ?? false),
    "status.phase": (o) => o.status?.phase ?? "",
    "status.podIP": (o) => o.status?.podIP ?? "",
    "status.nominatedNodeName": (o) => o.status?.nominatedNodeName ?? "",
  },
  events: {
    "involvedObject.kind": (o) => o.involvedObject?.kind ?? "",
    "involvedObject.namespace": (o) => o.involvedObject?.namespace ?? "",
    "involvedObject.name": (o) => o.involvedObject?.name ?? "",
    "involvedObject.uid": (o) => o.involvedObject?.uid ?? "",
    "involvedObject.apiVersion": (o) => o.involvedObject?.apiVersion ?? "",
    "involvedObject.resourceVersion": (o) => o.involvedObject?.resourceVersion ?? "",
    "involvedObject.fieldPath": (o) => o.involvedObject?.fieldPath ?? "",
    reason: (o) => o.reason ?? "",
    reportingComponent: (o) => o.reportingComponent ?? "",
    source: (o) => o.source?.component ?? o.reportingComponent ?? "",
    type: (o) => o.type ?? "",
  },
  jobs: { "status.successful": (o) => String(o.status?.succeeded ?? 0) },
  secrets: { type: (o) => o.type ?? "" },
  namespaces: { "status.phase": (o) => o.status?.phase ?? "" },
};

export function fieldSelector(resource: string, sel: string | null | undefined): Matcher {
  if (!sel) return () => true;
  const known: Record<string, (o: any) => string> = {
    "metadata.name": (o) => o.metadata?.name ?? "",
    "metadata.namespace": (o) => o.metadata?.namespace ?? "",
    ...(FIELD_LABELS[resource] ?? {}),
  };
  const reqs = sel
    .split(",")
    .map((p) => p.trim())
    .filter((p) => p)
    .map((part) => {
      const m = /^([^=!]+?)\s*(==|=|!=)\s*(.*)$/.exec(part);
      if (!m) throw badRequest(`invalid selector: '${sel}'; can't understand '${part}'`);
      const key = m[1]!;
      const getter = known[key];
      if (!getter) throw badRequest(`field label not supported: ${key}`);
      return { getter, neg: m[2] === "!=", value: m[3]! };
    });
  return (obj) => reqs.every((r) => (r.getter(obj) === r.value) !== r.neg);
}
