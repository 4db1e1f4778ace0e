import type { FastifyInstance } from 'fastify';
import type { JarvisContext } from '../../context.js';

export function modelsRoute(app: FastifyInstance, ctx: JarvisContext): void {
  app.get('/v1/models', async () => ({
    object: 'list',
    data: ctx.providers.models().map((m) => ({ id: m.id, object: 'model', created: 0, owned_by: m.owned_by, ...(m.description ? { description: m.description } : {}) })),
  }));
}
