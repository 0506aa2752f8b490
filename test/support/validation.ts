/** Admission-time checks: decoding (unknown fields, types), schema (kubernetes-models) and the API server's rules. */
import * as k8s from "@kubernetes/client-node";
import { Job } from "kubernetes-models/batch/v1";
import { Pod, Secret } from "kubernetes-models/v1";
import { ApiError, badRequest, invalid, type FieldError } from "./status.js";
import type { Resource } from "./store.js";

const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const SUBDOMAIN_MSG =
  "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const LABEL_MSG =
  "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const LABEL_VALUE_MSG =
  "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
const CONFIG_KEY = /^[-._a-zA-Z0-9]+$/;

const ROOT_TYPE: Partial<Record<Resource, string>> = {
  jobs: "V1Job",
  pods: "V1Pod",
  secrets: "V1Secret",
  events: "CoreV1Event",
  namespaces: "V1Namespace",
};

function attributeMap(typeName: string): Map<string, string> | undefined {
  const t = (k8s as any)[typeName];
  if (!t || typeof t.getAttributeTypeMap !== "function") return undefined;
  return new Map(
    (t.getAttributeTypeMap() as Array<{ baseName: string; type: string }>).map((a) => [
      a.baseName,
      a.type,
    ]),
  );
}

/** Unknown fields, with the paths the strict decoder prints ("spec.template.spec.containers[0].foo"). */
export function unknownFields(resource: Resource, obj: any): string[] {
  const out: string[] = [];
  const walk = (value: any, type: string, path: string) => {
    if (value === null || value === undefined) return;
    let m = /^Array<(.+)>$/.exec(type);
    if (m) {
      if (Array.isArray(value)) value.forEach((v, i) => walk(v, m![1]!, `${path}[${i}]`));
      return;
    }
    m = /^\{ \[key: string\]: (.+); \}$/.exec(type);
    if (m) {
      if (typeof value === "object")
        for (const [k, v] of Object.entries(value)) walk(v, m[1]!, `${path}[${k}]`);
      return;
    }
    const attrs = attributeMap(type);
    if (!attrs || typeof value !== "object" || Array.isArray(value)) return;
    for (const [k, v] of Object.entries(value)) {
      const p = path ? `${path}.${k}` : k;
      const t = attrs.get(k);
      if (t === undefined) out.push(p);
      else walk(v, t, p);
    }
  };
  walk(obj, ROOT_TYPE[resource] ?? "", "");
  return out;
}

export function dropFields(obj: any, paths: string[]): void {
  for (const p of paths) {
    const parts = p.match(/[^.[\]]+/g) ?? [];
    let cur = obj;
    for (let i = 0; i < parts.length - 1 && cur; i++)
      cur = cur[/^\d+$/.test(parts[i]!) && Array.isArray(cur) ? Number(parts[i]) : parts[i]!];
    if (cur && typeof cur === "object") delete cur[parts[parts.length - 1]!];
  }
}

function goType(t: string): string {
  return (
    (
      {
        string: "string",
        integer: "int32",
        number: "float64",
        boolean: "bool",
        object: "map[string]interface {}",
        array: "[]interface {}",
      } as Record<string, string>
    )[t] ?? t
  );
}
function jsType(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  return typeof v === "object" ? "object" : typeof v;
}

/** Schema validation through kubernetes-models; type mismatches are decode errors (400), the rest 422. */
function schemaCheck(resource: Resource, obj: any, kind: string, group: string): FieldError[] {
  const Model =
    resource === "jobs"
      ? Job
      : resource === "pods"
        ? Pod
        : resource === "secrets"
          ? Secret
          : undefined;
  if (!Model) return [];
  const copy = JSON.parse(JSON.stringify(obj));
  delete copy.status;
  try {
    new (Model as any)(copy).validate();
    return [];
  } catch (e: any) {
    const errors: any[] = e?.errors ?? [];
    const typeErr = errors.find((x) => x.keyword === "type");
    if (typeErr) {
      const path = String(typeErr.instancePath)
        .split("/")
        .filter((s) => s)
        .filter((s) => !/^\d+$/.test(s))
        .join(".");
      const parts = path.split(".");
      let value: any = copy;
      for (const s of String(typeErr.instancePath)
        .split("/")
        .filter((x) => x))
        value = value?.[s];
      throw badRequest(
        `${kind} in version "v1" cannot be handled as a ${kind}: json: cannot unmarshal ${jsType(value) === "object" ? "object" : jsType(value)} into Go struct field ${parts.length > 1 ? parts[parts.length - 2] : kind}.${path} of type ${goType(typeErr.params?.type)}`,
      );
    }
    return errors.map((x) => {
      const field = String(x.instancePath)
        .split("/")
        .filter((s) => s)
        .map((s) => (/^\d+$/.test(s) ? `[${s}]` : `.${s}`))
        .join("")
        .replace(/^\./, "");
      if (x.keyword === "required")
        return {
          type: "FieldValueRequired",
          field: field ? `${field}.${x.params.missingProperty}` : x.params.missingProperty,
          detail: "Required value",
        } as FieldError;
      if (x.keyword === "enum")
        return {
          type: "FieldValueNotSupported",
          field,
          detail: `Unsupported value: ${JSON.stringify(lookup(copy, x.instancePath))}: supported values: ${(x.params.allowedValues as string[]).map((v) => JSON.stringify(v)).join(", ")}`,
        } as FieldError;
      if (x.keyword === "format" && x.params?.format === "byte")
        throw badRequest(
          `${kind} in version "v1" cannot be handled as a ${kind}: illegal base64 data at input byte 0`,
        );
      return {
        type: "FieldValueInvalid",
        field,
        detail: `Invalid value: ${JSON.stringify(lookup(copy, x.instancePath))}: ${x.message}`,
      } as FieldError;
    });
    void group;
  }
}

