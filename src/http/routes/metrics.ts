import type { FastifyInstance } from 'fastify';
import type { JarvisContext } from '../../context.js';

export function metricsRoute(app: FastifyInstance, ctx: JarvisContext): void {
  app.get('/metrics', async (_request, reply) => {
    const body = await ctx.metrics.registry.metrics();
    // One worker of several answers: a scraper's next connection reaches the next one (docs/scaling.md).
    if (ctx.metrics.worker !== undefined) void reply.header('connection', 'close');
    return reply.type(ctx.metrics.registry.contentType).send(body);
  });
}
