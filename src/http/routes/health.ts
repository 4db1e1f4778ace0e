import type { FastifyInstance } from 'fastify';
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

export function healthRoutes(app: FastifyInstance, ctx: JarvisContext): void {
  const startedAt = Date.now();
  app.get('/healthz', async () => ({
    status: 'ok',
    uptime_s: Math.round((Date.now() - startedAt) / 1000),
    ...liveCounts(ctx),
    redis: ctx.cluster ? { state: ctx.cluster.link.state, instance: ctx.cluster.instanceId } : { state: 'disabled' },
  }));

  app.get('/readyz', async (request, reply) => {
    const providers = await ctx.providers.readiness(AbortSignal.timeout(3000));
    const ready = providers.every((p) => p.ready);
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not_ready', providers });
  });
}
