import type { Config } from '../config.js';
import type { AnswerUsage, StreamEnding, StreamOutcome } from '../streams/chat-stream.js';
import type { AttemptEnd, AttemptStart } from '../streams/attempts.js';
import { costOf, priceOf } from './prices.js';
import type { UsageRecord } from './types.js';

/** A turn as the ledger bills it: who asked what, how it ended, and a route's attempts that did not answer. */
export interface BilledTurn {
  requestId: string;
  key: string | null;
  session: string | null;
  api: string;
  model: string;
  /** The upstream and provider kind when the provider is not a route (a route names its attempts). */
  upstream: { name: string; provider: string } | undefined;
  outcome: StreamOutcome;
  /** The input tokens as Jarvis estimates them: what an attempt without a reported count paid. */
  inputEstimate: number;
  attempts: readonly { start: AttemptStart; end: AttemptEnd | undefined; won: boolean }[];
}

/**
 * The outcome of an answer relayed without a ChatStream (completions, embeddings, a native Realtime response), as
 * the ledger bills it: everything it carried reached the client, one token a text delta (`text`).
 */
export function relayedOutcome(
  ending: StreamEnding,
  o: { usage: AnswerUsage | undefined; text: { tokens: number; chars: number }; durationMs: number; reached: boolean },
): StreamOutcome {
  return { ...ending, usage: o.usage, served: undefined, timings: { firstTokenMs: undefined, durationMs: o.durationMs }, generated: o.text, delivered: o.text, reached: o.reached };
}

/** Lines that share a request id sort together and in attempt order. */
export function lineId(ms: number, random: string, attempt: number): string {
  return `${ms.toString(16).padStart(12, '0')}${random}${attempt.toString(16).padStart(2, '0')}`;
}

export const dayOf = (ms: number): string => new Date(ms).toISOString().slice(0, 10);

/**
 * The share of an answer's output tokens not heard: none for an answer that ended whole (nothing was cut), else
 * what the heard characters leave of the generated ones.
 */
export function notHeardTokens(output: number, generatedChars: number, heardChars: number, whole: boolean): number {
  if (whole) return 0;
  if (generatedChars <= 0) return output;
  return output - Math.round((output * Math.min(heardChars, generatedChars)) / generatedChars);
}

/**
 * The lines of one turn: the answer's (the plain provider's stream, or a route's winner), and one for each route
 * attempt that did not answer. A turn that never reached an upstream (refused, rejected) has none.
 */
