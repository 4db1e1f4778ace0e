import type { FastifyInstance } from 'fastify';
import type { JarvisContext } from '../../context.js';
import type { ChatRequest } from '../../providers/provider.js';
import { ChatCompletionRequest, type ChatCompletionBody } from '../chat-request.js';
import { JsonChatSink, SseChatSink } from '../chat-sinks.js';
import { rejectEmptyBody } from '../errors.js';
import { serveStream } from '../stream-request.js';

export function chatCompletionsRoute(app: FastifyInstance, ctx: JarvisContext): void {
  const opts = { schema: { body: ChatCompletionRequest }, preValidation: rejectEmptyBody };
  app.post<{ Body: ChatCompletionBody }>('/v1/chat/completions', opts, async (request, reply) => {
    // Taken before anything that may wait (the quotas may ask Redis): a session keeps the order requests arrived in.
    // The wall clock to the microsecond, so two requests in one millisecond still have an order.
    const arrivedAt = performance.timeOrigin + performance.now();
    const body = request.body;
    await serveStream(ctx, request, reply, {
      api: 'chat.completions',
      arrivedAt,
      model: body.model,
      messages: body.messages as ChatRequest['messages'],
      body,
      sink: ({ model, requestId, completionId, created, onStall }) => {
        const sinkOpts = { id: completionId, model, created, requestId };
        return body.stream === true
          ? new SseChatSink(reply, {
              ...sinkOpts,
              includeUsage: body.stream_options?.include_usage === true,
              heartbeat: ctx.heartbeat,
              maxBufferedBytes: ctx.config.maxClientBufferBytes,
              stallMs: ctx.config.clientStallMs,
              onStall,
            })
          : new JsonChatSink(reply, { ...sinkOpts, maxBytes: ctx.config.maxAnswerBytes });
      },
    });
    return reply;
  });
}