function lookup(o: any, pointer: string): any {
  for (const s of pointer.split("/").filter((x) => x)) o = o?.[s];
  return o;
}

function validateMeta(
  md: any,
  errs: FieldError[],
  nameRule: "subdomain" | "label" = "subdomain",
): void {
  const name = md?.name;
  if (!name && !md?.generateName)
    errs.push({
      type: "FieldValueRequired",
      field: "metadata.name",
      detail: "Required value: name or generateName is required",
    });
  if (name) {
    if (name.length > 253)
      errs.push({
        type: "FieldValueInvalid",
        field: "metadata.name",
        detail: `Invalid value: ${JSON.stringify(name)}: must be no more than 253 characters`,
      });
    else if (nameRule === "subdomain" && !DNS1123_SUBDOMAIN.test(name))
      errs.push({
        type: "FieldValueInvalid",
        field: "metadata.name",
        detail: `Invalid value: ${JSON.stringify(name)}: ${SUBDOMAIN_MSG}`,
      });
    else if (nameRule === "label" && (!DNS1123_LABEL.test(name) || name.length > 63))
      errs.push({
        type: "FieldValueInvalid",
        field: "metadata.name",
        detail: `Invalid value: ${JSON.stringify(name)}: ${LABEL_MSG}`,
      });
  }
  validateLabels(md?.labels, "metadata.labels", errs);
}

function validateLabels(
  labels: Record<string, string> | undefined,
  field: string,
  errs: FieldError[],
): void {
  for (const [k, v] of Object.entries(labels ?? {})) {
    const namepart = k.includes("/") ? k.slice(k.indexOf("/") + 1) : k;
    if (!/^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/.test(namepart) || namepart.length > 63)
      errs.push({
        type: "FieldValueInvalid",
        field,
        detail: `Invalid value: ${JSON.stringify(k)}: name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')`,
      });
    if (typeof v === "string" && v.length > 63)
      errs.push({
        type: "FieldValueInvalid",
        field,
        detail: `Invalid value: ${JSON.stringify(v)}: must be no more than 63 characters`,
      });
    else if (typeof v === "string" && !LABEL_VALUE.test(v))
      errs.push({
        type: "FieldValueInvalid",
        field,
        detail: `Invalid value: ${JSON.stringify(v)}: ${LABEL_VALUE_MSG}`,
      });
  }
}

function validatePodSpec(spec: any, path: string, errs: FieldError[], forJob: boolean): void {
  if (!spec) return;
  const containers: any[] = spec.containers ?? [];
  const inits: any[] = spec.initContainers ?? [];
  if (containers.length === 0)
    errs.push({
      type: "FieldValueRequired",
      field: `${path}.containers`,
      detail: "Required value",
    });
  const seen = new Set<string>();
  const volumes = new Set<string>((spec.volumes ?? []).map((v: any) => v.name));
  const check = (c: any, i: number, list: string) => {
    const f = `${path}.${list}[${i}]`;
    if (!c.name)
      errs.push({ type: "FieldValueRequired", field: `${f}.name`, detail: "Required value" });
    else if (!DNS1123_LABEL.test(c.name) || c.name.length > 63)
      errs.push({
        type: "FieldValueInvalid",
        field: `${f}.name`,
        detail: `Invalid value: ${JSON.stringify(c.name)}: ${LABEL_MSG}`,
      });
    else if (seen.has(c.name))
      errs.push({
        type: "FieldValueDuplicate",
        field: `${f}.name`,
        detail: `Duplicate value: ${JSON.stringify(c.name)}`,
      });
    if (c.name) seen.add(c.name);
    if (!c.image)
      errs.push({ type: "FieldValueRequired", field: `${f}.image`, detail: "Required value" });
    (c.volumeMounts ?? []).forEach((m: any, j: number) => {
      if (m.name && !volumes.has(m.name))
        errs.push({
          type: "FieldValueNotFound",
          field: `${f}.volumeMounts[${j}].name`,
          detail: `Not found: ${JSON.stringify(m.name)}`,
        } as any);
    });
  };
  inits.forEach((c, i) => check(c, i, "initContainers"));
  containers.forEach((c, i) => check(c, i, "containers"));
  const rp = spec.restartPolicy ?? "Always";
  if (forJob && rp !== "OnFailure" && rp !== "Never")
    errs.push({
      type: "FieldValueNotSupported",
      field: `${path}.restartPolicy`,
      detail: `Unsupported value: ${JSON.stringify(rp)}: supported values: "OnFailure", "Never"`,
    });
}

