/**
 * Finds and deletes build objects by their labels rather than by a saved list: what one CI job
 * created (its run id), or everything the tool created in a namespace before a given time. This is
 * the cleanup for a process that was killed before it could delete its own objects, at any point —
 * including between creating a Secret and making the Job its owner (the Secret carries the build's
 * labels from its creation).
 */
import type { V1ObjectMeta } from "@kubernetes/client-node";
import { apiFailure, isNotFound, withRetry, type RetryOptions } from "../cluster/api-errors.js";
import type { ClusterClients } from "../cluster/connection.js";
import {
  labelSafe,
  LABEL_BUILD_ID,
  LABEL_MANAGED_BY,
  LABEL_RUN_ID,
  TOOL_NAME,
} from "./manifests.js";

/** Which build objects to delete: one run's, or every build's created before a time. */
export type SweepSelection = { runId: string } | { createdBefore: Date };

export interface SweptObject {
  kind: "Job" | "Secret";
  name: string;
  /** The run-id label it carries. */
  runId: string;
  created?: Date;
}

export interface SweepOptions {
  retry?: RetryOptions;
  /** Called as each object is deleted (a line of output). */
  onDeleted?(object: SweptObject): void;
  /** Called for each object that could not be deleted (one line). */
  onWarning?(message: string): void;
}

export interface SweepResult {
  deleted: SweptObject[];
  /** Objects that matched but could not be deleted. */
  failed: number;
}

/** The label selector of build objects: the tool's own label, and the run's when one is given. */
export function sweepSelector(selection: SweepSelection): string {
  const tool = `${LABEL_MANAGED_BY}=${TOOL_NAME}`;
  if ("runId" in selection) return `${tool},${LABEL_RUN_ID}=${labelSafe(selection.runId)}`;
  return `${tool},${LABEL_BUILD_ID}`;
}

function describe(kind: SweptObject["kind"], metadata: V1ObjectMeta | undefined): SweptObject {
  const created = metadata?.creationTimestamp;
  return {
    kind,
    name: metadata?.name ?? "",
    runId: metadata?.labels?.[LABEL_RUN_ID] ?? "",
    ...(created !== undefined ? { created: new Date(created) } : {}),
  };
}

/** Every page of a list call. */
async function listAll<T extends { metadata?: V1ObjectMeta }>(
  list: (cont: string | undefined) => Promise<{ items: T[]; metadata?: { _continue?: string } }>,
  retry: RetryOptions,
): Promise<T[]> {
  const items: T[] = [];
  let cont: string | undefined;
  do {
    const page = await withRetry(() => list(cont), retry);
    items.push(...page.items);
    cont = page.metadata?._continue || undefined;
  } while (cont);
  return items;
}

/**
 * Deletes the selected Secrets, then the selected Jobs (propagationPolicy Background, so their pods
 * go too). Secrets first: each line printed is an object this call deleted, and a Secret owned by
 * a Job deleted first could vanish under it. Nothing found is not an error. Throws (one line) when
 * the objects cannot be listed; a delete that fails is a warning and counts in `failed`.
 */
export async function sweepBuildObjects(
  clients: ClusterClients,
  namespace: string,
  selection: SweepSelection,
  options: SweepOptions = {},
): Promise<SweepResult> {
  const retry = options.retry ?? {};
  const labelSelector = sweepSelector(selection);
  const selected = (created: Date | undefined): boolean =>
    "runId" in selection ||
    (created !== undefined && created.getTime() < selection.createdBefore.getTime());

  const secrets = await listAll(
    (cont) =>
      clients.core.listNamespacedSecret({ namespace, labelSelector, _continue: cont, limit: 500 }),
    retry,
  ).catch((error: unknown) => {
    throw apiFailure(error, `list the Secrets in ${namespace}`);
  });
  const jobs = await listAll(
    (cont) =>
      clients.batch.listNamespacedJob({ namespace, labelSelector, _continue: cont, limit: 500 }),
    retry,
  ).catch((error: unknown) => {
    throw apiFailure(error, `list the Jobs in ${namespace}`);
  });

  const result: SweepResult = { deleted: [], failed: 0 };
  const remove = async (object: SweptObject, call: () => Promise<unknown>): Promise<void> => {
    try {
      await withRetry(call, retry);
      result.deleted.push(object);
      options.onDeleted?.(object);
    } catch (error) {
      if (isNotFound(error)) return; // gone already (the garbage collector, another cleanup)
      result.failed++;
      options.onWarning?.(apiFailure(error, `delete ${object.kind} ${object.name}`).message);
    }
  };
  for (const secret of secrets) {
    const object = describe("Secret", secret.metadata);
    if (!selected(object.created)) continue;
    await remove(object, () =>
      clients.core.deleteNamespacedSecret({ name: object.name, namespace }),
    );
  }
  for (const job of jobs) {
    const object = describe("Job", job.metadata);
    if (!selected(object.created)) continue;
    await remove(object, () =>
      clients.batch.deleteNamespacedJob({
        name: object.name,
        namespace,
        propagationPolicy: "Background",
      }),
    );
  }
  return result;
}
