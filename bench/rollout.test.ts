import { describe, expect, it } from 'vitest';
import { rolloutFigures } from './figures.js';
import type { RolloutRecord } from './rollout-client.js';
import { TOOLS, callIdOf, outputTextOf, toolCallOf, toolLoopFrames, toolResultsIn, turnProblem } from './rollout.js';
import type { RolloutResult } from './scenarios/rollout.js';
import { quartiles } from './stats.js';

type Json = Record<string, unknown>;

/** A Chat Completions request as Jarvis sends it upstream, with `results` tool results in its conversation. */
function chatRequest(results: number, extra: Json = {}): Json {
  const messages: Json[] = [{ role: 'user', content: 'Look things up.' }];
  for (let i = 0; i < results; i++) {
    messages.push({ role: 'assistant', content: null, tool_calls: [{ id: callIdOf(i), type: 'function', function: { name: 'lookup', arguments: '{}' } }] });
    messages.push({ role: 'tool', tool_call_id: callIdOf(i), content: 'x' });
  }
  return { model: 'mock-model', stream: true, messages, tools: [{ type: 'function', function: { name: 'lookup', parameters: {} } }], ...extra };
}

/** The chunks of an answer's frames, parsed, and whether it ended with [DONE]. */
function chunksOf(frames: string[]): { chunks: Json[]; done: boolean } {
  const data = frames.map((f) => {
    expect(f).toMatch(/^data: .*\n\n$/s);
    return f.slice('data: '.length, -2);
  });
  return { chunks: data.filter((d) => d !== '[DONE]').map((d) => JSON.parse(d) as Json), done: data.at(-1) === '[DONE]' };
}

const delta = (c: Json) => ((c.choices as Json[])[0]?.delta ?? {}) as Json;
const finish = (chunks: Json[]) => chunks.map((c) => (c.choices as Json[])[0]?.finish_reason).find((f) => f);

describe('the tool-loop upstream', () => {
  it('counts the tool results of a conversation', () => {
    expect(toolResultsIn(chatRequest(0))).toBe(0);
    expect(toolResultsIn(chatRequest(7))).toBe(7);
    expect(toolResultsIn({})).toBe(0);
  });

  it('answers with a call of the first tool, named after the results it saw, while there are fewer than `calls`', () => {
    const { chunks, done } = chunksOf(toolLoopFrames(chatRequest(3), { calls: 20, tokens: 5, id: 'chatcmpl-1' }));
    expect(done).toBe(true);
    const calls = chunks.flatMap((c) => (delta(c).tool_calls as Json[] | undefined) ?? []);
    expect(calls[0]).toMatchObject({ index: 0, id: 'call_3', type: 'function', function: { name: 'lookup', arguments: '' } });
    const args = calls.map((c) => (c.function as Json).arguments).join('');
    expect(JSON.parse(args)).toEqual({ step: 3, query: 'fact 3' });
    expect(finish(chunks)).toBe('tool_calls');
    expect(chunks.every((c) => c.id === 'chatcmpl-1' && c.object === 'chat.completion.chunk')).toBe(true);
    // No usage unless asked for.
    expect(chunks.some((c) => 'usage' in c)).toBe(false);
  });

  it('answers in text once the conversation holds `calls` results, with usage when asked', () => {
    const { chunks, done } = chunksOf(toolLoopFrames(chatRequest(20, { stream_options: { include_usage: true } }), { calls: 20, tokens: 5, id: 'chatcmpl-2' }));
    expect(done).toBe(true);
    expect(chunks.map((c) => delta(c).content ?? '').join('')).toBe('tok0 tok1 tok2 tok3 tok4 ');
    expect(chunks.some((c) => delta(c).tool_calls)).toBe(false);
    expect(finish(chunks)).toBe('stop');
    expect(chunks.at(-1)).toMatchObject({ choices: [], usage: { completion_tokens: 5 } });
  });
});

