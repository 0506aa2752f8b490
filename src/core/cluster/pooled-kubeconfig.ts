/**
 * A KubeConfig whose API requests share one connection pool. client-node 2.0 gives every request
 * a new undici Agent (KubeConfig.createDispatcher), so each one opens its own TCP and TLS
 * connection and the idle ones linger until the server drops them; a build's eight requests
 * were eight handshakes. Here the first Agent is kept and handed to every later request of this
 * KubeConfig (keep-alive, as client-go does). The Agent is built from the cluster and user of the
 * current context, which do not change during a build; a token refresh travels in headers.
 */
import { KubeConfig, type RequestContext } from "@kubernetes/client-node";

type Dispatcher = NonNullable<ReturnType<RequestContext["getDispatcher"]>>;

export class PooledKubeConfig extends KubeConfig {
  private pool: { context: string; dispatcher: Dispatcher } | undefined;

  override async applySecurityAuthentication(context: RequestContext): Promise<void> {
    await super.applySecurityAuthentication(context);
    const fresh = context.getDispatcher();
    if (fresh === undefined) return;
    const current = this.getCurrentContext();
    if (this.pool?.context !== current) {
      this.pool = { context: current, dispatcher: fresh };
      return;
    }
    if (fresh !== this.pool.dispatcher) {
      // Never used: nothing to wait for.
      void fresh.close().catch(() => {});
      context.setDispatcher(this.pool.dispatcher);
    }
  }
}
