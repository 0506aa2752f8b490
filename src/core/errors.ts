/**
 * Typed failures. Every message is one line a user can act on; `logTail` carries the last lines
 * of the build log where they explain the failure.
 */

const MAX_MESSAGE_LENGTH = 1000;

/**
 * Messages quote what the cluster said (admission webhooks write several lines, with blank ones
 * and indented lists): whitespace runs become one space and the length is capped, so a failure is
 * always one line.
 */
export function oneLine(text: string): string {
  const flat = text.replace(/\s+/g, " ").trim();
  return flat.length > MAX_MESSAGE_LENGTH ? `${flat.slice(0, MAX_MESSAGE_LENGTH - 1)}…` : flat;
}

/** A bad input, found before anything touches the cluster. */
export class InputError extends Error {
  constructor(
    readonly input: string,
    detail: string,
  ) {
    super(oneLine(`input "${input}": ${detail}`));
    this.name = "InputError";
  }
}

export type FailureKind =
  | "kubeconfig"
  | "cluster-unreachable"
  | "forbidden"
  | "api"
  | "pod-security"
  | "image-pull"
  | "unschedulable"
  | "schedule-timeout"
  | "pod-rejected"
  | "evicted"
  | "mount"
  | "container-config"
  | "upload-failed"
  | "oom-killed"
  | "build-failed"
  | "deadline-exceeded"
  | "digest-missing"
  | "pod-deleted"
  | "cancelled";

export class BuildFailure extends Error {
  constructor(
    readonly kind: FailureKind,
    message: string,
    readonly logTail: string[] = [],
  ) {
    super(oneLine(message));
    this.name = "BuildFailure";
  }
}

/** True for errors whose message is for the user as it is (no stack trace needed). */
export function isUserFacing(error: unknown): error is InputError | BuildFailure {
  return error instanceof InputError || error instanceof BuildFailure;
}

/** The message of anything thrown (errors from node:fs may come from another realm, so duck-typed). */
export function messageOf(error: unknown): string {
  return typeof error === "object" &&
    error !== null &&
    "message" in error &&
    typeof error.message === "string"
    ? error.message
    : String(error);
}
