import { describe, expect, it } from 'vitest';
import { JarvisError } from '../errors.js';
import type { StreamOutcome } from '../streams/chat-stream.js';
import { costOf } from './prices.js';
import { linesOf, lineId, notHeardTokens, type BilledTurn } from './record.js';
import { RelayMeter } from './relay-meter.js';

const outcome = (o: Partial<StreamOutcome> & Pick<StreamOutcome, 'kind'>): StreamOutcome =>
  ({
    finishReason: 'stop',
    usage: undefined,
    served: undefined,
    timings: { firstTokenMs: 12.4, durationMs: 100.6 },
    generated: { tokens: 10, chars: 50 },
    delivered: { tokens: 10, chars: 50 },
    reached: true,
    ...o,
  }) as StreamOutcome;

const turn = (o: StreamOutcome, attempts: BilledTurn['attempts'] = []): BilledTurn => ({
  requestId: 'req_1',
  key: 'k',
  session: 's',
  api: 'chat.completions',
  model: 'm',
  upstream: { name: 'up', provider: 'openai' },
  outcome: o,
  inputEstimate: 7,
  attempts,
});

const prices = { m: { input: 1, output: 2 }, t: { input: 10, output: 20, cachedInput: 5, cacheWrite: 12.5 } };

describe('ledger lines', () => {
  it('prices cached and cache-written input apart, per million tokens', () => {
    expect(costOf(prices.t, { input: 100, cached: 50, cacheWrite: 10, output: 4 })).toBeCloseTo((40 * 10 + 50 * 5 + 10 * 12.5 + 4 * 20) / 1e6, 15);
    expect(costOf(prices.m, { input: 3, cached: 0, cacheWrite: 0, output: 0 })).toBeCloseTo(3e-6, 15);
  });

  it('counts nothing unheard in an answer delivered whole, and the unheard share of one cut short', () => {
    expect(notHeardTokens(10, 50, 50, true)).toBe(0);
    expect(notHeardTokens(10, 50, 25, false)).toBe(5);
    expect(notHeardTokens(10, 50, 80, false)).toBe(0);
    expect(notHeardTokens(10, 0, 0, false)).toBe(10);
  });

  it('orders ids by time, then by attempt', () => {
    expect(lineId(1000, 'ab', 2) < lineId(1001, 'aa', 1)).toBe(true);
    expect(lineId(1000, 'ab', 1) < lineId(1000, 'ab', 2)).toBe(true);
  });

  it('writes a completed answer with its reported usage and cost', () => {
    const [line, more] = linesOf(turn(outcome({ kind: 'end', usage: { input: 5, output: 10, estimated: false } })), prices, Date.UTC(2026, 11, 7, 23, 59), () => 'ff');
    expect(more).toBeUndefined();
    expect(line).toMatchObject({ day: '2026-12-07', attempt: 1, answered: 1, outcome: 'end', reason: 'stop', input_tokens: 5, output_tokens: 10, delivered_tokens: 10, heard_chars: 50, not_heard_tokens: 0, estimated: 0, ttft_ms: 12, duration_ms: 101 });
    expect(line!.cost).toBeCloseTo(25e-6, 15);
  });

  it('writes a cancelled answer with estimated counts and what was not heard', () => {
    const [line] = linesOf(turn(outcome({ kind: 'cancelled', reason: 'superseded', usage: { input: 7, output: 10, estimated: true }, delivered: { tokens: 6, chars: 30 } })), prices, 0, () => 'ff');
    expect(line).toMatchObject({ outcome: 'cancelled', reason: 'superseded', estimated: 1, output_tokens: 10, delivered_tokens: 6, heard_chars: 30, not_heard_tokens: 4 });
    expect(line!.not_heard_cost).toBeCloseTo(8e-6, 15);
  });

  it('bills nothing for an upstream that refused before answering', () => {
    const [line] = linesOf(turn(outcome({ kind: 'error', error: new JarvisError('JARVIS_ERR_UPSTREAM_STATUS', 'no'), reached: false, generated: { tokens: 0, chars: 0 }, delivered: { tokens: 0, chars: 0 } })), prices, 0, () => 'ff');
    expect(line).toMatchObject({ outcome: 'error', reason: 'upstream_error', input_tokens: 0, output_tokens: 0, cost: 0 });
  });

  it('writes nothing for a stream that never reached an upstream', () => {
    expect(linesOf(turn(outcome({ kind: 'rejected', error: new JarvisError('JARVIS_ERR_SESSION_BUSY', 'busy') })), prices, 0, () => 'ff')).toEqual([]);
  });

  it("writes a route's attempts, each its own line, the winner answered", () => {
    const lines = linesOf(
      turn(outcome({ kind: 'end', usage: { input: 5, output: 10, estimated: false }, served: { upstream: 'b', model: 'm' } }), [
        { start: { n: 1, upstream: 'a', model: 't', provider: 'anthropic', hedge: false }, end: { outcome: 'error', reason: 'overloaded', outputTokens: 0, generatedChars: 0, answered: false, durationMs: 3 }, won: false },
        { start: { n: 2, upstream: 'c', model: 't', provider: 'openai', hedge: true }, end: { outcome: 'cancelled', reason: 'hedge_lost', outputTokens: 1, generatedChars: 4, answered: true, durationMs: 9 }, won: false },
        { start: { n: 3, upstream: 'b', model: 'm', provider: 'gemini', hedge: false }, end: undefined, won: true },
      ]),
      prices,
      0,
      () => 'ff',
    );
    expect(lines.map((l) => [l.attempt, l.upstream, l.provider, l.outcome, l.reason, l.answered, l.input_tokens])).toEqual([
      [1, 'a', 'anthropic', 'error', 'overloaded', 0, 0],
      [2, 'c', 'openai', 'cancelled', 'hedge_lost', 0, 7],
      [3, 'b', 'gemini', 'end', 'stop', 1, 5],
    ]);
    expect(lines[1]!.cost).toBeCloseTo((7 * 10 + 1 * 20) / 1e6, 15);
  });
});

describe('a relayed answer metered as it passes', () => {
  it("reads the upstream's usage from its last bytes, split anywhere", () => {
    const m = new RelayMeter({ input: 'hello' });
    const body = JSON.stringify({ object: 'list', data: [{ embedding: new Array(500).fill(0.5) }], usage: { prompt_tokens: 8, total_tokens: 8 } });
    for (let i = 0; i < body.length; i += 97) m.observe(Buffer.from(body.slice(i, i + 97)));
    expect(m.usage()).toEqual({ input: 8, output: 0, estimated: false });
  });

  it('estimates a stream without usage: the prompt by its characters, one token an event', () => {
    const m = new RelayMeter({ prompt: 'x'.repeat(40) });
    m.observe('data: {"choices":[{"text":"a"}]}\n\ndata: {"choices":[{"text":"b"}]}\n\ndata: [DONE]\n\n');
    expect(m.usage()).toEqual({ input: 10, output: 2, estimated: true });
  });
});
