import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ChatTranscoder } from '../apis/openai-chat/encoder.js';
import type { Part } from '../providers/provider.js';
import { ResponseBuilder } from './response-builder.js';

if (process.env.CI) fc.configureGlobal({ seed: 20261202 });

const head = { id: 'resp_abc123', created_at: 1, model: 'm', request: { input: 'hi' } };
const chunk = (delta: Record<string, unknown>, finish: string | null = null, extra: Record<string, unknown> = {}) => ({ choices: [{ index: 0, delta, finish_reason: finish }], ...extra });

describe('ResponseBuilder', () => {
  it('turns reasoning, text and a tool call into items, opened, filled and closed in order, numbered', () => {
    const b = new ResponseBuilder(head);
    const events = [
      ...b.start(),
      ...b.add(chunk({ role: 'assistant', reasoning_content: 'Think' })),
      ...b.add(chunk({ reasoning_content: 'ing.' })),
      ...b.add(chunk({ content: 'Let me ' })),
      ...b.add(chunk({ content: 'check.' })),
      ...b.add(chunk({ tool_calls: [{ index: 0, id: 'call_1', function: { name: 'f', arguments: '{"a"' } }] })),
      ...b.add(chunk({ tool_calls: [{ index: 0, function: { arguments: ':1}' } }] })),
      ...b.add(chunk({}, 'tool_calls')),
      ...b.add({ choices: [], usage: { prompt_tokens: 3, completion_tokens: 5, total_tokens: 8, completion_tokens_details: { reasoning_tokens: 2 } } }),
      ...b.end(),
    ];
    expect(events.map((e) => e.sequence_number)).toEqual(events.map((_, i) => i));
    expect(events.map((e) => e.type)).toEqual([
      'response.created',
      'response.in_progress',
      'response.output_item.added',
      'response.content_part.added',
      'response.reasoning_text.delta',
      'response.reasoning_text.delta',
      'response.reasoning_text.done',
      'response.content_part.done',
      'response.output_item.done',
      'response.output_item.added',
      'response.content_part.added',
      'response.output_text.delta',
      'response.output_text.delta',
      'response.output_item.added',
      'response.function_call_arguments.delta',
      'response.function_call_arguments.delta',
      'response.output_text.done',
      'response.content_part.done',
      'response.output_item.done',
      'response.function_call_arguments.done',
      'response.output_item.done',
      'response.completed',
    ]);
    const r = b.response();
    expect(r.status).toBe('completed');
    expect(r.output).toEqual([
      { id: expect.stringMatching(/^rs_/), type: 'reasoning', summary: [], content: [{ type: 'reasoning_text', text: 'Thinking.' }], status: 'completed' },
      { id: expect.stringMatching(/^msg_/), type: 'message', status: 'completed', role: 'assistant', content: [{ type: 'output_text', text: 'Let me check.', annotations: [], logprobs: [] }] },
      { id: expect.stringMatching(/^fc_/), type: 'function_call', status: 'completed', call_id: 'call_1', name: 'f', arguments: '{"a":1}' },
    ]);
    expect(r.usage).toEqual({ input_tokens: 3, input_tokens_details: { cached_tokens: 0 }, output_tokens: 5, output_tokens_details: { reasoning_tokens: 2 }, total_tokens: 8 });
  });

  it('ends incomplete on a length finish, and on an interruption keeps what was emitted', () => {
    const long = new ResponseBuilder(head);
    long.add(chunk({ content: 'abc' }, 'length'));
    expect(long.end().at(-1)).toMatchObject({ type: 'response.incomplete', response: { status: 'incomplete', incomplete_details: { reason: 'max_output_tokens' } } });

    const cut = new ResponseBuilder(head);
    cut.add(chunk({ content: 'Half a sen' }));
    const events = cut.incomplete('interrupted');
    expect(events.map((e) => e.type)).toEqual(['response.output_text.done', 'response.content_part.done', 'response.output_item.done', 'response.incomplete']);
    expect(cut.response()).toMatchObject({ status: 'incomplete', incomplete_details: { reason: 'interrupted' }, output: [{ status: 'incomplete', content: [{ text: 'Half a sen' }] }] });
  });

  it("builds from a token chunk's text what it builds from the chunk parsed", () => {
    // The stream hands token chunks over unparsed (token-chunk.ts): text() must stand in for add() on them exactly.
    fc.assert(
      fc.property(fc.array(fc.string({ unit: 'grapheme', maxLength: 6 }), { maxLength: 8 }), (texts) => {
        const parsed = new ResponseBuilder(head);
        const unparsed = new ResponseBuilder(head);
        const a = [...parsed.start(), ...parsed.add(chunk({ role: 'assistant', content: '' }))];
        const b = [...unparsed.start(), ...unparsed.text('')];
        for (const t of texts) {
          a.push(...parsed.add(chunk({ content: t })));
          b.push(...unparsed.text(t));
        }
        a.push(...parsed.add(chunk({}, 'stop')), ...parsed.end());
        b.push(...unparsed.add(chunk({}, 'stop')), ...unparsed.end());
        expect(b).toEqual(a);
        expect(unparsed.response()).toEqual(parsed.response());
      }),
      { numRuns: 300 },
    );
  });

  it("builds from another wire's parts what it builds from the Chat Completions chunks they would be transcoded into", () => {
    const tool = (index: number, id: string | undefined, name: string | undefined, args: string): Part => ({ type: 'tool_call', index, id, name, arguments: args });
    const answers: Part[][] = [
      [{ type: 'start', model: 'x' }, { type: 'text', text: 'Hel' }, { type: 'text', text: 'lo' }, { type: 'usage', usage: { input: 3, output: 2, cacheRead: 1 } }, { type: 'finish', reason: 'stop', native: 'STOP' }],
      [
        { type: 'reasoning', text: 'Think' },
        { type: 'reasoning', text: 'ing.' },
        { type: 'reasoning_signature', signature: 'gemini:c2ln' },
        tool(0, 'call_a', 'f', '{"a":1}'),
        tool(1, 'call_b', 'g', ''),
        tool(1, undefined, undefined, '{"b":2}'),
        { type: 'usage', usage: { input: 5, output: 9, reasoning: 4, estimated: true } },
        { type: 'finish', reason: 'tool_calls', native: 'tool_use' },
      ],
      [{ type: 'refusal', text: 'No.' }, { type: 'finish', reason: 'length', native: 'MAX_TOKENS' }],
    ];
    for (const parts of answers) {
      const viaChunks = new ResponseBuilder(head);
      const viaParts = new ResponseBuilder(head);
      const chat = new ChatTranscoder({ id: 'c', model: 'm', created: 1 });
      const a = [...viaChunks.start()];
      const b = [...viaParts.start()];
      for (const p of parts) {
        const d = { wire: 'gemini' as const, data: '', chunk: {}, text: '', finish: undefined, parts: [p] };
        for (const c of chat.delta(d)) a.push(...(c.chunk ? viaChunks.add(c.chunk) : viaChunks.text(c.text)));
        b.push(...viaParts.parts([p]));
      }
      for (const c of chat.end()) a.push(...(c.chunk ? viaChunks.add(c.chunk) : viaChunks.text(c.text)));
      a.push(...viaChunks.end());
      b.push(...viaParts.end());
      expect(b).toEqual(a);
      expect(viaParts.response()).toEqual(viaChunks.response());
    }
  });
});
