import { describe, expect, it } from 'vitest';
import type { ChatChunk } from '../providers/provider.js';
import { CompletionAssembler } from './completion-assembler.js';

const FALLBACK = { id: 'chatcmpl-jarvis', created: 1, model: 'asked' };
const chunk = (choices: object[], top: object = {}) => ({ id: 'up-1', object: 'chat.completion.chunk', created: 7, model: 'm-2024', choices, ...top });

function assemble(chunks: ChatChunk[], unfinished?: string) {
  const a = new CompletionAssembler();
  for (const c of chunks) a.add(c);
  return a.completion(FALLBACK, unfinished);
}

describe('CompletionAssembler', () => {
  it("joins text fragments, keeps the upstream's top-level members, and gives the message OpenAI's shape", () => {
    const out = assemble([
      chunk([{ index: 0, delta: { role: 'assistant', content: '', refusal: null }, logprobs: null, finish_reason: null }], { usage: null, obfuscation: 'x' }),
      chunk([{ index: 0, delta: { content: 'Hel' } }], { system_fingerprint: 'fp', usage: null }),
      chunk([{ index: 0, delta: { content: 'lo' }, finish_reason: 'stop' }]),
      chunk([], { usage: { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3, completion_tokens_details: { reasoning_tokens: 0 } } }),
    ]);
    expect(out).toEqual({
      id: 'up-1',
      object: 'chat.completion',
      created: 7,
      model: 'm-2024',
      system_fingerprint: 'fp',
      choices: [{ index: 0, message: { role: 'assistant', content: 'Hello', refusal: null, annotations: [] }, logprobs: null, finish_reason: 'stop' }],
      usage: { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3, completion_tokens_details: { reasoning_tokens: 0 } },
    });
  });

  it('assembles tool calls by index, arguments joined, with content null', () => {
    const out = assemble([
      chunk([{ index: 0, delta: { role: 'assistant', content: null, tool_calls: [{ index: 0, id: 'a', type: 'function', function: { name: 'f', arguments: '' } }] } }]),
      chunk([{ index: 0, delta: { tool_calls: [{ index: 1, id: 'b', type: 'function', function: { name: 'g', arguments: '{"y"' } }] } }]),
      chunk([{ index: 0, delta: { tool_calls: [{ index: 0, function: { arguments: '{"x":' } }, { index: 1, function: { arguments: ':2}' } }] } }]),
      chunk([{ index: 0, delta: { tool_calls: [{ index: 0, function: { arguments: '1}' } }] }, finish_reason: 'tool_calls' }]),
    ]);
    expect(out.choices).toEqual([
      {
        index: 0,
        finish_reason: 'tool_calls',
        logprobs: null,
        message: {
          role: 'assistant',
          content: null,
          refusal: null,
          annotations: [],
          tool_calls: [
            { id: 'a', type: 'function', function: { name: 'f', arguments: '{"x":1}' } },
            { id: 'b', type: 'function', function: { name: 'g', arguments: '{"y":2}' } },
          ],
        },
      },
    ]);
  });

  it('concatenates logprobs, joins reasoning under either name and unknown string keys, and never lets a null erase', () => {
    const lp = (t: string) => ({ token: t, logprob: -1, bytes: [], top_logprobs: [] });
    const out = assemble([
      chunk([{ index: 0, delta: { role: 'assistant', reasoning_content: 'th', reasoning: 'r1', vendor: 'a' }, logprobs: { content: [lp('a')], refusal: null } }]),
      chunk([{ index: 0, delta: { content: 'x', reasoning_content: 'ink', reasoning: null, vendor: 'b', annotations: [{ type: 'url_citation' }] }, logprobs: { content: [lp('b')], refusal: null } }]),
      chunk([{ index: 0, delta: { reasoning_content: null }, finish_reason: 'stop', stop_reason: 42 }]),
    ]);
    expect(out.choices).toEqual([
      {
        index: 0,
        finish_reason: 'stop',
        stop_reason: 42,
        logprobs: { content: [lp('a'), lp('b')], refusal: null },
        message: { role: 'assistant', content: 'x', refusal: null, annotations: [{ type: 'url_citation' }], reasoning_content: 'think', reasoning: 'r1', vendor: 'ab' },
      },
    ]);
  });

  it('keeps choices apart by index, in order, however they interleave', () => {
    const out = assemble([
      chunk([{ index: 1, delta: { content: 'B' } }]),
      chunk([{ index: 0, delta: { content: 'A' } }]),
      chunk([{ index: 1, delta: {}, finish_reason: 'length' }, { index: 0, delta: {}, finish_reason: 'stop' }]),
    ]);
    expect((out.choices as { index: number; finish_reason: string; message: { content: string } }[]).map((c) => [c.index, c.message.content, c.finish_reason])).toEqual([
      [0, 'A', 'stop'],
      [1, 'B', 'length'],
    ]);
  });

  it('ends a cancelled answer: open choices get the reason, and an answer with no chunk gets Jarvis’s own names', () => {
    expect(assemble([chunk([{ index: 0, delta: { content: 'par' } }])], 'cancelled').choices).toEqual([
      { index: 0, logprobs: null, finish_reason: 'cancelled', message: { role: 'assistant', content: 'par', refusal: null, annotations: [] } },
    ]);
    expect(assemble([], 'cancelled')).toMatchObject({ id: 'chatcmpl-jarvis', created: 1, model: 'asked', choices: [{ index: 0, finish_reason: 'cancelled', message: { content: null } }] });
  });

  it('ignores what is not a chunk of the OpenAI shape without failing', () => {
    const out = assemble([{ choices: 'nope' }, { choices: [null, 3, { index: 0, delta: 'x' }] }, chunk([{ delta: { content: 'ok' } }])]);
    expect(out.choices).toEqual([{ index: 0, logprobs: null, finish_reason: null, message: { role: 'assistant', content: 'ok', refusal: null, annotations: [] } }]);
  });
});
