/**
 * Creates a build's objects: the Secrets, then the Job, then makes the Job the Secrets' owner (its
 * uid exists only now), so the garbage collector removes them with the Job whatever happens next.
 */
import type { V1Job } from "@kubernetes/client-node";
import { apiFailure, withRetry, type RetryOptions } from "./api-errors.js";
import type { CreatedObjects } from "./cleanup.js";
import type { ClusterClients } from "./cluster.js";
import type { RenderedManifests } from "./manifests.js";

export interface SubmitContext {
  clients: ClusterClients;
  namespace: string;
  /** For error messages. */
  server: string;
  retry: RetryOptions;
  /** Filled in as objects are created, so cleanup knows what exists even after a failure. */
  created: CreatedObjects;
  /** Called once the Job exists. */
  onSubmitted?(objects: CreatedObjects): void;
}

export async function submitManifests(
  manifests: RenderedManifests,
  context: SubmitContext,
): Promise<V1Job> {
  const { clients, namespace, server, retry, created } = context;
  for (const secret of manifests.secrets) {
    const name = secret.metadata?.name ?? "";
    await withRetry(
      () =>
        clients.core.createNamespacedSecret({ namespace, body: secret, fieldValidation: "Strict" }),
      retry,
    ).catch((error: unknown) => {
      throw apiFailure(error, `create Secret ${name}`, server);
    });
    created.secrets.push(name);
  }
  const jobName = manifests.job.metadata?.name ?? "";
  const job = await withRetry(
    () =>
      clients.batch.createNamespacedJob({
        namespace,
        body: manifests.job,
        fieldValidation: "Strict",
      }),
    retry,
  ).catch((error: unknown) => {
    throw apiFailure(error, `create Job ${jobName}`, server);
  });
  created.job = job.metadata?.name ?? jobName;
  context.onSubmitted?.({ ...created, secrets: [...created.secrets] });
  const owner = {
    apiVersion: "batch/v1",
    kind: "Job",
    name: created.job,
    uid: job.metadata?.uid,
    blockOwnerDeletion: false,
    controller: false,
  };
  for (const name of created.secrets) {
    await withRetry(
      () =>
        clients.core.patchNamespacedSecret({
          name,
          namespace,
          body: [{ op: "add", path: "/metadata/ownerReferences", value: [owner] }],
        }),
      retry,
    ).catch((error: unknown) => {
      throw apiFailure(error, `set the owner of Secret ${name}`, server);
    });
  }
  return job;
}
