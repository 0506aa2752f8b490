/** What the builder container's end means: the digest it left, or the typed failure it was. */
import type { V1ContainerStateTerminated } from "@kubernetes/client-node";
import { BuildFailure } from "../errors.js";

const DIGEST = /^sha256:[0-9a-f]{64}$/;
/** ANSI escape sequences (CSI: colours, cursor moves), as Docker's classic builder colours stderr. */
const ANSI_ESCAPE = new RegExp(`${String.fromCharCode(0x1b)}\\[[0-?]*[ -/]*[@-~]`, "g");

/**
 * The log's last lines as text: colour codes removed, and the lines left blank by that dropped (a
 * colour reset on a line of its own is the last line of a failed classic Docker build).
 */
export function plainTail(lines: string[]): string[] {
  return lines.map((line) => line.replace(ANSI_ESCAPE, "")).filter((line) => line.trim() !== "");
}

export interface TerminationContext {
  /** The memory limit asked for, to name in an OOMKilled message. */
  memoryLimit?: string;
  /** The last lines of the build log, carried by the failure. */
  logTail: string[];
}

/** The digest from the termination message (`sha256:<64 hex>`), or a BuildFailure saying why not. */
export function digestOf(
  terminated: V1ContainerStateTerminated,
  context: TerminationContext,
): string {
  const tail = plainTail(context.logTail);
  if (terminated.exitCode !== 0) {
    if (terminated.reason === "OOMKilled") {
      const limit = context.memoryLimit ? `, limit ${context.memoryLimit}` : "";
      throw new BuildFailure(
        "oom-killed",
        `the build ran out of memory (OOMKilled${limit}); raise the memory limit in resources`,
        tail,
      );
    }
    const last = tail.length ? `: ${tail[tail.length - 1]}` : "";
    throw new BuildFailure(
      "build-failed",
      `the build failed with exit code ${terminated.exitCode}${last}`,
      tail,
    );
  }
  // Kubernetes keeps what the container wrote, trailing newline included.
  const digest = (terminated.message ?? "").trim();
  if (!DIGEST.test(digest)) {
    throw new BuildFailure(
      "digest-missing",
      `the build finished but left no digest in its termination message (got ${JSON.stringify(digest.slice(0, 80))})`,
      tail,
    );
  }
  return digest;
}
