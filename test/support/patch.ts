/** JSON patch (RFC 6902), JSON merge patch (RFC 7386) and strategic merge patch for the fields this server stores. */
import { badRequest, ApiError } from "./status.js";
import { clone } from "./store.js";

function unescape(s: string): string {
  return s.replace(/~1/g, "/").replace(/~0/g, "~");
}

function pointer(path: string): string[] {
  if (path === "") return [];
  if (!path.startsWith("/"))
    throw badRequest(`the server rejected our request due to an error in our request`);
  return path.slice(1).split("/").map(unescape);
}

function parentOf(
  doc: any,
  parts: string[],
  op: string,
  path: string,
): { parent: any; key: string } {
  let cur = doc;
  for (const p of parts.slice(0, -1)) {
    cur = Array.isArray(cur) ? cur[Number(p)] : cur?.[p];
    if (cur === undefined || cur === null)
      throw invalidPatch(
        `${op} operation does not apply: doc is missing path: "${path}": missing value`,
      );
  }
  return { parent: cur, key: parts[parts.length - 1]! };
}

function invalidPatch(msg: string): ApiError {
  // The apiserver reports JSON patch application failures as 422 Invalid-less internal errors with this text.
  const e = badRequest(msg);
  e.body.code = 422;
  e.body.reason = "Invalid";
  return e;
}

function get(doc: any, parts: string[]): any {
  let cur = doc;
  for (const p of parts)
    cur = Array.isArray(cur) ? cur[p === "-" ? cur.length - 1 : Number(p)] : cur?.[p];
  return cur;
}

export function applyJsonPatch(target: any, ops: any): any {
  if (!Array.isArray(ops))
    throw badRequest("json: cannot unmarshal object into Go value of type jsonpatch.Patch");
  let doc = clone(target);
  for (const op of ops) {
    const parts = pointer(op.path ?? "");
    switch (op.op) {
      case "add":
      case "replace": {
        if (parts.length === 0) {
          doc = clone(op.value);
          break;
        }
        const { parent, key } = parentOf(doc, parts, op.op, op.path);
        if (Array.isArray(parent)) {
          const i = key === "-" ? parent.length : Number(key);
          if (op.op === "add") parent.splice(i, 0, clone(op.value));
          else {
            if (i >= parent.length)
              throw invalidPatch(
                `replace operation does not apply: doc is missing key: ${op.path}: missing value`,
              );
            parent[i] = clone(op.value);
          }
        } else {
          if (op.op === "replace" && !(key in parent))
            throw invalidPatch(
              `replace operation does not apply: doc is missing key: ${op.path}: missing value`,
            );
          parent[key] = clone(op.value);
        }
        break;
      }
      case "remove": {
        const { parent, key } = parentOf(doc, parts, op.op, op.path);
        if (Array.isArray(parent)) {
          const i = Number(key);
          if (i >= parent.length)
            throw invalidPatch(
              `remove operation does not apply: doc is missing path: "${op.path}": missing value`,
            );
          parent.splice(i, 1);
        } else {
          if (!(key in parent))
            throw invalidPatch(
              `remove operation does not apply: doc is missing path: "${op.path}": missing value`,
            );
          delete parent[key];
        }
        break;
      }
      case "test":
        if (JSON.stringify(get(doc, parts)) !== JSON.stringify(op.value))
          throw invalidPatch(`testing value ${op.path} failed: test failed`);
        break;
      case "move":
      case "copy": {
        const from = pointer(op.from ?? "");
        const v = clone(get(doc, from));
        if (op.op === "move") doc = applyJsonPatch(doc, [{ op: "remove", path: op.from }]);
        doc = applyJsonPatch(doc, [{ op: "add", path: op.path, value: v }]);
        break;
      }
      default:
        throw badRequest(`Unexpected kind: ${op.op}`);
    }
  }
  return doc;
}

export function applyMergePatch(target: any, patch: any): any {
  if (patch === null || typeof patch !== "object" || Array.isArray(patch)) return clone(patch);
  const out = target && typeof target === "object" && !Array.isArray(target) ? clone(target) : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = applyMergePatch(out[k], v);
  }
  return out;
}

/** patchMergeKey of the list fields (by field name) that strategic merge patch merges instead of replacing. */
const MERGE_KEYS: Record<string, string> = {
  ownerReferences: "uid",
  containers: "name",
  initContainers: "name",
  ephemeralContainers: "name",
  volumes: "name",
  env: "name",
  ports: "containerPort",
  volumeMounts: "mountPath",
  imagePullSecrets: "name",
  conditions: "type",
  tolerations: "", // atomic
};
/** Lists of scalars merged as sets (patchStrategy merge). */
const MERGE_SETS = new Set(["finalizers"]);

export function applyStrategicMergePatch(target: any, patch: any): any {
  if (patch === null || typeof patch !== "object" || Array.isArray(patch)) return clone(patch);
  if (patch.$patch === "replace") {
    const p = clone(patch);
    delete p.$patch;
    return p;
  }
  if (patch.$patch === "delete") return undefined;
  const out = target && typeof target === "object" && !Array.isArray(target) ? clone(target) : {};
  for (const [k, v] of Object.entries<any>(patch)) {
    if (k.startsWith("$")) continue;
    if (k.startsWith("$deleteFromPrimitiveList/")) continue;
    if (v === null) {
      delete out[k];
      continue;
    }
    const mergeKey = MERGE_KEYS[k];
    if (Array.isArray(v) && mergeKey) {
      const cur: any[] = Array.isArray(out[k]) ? clone(out[k]) : [];
      for (const item of v) {
        if (item && typeof item === "object" && item.$patch === "delete") {
          const idx = cur.findIndex((c) => c?.[mergeKey] === item[mergeKey]);
          if (idx >= 0) cur.splice(idx, 1);
          continue;
        }
        const idx = cur.findIndex((c) => c?.[mergeKey] === item?.[mergeKey]);
        if (idx >= 0) cur[idx] = applyStrategicMergePatch(cur[idx], item);
        else cur.push(clone(item));
      }
      out[k] = cur;
    } else if (Array.isArray(v) && MERGE_SETS.has(k)) {
      const cur: any[] = Array.isArray(out[k]) ? [...out[k]] : [];
      for (const s of v) if (!cur.includes(s)) cur.push(s);
      const del = patch[`$deleteFromPrimitiveList/${k}`];
      out[k] = Array.isArray(del) ? cur.filter((s) => !del.includes(s)) : cur;
    } else if (typeof v === "object" && !Array.isArray(v)) {
      const r = applyStrategicMergePatch(out[k], v);
      if (r === undefined) delete out[k];
      else out[k] = r;
    } else out[k] = clone(v);
  }
  return out;
}

export function applyPatch(contentType: string, target: any, body: string): any {
  let parsed: any;
  try {
    parsed = JSON.parse(body);
  } catch (e) {
    throw badRequest(`error decoding patch: ${(e as Error).message}`);
  }
  const ct = contentType.split(";")[0]!.trim();
  switch (ct) {
    case "application/json-patch+json":
      return applyJsonPatch(target, parsed);
    case "application/merge-patch+json":
      return applyMergePatch(target, parsed);
    case "application/strategic-merge-patch+json":
      return applyStrategicMergePatch(target, parsed);
    default: {
      const e = badRequest(
        `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml`,
      );
      e.body.code = 415;
      e.body.reason = "UnsupportedMediaType";
      throw e;
    }
  }
}
