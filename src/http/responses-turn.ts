import type { JarvisContext } from '../context.js';
import type { Obj } from '../json.js';
import type { ResponseBuilder } from '../responses/response-builder.js';
import { inputItems, itemsForNative, plainMessages, toChatBody, type Item } from '../responses/translate.js';
import type { StreamSink } from '../streams/stream-sink.js';
import type { NativeSinkOptions, ResponsesSinkOptions } from './responses-sinks.js';
import type { TurnPlan } from './stream-request.js';

/** What a transport answers a Responses turn with (SSE or JSON over HTTP, a WebSocket's messages). */
export interface ResponsesSinks {
  /** A response Jarvis builds from its upstream's answer, whatever that upstream's wire. */
  built(opts: ResponsesSinkOptions, onStall: () => void): StreamSink;
  /** A native Responses upstream's own events, relayed. */
  native(opts: NativeSinkOptions, onStall: () => void): StreamSink;
}

/** A response once its stream is over: it, its output as delivered, and the input it answered. */
export type TurnSettled = (response: Obj, output: Item[], input: Item[]) => void;

/**
 * One Responses turn, whatever its transport: relayed to an upstream's own /responses when the model's provider
 * speaks it, else translated to a canonical chat turn (responses/translate.ts). `history` is the conversation it
 * continues; `settled` hears of it once it is over (to remember it, store it), unless it never began.
 */
export function responsesPlan(ctx: JarvisContext, body: Obj, history: Item[], settled: TurnSettled, sinks: ResponsesSinks): Omit<TurnPlan, 'arrivedAt' | 'model'> {
  const model = typeof body.model === 'string' ? body.model : undefined;
  const { provider: serving } = ctx.providers.resolve(model);
  if (serving.wires.includes('openai.responses') && serving.streamResponses) {
    // Relayed to the upstream's own /responses, which stores nothing: Jarvis keeps the conversation, as it does
    // for translated requests, so chains, tenancy and what was heard work the same.
    const input = inputItems(body.input);
    const { previous_response_id: _, stream: __, store: ___, ...rest } = body;
    const upstreamBody = { ...rest, input: itemsForNative([...history, ...input]), store: false };
    return {
      api: 'responses',
      messages: plainMessages(body.instructions, [...history, ...input]),
      body: upstreamBody,
      upstream: (provider, name, headers) => (opts) => provider.streamResponses!({ model: name, body: upstreamBody, headers }, opts),
      sink: ({ requestId, onStall }) => sinks.native({ requestId, maxBytes: ctx.config.maxAnswerBytes, onSettled: (response, output) => settled(response, output, input) }, onStall),
    };
  }
  const { chat, messages, input } = toChatBody(body, history);
  return {
    api: 'responses',
    messages,
    body: chat,
    sink: ({ model: name, requestId, onStall }) =>
      sinks.built(
        {
          head: { id: `resp_${requestId.slice(4)}`, created_at: Math.floor(Date.now() / 1000), model: name, request: body },
          requestId,
          maxBytes: ctx.config.maxAnswerBytes,
          onSettled: (response: Obj, builder: ResponseBuilder) => {
            // A response refused before it began (a 4xx, a busy session) was never made: nothing to keep.
            if (response.status !== 'in_progress') settled(response, builder.output, input);
          },
        },
        onStall,
      ),
  };
}