export function linesOf(turn: BilledTurn, prices: Config['prices'], now: number, random: () => string): UsageRecord[] {
  const { outcome } = turn;
  if (outcome.kind === 'rejected') return [];
  const lines: UsageRecord[] = [];
  const day = dayOf(now);
  const rnd = random();

  for (const a of turn.attempts) {
    if (a.won || !a.end) continue;
    const e = a.end;
    const price = priceOf(prices, a.start.model);
    const input = e.answered || e.outcome === 'cancelled' ? turn.inputEstimate : 0;
    const cost = price ? costOf(price, { input, cached: 0, cacheWrite: 0, output: e.outputTokens }) : null;
    lines.push({
      request_id: turn.requestId,
      created_ms: now,
      day,
      key: turn.key,
      session: turn.session,
      api: turn.api,
      model: turn.model,
      id: lineId(now, rnd, a.start.n),
      upstream: a.start.upstream,
      served_model: a.start.model,
      provider: a.start.provider,
      attempt: a.start.n,
      answered: 0,
      outcome: e.outcome,
      reason: e.reason,
      input_tokens: input,
      cached_tokens: 0,
      cache_write_tokens: 0,
      output_tokens: e.outputTokens,
      reasoning_tokens: 0,
      delivered_tokens: 0,
      delivered_chars: 0,
      generated_chars: e.generatedChars,
      heard_chars: 0,
      not_heard_tokens: e.outputTokens,
      estimated: 1,
      ttft_ms: null,
      duration_ms: Math.round(e.durationMs),
      cost,
      not_heard_cost: price ? (e.outputTokens * price.output) / 1_000_000 : null,
      price_output: price?.output ?? null,
    });
  }

  const winner = turn.attempts.find((a) => a.won);
  // A route whose every attempt failed, or that was cancelled before one won: its attempts are all its lines.
  if (turn.attempts.length > 0 && !winner) return lines;
  const upstream = outcome.served?.upstream ?? turn.upstream?.name ?? null;
  const servedModel = outcome.served?.model ?? turn.model;
  const provider = winner?.start.provider ?? turn.upstream?.provider ?? null;
  const usage = usageOf(outcome, turn.inputEstimate);
  const price = priceOf(prices, servedModel);
  const whole = outcome.kind === 'end';
  const heard = outcome.delivered.chars;
  const generatedChars = Math.max(outcome.generated.chars, outcome.delivered.chars);
  const notHeard = notHeardTokens(usage.output, generatedChars, heard, whole);
  // Every field written out: a spread of shared fields here cost 25 µs a line (V8 copies into a slow object).
  lines.push({
    request_id: turn.requestId,
    created_ms: now,
    day,
    key: turn.key,
    session: turn.session,
    api: turn.api,
    model: turn.model,
    id: lineId(now, rnd, winner?.start.n ?? 1),
    upstream,
    served_model: servedModel,
    provider,
    attempt: winner?.start.n ?? 1,
    answered: 1,
    outcome: outcome.kind === 'end' ? 'end' : outcome.kind === 'cancelled' ? 'cancelled' : 'error',
    reason: outcome.kind === 'end' ? outcome.finishReason : outcome.kind === 'cancelled' ? outcome.reason : outcome.error.code,
    input_tokens: usage.input,
    cached_tokens: usage.cacheRead ?? 0,
    cache_write_tokens: usage.cacheWrite ?? 0,
    output_tokens: usage.output,
    reasoning_tokens: usage.reasoning ?? 0,
    delivered_tokens: deliveredTokens(usage, outcome, generatedChars),
    delivered_chars: outcome.delivered.chars,
    generated_chars: generatedChars,
    heard_chars: heard,
    not_heard_tokens: notHeard,
    estimated: usage.estimated ? 1 : 0,
    ttft_ms: outcome.timings.firstTokenMs === undefined ? null : Math.round(outcome.timings.firstTokenMs),
    duration_ms: Math.round(outcome.timings.durationMs),
    cost: price ? costOf(price, { input: usage.input, cached: usage.cacheRead ?? 0, cacheWrite: usage.cacheWrite ?? 0, output: usage.output }) : null,
    not_heard_cost: price ? (notHeard * price.output) / 1_000_000 : null,
    price_output: price?.output ?? null,
  });
  return lines;
}

/**
 * Output tokens that reached the client, in the upstream's tokens: all of them for an answer delivered whole,
 * one a delta when Jarvis counted the output itself, else the delivered share of the generated text.
 */
function deliveredTokens(usage: AnswerUsage, outcome: StreamOutcome, generatedChars: number): number {
  if (usage.estimated) return Math.min(outcome.delivered.tokens, usage.output);
  if (outcome.delivered.chars >= generatedChars) return usage.output;
  return Math.round((usage.output * outcome.delivered.chars) / generatedChars);
}

/**
 * The answer's token counts: as the upstream reported them, else estimated. An answer that failed before anything
 * came cost nothing (an upstream bills no refused request); one cut short paid its input and what it generated.
 */
function usageOf(outcome: StreamOutcome, inputEstimate: number): AnswerUsage {
  if (outcome.usage && !outcome.usage.estimated) return outcome.usage;
  const output = outcome.generated.tokens;
  const paidInput = outcome.kind !== 'error' || outcome.reached;
  return { input: paidInput ? (outcome.usage?.input ?? inputEstimate) : 0, output: Math.max(output, outcome.kind === 'end' ? (outcome.usage?.output ?? 0) : 0), estimated: true };
}
