/** Deletes what a build created: the Job (its pods with it) and the Secrets. Every path calls it. */
import type { ClusterClients } from "../cluster/connection.js";
import { apiFailure, isNotFound, withRetry } from "../cluster/api-errors.js";

export interface CreatedObjects {
  namespace: string;
  job?: string;
  secrets: string[];
}

export interface CleanupOptions {
  /** Give up after this long (the runner's cancellation grace is 7.5 s). */
  timeoutMs?: number;
  onWarning?(message: string): void;
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T | "timeout"> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), ms);
    }),
  ]);
}

/**
 * Deletes the Job with Background propagation (the API's default for Jobs orphans the pods) and the
 * Secrets. `complete` is false when something may be left (a delete failed or timed out).
 */
export async function deleteBuildObjects(
  clients: ClusterClients,
  objects: CreatedObjects,
  options: CleanupOptions = {},
): Promise<{ deleted: string[]; complete: boolean }> {
  const deleted: string[] = [];
  let complete = true;
  const tasks: Promise<void>[] = [];
  const attempt = (what: string, call: () => Promise<unknown>) =>
    tasks.push(
      withRetry(call, { attempts: 3, baseDelayMs: 200 })
        .then(() => {
          deleted.push(what);
        })
        .catch((error: unknown) => {
          if (isNotFound(error)) return;
          complete = false;
          options.onWarning?.(`${apiFailure(error, `delete ${what}`).message}`);
        }),
    );
  if (objects.job) {
    const name = objects.job;
    attempt(`Job ${name}`, () =>
      clients.batch.deleteNamespacedJob({
        name,
        namespace: objects.namespace,
        propagationPolicy: "Background",
      }),
    );
  }
  for (const name of objects.secrets) {
    attempt(`Secret ${name}`, () =>
      clients.core.deleteNamespacedSecret({ name, namespace: objects.namespace }),
    );
  }
  const outcome = await withTimeout(Promise.all(tasks), options.timeoutMs ?? 6000);
  if (outcome === "timeout") {
    complete = false;
    options.onWarning?.(
      `cleanup did not finish in time; the Job's ttlSecondsAfterFinished and activeDeadlineSeconds bound what is left`,
    );
  }
  return { deleted, complete };
}
