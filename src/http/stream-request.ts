import type { FastifyReply, FastifyRequest } from 'fastify';
import type { JarvisContext } from '../context.js';
import type { StreamMeta } from '../events/types.js';
import type { CancelReason } from '../errors.js';
import type { RandomIds } from '../ids.js';
import type { ApiKeyIdentity } from './auth.js';
import { estimatedInputTokens, type ChatMessage, type ChatRequest, type Delta, type Provider, type StreamOptions } from '../providers/provider.js';
import { admit } from '../streams/admission.js';
import { ChatStream, type StreamOutcome } from '../streams/chat-stream.js';
import type { StreamSink } from '../streams/stream-sink.js';
import type { TurnTrace } from '../observability/turn-trace.js';
import { watchClientGone } from './client-gone.js';
import { upstreamHeaders, validTraceparent } from './upstream-headers.js';
import { TurnAttempts } from '../streams/turn-attempts.js';
import { lastUserText } from '../providers/provider.js';
import { excerpt } from '../observability/content-excerpt.js';
import { JarvisError } from '../errors.js';

function header(request: FastifyRequest, name: string): string | undefined {
  const v = request.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** A caller's trace id (W3C traceparent or x-trace-id) when it sends one, so logs join up across systems. */
function traceOf(request: FastifyRequest, ids: RandomIds): string {
  // The trace id is the second field of a valid traceparent (00-<trace id>-<parent id>-<flags>).
  const fromParent = validTraceparent(request)?.slice(3, 35);
  const given = fromParent ?? header(request, 'x-trace-id');
  return given && /^[\w.:-]{1,128}$/.test(given) ? given : ids.hex(6);
}

/** What a sink is made with: the answer's names, and the way to cancel its stream when the client stalls. */
export interface SinkContext {
  model: string;
  requestId: string;
  meta: StreamMeta;
  completionId: string;
  created: number;
  /** The turn's input tokens as estimated (estimatedInputTokens): what an answer says before the upstream does. */
  inputTokens: number;
  onStall: () => void;
}

/**
 * Where a turn comes from, apart from what it asks: an HTTP request, or one message on a WebSocket (its upgrade's
 * key and headers, with its own request id).
 */
export interface TurnOrigin {
  requestId: string;
  apiKey: ApiKeyIdentity | null;
  header(name: string): string | undefined;
  trace: string;
  upstreamHeaders: Record<string, string>;
}

/** An HTTP request as a turn's origin; a WebSocket's messages each name their own `requestId`. */
export function originOf(ctx: JarvisContext, request: FastifyRequest, requestId = request.id): TurnOrigin {
  const headers = upstreamHeaders(request);
  return {
    requestId,
    apiKey: request.apiKey,
    header: (name) => header(request, name),
    trace: traceOf(request, ctx.ids),
    upstreamHeaders: { ...headers, 'x-request-id': requestId },
  };
}

/** What one turn asks for, whatever its API and transport. */
export interface TurnPlan {
  /** The client API, as the ledger and traces name it: chat.completions, responses, messages, realtime. */
  api: string;
  arrivedAt: number;
  model: string | undefined;
  messages: ChatMessage[];
  body: Record<string, unknown>;
  sink: (c: SinkContext) => StreamSink;
  /** The client's request in its own wire, when it is not Chat Completions (ChatRequest.native). */
  native?: ChatRequest['native'];
  /** The client API's estimate of the input tokens (ChatRequest.inputTokens). */
  inputTokens?: number | undefined;
  /** The answer's source when it is not the provider's chat stream (a native Responses upstream). */
  upstream?: (provider: Provider, model: string, headers: Record<string, string>) => ((opts: StreamOptions) => AsyncIterable<Delta[]>) | undefined;
}

/** How a transport takes part in a turn: it cancels the stream when its client goes, and hears of dropped parameters. */
export interface TurnHooks {
  /** Starts watching for the client's end (or whatever else cancels the turn); returns what stops watching. */
  watch(cancel: (reason: CancelReason) => void): () => void;
  /** Parameters the provider dropped (x-jarvis-dropped-params), told before the answer's first chunk. */
  onDropped?(names: string[]): void;
}

/**
 * One streamed answer, whatever its API and transport: the turn admitted (streams/admission.ts), a ChatStream with
 * the API's `sink`, cancelled as the transport says (`hooks.watch`).
 */
export async function runTurn(ctx: JarvisContext, origin: TurnOrigin, p: TurnPlan, hooks: TurnHooks): Promise<StreamOutcome> {
  const trace = ctx.tracing?.startTurn({
    requestId: origin.requestId,
    api: p.api,
    operation: 'chat',
    requestModel: p.model ?? ctx.config.defaultModel,
    sessionId: origin.header('x-session-id'),
    sessionKey: `${origin.apiKey?.id ?? '-'}/${origin.header('x-session-id') ?? origin.requestId}`,
    key: origin.apiKey?.id ?? null,
    traceparent: origin.upstreamHeaders.traceparent,
    tracestate: origin.header('tracestate'),
    prompt: ctx.config.logContent ? excerpt(lastUserText(p.messages)) : undefined,
  });
  // The upstream's parent is Jarvis's span, not the caller's.
  const upstreamHeaders = trace?.traceparent ? { ...origin.upstreamHeaders, traceparent: trace.traceparent } : origin.upstreamHeaders;
  // Without a caller's trace context, the logs' trace id is the trace's: logs and spans join up.
  const traceId = !origin.upstreamHeaders.traceparent && trace?.traceparent ? trace.traceparent.slice(3, 35) : undefined;
  let admitted;
  try {
    admitted = await admit(ctx, {
      ...origin,
      ...(traceId ? { trace: traceId } : {}),
      upstreamHeaders,
      arrivedAt: p.arrivedAt,
      model: p.model,
      messages: p.messages,
      body: p.body,
      native: p.native,
      inputTokens: p.inputTokens,
    });
  } catch (err) {
    trace?.end({ outcome: 'rejected', reason: err instanceof JarvisError ? err.code : 'error', status: err instanceof JarvisError ? err.status : 500 });
    throw err;
  }
  const attempts = new TurnAttempts(trace);
  let outcome: StreamOutcome | undefined;
  try {
    const { meta, provider, model, request: chatRequest } = admitted;
    // Before the answer's headers: a sink opens its response on the first chunk, after the provider was asked.
    if (hooks.onDropped) chatRequest.onDropped = hooks.onDropped;
    // The sink is created before the stream it calls back into; `onStall` only runs once the stream exists.
    const sink = p.sink({ model, requestId: origin.requestId, meta, completionId: chatRequest.completionId, created: chatRequest.created, inputTokens: estimatedInputTokens(chatRequest), onStall: () => stream.cancel('client_backpressure') });
    const stream = new ChatStream(
      { sessions: ctx.sessions, batcher: ctx.batcher, bus: ctx.bus, live: ctx.live, log: ctx.log, observer: ctx.metrics, logContent: ctx.config.logContent },
      {
        meta,
        sessionKey: admitted.sessionKey,
        policy: admitted.policy,
        arrivedAt: p.arrivedAt,
        seq: admitted.seq,
        provider,
        request: chatRequest,
        upstream: p.upstream?.(provider, model, chatRequest.headers ?? {}),
        attempts,
      },
      sink,
    );
    const unwatch = hooks.watch((reason) => stream.cancel(reason));
    try {
      outcome = await stream.run();
      return outcome;
    } finally {
      unwatch();
    }
  } finally {
    admitted.release();
    if (outcome) account(ctx, origin, p, admitted, attempts, outcome, trace);
    else trace?.end({ outcome: 'error', reason: 'JARVIS_ERR_INTERNAL', status: 500 });
  }
}

/** A turn's end, told to the ledger (its lines) and to tracing (its span and the winner's). */
function account(ctx: JarvisContext, origin: TurnOrigin, p: TurnPlan, admitted: Awaited<ReturnType<typeof admit>>, attempts: TurnAttempts, outcome: StreamOutcome, trace: TurnTrace | undefined): void {
  const { provider, model, request } = admitted;
  const upstream = ctx.providers.describe(provider);
  ctx.ledger?.turn({
    requestId: origin.requestId,
    key: origin.apiKey?.id ?? null,
    session: origin.header('x-session-id') ?? null,
    api: p.api,
    model,
    upstream,
    outcome,
    inputEstimate: estimatedInputTokens(request),
    attempts: attempts.list,
  });
  if (!trace) return;
  const served = outcome.served;
  trace.end({
    outcome: outcome.kind,
    reason: outcome.kind === 'cancelled' ? outcome.reason : outcome.kind === 'end' ? undefined : outcome.error.code,
    status: outcome.kind === 'error' || outcome.kind === 'rejected' ? outcome.error.status : undefined,
    responseModel: served?.model ?? model,
    provider: attempts.winner?.provider ?? upstream?.provider,
    upstream: served?.upstream ?? upstream?.name,
    usage: outcome.usage,
    finishReason: outcome.kind === 'end' ? outcome.finishReason : undefined,
    ttftMs: outcome.timings.firstTokenMs,
    completion: outcome.completion,
  });
}

/** One streamed answer over HTTP: runTurn, cancelled when the client leaves. */
export function serveStream(ctx: JarvisContext, request: FastifyRequest, reply: FastifyReply, p: TurnPlan): Promise<StreamOutcome> {
  return runTurn(ctx, originOf(ctx, request), p, {
    watch: (cancel) => watchClientGone(request, reply, () => cancel('client_disconnected')),
    onDropped: (names) => reply.raw.setHeader('x-jarvis-dropped-params', names.join(',')),
  });
}
