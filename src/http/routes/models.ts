import type { FastifyInstance } from 'fastify';
import type { JarvisContext } from '../../context.js';

export function modelsRoute(app: FastifyInstance, ctx: JarvisContext): void {
  app.get('/v1/models', async (request) => {
    // A key with a model allow-list sees only those models: the others do not exist, as far as it can tell.
    const allowed = request.apiKey?.models;
    return {
      object: 'list',
      data: ctx.providers
        .models()
        .filter((m) => !allowed || allowed.has(m.id))
        .map((m) => ({ id: m.id, object: 'model', created: 0, owned_by: m.owned_by, ...(m.description ? { description: m.description } : {}) })),
    };
  });
}
