// Anthropic's stream events into deltas: each keeps its data as sent, with the parts another wire needs (text,
// signed thinking, tool-call fragments by index, finish, usage with the cache), and the text path parses nothing.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { JarvisError } from '../../errors.js';
import { DeltaReader } from '../openai-compatible/sse-deltas.js';
import type { Delta } from '../provider.js';
import { anthropicEvents, textDeltaText } from './stream.js';

const frame = (type: string, body: Record<string, unknown>) => `event: ${type}\ndata: ${JSON.stringify({ type, ...body })}\n\n`;

function read(frames: string[], onSigned?: (id: string, blocks: Record<string, unknown>[]) => void): { deltas: Delta[]; error?: JarvisError; done: boolean } {
  const reader = new DeltaReader(anthropicEvents(onSigned));
  const deltas = reader.feed(Buffer.from(frames.join(''))) ?? [];
  if (!reader.done && !reader.failure) reader.end();
  return { deltas, error: reader.failure, done: reader.done };
}

const START = frame('message_start', { message: { id: 'msg_1', type: 'message', role: 'assistant', model: 'claude-x', content: [], usage: { input_tokens: 10, cache_read_input_tokens: 4, cache_creation_input_tokens: 2, output_tokens: 1 } } });
const text = (index: number, t: string) => frame('content_block_delta', { index, delta: { type: 'text_delta', text: t } });

