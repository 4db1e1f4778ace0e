import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ChatChunk, Delta } from '../providers/provider.js';
import { deltaOf } from '../providers/openai-compatible/sse-deltas.js';
import { tokenChunkText } from '../providers/openai-compatible/token-chunk.js';
import { relayFrame, withoutUsage } from './chunk-frames.js';
import { dataFrame } from './sse-frames.js';

if (process.env.CI) fc.configureGlobal({ seed: 20261201 });

const HEAD = '"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m"';
const token = (content: string, tail = '') => `{${HEAD},"choices":[{"index":0,"delta":{"content":${JSON.stringify(content)}},"logprobs":null,"finish_reason":null}]${tail}}`;
const parsed = (data: string): Delta => deltaOf(data, JSON.parse(data) as ChatChunk);

describe('withoutUsage', () => {
  it("cuts OpenAI's \"usage\":null out of the text, leaving every other byte as sent", () => {
    expect(withoutUsage(token('Hi', ',"usage":null,"obfuscation":"ab"'), undefined)).toBe(token('Hi', ',"obfuscation":"ab"'));
    expect(withoutUsage(token('Hi', ',"usage":null'), undefined)).toBe(token('Hi'));
    const first = '{"usage":null,"choices":[{"index":0,"delta":{"content":"\\u00e9"}}]}';
    expect(withoutUsage(first, JSON.parse(first) as ChatChunk)).toBe('{"choices":[{"index":0,"delta":{"content":"\\u00e9"}}]}');
  });

  it('drops the usage chunk itself, and strips usage from a chunk that also has choices', () => {
    const usage = '{"id":"c","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}';
    expect(withoutUsage(usage, JSON.parse(usage) as ChatChunk)).toBeUndefined();
    const both = '{"id":"c","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":{"total_tokens":3}}';
    expect(JSON.parse(withoutUsage(both, JSON.parse(both) as ChatChunk)!)).toEqual({ id: 'c', choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] });
  });

  it('never cuts a usage key that is not the top-level one', () => {
    const nested = '{"choices":[{"index":0,"delta":{"usage":null}}],"usage" : null}';
    expect(JSON.parse(withoutUsage(nested, JSON.parse(nested) as ChatChunk)!)).toEqual({ choices: [{ index: 0, delta: { usage: null } }] });
    const text = token('"usage":null');
    expect(withoutUsage(text, undefined)).toBe(text);
  });

  it('leaves a chunk without usage alone', () => {
    const data = token('a "usage" word');
    expect(withoutUsage(data, undefined)).toBe(data);
    expect(withoutUsage(data, JSON.parse(data) as ChatChunk)).toBe(data);
  });
});

describe('relayFrame', () => {
  it('gives a pretty-printed chunk one data line per line, so it reaches the client as one event', () => {
    const data = '{\n  "choices": []\n}';
    expect(dataFrame(data)).toBe('data: {\ndata:   "choices": []\ndata: }\n\n');
  });

  it('gives a token chunk recognised without parsing the same bytes as its parsed form, with usage asked for or not', () => {
    const tails = fc.constantFrom('', ',"usage":null', ',"usage":null,"obfuscation":"x"', ',"obfuscation":"x","usage":null', ',"usage":null,"usage":null', ',"system_fingerprint":"fp"');
    const text = fc.oneof(fc.string({ unit: 'binary', maxLength: 12 }), fc.constantFrom('"usage":null', ',"usage":null', '\\', '"'));
    fc.assert(
      fc.property(text, tails, fc.boolean(), (content, tail, includeUsage) => {
        const data = token(content, tail);
        const t = tokenChunkText(data);
        expect(t).toBe(content);
        expect(relayFrame({ wire: 'openai.chat', data, chunk: undefined, text: t!, finish: undefined }, includeUsage)).toBe(relayFrame(parsed(data), includeUsage));
      }),
      { numRuns: 2000 },
    );
  });
});
