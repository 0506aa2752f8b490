/**
 * Creates a build's objects: the Secrets, then the Job, then makes the Job the Secrets' owner (its
 * uid exists only now), so the garbage collector removes them with the Job whatever happens next.
 */
import type { V1Job } from "@kubernetes/client-node";
import { apiFailure, apiStatus, withRetry, type RetryOptions } from "../cluster/api-errors.js";
import { LABEL_BUILD_ID } from "./manifests.js";
import type { CreatedObjects } from "./cleanup.js";
import type { ClusterClients } from "../cluster/connection.js";
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

/**
 * Whether a failed create may still have been carried out: the server answered 5xx or 504 (its
 * answer lost, the work perhaps done) or the connection failed. A 4xx answer means it was refused.
 */
function mayHaveBeenCarriedOut(error: unknown): boolean {
  const status = apiStatus(error);
  return status === undefined || status.code >= 500;
}

/**
 * Creates one object, retrying what the server asks to retry. A create can succeed on the server
 * while its answer is lost (a 504, a reset): the retry then meets 409 AlreadyExists, and the object
 * is ours when it carries this build's id. When the create fails after an answer that may have been
 * lost, the object may exist: `onMayExist` tells cleanup to delete it (its name holds this build's
 * id, so no one else's object has it).
 */
async function createOnce<T extends { metadata?: { labels?: Record<string, string> } }>(
  create: () => Promise<T>,
  read: () => Promise<T>,
  buildId: string | undefined,
  retry: RetryOptions,
  onMayExist: () => void,
): Promise<T> {
  let mayExist = false;
  const attempt = () =>
    create().catch((error: unknown) => {
      if (mayHaveBeenCarriedOut(error)) mayExist = true;
      throw error;
    });
  try {
    return await withRetry(attempt, retry);
  } catch (error) {
    if (apiStatus(error)?.code !== 409 || buildId === undefined) {
      if (mayExist) onMayExist();
      throw error;
    }
    let existing: T;
    try {
      existing = await withRetry(read, retry);
    } catch (readError) {
      if (mayExist) onMayExist();
      throw readError;
    }
    if (existing.metadata?.labels?.[LABEL_BUILD_ID] === buildId) return existing;
    throw error;
  }
}

export async function submitManifests(
  manifests: RenderedManifests,
  context: SubmitContext,
): Promise<V1Job> {
  const { clients, namespace, server, retry, created } = context;
  const buildId = manifests.job.metadata?.labels?.[LABEL_BUILD_ID];
  for (const secret of manifests.secrets) {
    const name = secret.metadata?.name ?? "";
    await createOnce(
      () =>
        clients.core.createNamespacedSecret({ namespace, body: secret, fieldValidation: "Strict" }),
      () => clients.core.readNamespacedSecret({ name, namespace }),
      buildId,
      retry,
      () => {
        created.secrets.push(name);
        context.onSubmitted?.({ ...created, secrets: [...created.secrets] });
      },
    ).catch((error: unknown) => {
      throw apiFailure(error, `create Secret ${name}`, server);
    });
    created.secrets.push(name);
    // Saved at once: a step killed before the Job exists still has its Secret cleaned up.
    context.onSubmitted?.({ ...created, secrets: [...created.secrets] });
  }
  const jobName = manifests.job.metadata?.name ?? "";
  const job = await createOnce(
    () =>
      clients.batch.createNamespacedJob({
        namespace,
        body: manifests.job,
        fieldValidation: "Strict",
      }),
    () => clients.batch.readNamespacedJob({ name: jobName, namespace }),
    buildId,
    retry,
    () => {
      created.job = jobName;
      context.onSubmitted?.({ ...created, secrets: [...created.secrets] });
    },
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
