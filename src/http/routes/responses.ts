import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { JarvisContext } from '../../context.js';
import { JarvisError } from '../../errors.js';
import type { ResponseBuilder } from '../../responses/response-builder.js';
import type { ResponseStore, StoredResponse } from '../../responses/response-store.js';
import { decodeSignedThinking } from '../../responses/signed-reasoning.js';
import { inputItems, itemsForNative, plainMessages, toChatBody, type Item } from '../../responses/translate.js';
import { rejectEmptyBody } from '../errors.js';
import { ResponsesJsonSink, ResponsesNativeSink, ResponsesSseSink } from '../responses-sinks.js';
import { serveStream } from '../stream-request.js';
import { isObject, type Obj } from '../../json.js';

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

/**
 * The conversation a stored response ends: its history, its input, and what it answered, as delivered. An
 * interrupted answer's message is marked so (a chained request tells the model); its unfinished function calls,
 * which no one can answer, and reasoning (never sent back upstream) stay out.
 */
function conversationOf(history: Item[], input: Item[], response: Obj, output: Item[]): Item[] {
  const interrupted = isObject(response.incomplete_details) && response.incomplete_details.reason === 'interrupted';
  const kept: Item[] = [];
  for (const item of output) {
    // Reasoning is not sent back upstream, but for an Anthropic upstream's signed thinking, which must be.
    if (item.type === 'reasoning' && !decodeSignedThinking(item.encrypted_content)) continue;
    if (item.type === 'function_call' && item.status !== 'completed') continue;
    kept.push(item.type === 'message' && interrupted ? { ...item, interrupted: true } : item);
  }
  return [...history, ...input, ...kept];
}

/**
 * The last message item's text cut to `chars` (UTF-16 units, as delivered_chars counts; never inside a pair),
 * with `mark` added to the item that was cut.
 */
function cutMessage(items: Item[], chars: number, mark: Obj = {}): { items: Item[]; cut: boolean } {
  const at = items.findLastIndex((i) => i.type === 'message' && i.role === 'assistant');
  if (at < 0) return { items, cut: false };
  const item = items[at]!;
  const parts = Array.isArray(item.content) ? (item.content as Obj[]) : [];
  const text = parts.map((p) => (typeof p.text === 'string' ? p.text : '')).join('');
  if (chars >= text.length) return { items, cut: false };
  let end = chars;
  const code = text.charCodeAt(end - 1);
  if (end > 0 && code >= 0xd800 && code <= 0xdbff) end--;
  const heard = text.slice(0, end);
  const next = [...items];
  next[at] = { ...item, ...mark, status: 'incomplete', content: [{ ...(parts[0] ?? { type: 'output_text', annotations: [], logprobs: [] }), text: heard }] };
  return { items: next, cut: true };
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
    const keep = (response: Obj, output: Item[], input: Item[], requestId: string) => {
      if (body.store === false) return;
      const stored: StoredResponse = { id: response.id as string, owner, response, conversation: conversationOf(history, input, response, output) };
      store.put(stored).catch((err: unknown) => ctx.log.warn({ request_id: requestId, err }, 'response_store_failed'));
    };
    const sse = (onStall: () => void) => ({ heartbeat: ctx.heartbeat, maxBufferedBytes: ctx.config.maxClientBufferBytes, stallMs: ctx.config.clientStallMs, onStall });
    const model = typeof body.model === 'string' ? body.model : undefined;
    type Plan = Omit<Parameters<typeof serveStream>[3], 'arrivedAt' | 'model'>;
    let plan: Plan;
    const { provider: serving } = ctx.providers.resolve(model);
    if (serving.wires.includes('openai.responses') && serving.streamResponses) {
      // Relayed to the upstream's own /responses, which stores nothing: Jarvis keeps the conversation, as it does
      // for translated requests, so chains, tenancy and what was heard work the same.
      const input = inputItems(body.input);
      const { previous_response_id: _, stream: __, store: ___, ...rest } = body;
      const upstreamBody = { ...rest, input: itemsForNative([...history, ...input]), store: false };
      plan = {
        messages: plainMessages(body.instructions, [...history, ...input]),
        body: upstreamBody,
        upstream: (provider, name, headers) => (opts) => provider.streamResponses!({ model: name, body: upstreamBody, headers }, opts),
        sink: ({ requestId, onStall }) =>
          new ResponsesNativeSink(reply, { requestId, maxBytes: ctx.config.maxAnswerBytes, onSettled: (response, output) => keep(response, output, input, requestId) }, body.stream === true ? sse(onStall) : undefined),
      };
    } else {
      const { chat, messages, input } = toChatBody(body, history);
      plan = {
        messages,
        body: chat,
        sink: ({ model: name, requestId, onStall }) => {
          const opts = {
            head: { id: `resp_${requestId.slice(4)}`, created_at: Math.floor(Date.now() / 1000), model: name, request: body },
            requestId,
            maxBytes: ctx.config.maxAnswerBytes,
            onSettled: (response: Obj, builder: ResponseBuilder) => {
              // A response refused before it began (a 4xx, a busy session) was never made: nothing to store.
              if (response.status !== 'in_progress') keep(response, builder.output, input, requestId);
            },
          };
          return body.stream === true ? new ResponsesSseSink(reply, { ...opts, ...sse(onStall) }) : new ResponsesJsonSink(reply, opts);
        },
      };
    }
    await serveStream(ctx, request, reply, { arrivedAt, model, ...plan });
    return reply;
  });

  const stored = async (request: FastifyRequest<{ Params: { id: string } }>): Promise<StoredResponse> => {
    const found = await store.get(request.params.id, request.apiKey?.id ?? null);
    if (!found) throw notFound(request.params.id);
    return found;
  };
  // A speech client says how much of an answer was actually heard: the stored answer, and what a chained request
  // sends the model, are cut there (never lengthened; the same cut twice changes nothing).
  app.post<{ Params: { id: string }; Body: { heard_chars: number } }>(
    '/v1/responses/:id/truncate',
    { schema: { params: ID, body: { type: 'object', required: ['heard_chars'], properties: { heard_chars: { type: 'integer', minimum: 0 } } } }, preValidation: rejectEmptyBody },
    async (request) => {
      const found = await stored(request);
      const output = cutMessage(found.response.output as Item[], request.body.heard_chars);
      if (!output.cut) return found.response;
      const conversation = cutMessage(found.conversation, request.body.heard_chars, { interrupted: true });
      const response = { ...found.response, output: output.items, status: 'incomplete', incomplete_details: { reason: 'interrupted' } };
      await store.put({ ...found, response, conversation: conversation.items });
      return response;
    },
  );
  app.get<{ Params: { id: string } }>('/v1/responses/:id', { schema: { params: ID } }, async (request) => (await stored(request)).response);
  app.delete<{ Params: { id: string } }>('/v1/responses/:id', { schema: { params: ID } }, async (request, reply: FastifyReply) => {
    const owner = request.apiKey?.id ?? null;
    if (!(await store.delete(request.params.id, owner))) throw notFound(request.params.id);
    return reply.send({ id: request.params.id, object: 'response', deleted: true });
  });
}
