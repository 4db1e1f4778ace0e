// What a provider recalls before it encodes a turn: the unsigned tool turns only, and only what this instance
// lacks; with nothing to recall the stream opens at once, without a generator in the way.
import { describe, expect, it } from 'vitest';
import type { Delta } from './provider.js';
import { SignedThinking, unsignedToolCalls, withRecalled, type SignatureMemory } from './signed-thinking.js';

const call = (id: string) => ({ id, type: 'function', function: { name: 'f', arguments: '{}' } });
const messages = [
  { role: 'user', content: 'q' },
  { role: 'assistant', tool_calls: [call('a1'), call('a2')] },
  { role: 'tool', tool_call_id: 'a1', content: 'r' },
  { role: 'assistant', thinking_blocks: [], tool_calls: [call('b1')] },
  { role: 'assistant', content: 'no calls' },
  { role: 'assistant', tool_calls: [call('c1')] },
];

describe('unsignedToolCalls', () => {
  it("names the first call of each assistant turn that brings no thinking_blocks back", () => {
    expect(unsignedToolCalls(messages)).toEqual(['a1', 'c1']);
    expect(unsignedToolCalls('nonsense')).toEqual([]);
  });
});

describe('withRecalled', () => {
  const stream: AsyncIterable<Delta[]> = { [Symbol.asyncIterator]: () => ({ next: async () => ({ done: true, value: undefined }) }) };

  it('opens at once when the memory is this instance\'s own, or knows every call', () => {
    const own = new SignedThinking();
    expect(withRecalled(own, messages, new AbortController().signal, () => stream)).toBe(stream);
    const shared: SignatureMemory = { remember: () => {}, get: () => [{ type: 'thinking' }], recall: () => Promise.reject(new Error('not asked')) };
    expect(withRecalled(shared, messages, new AbortController().signal, () => stream)).toBe(stream);
  });

  it('asks the shared memory for what it lacks, then opens', async () => {
    const asked: string[][] = [];
    let opened = false;
    const shared: SignatureMemory = {
      remember: () => {},
      get: (id) => (id === 'a1' ? [{ type: 'thinking' }] : undefined),
      recall: async (ids) => void asked.push([...ids]),
    };
    const it = withRecalled(shared, messages, new AbortController().signal, () => ((opened = true), stream));
    expect(opened).toBe(false);
    for await (const _ of it) void _;
    expect(asked).toEqual([['c1']]);
    expect(opened).toBe(true);
  });
});
