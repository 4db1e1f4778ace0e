import type { FastifyInstance } from 'fastify';
import type { JarvisContext } from '../../context.js';

export function metricsRoute(app: FastifyInstance, ctx: JarvisContext): void {
  app.get('/metrics', async (_request, reply) => {
    const body = await ctx.metrics.registry.metrics();
    return reply.type(ctx.metrics.registry.contentType).send(body);
  });
}
