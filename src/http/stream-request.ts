import type { FastifyReply, FastifyRequest } from 'fastify';
import { SESSION_POLICIES, type SessionPolicy } from '../config.js';
import type { JarvisContext } from '../context.js';
import { JarvisError } from '../errors.js';
import type { StreamMeta } from '../events/types.js';
import type { RandomIds } from '../ids.js';
import type { ChatMessage, ChatRequest, Delta, Provider } from '../providers/provider.js';
import { ChatStream, type StreamOutcome } from '../streams/chat-stream.js';
import type { StreamSink } from '../streams/stream-sink.js';
import { checkModelAllowed } from './auth.js';
import { SESSION_ID } from './chat-request.js';
import { watchClientGone } from './client-gone.js';
import { checkChatLimits, checkStreamCapacity } from './request-limits.js';
import { upstreamHeaders, validTraceparent } from './upstream-headers.js';

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

function sessionOf(request: FastifyRequest): string | undefined {
  const id = header(request, 'x-session-id');
  if (id === undefined) return undefined;
  if (!SESSION_ID.test(id)) {
    throw new JarvisError('JARVIS_ERR_INVALID_SESSION_ID', 'X-Session-Id must be 1-128 characters of A-Z, a-z, 0-9, ".", "_", ":" or "-".', { param: 'X-Session-Id' });
  }
  return id;
}

/** X-Session-Seq: a non-negative integer the client increases with each request of a session. */
function seqOf(request: FastifyRequest): number | undefined {
  const v = header(request, 'x-session-seq');
  if (v === undefined) return undefined;
  const n = /^\d{1,16}$/.test(v) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n)) {
    throw new JarvisError('JARVIS_ERR_INVALID_REQUEST', 'X-Session-Seq must be a non-negative integer (at most 2^53 - 1).', { param: 'X-Session-Seq' });
  }
  return n;
}

function policyOf(request: FastifyRequest, fallback: SessionPolicy): SessionPolicy {
  const p = header(request, 'x-session-policy');
  if (p === undefined) return fallback;
  if (!(SESSION_POLICIES as readonly string[]).includes(p)) {
    throw new JarvisError('JARVIS_ERR_INVALID_REQUEST', `X-Session-Policy must be one of ${SESSION_POLICIES.join(', ')}.`, { param: 'X-Session-Policy' });
  }
  return p as SessionPolicy;
}

/** What a sink is made with: the answer's names, and the way to cancel its stream when the client stalls. */
export interface SinkContext {
  model: string;
  requestId: string;
  meta: StreamMeta;
  completionId: string;
  created: number;
  onStall: () => void;
}

/**
 * One streamed answer, whatever its wire format: the checks every stream gets (load, limits, session headers,
 * the model and the key's access to it), then a ChatStream with `sink`, cancelled when its client leaves.
 */
export async function serveStream(
  ctx: JarvisContext,
  request: FastifyRequest,
  reply: FastifyReply,
  p: {
    arrivedAt: number;
    model: string | undefined;
    messages: ChatMessage[];
    body: Record<string, unknown>;
    sink: (c: SinkContext) => StreamSink;
    /** The client's request in its own wire, when it is not Chat Completions (ChatRequest.native). */
    native?: ChatRequest['native'];
    /** The answer's source when it is not the provider's chat stream (a native Responses upstream). */
    upstream?: (provider: Provider, model: string, headers: Record<string, string>) => ((signal: AbortSignal) => AsyncIterable<Delta[]>) | undefined;
  },
): Promise<StreamOutcome> {
  // The key's quotas come first: what follows runs synchronously up to stream.run(), and the stream slot taken
  // here is freed however it ends (a refusal, an error, the stream's end).
  const releaseQuota = await ctx.quotas.admit(request.apiKey, request.id);
  try {
    return await admitAndRun(ctx, request, reply, p);
  } finally {
    releaseQuota();
  }
}

/** Admission (load, limits, session headers, the model and the key's access to it), then the stream. */
async function admitAndRun(ctx: JarvisContext, request: FastifyRequest, reply: FastifyReply, p: Parameters<typeof serveStream>[3]): Promise<StreamOutcome> {
  const shedAbove = ctx.config.shedEventLoopDelayMs;
  if (shedAbove > 0 && ctx.watchdog.lastDelayMs > shedAbove) {
    throw new JarvisError('JARVIS_ERR_OVERLOADED', 'Jarvis is overloaded; retry shortly.', { headers: { 'retry-after': '1' } });
  }
  // Everything from here to stream.run() is synchronous, so the count cannot change before the stream is live.
  checkStreamCapacity(ctx.live.size, ctx.config.maxStreams);
  checkChatLimits(p.messages, ctx.config);
  const sessionId = sessionOf(request);
  const policy = policyOf(request, ctx.config.sessions.policy);
  const seq = seqOf(request);
  const { provider, model } = ctx.providers.resolve(p.model);
  checkModelAllowed(request.apiKey, model);
  const maxTokens = (p.body.max_completion_tokens ?? p.body.max_tokens ?? undefined) as number | undefined;
  const requestId = request.id;
  const completionId = `chatcmpl-${requestId.slice(4)}`;
  const created = Math.floor(Date.now() / 1000);
  const chatRequest: ChatRequest = {
    model,
    messages: p.messages,
    body: p.body,
    headers: upstreamHeaders(request),
    completionId,
    created,
    ...(maxTokens ? { maxTokens } : {}),
    ...(header(request, 'x-jarvis-hedge')?.toLowerCase() === 'off' ? { hedge: false } : {}),
    native: p.native,
    // Before the answer's headers: a sink opens its response on the first chunk, after the provider was asked.
    onDropped: (names) => reply.raw.setHeader('x-jarvis-dropped-params', names.join(',')),
  };
  const owner = request.apiKey?.id ?? null;
  const meta = { request_id: requestId, session_id: sessionId ?? requestId, trace: traceOf(request, ctx.ids), owner };
  // The sink is created before the stream it calls back into; `onStall` only runs once the stream exists.
  const sink = p.sink({ model, requestId, meta, completionId, created, onStall: () => stream.cancel('client_backpressure') });
  const stream = new ChatStream(
    { sessions: ctx.sessions, batcher: ctx.batcher, bus: ctx.bus, live: ctx.live, log: ctx.log, observer: ctx.metrics, logContent: ctx.config.logContent },
    { meta, sessionKey: `${owner ?? '-'}/${meta.session_id}`, policy, arrivedAt: p.arrivedAt, seq, provider, request: chatRequest, upstream: p.upstream?.(provider, model, chatRequest.headers ?? {}) },
    sink,
  );
  const unwatch = watchClientGone(request, reply, () => stream.cancel('client_disconnected'));
  try {
    return await stream.run();
  } finally {
    unwatch();
  }
}
