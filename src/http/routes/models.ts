import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { JarvisContext } from '../../context.js';
import { JarvisError } from '../../errors.js';
import type { ModelInfo } from '../../providers/provider.js';

const modelObject = (m: ModelInfo) => ({ id: m.id, object: 'model', created: m.created ?? 0, owned_by: m.owned_by, ...(m.description ? { description: m.description } : {}) });

export function modelsRoute(app: FastifyInstance, ctx: JarvisContext): void {
  /** The models this caller may name: a key with a model allow-list sees only those; the others do not exist for it. */
  const visible = async (request: FastifyRequest) => {
    const allowed = request.apiKey?.models;
    return (await ctx.providers.models()).filter((m) => !allowed || allowed.has(m.id));
  };

  app.get('/v1/models', async (request) => ({ object: 'list', data: (await visible(request)).map(modelObject) }));

  // A wildcard, not `:id`: model ids such as `Qwen/Qwen2.5-7B-Instruct` hold slashes, sent as they are or encoded.
  app.get<{ Params: { '*': string } }>('/v1/models/*', async (request) => {
    const id = request.params['*'];
    const model = (await visible(request)).find((m) => m.id === id);
    if (!model) throw new JarvisError('JARVIS_ERR_MODEL_NOT_FOUND', `The model '${id}' does not exist or you do not have access to it.`, { param: 'model' });
    return modelObject(model);
  });
}
