/**
 * One build's shared state, handed from phase to phase: the spec and options it runs with, the
 * cluster it talks to, what it created there, and the watches and tracker that drive it.
 */
import type { V1Job } from "@kubernetes/client-node";
import type { Builder } from "../builders/types.js";
import type { ClusterClients, ClusterConnection } from "../cluster/connection.js";
import type { RetryOptions } from "../cluster/api-errors.js";
import { PodTracker } from "../cluster/pod-tracker.js";
import type { WatchStream } from "../cluster/watch-stream.js";
import type { ContextPlan } from "../context/index.js";
import type { CreatedObjects } from "../job/cleanup.js";
import type { Reporter } from "../reporter.js";
import type { BuildIdentity, BuildSpec } from "../types.js";
import type { LsRemote } from "../context/build-key.js";
import type { ReuseState } from "./reuse.js";

export interface BuildOptions {
  reporter: Reporter;
  /** Identifies the CI run in labels ("local" when none). */
  runId: string;
  /** Aborting cancels the build; what was created is deleted before build() rejects. */
  signal?: AbortSignal;
  /**
   * Called once, just before the first object is created: from here on a killed process may leave
   * objects behind for a later cleanup (found by the run id label).
   */
  onSubmitting?(): void;
  /** Called once the objects exist, so an adapter can save them for a later cleanup step. */
  onSubmitted?(objects: CreatedObjects): void;
  /** Called after the build's own cleanup ran (the saved state can be dropped). */
  onCleanedUp?(objects: CreatedObjects): void;
  /** How long a Pending problem (unschedulable, image pull, mount) may last; default 30 s. */
  pendingGraceMs?: number;
  /** For tests: a fixed identity instead of a random one. */
  identity?: BuildIdentity;
  /** Time allowed for cleanup (the runner's cancellation grace is 7.5 s). */
  cleanupTimeoutMs?: number;
  /**
   * How long past the Job's deadline to wait before asking the Job itself (default 15 s): the pod
   * watch normally reports the end, but a Job whose pod was never created has none to report.
   */
  deadlineSlackMs?: number;
  /**
   * How long a log stream may stay silent before the HTTP client ends it (the follower then
   * resumes it). Default: undici's own body timeout, 300 s. Tests scale it down.
   */
  logStreamTimeoutMs?: number;
  /** First pause before a failed log read is retried (default 200 ms; tests scale it down). */
  logRetryDelayMs?: number;
  /** Backoff base of API retries and watch reconnections (default 250 ms, doubled each attempt). */
  retryBaseDelayMs?: number;
  /** Lists a git remote's refs, to resolve a git context's commit for the build key (default: git ls-remote). */
  gitLsRemote?: LsRemote;
}

/** How long each phase took, in milliseconds. */
export interface PhaseTimings {
  submitMs: number;
  scheduleMs: number;
  uploadMs: number;
  buildMs: number;
}

export const LOG_TAIL_LINES = 20;

export interface BuildRun {
  readonly spec: BuildSpec;
  readonly options: BuildOptions;
  readonly reporter: Reporter;
  readonly builder: Builder;
  readonly started: number;
  /** The local directory context, walked with .dockerignore; undefined for a git context. */
  readonly contextPlan: ContextPlan | undefined;
  readonly connection: ClusterConnection;
  readonly clients: ClusterClients;
  readonly namespace: string;
  readonly identity: BuildIdentity;
  /** Aborted by the caller's signal: cancels every request and stream of this build. */
  readonly abort: AbortController;
  /**
   * Aborted by the caller's signal or by the Job's deadline (with the deadline's failure as its
   * reason): ends the context upload and the log follow in flight, which no pod event may end
   * when their connection stalls.
   */
  readonly streams: AbortController;
  readonly retry: RetryOptions;
  readonly created: CreatedObjects;
  readonly timings: PhaseTimings;
  readonly tracker: PodTracker;
  readonly watches: WatchStream<{ metadata?: { resourceVersion?: string } }>[];
  /** The last lines of the builder's log, for failure messages. */
  readonly logTail: string[];
  /** Set by the reuse phase when this build has a key: what recording it afterwards needs. */
  reuse?: ReuseState;
  submitted?: V1Job;
  deadlineTimer?: NodeJS.Timeout;
  cleanedUp: boolean;
}
