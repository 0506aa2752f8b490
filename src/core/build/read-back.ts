/** Read back: the digest from the builder's termination message, and the result a build returns. */
import type { V1ContainerStateTerminated } from "@kubernetes/client-node";
import { digestOf } from "../job/outcome.js";
import type { BuildResult } from "../types.js";
import type { BuildRun, PhaseTimings } from "./run.js";

export function readBack(run: BuildRun, terminated: V1ContainerStateTerminated): BuildResult {
  const { spec, reporter, contextPlan } = run;
  const digest = digestOf(terminated, {
    memoryLimit: spec.resources.limits.memory,
    logTail: run.logTail,
  });
  reporter.info(`Digest: ${digest}`);
  return {
    digest,
    image: `${repositoryOf(spec.tags[0])}@${digest}`,
    tags: [...spec.tags],
    builder: run.builder.name,
    namespace: run.namespace,
    job: run.created.job ?? run.identity.jobName,
    context: { files: contextPlan?.files ?? 0, bytes: contextPlan?.bytes ?? 0 },
    durations: { ...roundTimings(run.timings), totalMs: 0 },
    reused: false,
    builtAt: new Date().toISOString(),
  };
}

/** A tag as written, without its tag or digest: `registry.example/acme/web:1.0` → `registry.example/acme/web`. */
export function repositoryOf(reference: string): string {
  const withoutDigest = reference.split("@")[0];
  const lastSlash = withoutDigest.lastIndexOf("/");
  const lastColon = withoutDigest.lastIndexOf(":");
  return lastColon > lastSlash ? withoutDigest.slice(0, lastColon) : withoutDigest;
}

function roundTimings(timings: PhaseTimings): PhaseTimings {
  return {
    submitMs: Math.round(timings.submitMs),
    scheduleMs: Math.round(timings.scheduleMs),
    uploadMs: Math.round(timings.uploadMs),
    buildMs: Math.round(timings.buildMs),
  };
}
