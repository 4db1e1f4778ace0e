import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ChatChunk, Delta } from '../provider.js';
import { deltaOf } from './sse-deltas.js';
import { tokenChunkText } from './token-chunk.js';

if (process.env.CI) fc.configureGlobal({ seed: 20261124 });

/** What the general path makes of an event: its delta, or 'rejected' where it would fail the stream. */
function generalPath(data: string): Delta | 'rejected' {
  let chunk: unknown;
  try {
    chunk = JSON.parse(data);
  } catch {
    return 'rejected';
  }
  if (typeof chunk !== 'object' || chunk === null || Array.isArray(chunk)) return 'rejected';
  if ((chunk as { error?: unknown }).error) return 'rejected';
  return deltaOf(data, chunk as ChatChunk);
}

/** A match is a chunk the general path accepts, with that same text for choice 0 and no finish_reason. */
function agrees(data: string): void {
  const text = tokenChunkText(data);
  if (text === undefined) return;
  expect(generalPath(data)).toMatchObject({ data, text, finish: undefined });
}

const HEAD = '"id":"chatcmpl-1","object":"chat.completion.chunk","created":1732400000,"model":"m"';
const tokenEvent = (content: string) => `{${HEAD},"choices":[{"index":0,"delta":{"content":${JSON.stringify(content)}},"finish_reason":null}]}`;
// Mostly JSON's own troublemakers (quotes, escapes, control characters, structure), some of any code point.
const tricky = fc.constantFrom('"', '\\', '\\u', '\u0001', '\n', '\u2028', '{', '}', '[', ']', ',', ':', ' ', '0', 'null', '\\"');
const text = fc.oneof(fc.string({ unit: 'binary', maxLength: 20 }), fc.array(tricky, { maxLength: 6 }).map((a) => a.join('')));
const scalar = fc.oneof(text, fc.constantFrom(null, 0, -1.5, 1e21, '', true, false));
const anyValue = fc.oneof(fc.jsonValue({ maxDepth: 2 }), scalar, fc.constantFrom([], {}));
const keys = ['id', 'object', 'created', 'model', 'system_fingerprint', 'service_tier', 'obfuscation', 'usage', 'error', 'choices', 'x'];
const choice = fc.oneof(
  text.map((content) => ({ index: 0, delta: { content }, finish_reason: null })),
  text.map((content) => ({ index: 0, delta: { role: 'assistant', content }, logprobs: null, finish_reason: null })),
  fc.record({ index: fc.constantFrom(0, 1), delta: fc.record({ content: anyValue, tool_calls: anyValue }, { requiredKeys: [] }), finish_reason: anyValue }, { requiredKeys: [] }),
);
/** A top-level member: usually a scalar (a match may well follow), sometimes anything, under any of the keys. */
const member = fc.tuple(fc.constantFrom(...keys), fc.oneof({ weight: 3, arbitrary: scalar }, { weight: 1, arbitrary: anyValue }));
const json = (entries: [string, unknown][]) => `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`).join(',')}}`;

describe('tokenChunkText', () => {
  it('finds the text of the token chunks OpenAI, vLLM and the mock send', () => {
    expect(tokenChunkText(tokenEvent('Hello'))).toBe('Hello');
    expect(tokenChunkText(tokenEvent('say "hi"\n\\ ✓ 🙂'))).toBe('say "hi"\n\\ ✓ 🙂');
    const openai = `{${HEAD},"system_fingerprint":"fp_1","choices":[{"index":0,"delta":{"content":"Hi"},"logprobs":null,"finish_reason":null}],"usage":null,"obfuscation":"x1"}`;
    expect(tokenChunkText(openai)).toBe('Hi');
  });

  it('leaves every other event to the general parser', () => {
    for (const data of [
      `{${HEAD},"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`,
      `{${HEAD},"choices":[{"index":0,"delta":{"content":"a"},"finish_reason":null}],"error":{"message":"x"}}`,
      `{${HEAD},"choices":[{"index":0,"delta":{"content":"a"},"finish_reason":null}],"choices":[]}`,
      `{${HEAD},"choices":[{"index":0,"delta":{"content":"a","tool_calls":[]},"finish_reason":null}]}`,
      `{ ${HEAD},"choices":[{"index":0,"delta":{"content":"a"},"finish_reason":null}]}`,
      `{${HEAD},"choices":[{"index":0,"delta":{"content":"a\u0001"},"finish_reason":null}]}`,
      `{"created":01,"choices":[{"index":0,"delta":{"content":"a"},"finish_reason":null}]}`,
    ]) {
      expect(tokenChunkText(data)).toBeUndefined();
    }
  });

  it('whatever it returns, JSON.parse and the general path find the same text and nothing else', () => {
    // Members around a choices array that is usually one token chunk, so that matches are common and every key
    // (a second `choices`, an `error`, a `usage` that is not null) gets its chance to hide behind one.
    const choices = fc.oneof({ weight: 3, arbitrary: choice.map((c) => [c]) }, { weight: 1, arbitrary: fc.array(choice, { maxLength: 2 }) });
    const event = fc
      .tuple(fc.array(member, { maxLength: 4 }), choices, fc.array(member, { maxLength: 3 }))
      .map(([before, cs, after]) => json([...before, ['choices', cs], ...after]));
    fc.assert(fc.property(event, (data) => agrees(data)), { numRuns: 5000 });
  });

  it('agrees on real token chunks with any text, and on them cut, spliced or corrupted anywhere', () => {
    const mutated = fc.tuple(text, fc.nat(), fc.nat({ max: 8 }), text).map(([content, at, cut, insert]) => {
      const data = tokenEvent(content);
      const i = at % (data.length + 1);
      return data.slice(0, i) + insert + data.slice(i + cut);
    });
    fc.assert(fc.property(text, (content) => {
      expect(tokenChunkText(tokenEvent(content))).toBe(content);
    }));
    fc.assert(fc.property(mutated, (data) => agrees(data)), { numRuns: 5000 });
  });
});