describe('anthropicEvents', () => {
  it('a text answer: its text on the token path, the finish and usage (input counts the cache) at message_delta, done at message_stop', () => {
    const { deltas, done, error } = read([
      START,
      frame('content_block_start', { index: 0, content_block: { type: 'text', text: '' } }),
      frame('ping', {}),
      text(0, 'Hel'),
      text(0, 'lo'),
      frame('content_block_stop', { index: 0 }),
      frame('message_delta', { delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: 2, output_tokens_details: { thinking_tokens: 0 } } }),
      frame('message_stop', {}),
    ]);
    expect(error).toBeUndefined();
    expect(done).toBe(true);
    expect(deltas.map((d) => d.event)).toEqual(['message_start', 'content_block_start', 'ping', 'content_block_delta', 'content_block_delta', 'content_block_stop', 'message_delta', 'message_stop']);
    expect(deltas.map((d) => d.text).join('')).toBe('Hello');
    // The token path: not parsed.
    expect(deltas[3]!.chunk).toBeUndefined();
    expect(deltas[0]!.parts).toEqual([{ type: 'start', id: 'msg_1', model: 'claude-x', usage: { input: 16, output: 1, cacheRead: 4, cacheWrite: 2 } }]);
    expect(deltas[6]!.finish).toBe('stop');
    expect(deltas[6]!.parts).toEqual([
      { type: 'finish', reason: 'stop', native: 'end_turn', stopSequence: null },
      { type: 'usage', usage: { input: 16, output: 2, cacheRead: 4, cacheWrite: 2 } },
    ]);
    expect(deltas.every((d) => d.wire === 'anthropic.messages')).toBe(true);
  });

  it('parallel tool calls: id and name first, then their argument fragments in order, each under its own index', () => {
    const { deltas } = read([
      START,
      frame('content_block_start', { index: 0, content_block: { type: 'text', text: '' } }),
      text(0, 'Checking.'),
      frame('content_block_stop', { index: 0 }),
      frame('content_block_start', { index: 1, content_block: { type: 'tool_use', id: 'toolu_a', name: 'get_weather', input: {} } }),
      frame('content_block_delta', { index: 1, delta: { type: 'input_json_delta', partial_json: '' } }),
      frame('content_block_delta', { index: 1, delta: { type: 'input_json_delta', partial_json: '{"loc' } }),
      frame('content_block_start', { index: 2, content_block: { type: 'tool_use', id: 'toolu_b', name: 'get_time', input: {} } }),
      frame('content_block_delta', { index: 2, delta: { type: 'input_json_delta', partial_json: '{"tz":"CET"}' } }),
      frame('content_block_delta', { index: 1, delta: { type: 'input_json_delta', partial_json: 'ation":"Paris"}' } }),
      frame('message_delta', { delta: { stop_reason: 'tool_use' }, usage: { output_tokens: 30 } }),
      frame('message_stop', {}),
    ]);
    const calls = deltas.flatMap((d) => (d.parts ?? []).filter((p) => p.type === 'tool_call'));
    expect(calls).toEqual([
      { type: 'tool_call', index: 0, id: 'toolu_a', name: 'get_weather', arguments: '' },
      { type: 'tool_call', index: 0, arguments: '' },
      { type: 'tool_call', index: 0, arguments: '{"loc' },
      { type: 'tool_call', index: 1, id: 'toolu_b', name: 'get_time', arguments: '' },
      { type: 'tool_call', index: 1, arguments: '{"tz":"CET"}' },
      { type: 'tool_call', index: 0, arguments: 'ation":"Paris"}' },
    ]);
    expect(deltas.at(-2)!.finish).toBe('tool_calls');
  });

  it('signed thinking: reasoning, then its signature; the signed blocks are told with the tool call they preceded', () => {
    const signed: [string, unknown][] = [];
    const { deltas } = read(
      [
        START,
        frame('content_block_start', { index: 0, content_block: { type: 'thinking', thinking: '', signature: '' } }),
        frame('content_block_delta', { index: 0, delta: { type: 'thinking_delta', thinking: 'Let me ' } }),
        frame('content_block_delta', { index: 0, delta: { type: 'thinking_delta', thinking: 'think.' } }),
        frame('content_block_delta', { index: 0, delta: { type: 'signature_delta', signature: 'sig==' } }),
        frame('content_block_stop', { index: 0 }),
        frame('content_block_start', { index: 1, content_block: { type: 'redacted_thinking', data: 'opaque' } }),
        frame('content_block_stop', { index: 1 }),
        frame('content_block_start', { index: 2, content_block: { type: 'tool_use', id: 'toolu_x', name: 'f', input: {} } }),
        frame('message_stop', {}),
      ],
      (id, blocks) => signed.push([id, blocks]),
    );
    expect(deltas.flatMap((d) => d.parts ?? []).filter((p) => p.type.startsWith('reasoning'))).toEqual([
      { type: 'reasoning', text: 'Let me ' },
      { type: 'reasoning', text: 'think.' },
      { type: 'reasoning_signature', signature: 'sig==' },
      { type: 'reasoning_redacted', data: 'opaque' },
    ]);
    expect(signed).toEqual([['toolu_x', [{ type: 'thinking', thinking: 'Let me think.', signature: 'sig==' }, { type: 'redacted_thinking', data: 'opaque' }]]]);
    // Reasoning is not answer text.
    expect(deltas.every((d) => d.text === '')).toBe(true);
  });

  it('an error event fails the stream, as an OpenAI error event with the same meaning and the native one kept', () => {
    const { deltas, error } = read([START, text(0, 'Hi'), frame('error', { error: { type: 'overloaded_error', message: 'Overloaded' } })]);
    expect(deltas).toHaveLength(2);
    expect(error).toMatchObject({ status: 503, code: 'overloaded_error', message: 'Overloaded', native: { wire: 'anthropic.messages', status: 529 } });
    expect(JSON.parse(error!.event!)).toEqual({ error: { message: 'Overloaded', type: 'server_error', param: null, code: 'overloaded_error' } });
  });

  it('a body that ends before message_stop, or an event that is not JSON, fails the stream', () => {
    expect(read([START, text(0, 'Hi')]).error?.message).toMatch(/before message_stop/);
    expect(read([START, 'event: content_block_delta\ndata: {not json\n\n']).error?.code).toBe('upstream_stream_error');
  });
});

describe('textDeltaText', () => {
  it('for any text, finds in the compact shape what JSON.parse finds, and nothing in any other shape', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme' }), fc.nat(20), (t, index) => {
        const data = JSON.stringify({ type: 'content_block_delta', index, delta: { type: 'text_delta', text: t } });
        expect(textDeltaText(data)).toBe(t);
        expect(textDeltaText(JSON.stringify({ type: 'content_block_delta', index, delta: { type: 'text_delta', text: t, extra: 1 } }))).toBeUndefined();
        expect(textDeltaText(JSON.stringify({ type: 'content_block_delta', index, delta: { type: 'thinking_delta', thinking: t } }))).toBeUndefined();
        expect(textDeltaText(` ${data}`)).toBeUndefined();
      }),
    );
  });
});
