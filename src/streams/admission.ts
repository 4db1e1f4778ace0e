import { checkModelAllowed, type ApiKeyIdentity } from '../access/keys.js';
import { SESSION_POLICIES, type SessionPolicy } from '../config.js';
import type { JarvisContext } from '../context.js';
import { JarvisError } from '../errors.js';
import type { StreamMeta } from '../events/types.js';
import type { ChatMessage, ChatRequest, Provider } from '../providers/provider.js';
import { checkChatLimits, checkStreamCapacity } from './request-limits.js';

/** X-Session-Id's alphabet: what a session id may be, whatever the transport. */
export const SESSION_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * One turn as a client asked for it, in any API, over any transport (an HTTP request, a WebSocket message): the
 * canonical messages and Chat Completions body, the client's own request when its API is not Chat Completions,
 * and what Jarvis reads from its headers.
 */
export interface Turn {
  requestId: string;
  apiKey: ApiKeyIdentity | null;
  /** When it arrived (epoch ms, to the µs): a session keeps the order turns arrived in. */
  arrivedAt: number;
  /** A header of the request (or of the WebSocket's upgrade), as the client sent it. */
  header(name: string): string | undefined;
  trace: string;
  /** What reaches the upstream besides the body (Jarvis's request id, the caller's traceparent). */
  upstreamHeaders: Record<string, string>;
  model: string | undefined;
  messages: ChatMessage[];
  body: Record<string, unknown>;
  native?: ChatRequest['native'];
  inputTokens?: number | undefined;
}

/** A turn admitted: what its stream needs, and the quota slot to give back however it ends. */
export interface Admitted {
  meta: StreamMeta;
  sessionKey: string;
  policy: SessionPolicy;
  seq: number | undefined;
  provider: Provider;
  model: string;
  request: ChatRequest;
  release(): void;
}

/** X-Session-Id, checked: the session a turn (or a WebSocket's upgrade) names, if it names one. */
export function sessionOf(turn: Pick<Turn, 'header'>): string | undefined {
  const id = turn.header('x-session-id');
  if (id === undefined) return undefined;
  if (!SESSION_ID.test(id)) {
    throw new JarvisError('JARVIS_ERR_INVALID_SESSION_ID', 'X-Session-Id must be 1-128 characters of A-Z, a-z, 0-9, ".", "_", ":" or "-".', { param: 'X-Session-Id' });
  }
  return id;
}

/** X-Session-Seq: a non-negative integer the client increases with each request of a session. */
function seqOf(turn: Turn): number | undefined {
  const v = turn.header('x-session-seq');
  if (v === undefined) return undefined;
  const n = /^\d{1,16}$/.test(v) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n)) {
    throw new JarvisError('JARVIS_ERR_INVALID_REQUEST', 'X-Session-Seq must be a non-negative integer (at most 2^53 - 1).', { param: 'X-Session-Seq' });
  }
  return n;
}

/** X-Session-Policy, checked, else the configured default. */
export function policyOf(turn: Pick<Turn, 'header'>, fallback: SessionPolicy): SessionPolicy {
  const p = turn.header('x-session-policy');
  if (p === undefined) return fallback;
  if (!(SESSION_POLICIES as readonly string[]).includes(p)) {
    throw new JarvisError('JARVIS_ERR_INVALID_REQUEST', `X-Session-Policy must be one of ${SESSION_POLICIES.join(', ')}.`, { param: 'X-Session-Policy' });
  }
  return p as SessionPolicy;
}

/** What every call to a model is admitted by: the key, its quota slot, and the provider and model it reaches. */
export interface AdmittedCall {
  provider: Provider;
  model: string;
  release(): void;
}

type AdmissionContext = Pick<JarvisContext, 'config' | 'quotas' | 'watchdog' | 'live' | 'providers' | 'budgets'>;

/**
 * The admission every call to a model gets, a turn or a relay (completions, embeddings): the key's quotas, load
 * shedding, stream capacity, then `checks` of its own (a turn's limits and session headers), then the model and
 * the key's access to it. The quota slot it takes is the caller's to release, however the call ends; a refusal
 * releases it here.
 */
export async function admitCall(ctx: AdmissionContext, call: { apiKey: ApiKeyIdentity | null; requestId: string; model: string | undefined }, checks?: () => void): Promise<AdmittedCall> {
  // A spent budget refuses before anything is counted or reaches an upstream.
  await ctx.budgets.check(call.apiKey, call.requestId);
  const release = await ctx.quotas.admit(call.apiKey, call.requestId);
  try {
    const shedAbove = ctx.config.shedEventLoopDelayMs;
    if (shedAbove > 0 && ctx.watchdog.recentDelayMs > shedAbove) {
      throw new JarvisError('JARVIS_ERR_OVERLOADED', 'Jarvis is overloaded; retry shortly.', { headers: { 'retry-after': '1' } });
    }
    // Everything from here until the caller runs its stream is synchronous, so the count cannot change meanwhile.
    checkStreamCapacity(ctx.live.size, ctx.config.maxStreams);
    checks?.();
    const { provider, model } = ctx.providers.resolve(call.model);
    checkModelAllowed(call.apiKey, model);
    return { provider, model, release };
  } catch (err) {
    release();
    throw err;
  }
}

/**
 * The one admission step of every turn, whatever its API or transport (admitCall, with the limits on its
 * messages and its session headers), and the turn as its stream takes it.
 */
export async function admit(ctx: AdmissionContext, turn: Turn): Promise<Admitted> {
  let session: { sessionId: string | undefined; policy: SessionPolicy; seq: number | undefined } | undefined;
  const { provider, model, release } = await admitCall(ctx, turn, () => {
    checkChatLimits(turn.messages, ctx.config);
    session = { sessionId: sessionOf(turn), policy: policyOf(turn, ctx.config.sessions.policy), seq: seqOf(turn) };
  });
  const { sessionId, policy, seq } = session!;
  const maxTokens = (turn.body.max_completion_tokens ?? turn.body.max_tokens ?? undefined) as number | undefined;
  const request: ChatRequest = {
    model,
    messages: turn.messages,
    body: turn.body,
    headers: turn.upstreamHeaders,
    completionId: `chatcmpl-${turn.requestId.slice(4)}`,
    created: Math.floor(Date.now() / 1000),
    ...(maxTokens ? { maxTokens } : {}),
    ...(turn.header('x-jarvis-hedge')?.toLowerCase() === 'off' ? { hedge: false } : {}),
    native: turn.native,
    inputTokens: turn.inputTokens,
  };
  const owner = turn.apiKey?.id ?? null;
  const meta: StreamMeta = { request_id: turn.requestId, session_id: sessionId ?? turn.requestId, trace: turn.trace, owner };
  return { meta, sessionKey: `${owner ?? '-'}/${meta.session_id}`, policy, seq, provider, model, request, release };
}
