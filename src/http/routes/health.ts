import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { JarvisContext } from '../../context.js';

/** The counts an operator (and the stability tool) checks: after traffic stops, every one returns to zero. */
export function liveCounts(ctx: JarvisContext) {
  return {
    streams: ctx.live.size,
    sessions: ctx.sessions.size,
    buffers: ctx.batcher.buffers,
    timers: ctx.batcher.timers,
    subscribers: ctx.bus.subscribers,
    quota_slots: ctx.quotas.held,
  };
}

/** The probes, which answer while Jarvis drains (app.ts); every other request is refused then. */
export const PROBES: ReadonlySet<string> = new Set(['/healthz', '/readyz']);

export interface HealthOptions {
  /** This process's slot among JARVIS_WORKERS workers, named in /healthz. */
  worker?: number | undefined;
  /** Whether a shutdown is draining this process: /readyz answers 503, /healthz still 200. */
  draining: () => boolean;
}

export function healthRoutes(app: FastifyInstance, ctx: JarvisContext, opts: HealthOptions = { draining: () => false }): void {
  const startedAt = Date.now();
  app.get('/healthz', async (request) => {
    const circuits = ctx.providers.circuits();
    return {
      // Alive while draining too: an orchestrator must not kill a process that is finishing its streams.
      status: 'ok',
      draining: opts.draining(),
      ...(opts.worker !== undefined ? { worker: opts.worker } : {}),
      uptime_s: Math.round((Date.now() - startedAt) / 1000),
      ...liveCounts(ctx),
      redis: ctx.cluster ? { state: ctx.cluster.link.state, instance: ctx.cluster.instanceId } : { state: 'disabled' },
      // The usage ledger: its store, whether it takes writes (opening: not yet tried), and the lines waiting.
      ledger: ctx.ledger ? { store: ctx.ledger.store, state: ctx.ledger.state, queued: ctx.ledger.queued } : { state: 'disabled' },
      // Upstream names are for operators, as in /readyz.
      ...(circuits.length > 0 && mayReadDetails(ctx, request) ? { circuits } : {}),
    };
  });

  const readiness = new Readiness(() => ctx.providers.readiness(AbortSignal.timeout(3000)));
  app.get('/readyz', async (request, reply) => {
    if (opts.draining()) {
      // Not ready from the shutdown's first moment, whatever the upstreams say: a load balancer stops sending here.
      void reply.code(503).header('cache-control', 'no-store');
      return { status: 'not_ready', reason: 'shutting_down' };
    }
    const { providers, at } = await readiness.get();
    const ready = providers.every((p) => p.ready);
    void reply.code(ready ? 200 : 503).header('cache-control', 'no-store');
    const status = ready ? 'ready' : 'not_ready';
    // Which upstreams there are, where, and why one fails is for operators: the admin scope (or no keys at all).
    if (!mayReadDetails(ctx, request)) return { status };
    return { status, checked_at: new Date(performance.timeOrigin + at).toISOString(), providers };
  });
}

/** How long one check of the upstreams answers /readyz: however often it is asked, each upstream is asked at most once in this time. */
export const READY_CACHE_MS = 5000;

type ProviderStates = Awaited<ReturnType<JarvisContext['providers']['readiness']>>;

/** The upstreams' readiness, checked at most once per READY_CACHE_MS; callers meanwhile share one check. */
class Readiness {
  #last: { providers: ProviderStates; at: number } | undefined;
  #pending: Promise<{ providers: ProviderStates; at: number }> | undefined;

  constructor(readonly check: () => Promise<ProviderStates>) {}

  get(): Promise<{ providers: ProviderStates; at: number }> {
    if (this.#last && performance.now() - this.#last.at < READY_CACHE_MS) return Promise.resolve(this.#last);
    this.#pending ??= this.check()
      .then((providers) => (this.#last = { providers, at: performance.now() }))
      .finally(() => (this.#pending = undefined));
    return this.#pending;
  }
}

function mayReadDetails(ctx: JarvisContext, request: FastifyRequest): boolean {
  if (!ctx.keys.enabled) return true;
  try {
    return ctx.keys.authenticate(request)?.scopes.has('admin') ?? false;
  } catch {
    return false;
  }
}