describe('reading a turn', () => {
  const call = (id: string) => ({ id: 'resp_1', status: 'completed', output: [{ type: 'function_call', id: 'fc_1', call_id: id, name: 'lookup', arguments: '{"step":0}', status: 'completed' }] });
  const text = { id: 'resp_2', status: 'completed', output: [{ type: 'message', role: 'assistant', content: [{ type: 'output_text', text: 'tok0 ', annotations: [] }, { type: 'output_text', text: 'tok1 ' }] }] };

  it('finds the function call in a Response, and its text', () => {
    expect(toolCallOf(call('call_0'))).toEqual({ callId: 'call_0', name: 'lookup', arguments: '{"step":0}' });
    expect(toolCallOf(text)).toBeUndefined();
    expect(toolCallOf(undefined)).toBeUndefined();
    expect(outputTextOf(text)).toBe('tok0 tok1 ');
    expect(outputTextOf(call('call_0'))).toBe('');
  });

  it('holds each turn to what the rollout must have: call k at turn k, text at the last', () => {
    expect(turnProblem(call('call_0'), 0, 20)).toBeUndefined();
    expect(turnProblem(call('call_4'), 4, 20)).toBeUndefined();
    expect(turnProblem(call('call_0'), 4, 20)).toMatch(/call_0, expected call_4/);
    expect(turnProblem(text, 3, 20)).toMatch(/no function call/);
    expect(turnProblem(text, 20, 20)).toBeUndefined();
    expect(turnProblem(call('call_20'), 20, 20)).toMatch(/final answer was due/);
    expect(turnProblem({ ...text, status: 'failed' }, 20, 20)).toMatch(/response failed/);
  });

  it('declares the tool in the Responses API’s shape', () => {
    expect(TOOLS[0]).toMatchObject({ type: 'function', name: 'lookup' });
  });
});

it('quartiles: median, p25 and p75 by nearest rank, min and max, without NaN', () => {
  expect(quartiles([4, 1, 3, 2, NaN])).toEqual({ median: 2.5, p25: 1, p75: 3, min: 1, max: 4, n: 4 });
  expect(quartiles([5])).toEqual({ median: 5, p25: 5, p75: 5, min: 5, max: 5, n: 1 });
  expect(quartiles([]).n).toBe(0);
  expect(quartiles([NaN]).median).toBeNaN();
});

describe('rolloutFigures', () => {
  const rec = (transport: 'ws' | 'sse', pair: number, totalMs: number, cpuSec: number, ttft = 1): RolloutRecord => ({
    transport,
    pair,
    totalMs,
    connectMs: transport === 'ws' ? 0.5 : NaN,
    ttftMs: [ttft, ttft, ttft],
    turnMs: [2, 2, 2],
    cpuSec,
    clientCpuSec: cpuSec / 2,
  });
  const params = { calls: 2, rollouts: 2, warmupMs: 0, warmupConcurrency: 0, warmup: 1, tokens: 5, outputChars: 10, delayMs: 0, settleMs: 10 };

  it('takes WS / SSE per pair, and leaves out a pair whose other rollout failed', () => {
    const r: RolloutResult = {
      ...params,
      runs: [
        {
          // Run 1: both pairs whole, after 4 rollouts of timed warm-up; the upstream answered every turn once:
          // (4 + (1 + 2) pairs × 2 rollouts) × 3 turns.
          result: { label: 'a', warmupRollouts: 4, idleCpuMsPerSec: 2, ws: [rec('ws', 0, 60, 0.003, 1), rec('ws', 1, 40, 0.003, 1)], sse: [rec('sse', 0, 100, 0.006, 2), rec('sse', 1, 80, 0.006, 2)], errors: [] },
          upstream: { requests: 30, calls: 20 },
        },
        {
          // Run 2: pair 0's WebSocket rollout failed.
          result: { label: 'b', warmupRollouts: 0, idleCpuMsPerSec: 4, ws: [rec('ws', 1, 50, 0.003)], sse: [rec('sse', 0, 90, 0.003), rec('sse', 1, 100, 0.003)], errors: ['ws: turn 2: response failed'] },
          upstream: { requests: 17, calls: 11 },
        },
      ],
    };
    const f = rolloutFigures(r);
    expect(f.pairs).toBe(3);
    expect(f.ws.rollouts).toBe(3);
    expect(f.sse.rollouts).toBe(4);
    expect(f.ratios.e2e).toMatchObject({ median: 0.5, min: 0.5, max: 0.6, n: 3 });
    expect(f.ratios.cpu).toMatchObject({ median: 0.5, min: 0.5, max: 1 });
    expect(f.ratios.ttft).toMatchObject({ median: 0.5, max: 1 });
    // CPU per turn: 3 ms over 3 turns.
    expect(f.ws.cpuUsPerTurn.median).toBeCloseTo(1000);
    expect(f.ws.clientCpuUsPerTurn.median).toBeCloseTo(500);
    expect(f.ws.connectMs.median).toBe(0.5);
    expect(f.sse.connectMs.n).toBe(0);
    expect(f.ws.ttftMs.n).toBe(9);
    // Only the run without a failure says how many upstream answers a turn cost.
    expect(f.upstreamPerTurn).toBe(1);
    expect(f.idleCpuMsPerSec).toMatchObject({ median: 3, min: 2, max: 4 });
    expect(f.errors).toEqual(['ws: turn 2: response failed']);
  });
});
