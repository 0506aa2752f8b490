/**
 * The connection a log stream uses. @kubernetes/client-node 2.x reads logs with undici's fetch
 * through a dispatcher it builds per request (`new Agent({ connect })` in KubeConfig's
 * createDispatcher), so undici's default body timeout (300 s) ends any log that stays silent that
 * long; client-node has no option for it. The follower reconnects on that timeout, and a caller may
 * set the timeout itself (tests scale it down): undici honours a per-request `bodyTimeout` in
 * dispatch options, which an interceptor composed onto client-node's own dispatcher adds.
 */
import { KubeConfig } from "@kubernetes/client-node";

type RequestContext = Parameters<KubeConfig["applySecurityAuthentication"]>[0];

/** The same cluster, user and context, whose requests end a body silent for `bodyTimeoutMs`. */
export function withBodyTimeout(kubeConfig: KubeConfig, bodyTimeoutMs: number): KubeConfig {
  const scoped = new KubeConfig();
  scoped.loadFromOptions({
    clusters: kubeConfig.clusters,
    users: kubeConfig.users,
    contexts: kubeConfig.contexts,
    currentContext: kubeConfig.currentContext,
  });
  const authenticate = scoped.applySecurityAuthentication.bind(scoped);
  scoped.applySecurityAuthentication = async (context: RequestContext) => {
    await authenticate(context);
    const dispatcher = context.getDispatcher();
    // Without TLS options client-node leaves fetch on undici's global dispatcher: undici's default.
    if (!dispatcher) return;
    context.setDispatcher(
      dispatcher.compose(
        (dispatch) => (options, handler) =>
          dispatch({ ...options, bodyTimeout: bodyTimeoutMs }, handler),
      ),
    );
  };
  return scoped;
}

/** True for undici's "body silent for bodyTimeout" error, wherever fetch wrapped it. */
export function isBodyTimeout(error: unknown): boolean {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && typeof current === "object" && current !== null; depth++) {
    if ((current as { code?: unknown }).code === "UND_ERR_BODY_TIMEOUT") return true;
    current = (current as { cause?: unknown }).cause;
  }
  return false;
}
