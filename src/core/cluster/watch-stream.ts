/**
 * One Kubernetes watch kept open for as long as it is needed: resumed from the last
 * resourceVersion when the stream ends (server timeout, client-node's 30 s inactivity abort,
 * a dropped connection), re-listed on 410 Gone, backed off on 429/5xx. Stops on 401/403.
 */
import { Watch, type KubeConfig } from "@kubernetes/client-node";
import { sleep } from "./api-errors.js";

export type WatchEventType = "ADDED" | "MODIFIED" | "DELETED";

export interface KubeObject {
  metadata?: { name?: string; resourceVersion?: string; uid?: string };
}

export interface WatchStreamOptions<T extends KubeObject> {
  kubeConfig: KubeConfig;
  /** API path of the collection, e.g. /api/v1/namespaces/ns/pods */
  path: string;
  query: { labelSelector?: string; fieldSelector?: string };
  onEvent(type: WatchEventType, object: T): void;
  /** Lists the collection after a 410: returns the objects and the list's resourceVersion. */
  relist(): Promise<{ items: T[]; resourceVersion?: string }>;
  /** A failure the watch cannot get past (403, 401, repeated errors). */
  onFatal(error: Error & { statusCode?: number }): void;
  onRetry?(message: string): void;
  /** Backoff base after a failed watch (default 250 ms, doubled each time, capped at 8 s). */
  backoffBaseMs?: number;
}

interface WatchStatusObject {
  code?: number;
  message?: string;
}

/** Failed watch requests in a row (nothing received) after which the watch gives up. */
export const MAX_CONSECUTIVE_FAILURES = 8;

export class WatchStream<T extends KubeObject> {
  private resourceVersion: string | undefined;
  private stopped = false;
  private current: AbortController | undefined;
  private readonly watch: Watch;
  private consecutiveFailures = 0;
  /** Number of watch requests made (for the request accounting in tests and benchmarks). */
  opened = 0;

  constructor(private readonly options: WatchStreamOptions<T>) {
    this.watch = new Watch(options.kubeConfig);
  }

  start(): void {
    void this.loop();
  }

  stop(): void {
    this.stopped = true;
    this.current?.abort();
  }

  private async loop(): Promise<void> {
    let relist = false;
    while (!this.stopped) {
      if (relist) {
        relist = false;
        try {
          const list = await this.options.relist();
          this.resourceVersion = list.resourceVersion;
          for (const item of list.items) this.options.onEvent("MODIFIED", item);
        } catch (error) {
          if (this.fatal(error)) return;
          relist = true;
          await this.backoff(error);
          continue;
        }
      }
      const outcome = await this.once();
      if (this.stopped) return;
      if (outcome.gone) {
        relist = true;
        this.consecutiveFailures = 0;
        continue;
      }
      if (outcome.error) {
        if (this.fatal(outcome.error)) return;
        const status = (outcome.error as { statusCode?: number }).statusCode;
        if (status === 410) {
          relist = true;
          continue;
        }
        // An inactivity timeout or a stream the server ended is normal: resume at once.
        if (outcome.receivedAny || isTimeout(outcome.error)) {
          this.consecutiveFailures = 0;
          continue;
        }
        await this.backoff(outcome.error);
      } else {
        this.consecutiveFailures = 0;
        // A server that closes an idle watch at once must not make this loop spin.
        if (!outcome.receivedAny) await sleep(100);
      }
    }
  }

  private fatal(error: unknown): boolean {
    const status =
      (error as { statusCode?: number; code?: number }).statusCode ??
      (error as { code?: number }).code;
    if (status === 401 || status === 403 || status === 404) {
      this.stopped = true;
      this.options.onFatal(error as Error & { statusCode?: number });
      return true;
    }
    return false;
  }

  private async backoff(error: unknown): Promise<void> {
    this.consecutiveFailures++;
    if (this.consecutiveFailures > MAX_CONSECUTIVE_FAILURES) {
      this.stopped = true;
      const cause = error instanceof Error ? error : new Error(String(error));
      this.options.onFatal(
        Object.assign(
          new Error(`${cause.message} (${this.consecutiveFailures - 1} attempts in a row)`),
          { statusCode: (cause as { statusCode?: number }).statusCode },
        ),
      );
      return;
    }
    const base = this.options.backoffBaseMs ?? 250;
    const delay = Math.min(base * 2 ** (this.consecutiveFailures - 1), 8000);
    const message = error instanceof Error ? error.message : String(error);
    this.options.onRetry?.(
      `watch of ${this.options.path} failed (${message}); retrying in ${delay} ms`,
    );
    await sleep(delay);
  }

  private once(): Promise<{ error?: unknown; gone?: boolean; receivedAny: boolean }> {
    return new Promise((resolve) => {
      let receivedAny = false;
      let gone = false;
      this.opened++;
      const query: Record<string, string | boolean | undefined> = {
        ...this.options.query,
        allowWatchBookmarks: true,
        resourceVersion: this.resourceVersion,
      };
      this.watch
        .watch(
          this.options.path,
          query,
          (type: string, object: unknown) => {
            receivedAny = true;
            if (type === "ERROR") {
              const status = object as WatchStatusObject;
              if (status.code === 410) {
                gone = true;
                this.current?.abort();
              }
              return;
            }
            const item = object as T;
            const version = item.metadata?.resourceVersion;
            if (version) this.resourceVersion = version;
            if (type === "ADDED" || type === "MODIFIED" || type === "DELETED")
              this.options.onEvent(type, item);
          },
          (error: unknown) =>
            resolve({ error: gone ? undefined : (error ?? undefined), gone, receivedAny }),
        )
        .then((controller) => {
          this.current = controller;
          if (this.stopped) controller.abort();
        })
        .catch((error: unknown) => resolve({ error, receivedAny }));
    });
  }
}

function isTimeout(error: unknown): boolean {
  return error instanceof Error && (error.name === "TimeoutError" || error.name === "AbortError");
}
