/**
 * Turns what @kubernetes/client-node throws into one-line failures, and retries the calls a real
 * API server asks to retry (429 with Retry-After, 5xx, dropped connections).
 */
import { ApiException } from "@kubernetes/client-node";
import { BuildFailure } from "../errors.js";

export interface ApiStatus {
  code: number;
  reason?: string;
  message?: string;
  retryAfterSeconds?: number;
}

function parseStatusBody(body: unknown): {
  reason?: string;
  message?: string;
  retryAfterSeconds?: number;
} {
  let value: unknown = body;
  if (typeof body === "string") {
    try {
      value = JSON.parse(body);
    } catch {
      return {};
    }
  }
  if (typeof value !== "object" || value === null) return {};
  const status = value as {
    reason?: unknown;
    message?: unknown;
    details?: { retryAfterSeconds?: unknown };
  };
  return {
    reason: typeof status.reason === "string" ? status.reason : undefined,
    message: typeof status.message === "string" ? status.message : undefined,
    retryAfterSeconds:
      typeof status.details?.retryAfterSeconds === "number"
        ? status.details.retryAfterSeconds
        : undefined,
  };
}

/** The Kubernetes Status behind an API error, or undefined for errors that are not API answers. */
export function apiStatus(error: unknown): ApiStatus | undefined {
  if (!(error instanceof ApiException)) return undefined;
  const parsed = parseStatusBody(error.body);
  const header = error.headers?.["retry-after"];
  const fromHeader = header !== undefined && /^\d+$/.test(header) ? Number(header) : undefined;
  return {
    code: error.code,
    reason: parsed.reason,
    message: parsed.message,
    retryAfterSeconds: fromHeader ?? parsed.retryAfterSeconds,
  };
}

export function isNotFound(error: unknown): boolean {
  return apiStatus(error)?.code === 404;
}

/** The network-level cause of a failed request (ECONNREFUSED, a TLS error, …), if that is what it was. */
function networkCause(error: unknown): string | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current; depth++) {
    if (typeof current === "object" && current !== null) {
      const { code, message } = current as { code?: unknown; message?: unknown };
      if (typeof code === "string" && /^[A-Z_]+$/.test(code)) {
        return typeof message === "string" && message ? `${code}: ${message}` : code;
      }
      current = (current as { cause?: unknown }).cause;
    } else {
      break;
    }
  }
  return undefined;
}

/** Node's codes for a server certificate that does not verify (untrusted, self-signed, expired, wrong name). */
const TLS_CERTIFICATE_ERROR =
  /^(UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT(_LOCALLY)?|SELF_SIGNED_CERT_IN_CHAIN|DEPTH_ZERO_SELF_SIGNED_CERT|CERT_[A-Z_]+|ERR_TLS_CERT_ALTNAME_INVALID)\b/;

/** One line for a failed API call; `action` says what was being done ("create the Job"). */
export function apiFailure(error: unknown, action: string, server?: string): BuildFailure {
  if (error instanceof BuildFailure) return error;
  const status = apiStatus(error);
  if (status) {
    if (status.code === 401) {
      return new BuildFailure(
        "kubeconfig",
        `could not ${action}: the API server rejected the credentials (401 Unauthorized); check the kubeconfig's user`,
      );
    }
    if (status.code === 403) {
      return new BuildFailure(
        "forbidden",
        `could not ${action}: ${status.message ?? "403 Forbidden"} (grant the Role in deploy/rbac.yaml)`,
      );
    }
    const detail = status.message ?? status.reason ?? "no message";
    return new BuildFailure("api", `could not ${action}: ${status.code} ${detail}`);
  }
  const cause = networkCause(error);
  if (cause && TLS_CERTIFICATE_ERROR.test(cause)) {
    // Node adds advice about its own flags ("; if the root CA is installed locally, try …").
    return new BuildFailure(
      "cluster-unreachable",
      `could not ${action}: the API server${server ? ` at ${server}` : ""} presented a certificate the kubeconfig's certificate-authority-data does not trust (${cause.split("; ")[0]})`,
    );
  }
  if (cause) {
    return new BuildFailure(
      "cluster-unreachable",
      `could not ${action}: cannot reach the API server${server ? ` at ${server}` : ""} (${cause})`,
    );
  }
  const message = error instanceof Error ? error.message : String(error);
  return new BuildFailure("api", `could not ${action}: ${message.split("\n")[0]}`);
}

function retryable(error: unknown): { delayMs: number } | undefined {
  const status = apiStatus(error);
  if (status) {
    if (
      status.code === 429 ||
      status.code === 500 ||
      status.code === 502 ||
      status.code === 503 ||
      status.code === 504
    ) {
      return {
        delayMs: status.retryAfterSeconds !== undefined ? status.retryAfterSeconds * 1000 : 0,
      };
    }
    return undefined;
  }
  const cause = networkCause(error);
  if (
    cause &&
    /^(ECONNRESET|EPIPE|ETIMEDOUT|UND_ERR_SOCKET|ECONNREFUSED|UND_ERR_CONNECT_TIMEOUT)/.test(cause)
  ) {
    return { delayMs: 0 };
  }
  return undefined;
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}

export interface RetryOptions {
  attempts?: number;
  signal?: AbortSignal;
  onRetry?: (message: string) => void;
  /** Backoff base; doubled each attempt, capped at 8 s. Retry-After wins when the server gives one. */
  baseDelayMs?: number;
}

/** Runs an API call, retrying what the server says can be retried. */
export async function withRetry<T>(call: () => Promise<T>, options: RetryOptions = {}): Promise<T> {
  const attempts = options.attempts ?? 6;
  const base = options.baseDelayMs ?? 250;
  for (let attempt = 1; ; attempt++) {
    try {
      return await call();
    } catch (error) {
      const retry = retryable(error);
      if (!retry || attempt >= attempts || options.signal?.aborted) throw error;
      const delay = Math.min(retry.delayMs || base * 2 ** (attempt - 1), 30_000);
      const status = apiStatus(error);
      options.onRetry?.(
        `API server answered ${status ? status.code : (networkCause(error) ?? "an error")}; retrying in ${(delay / 1000).toFixed(1)} s (attempt ${attempt + 1} of ${attempts})`,
      );
      await sleep(delay, options.signal);
    }
  }
}
