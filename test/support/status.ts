/** metav1.Status bodies shaped exactly as kube-apiserver writes them (k8s.io/apimachinery/pkg/api/errors). */

export interface StatusCause {
  reason: string;
  message: string;
  field?: string;
}

export interface StatusBody {
  kind: "Status";
  apiVersion: "v1";
  metadata: Record<string, never>;
  status: "Failure" | "Success";
  message?: string;
  reason?: string;
  details?: {
    name?: string;
    group?: string;
    kind?: string;
    uid?: string;
    causes?: StatusCause[];
    retryAfterSeconds?: number;
  };
  code?: number;
}

/** A Status error travelling through the server until it is written. */
export class ApiError extends Error {
  constructor(
    readonly body: StatusBody,
    readonly headers: Record<string, string> = {},
  ) {
    super(body.message);
  }
  get code(): number {
    return this.body.code ?? 500;
  }
}

function failure(
  code: number,
  reason: string,
  message: string,
  details?: StatusBody["details"],
): ApiError {
  const body: StatusBody = {
    kind: "Status",
    apiVersion: "v1",
    metadata: {},
    status: "Failure",
    message,
    reason,
  };
  if (details) body.details = details;
  body.code = code;
  return new ApiError(body);
}

/** A group-qualified resource as GroupResource.String() prints it: "jobs.batch", "pods". */
export function qualified(resource: string, group: string): string {
  return group ? `${resource}.${group}` : resource;
}

function details(
  name: string | undefined,
  group: string,
  kind: string,
): NonNullable<StatusBody["details"]> {
  const d: NonNullable<StatusBody["details"]> = {};
  if (name) d.name = name;
  if (group) d.group = group;
  d.kind = kind;
  return d;
}

export function notFound(resource: string, group: string, name: string): ApiError {
  return failure(
    404,
    "NotFound",
    `${qualified(resource, group)} "${name}" not found`,
    details(name, group, resource),
  );
}

export function alreadyExists(resource: string, group: string, name: string): ApiError {
  return failure(
    409,
    "AlreadyExists",
    `${qualified(resource, group)} "${name}" already exists`,
    details(name, group, resource),
  );
}

export function conflict(resource: string, group: string, name: string, err: string): ApiError {
  return failure(
    409,
    "Conflict",
    `Operation cannot be fulfilled on ${qualified(resource, group)} "${name}": ${err}`,
    details(name, group, resource),
  );
}

/** errors.NewForbidden as the RBAC authorizer's denial produces it (no reason suffix). */
export function forbidden(
  user: string,
  verb: string,
  resource: string,
  subresource: string | undefined,
  group: string,
  namespace: string | undefined,
  name: string | undefined,
): ApiError {
  const res = subresource ? `${resource}/${subresource}` : resource;
  const scope = namespace ? `in the namespace "${namespace}"` : "at the cluster scope";
  const why = `User "${user}" cannot ${verb} resource "${res}" in API group "${group}" ${scope}`;
  const q = qualified(resource, group);
  const message = name ? `${q} "${name}" is forbidden: ${why}` : `${q} is forbidden: ${why}`;
  return failure(403, "Forbidden", message, details(name, group, resource));
}

export function unauthorized(): ApiError {
  return failure(401, "Unauthorized", "Unauthorized");
}

export function badRequest(message: string): ApiError {
  return failure(400, "BadRequest", message);
}

export function methodNotSupported(resource: string, group: string, action: string): ApiError {
  return failure(
    405,
    "MethodNotAllowed",
    `${action} is not supported on resources of kind "${qualified(resource, group)}"`,
    {
      group: group || undefined,
      kind: resource,
    },
  );
}

export interface FieldError {
  type:
    | "FieldValueInvalid"
    | "FieldValueRequired"
    | "FieldValueNotSupported"
    | "FieldValueForbidden"
    | "FieldValueTooLong"
    | "FieldValueDuplicate";
  field: string;
  /** The "Invalid value: …" / "Required value" part, without the field. */
  detail: string;
}

/** errors.NewInvalid: message "<Kind>.<group> "<name>" is invalid: <errs>", causes one per field error. */
export function invalid(kind: string, group: string, name: string, errs: FieldError[]): ApiError {
  const qualifiedKind = group ? `${kind}.${group}` : kind;
  const parts = errs.map((e) => `${e.field}: ${e.detail}`);
  const agg = parts.length === 1 ? parts[0] : `[${parts.join(", ")}]`;
  const d = details(name || undefined, group, kind);
  d.causes = errs.map((e) => ({ reason: e.type, message: e.detail, field: e.field }));
  return failure(422, "Invalid", `${qualifiedKind} "${name}" is invalid: ${agg}`, d);
}

/** errors.NewResourceExpired, as the watch cache sends it for a compacted resourceVersion. */
export function expired(message: string): ApiError {
  return failure(410, "Expired", message);
}

export function tooManyRequests(retryAfterSeconds: number | undefined): ApiError {
  const e = failure(
    429,
    "TooManyRequests",
    "Too many requests, please try again later.",
    retryAfterSeconds !== undefined ? { retryAfterSeconds } : undefined,
  );
  if (retryAfterSeconds !== undefined) e.headers["Retry-After"] = String(retryAfterSeconds);
  return e;
}

export function internalError(msg: string): ApiError {
  return failure(500, "InternalError", `Internal error occurred: ${msg}`, {
    causes: [{ reason: "", message: msg }],
  });
}

export function serviceUnavailable(retryAfterSeconds: number | undefined): ApiError {
  const e = failure(
    503,
    "ServiceUnavailable",
    "the server is currently unable to handle the request",
    retryAfterSeconds !== undefined ? { retryAfterSeconds } : undefined,
  );
  if (retryAfterSeconds !== undefined) e.headers["Retry-After"] = String(retryAfterSeconds);
  return e;
}

export function success(name: string, group: string, resource: string, uid: string): StatusBody {
  const d = details(name, group, resource);
  d.uid = uid;
  return { kind: "Status", apiVersion: "v1", metadata: {}, status: "Success", details: d };
}
