import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { JarvisContext } from '../../context.js';
import { JarvisError } from '../../errors.js';
import type { ResponseBuilder } from '../../responses/response-builder.js';
import type { ResponseStore, StoredResponse } from '../../responses/response-store.js';
import { toChatBody, type Item } from '../../responses/translate.js';
import { rejectEmptyBody } from '../errors.js';
import { ResponsesJsonSink, ResponsesSseSink } from '../responses-sinks.js';
import { serveStream } from '../stream-request.js';

type Obj = Record<string, unknown>;

const ResponsesRequest = {
  type: 'object',
  required: ['input'],
  properties: {
    model: { type: 'string', minLength: 1, maxLength: 256 },
    input: { anyOf: [{ type: 'string' }, { type: 'array' }] },
    instructions: { type: ['string', 'null'] },
    stream: { type: ['boolean', 'null'] },
    store: { type: ['boolean', 'null'] },
    previous_response_id: { type: ['string', 'null'], maxLength: 256 },
    metadata: { type: ['object', 'null'] },
    max_output_tokens: { type: ['integer', 'null'], minimum: 1 },
    temperature: { type: ['number', 'null'], minimum: 0, maximum: 2 },
    top_p: { type: ['number', 'null'], minimum: 0, maximum: 1 },
  },
} as const;

const ID = { type: 'object', properties: { id: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,128}$' } } } as const;

function notFound(id: string): JarvisError {
  return new JarvisError('JARVIS_ERR_RESPONSE_NOT_FOUND', `No response found with id '${id}'.`, { param: 'id' });
}

/** The conversation a stored response ends: its history, its input, and what it answered (as delivered). */
function conversationOf(history: Item[], input: Item[], builder: ResponseBuilder): Item[] {
  // Reasoning stays out: it is not sent back upstream, and an interrupted turn's partial reasoning was never heard.
  return [...history, ...input, ...builder.output.filter((item) => item.type !== 'reasoning' && item.status !== 'in_progress')];
}

/**
 * POST /v1/responses, GET and DELETE /v1/responses/{id}: the Responses API, served through Chat Completions
 * (responses/translate.ts), on the same stream machinery as chat: sessions and barge-in, events, logs, metrics,
 * quotas. Stored responses belong to the tenant whose key made them.
 */
export function responsesRoutes(app: FastifyInstance, ctx: JarvisContext, store: ResponseStore): void {
  app.post<{ Body: Obj }>('/v1/responses', { schema: { body: ResponsesRequest }, preValidation: rejectEmptyBody }, async (request, reply) => {
    const arrivedAt = performance.timeOrigin + performance.now();
    const owner = request.apiKey?.id ?? null;
    const body = request.body;
    let history: Item[] = [];
    if (typeof body.previous_response_id === 'string') {
      const previous = await store.get(body.previous_response_id, owner);
      if (!previous) {
        throw new JarvisError('JARVIS_ERR_PREVIOUS_RESPONSE_NOT_FOUND', `Previous response with id '${body.previous_response_id}' not found.`, { param: 'previous_response_id' });
      }
      history = previous.conversation;
    }
    const { chat, messages, input } = toChatBody(body, history);
    const releaseQuota = await ctx.quotas.admit(request.apiKey, request.id);
    try {
      await serveStream(ctx, request, reply, {
        arrivedAt,
        model: typeof body.model === 'string' ? body.model : undefined,
        messages,
        body: chat,
        sink: ({ model, requestId, onStall }) => {
          const opts = {
            head: { id: `resp_${requestId.slice(4)}`, created_at: Math.floor(Date.now() / 1000), model, request: body },
            requestId,
            maxBytes: ctx.config.maxAnswerBytes,
            onSettled: (response: Obj, builder: ResponseBuilder) => {
              // A response refused before it began (a 4xx, a busy session) was never made: nothing to store.
              if (body.store === false || response.status === 'in_progress') return;
              const stored: StoredResponse = { id: response.id as string, owner, response, conversation: conversationOf(history, input, builder) };
              store.put(stored).catch((err: unknown) => ctx.log.warn({ request_id: requestId, err }, 'response_store_failed'));
            },
          };
          return body.stream === true
            ? new ResponsesSseSink(reply, { ...opts, heartbeat: ctx.heartbeat, maxBufferedBytes: ctx.config.maxClientBufferBytes, stallMs: ctx.config.clientStallMs, onStall })
            : new ResponsesJsonSink(reply, opts);
        },
      });
      return reply;
    } finally {
      releaseQuota();
    }
  });

  const stored = async (request: FastifyRequest<{ Params: { id: string } }>) => {
    const found = await store.get(request.params.id, request.apiKey?.id ?? null);
    if (!found) throw notFound(request.params.id);
    return found;
  };
  app.get<{ Params: { id: string } }>('/v1/responses/:id', { schema: { params: ID } }, async (request) => (await stored(request)).response);
  app.delete<{ Params: { id: string } }>('/v1/responses/:id', { schema: { params: ID } }, async (request, reply: FastifyReply) => {
    const owner = request.apiKey?.id ?? null;
    if (!(await store.delete(request.params.id, owner))) throw notFound(request.params.id);
    return reply.send({ id: request.params.id, object: 'response', deleted: true });
  });
}
