import type { FastifyInstance } from 'fastify';
import { estimateInputTokens, messagesToChat } from '../../apis/anthropic-messages/to-chat.js';
import type { JarvisContext } from '../../context.js';
import { StreamCancelled } from '../../errors.js';
import { isObject, type Obj } from '../../json.js';
import type { ChatMessage, ChatRequest } from '../../providers/provider.js';
import { checkModelAllowed } from '../auth.js';
import { watchClientGone } from '../client-gone.js';
import { rejectEmptyBody } from '../errors.js';
import { messageIdOf } from '../../apis/anthropic-messages/encoder.js';
import { MessagesJsonSink, MessagesSseSink } from '../messages-sinks.js';
import { serveStream } from '../stream-request.js';

/** What Jarvis checks itself; the rest is the translation's (to-chat.ts) or an Anthropic upstream's to judge. */
const MessagesRequest = {
  type: 'object',
  required: ['messages', 'max_tokens'],
  properties: {
    model: { type: 'string', minLength: 1, maxLength: 256 },
    messages: { type: 'array', minItems: 1, items: { type: 'object', required: ['role'], properties: { role: { type: 'string' } } } },
    max_tokens: { type: 'integer', minimum: 1 },
    stream: { type: ['boolean', 'null'] },
    system: { anyOf: [{ type: 'string' }, { type: 'array' }] },
  },
} as const;

const CountTokensRequest = { ...MessagesRequest, required: ['messages'] } as const;

/** Headers of a Messages client that reach an Anthropic upstream. */
function anthropicHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of ['anthropic-version', 'anthropic-beta']) {
    const v = headers[name];
    if (typeof v === 'string') out[name] = v;
    else if (Array.isArray(v)) out[name] = v.join(',');
  }
  return out;
}

/**
 * The conversation's text, role by role: what limits, logs and the simulator read when a request goes to an
 * Anthropic upstream as it came and its translation for other upstreams does not apply.
 */
function plainMessages(body: Obj): ChatMessage[] {
  const out: ChatMessage[] = [];
  const text = (content: unknown): string =>
    typeof content === 'string' ? content : Array.isArray(content) ? content.map((b) => (isObject(b) && typeof b.text === 'string' ? b.text : '')).join('\n') : '';
  if (body.system !== undefined) out.push({ role: 'system', content: text(body.system) });
  for (const m of body.messages as Obj[]) out.push({ role: m.role === 'assistant' ? 'assistant' : 'user', content: text(m.content) });
  return out;
}

/**
 * POST /v1/messages and /v1/messages/count_tokens: Anthropic's Messages API for clients (the Anthropic SDK,
 * Claude Code), over every upstream. To an Anthropic upstream the request goes as it came; to any other it is
 * translated into a Chat Completions turn, and the answer back into Anthropic's events. Errors are Anthropic's
 * (the route's `api` config: http/errors.ts).
 */
export function messagesRoutes(app: FastifyInstance, ctx: JarvisContext): void {
  const config = { api: 'anthropic.messages' };
  app.post<{ Body: Obj }>('/v1/messages', { config, schema: { body: MessagesRequest }, preValidation: rejectEmptyBody }, async (request, reply) => {
    const arrivedAt = performance.timeOrigin + performance.now();
    // Anthropic's own request id header, which the Anthropic SDK reads (message._request_id): Jarvis's id.
    reply.raw.setHeader('request-id', request.id);
    const body = request.body;
    const model = typeof body.model === 'string' ? body.model : undefined;
    const native = ctx.providers.resolve(model).provider.wires.includes('anthropic.messages');
    let chat: Obj;
    try {
      chat = messagesToChat(body);
    } catch (err) {
      // What only an Anthropic upstream takes (top_k, server tools...) is for it to judge when it gets the request as it came.
      if (!native) throw err;
      chat = { messages: plainMessages(body) };
    }
    await serveStream(ctx, request, reply, {
      api: 'messages',
      arrivedAt,
      model,
      messages: chat.messages as ChatRequest['messages'],
      body: chat,
      native: { wire: 'anthropic.messages', body, headers: anthropicHeaders(request.headers) },
      // Counted as count_tokens counts it (tools and tool calls too), so message_start and count_tokens agree.
      inputTokens: estimateInputTokens(body),
      sink: ({ model: name, requestId, completionId, inputTokens, onStall }) => {
        const opts = { id: messageIdOf(completionId), model: name, requestId, inputTokens };
        return body.stream === true
          ? new MessagesSseSink(reply, { ...opts, heartbeat: ctx.heartbeat, maxBufferedBytes: ctx.config.maxClientBufferBytes, stallMs: ctx.config.clientStallMs, onStall })
          : new MessagesJsonSink(reply, { ...opts, maxBytes: ctx.config.maxAnswerBytes });
      },
    });
    return reply;
  });

  app.post<{ Body: Obj }>('/v1/messages/count_tokens', { config, schema: { body: CountTokensRequest }, preValidation: rejectEmptyBody }, async (request, reply) => {
    const body = request.body;
    const { provider, model } = ctx.providers.resolve(typeof body.model === 'string' ? body.model : undefined);
    checkModelAllowed(request.apiKey, model);
    if (provider.countTokens && provider.wires.includes('anthropic.messages')) {
      const chatRequest: ChatRequest = {
        model,
        messages: plainMessages(body),
        body: {},
        completionId: '',
        created: 0,
        native: { wire: 'anthropic.messages', body, headers: anthropicHeaders(request.headers) },
      };
      // A client that leaves closes the upstream request, as for every other call.
      const controller = new AbortController();
      const unwatch = watchClientGone(request, reply, () => controller.abort(new StreamCancelled('client_disconnected')));
      try {
        return { input_tokens: await provider.countTokens(chatRequest, { signal: controller.signal }) };
      } finally {
        unwatch();
      }
    }
    // Validated as /v1/messages would be, so a request that could not be sent is not counted either.
    messagesToChat({ ...body, max_tokens: 1 });
    void reply.header('x-jarvis-token-count', 'estimated');
    return { input_tokens: estimateInputTokens(body), estimated: true };
  });
}
