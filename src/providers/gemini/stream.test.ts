// Gemini's stream chunks into deltas: text and thoughts apart, each whole function call one tool call with an id
// and its thought signature just before it, finish reasons in the one vocabulary, usage with thoughts and cache.
import { describe, expect, it } from 'vitest';
import type { JarvisError } from '../../errors.js';
import { DeltaReader } from '../openai-compatible/sse-deltas.js';
import type { Delta } from '../provider.js';
import { geminiEvents, textChunkText } from './stream.js';

const chunk = (parts: unknown[], extra: Record<string, unknown> = {}, candidate: Record<string, unknown> = {}) =>
  `data: ${JSON.stringify({ candidates: [{ content: { parts, role: 'model' }, index: 0, ...candidate }], modelVersion: 'gemini-3-flash-preview', responseId: 'r1', ...extra })}\r\n\r\n`;

function read(frames: string[], onSigned?: (id: string, signature: string) => void): { deltas: Delta[]; error?: JarvisError; done: boolean } {
  const reader = new DeltaReader(geminiEvents(onSigned));
  const deltas = reader.feed(Buffer.from(frames.join(''))) ?? [];
  if (!reader.done && !reader.failure) reader.end();
  return { deltas, error: reader.failure, done: reader.done };
}

const USAGE = { promptTokenCount: 12, candidatesTokenCount: 4, thoughtsTokenCount: 7, cachedContentTokenCount: 5, totalTokenCount: 23 };

describe('geminiEvents', () => {
  it('a text answer with thoughts: reasoning apart from text, the finish and usage on the last chunk, whole when the body ends', () => {
    const { deltas, done, error } = read([
      chunk([{ text: 'Thinking it over.', thought: true }]),
      chunk([{ text: 'Hel' }]),
      chunk([{ text: 'lo' }], { usageMetadata: USAGE }, { finishReason: 'STOP' }),
    ]);
    expect(error).toBeUndefined();
    expect(done).toBe(true);
    expect(deltas.map((d) => d.text).join('')).toBe('Hello');
    expect(deltas[0]!.parts).toEqual([{ type: 'start', model: 'gemini-3-flash-preview' }, { type: 'reasoning', text: 'Thinking it over.' }]);
    expect(deltas[2]!.finish).toBe('stop');
    expect(deltas[2]!.parts).toEqual([
      { type: 'text', text: 'lo' },
      { type: 'usage', usage: { input: 12, output: 11, cacheRead: 5, reasoning: 7 } },
      { type: 'finish', reason: 'stop', native: 'STOP' },
    ]);
  });

  it('parallel function calls: one tool call each with a generated id, the signature before the first, STOP as tool_calls', () => {
    const signed: [string, string][] = [];
    const { deltas } = read(
      [chunk([{ functionCall: { name: 'get_weather', args: { location: 'Paris' } }, thoughtSignature: 'c2ln' }, { functionCall: { name: 'get_weather', args: { location: 'Tokyo' } } }], {}, { finishReason: 'STOP' })],
      (id, s) => signed.push([id, s]),
    );
    const parts = deltas[0]!.parts!.filter((p) => p.type !== 'start');
    expect(parts.map((p) => p.type)).toEqual(['reasoning_signature', 'tool_call', 'tool_call', 'finish']);
    const [sig, a, b, finish] = parts as unknown as [{ signature: string }, { id: string; index: number; name: string; arguments: string }, { id: string; index: number; arguments: string }, { reason: string }];
    expect(sig.signature).toBe('gemini:c2ln');
    expect(a).toMatchObject({ index: 0, name: 'get_weather', arguments: '{"location":"Paris"}' });
    expect(b).toMatchObject({ index: 1, arguments: '{"location":"Tokyo"}' });
    expect(a.id).toMatch(/^call_[\w-]{24}$/);
    expect(b.id).not.toBe(a.id);
    expect(finish.reason).toBe('tool_calls');
    expect(signed).toEqual([[a.id, 'c2ln']]);
  });

  it.each([
    ['MAX_TOKENS', 'length'],
    ['SAFETY', 'content_filter'],
    ['RECITATION', 'content_filter'],
    ['PROHIBITED_CONTENT', 'content_filter'],
  ])('finishReason %s is %s', (reason, finish) => {
    expect(read([chunk([{ text: 'x' }], {}, { finishReason: reason })]).deltas[0]!.finish).toBe(finish);
  });

  it('a blocked prompt (no candidates) is content_filter', () => {
    const { deltas, done } = read([`data: ${JSON.stringify({ promptFeedback: { blockReason: 'SAFETY' }, usageMetadata: { promptTokenCount: 3 } })}\n\n`]);
    expect(done).toBe(true);
    expect(deltas[0]!.finish).toBe('content_filter');
  });

  it('a malformed function call is an error with its own code', () => {
    const { error } = read([chunk([], {}, { finishReason: 'MALFORMED_FUNCTION_CALL', finishMessage: 'Malformed function call: x' })]);
    expect(error?.code).toBe('malformed_function_call');
    expect(error?.status).toBe(502);
    expect(error?.message).toContain('Malformed function call: x');
  });

  it('an error object in the stream keeps its meaning', () => {
    const { error } = read([chunk([{ text: 'a' }]), `data: ${JSON.stringify({ error: { code: 503, message: 'The model is overloaded.', status: 'UNAVAILABLE' } })}\n\n`]);
    expect(error?.code).toBe('UNAVAILABLE');
    expect(error?.status).toBe(503);
    expect(error?.message).toBe('The model is overloaded.');
  });

  it('a body that ends before any finish reason was cut short', () => {
    const { error } = read([chunk([{ text: 'a' }])]);
    expect(error?.code).toBe('upstream_stream_error');
  });

  it('the token path: a plain text chunk after the first, as Google writes it or compact, is taken without parsing', () => {
    const google = (parts: string, rest = '') => `data: {"candidates": [{"content": {"parts": ${parts},"role": "model"},"index": 0${rest}}],"usageMetadata": {"promptTokenCount": 3,"promptTokensDetails": [{"modality": "TEXT","tokenCount": 3}]},"modelVersion": "m","responseId": "r"}\r\n\r\n`;
    const { deltas, done } = read([
      google('[{"text": "first"}]'),
      google('[{"text": "Hel\\"lo\\u00e9"}]'),
      chunk([{ text: 'compact' }]),
      google('[{"text": "thought", "thought": true}]'),
      google('[{"text": "a"},{"text": "b"}]'),
      google('[{"text": "","thoughtSignature": "c2ln"}]'),
      google('[{"text": "end"}]', ',"finishReason": "STOP"'),
    ]);
    expect(done).toBe(true);
    expect(deltas.map((d) => d.chunk === undefined)).toEqual([false, true, true, false, false, false, false]);
    expect(deltas.map((d) => d.text)).toEqual(['first', 'Hel"loé', 'compact', '', 'ab', '', 'end']);
    expect(textChunkText('{"candidates": [{"content": {"parts": [{"text": "x"}],"role": "model"},"index": 0}]}')).toBe('x');
    expect(textChunkText('{"candidates": [{"content": {"parts": [{"text": "x"}],"role": "model"},"index": 0}]')).toBeUndefined();
  });
});
