/**
 * The watches that drive a build: one on the pod (every state change reaches the tracker) and, while
 * it is Pending, one on the events that explain it. No polling.
 */
import type { CoreV1Event, V1Pod } from "@kubernetes/client-node";
import { apiFailure } from "../cluster/api-errors.js";
import { WatchStream } from "../cluster/watch-stream.js";
import { BuildFailure } from "../errors.js";
import { LABEL_BUILD_ID } from "../job/manifests.js";
import type { BuildRun } from "./run.js";

/** Starts the one watch on the build's pod, selected by the build id label. */
export function watchPod(run: BuildRun): WatchStream<V1Pod> {
  const { clients, namespace, tracker, connection, reporter } = run;
  const selector = `${LABEL_BUILD_ID}=${run.identity.buildId}`;
  const podWatch = new WatchStream<V1Pod>({
    kubeConfig: connection.kubeConfig,
    path: `/api/v1/namespaces/${namespace}/pods`,
    query: { labelSelector: selector },
    onEvent: (type, pod) => tracker.podUpdated(pod, type === "DELETED"),
    relist: async () => {
      const list = await clients.core.listNamespacedPod({ namespace, labelSelector: selector });
      if (
        tracker.pod &&
        !list.items.some((pod) => pod.metadata?.uid === tracker.pod?.metadata?.uid)
      ) {
        tracker.podUpdated(tracker.pod, true);
      }
      return { items: list.items, resourceVersion: list.metadata?.resourceVersion };
    },
    onFatal: (error) =>
      tracker.fail(apiFailure(watchError(error), "watch the build pod", connection.server)),
    onRetry: (message) => reporter.debug(message),
    backoffBaseMs: run.options.retryBaseDelayMs,
  });
  run.watches.push(podWatch);
  podWatch.start();
  return podWatch;
}

/** A watch on the events matching the field selector, fed to the tracker; events only explain, so it never fails the build. */
export function watchEvents(run: BuildRun, fieldSelector: string): WatchStream<CoreV1Event> {
  const { clients, namespace, tracker, connection, reporter } = run;
  const watch = new WatchStream<CoreV1Event>({
    kubeConfig: connection.kubeConfig,
    path: `/api/v1/namespaces/${namespace}/events`,
    query: { fieldSelector },
    onEvent: (type, event) => {
      if (type !== "DELETED") tracker.eventSeen(event);
    },
    relist: async () => {
      const list = await clients.core.listNamespacedEvent({ namespace, fieldSelector });
      return { items: list.items, resourceVersion: list.metadata?.resourceVersion };
    },
    onFatal: (error) => reporter.debug(`event watch stopped: ${error.message}`),
    onRetry: (message) => reporter.debug(message),
    backoffBaseMs: run.options.retryBaseDelayMs,
  });
  run.watches.push(watch);
  watch.start();
  return watch;
}

/** client-node's Watch reports a refused watch as an Error carrying statusCode, not an ApiException. */
function watchError(error: Error & { statusCode?: number }): unknown {
  if (error.statusCode === 403)
    return new BuildFailure(
      "forbidden",
      `watching pods is forbidden (403); grant the Role in deploy/rbac.yaml`,
    );
  if (error.statusCode === 401)
    return new BuildFailure(
      "kubeconfig",
      "the API server rejected the credentials (401 Unauthorized)",
    );
  // A watch refused with another status: client-node keeps only the status line.
  if (error.statusCode !== undefined)
    return new BuildFailure(
      "api",
      `could not watch the build pod: the API server answered ${error.statusCode} ${error.message}`,
    );
  return error;
}