/** What a create must pass before it is stored (defaults already applied). Throws the ApiError. */
export function validateCreate(resource: Resource, obj: any, kind: string, group: string): void {
  const fieldErrs = schemaCheck(resource, obj, kind, group);
  const errs: FieldError[] = [...fieldErrs];
  const md = obj.metadata ?? {};
  validateMeta(md, errs, resource === "namespaces" ? "label" : "subdomain");
  if (resource === "jobs") {
    const spec = obj.spec ?? {};
    if (spec.backoffLimit !== undefined && spec.backoffLimit < 0)
      errs.push({
        type: "FieldValueInvalid",
        field: "spec.backoffLimit",
        detail: `Invalid value: ${spec.backoffLimit}: must be greater than or equal to 0`,
      });
    if (spec.activeDeadlineSeconds !== undefined && spec.activeDeadlineSeconds <= 0)
      errs.push({
        type: "FieldValueInvalid",
        field: "spec.activeDeadlineSeconds",
        detail: `Invalid value: ${spec.activeDeadlineSeconds}: must be greater than or equal to 0`,
      });
    if (spec.ttlSecondsAfterFinished !== undefined && spec.ttlSecondsAfterFinished < 0)
      errs.push({
        type: "FieldValueInvalid",
        field: "spec.ttlSecondsAfterFinished",
        detail: `Invalid value: ${spec.ttlSecondsAfterFinished}: must be greater than or equal to 0`,
      });
    validateLabels(spec.template?.metadata?.labels, "spec.template.labels", errs);
    validatePodSpec(spec.template?.spec, "spec.template.spec", errs, true);
  } else if (resource === "pods") {
    validatePodSpec(obj.spec, "spec", errs, false);
  } else if (resource === "secrets") {
    const data: Record<string, string> = obj.data ?? {};
    for (const k of Object.keys(data)) {
      if (!CONFIG_KEY.test(k))
        errs.push({
          type: "FieldValueInvalid",
          field: `data[${k}]`,
          detail: `Invalid value: ${JSON.stringify(k)}: a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')`,
        });
    }
    const total = Object.values(data).reduce((n, v) => n + Buffer.from(v, "base64").length, 0);
    if (total > 1024 * 1024)
      errs.push({
        type: "FieldValueTooLong",
        field: "data",
        detail: `Too long: must have at most 1048576 bytes`,
      });
    if (obj.type === "kubernetes.io/dockerconfigjson") {
      const raw = data[".dockerconfigjson"];
      if (raw === undefined)
        errs.push({
          type: "FieldValueRequired",
          field: "data[.dockerconfigjson]",
          detail: "Required value",
        });
      else {
        try {
          JSON.parse(Buffer.from(raw, "base64").toString("utf8"));
        } catch (e) {
          errs.push({
            type: "FieldValueInvalid",
            field: "data[.dockerconfigjson]",
            detail: `Invalid value: "<secret contents redacted>": ${(e as Error).message}`,
          });
        }
      }
    }
  }
  if (errs.length) throw invalid(kind, group, md.name ?? md.generateName ?? "", errs);
}

/** Base64 check of Secret data as the JSON decoder does it (400 before validation). */
export function decodeSecretData(obj: any): void {
  for (const [k, v] of Object.entries<any>(obj.data ?? {})) {
    if (typeof v !== "string") continue;
    const bad =
      /[^A-Za-z0-9+/=]/.exec(v) ??
      (v.length % 4 !== 0 ? { index: v.length - (v.length % 4) } : null);
    if (bad)
      throw badRequest(
        `Secret in version "v1" cannot be handled as a Secret: illegal base64 data at input byte ${bad.index}`,
      );
    void k;
  }
  if (obj.stringData) {
    obj.data ??= {};
    for (const [k, v] of Object.entries<any>(obj.stringData))
      obj.data[k] = Buffer.from(String(v), "utf8").toString("base64");
    delete obj.stringData;
  }
}

/** fieldValidation: Strict → 400; Warn (the default since 1.25's beta) → drop + Warning headers; Ignore → drop. */
export function applyFieldValidation(
  resource: Resource,
  obj: any,
  mode: string | null,
  kind: string,
): string[] {
  const unknown = unknownFields(resource, obj);
  if (!unknown.length) return [];
  if (mode === "Strict") {
    throw badRequest(
      `strict decoding error: ${unknown.map((u) => `unknown field "${u}"`).join(", ")}`,
    );
  }
  dropFields(obj, unknown);
  void kind;
  return mode === "Ignore" ? [] : unknown.map((u) => `unknown field "${u}"`);
}

export { ApiError };
