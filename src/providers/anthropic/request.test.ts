import { describe, expect, it } from 'vitest';
import { invalid, refusalOf, unsupported } from '../../../test/support/refusal.js';
import type { Obj } from '../../json.js';
import { CHAT_TO_ANTHROPIC, DEFAULT_THINKING_BUDGETS, toAnthropicRequest, type AnthropicRequestOptions } from './request.js';

const OPTS: AnthropicRequestOptions = { model: 'claude-test', version: '2023-06-01', dropParams: false, defaultMaxTokens: 1000 };
const hi = [{ role: 'user', content: 'hi' }];

function translate(chat: Obj, opts: Partial<AnthropicRequestOptions> = {}, signatures?: (id: string) => Obj[] | undefined) {
  return toAnthropicRequest(chat, { ...OPTS, ...opts }, signatures);
}
const body = (chat: Obj, opts: Partial<AnthropicRequestOptions> = {}) => translate(chat, opts).body;

const refusal = (chat: Obj, opts: Partial<AnthropicRequestOptions> = {}) => refusalOf(() => translate(chat, opts));

describe('toAnthropicRequest: messages', () => {
  it('hoists system and developer messages from anywhere into system, and streams', () => {
    const out = translate({
      model: 'route-name',
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'hi' },
        { role: 'developer', content: [{ type: 'text', text: 'Answer in French.' }, { type: 'text', text: '' }] },
        { role: 'assistant', content: 'Bonjour' },
        { role: 'user', content: [{ type: 'text', text: 'encore' }] },
      ],
    });
    expect(out).toEqual({
      dropped: [],
      body: {
        model: 'claude-test',
        max_tokens: 1000,
        system: [
          { type: 'text', text: 'Be brief.' },
          { type: 'text', text: 'Answer in French.' },
        ],
        messages: [
          { role: 'user', content: [{ type: 'text', text: 'hi' }] },
          { role: 'assistant', content: [{ type: 'text', text: 'Bonjour' }] },
          { role: 'user', content: [{ type: 'text', text: 'encore' }] },
        ],
        stream: true,
      },
    });
  });

  it('a single system text is a string; no system message means no system', () => {
    expect(body({ messages: [{ role: 'system', content: 'S' }, ...hi] }).system).toBe('S');
    expect(body({ messages: hi })).not.toHaveProperty('system');
    expect(body({ messages: [{ role: 'system', content: '' }, ...hi] })).not.toHaveProperty('system');
  });

  it('merges consecutive turns of the same role and leaves out turns with no content', () => {
    const { messages } = body({
      messages: [
        { role: 'user', content: 'a' },
        { role: 'system', content: 'S' },
        { role: 'user', content: 'b' },
        { role: 'assistant', content: '' },
        { role: 'user', content: [{ type: 'text', text: 'c' }] },
        { role: 'assistant', content: 'x' },
        { role: 'assistant', content: [{ type: 'refusal', refusal: 'y' }] },
      ],
    });
    expect(messages).toEqual([
      { role: 'user', content: [{ type: 'text', text: 'a' }, { type: 'text', text: 'b' }, { type: 'text', text: 'c' }] },
      { role: 'assistant', content: [{ type: 'text', text: 'x' }, { type: 'text', text: 'y' }] },
    ]);
  });

  it('turns a base64 data URL and an https URL into image blocks', () => {
    const { messages } = body({
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'What is this?' },
            { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=', detail: 'high' } },
            { type: 'image_url', image_url: { url: 'https://example.com/cat.jpg' } },
          ],
        },
      ],
    });
    expect(messages).toEqual([
      {
        role: 'user',
        content: [
          { type: 'text', text: 'What is this?' },
          { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'iVBORw0KGgo=' } },
          { type: 'image', source: { type: 'url', url: 'https://example.com/cat.jpg' } },
        ],
      },
    ]);
  });

  it.each([
    ['http://example.com/cat.jpg', unsupported('messages[0].content[0].image_url.url')],
    ['file:///etc/passwd', unsupported('messages[0].content[0].image_url.url')],
    ['data:application/pdf;base64,JVBERi0=', unsupported('messages[0].content[0].image_url.url')],
    ['data:image/png,notbase64', unsupported('messages[0].content[0].image_url.url')],
    [42, invalid('messages[0].content[0].image_url.url')],
  ])('refuses the image URL %s', (url, expected) => {
    expect(refusal({ messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url } }] }] })).toEqual(expected);
  });

  it('turns tool calls into tool_use blocks and tool messages into one user turn of tool_result blocks', () => {
    const { messages } = body({
      messages: [
        { role: 'user', content: 'Weather in Paris and Lyon?' },
        {
          role: 'assistant',
          content: 'Looking.',
          tool_calls: [
            { id: 'call_1', type: 'function', function: { name: 'weather', arguments: '{"city":"Paris"}' } },
            { id: 'call_2', type: 'function', function: { name: 'weather', arguments: '' } },
          ],
        },
        { role: 'tool', tool_call_id: 'call_1', content: '21C' },
        { role: 'tool', tool_call_id: 'call_2', content: [{ type: 'text', text: '19C' }, { type: 'text', text: 'cloudy' }] },
        { role: 'user', content: 'Thanks' },
      ],
    });
    expect(messages).toEqual([
      { role: 'user', content: [{ type: 'text', text: 'Weather in Paris and Lyon?' }] },
      {
        role: 'assistant',
        content: [
          { type: 'text', text: 'Looking.' },
          { type: 'tool_use', id: 'call_1', name: 'weather', input: { city: 'Paris' } },
          { type: 'tool_use', id: 'call_2', name: 'weather', input: {} },
        ],
      },
      {
        role: 'user',
        content: [
          { type: 'tool_result', tool_use_id: 'call_1', content: '21C' },
          { type: 'tool_result', tool_use_id: 'call_2', content: [{ type: 'text', text: '19C' }, { type: 'text', text: 'cloudy' }] },
          { type: 'text', text: 'Thanks' },
        ],
      },
    ]);
  });

  it('keeps tool results first when a user message comes before them, and an empty result has no content', () => {
    const { messages } = body({
      messages: [
        { role: 'assistant', content: null, tool_calls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: '{}' } }] },
        { role: 'user', content: 'meanwhile' },
        { role: 'tool', tool_call_id: 'c', content: '' },
      ],
    });
    expect(messages).toEqual([
      { role: 'assistant', content: [{ type: 'tool_use', id: 'c', name: 'f', input: {} }] },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'c' }, { type: 'text', text: 'meanwhile' }] },
    ]);
  });

  it.each([
    ['{"city":', invalid('messages[1].tool_calls[0].function.arguments')],
    ['[1,2]', invalid('messages[1].tool_calls[0].function.arguments')],
    ['"text"', invalid('messages[1].tool_calls[0].function.arguments')],
  ])('refuses tool call arguments %s', (args, expected) => {
    const messages = [...hi, { role: 'assistant', tool_calls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: args } }] }];
    expect(refusal({ messages })).toEqual(expected);
  });

  it('puts thinking_blocks first in the assistant turn', () => {
    const thinking = [
      { type: 'thinking', thinking: 'Let me see.', signature: 'sig-1' },
      { type: 'redacted_thinking', data: 'opaque' },
    ];
    const { messages } = body({
      messages: [...hi, { role: 'assistant', content: 'Done.', thinking_blocks: thinking, reasoning_content: 'Let me see.' }],
    });
    expect(messages).toEqual([
      { role: 'user', content: [{ type: 'text', text: 'hi' }] },
      { role: 'assistant', content: [...thinking, { type: 'text', text: 'Done.' }] },
    ]);
  });

  it("asks `signatures` for the thinking of a turn that made tool calls, by its first call's id, when it has no thinking_blocks", () => {
    const asked: string[] = [];
    const signed = [{ type: 'thinking', thinking: 'I need the weather.', signature: 'sig-2' }];
    const signatures = (id: string) => {
      asked.push(id);
      return id === 'call_1' ? signed : undefined;
    };
    const calls = [
      { id: 'call_1', type: 'function', function: { name: 'f', arguments: '{}' } },
      { id: 'call_2', type: 'function', function: { name: 'f', arguments: '{}' } },
    ];
    const { body: out } = translate(
      {
        messages: [
          ...hi,
          { role: 'assistant', content: null, tool_calls: calls },
          { role: 'tool', tool_call_id: 'call_1', content: 'a' },
          { role: 'tool', tool_call_id: 'call_2', content: 'b' },
          { role: 'assistant', content: null, tool_calls: [{ id: 'call_3', type: 'function', function: { name: 'f', arguments: '{}' } }] },
        ],
      },
      {},
      signatures,
    );
    expect(asked).toEqual(['call_1', 'call_3']);
    const turns = out.messages as { content: Obj[] }[];
    expect(turns[1]?.content[0]).toEqual(signed[0]);
    expect(turns[3]?.content).toEqual([{ type: 'tool_use', id: 'call_3', name: 'f', input: {} }]);

    // A turn's own thinking_blocks win: the store is not asked.
    asked.length = 0;
    translate({ messages: [...hi, { role: 'assistant', tool_calls: calls, thinking_blocks: [] }] }, {}, signatures);
    expect(asked).toEqual([]);
  });

  it.each([
    [{ messages: [{ role: 'system', content: 'only a system prompt' }] }, invalid('messages')],
    [{ messages: [] }, invalid('messages')],
    [{ messages: [{ role: 'user', content: '' }] }, invalid('messages')],
    [{}, invalid('messages')],
    [{ messages: 'hi' }, invalid('messages')],
    [{ messages: [{ role: 'robot', content: 'x' }] }, invalid('messages[0].role')],
    [{ messages: [{ role: 'function', name: 'f', content: 'x' }] }, unsupported('messages[0].role')],
    [{ messages: [{ role: 'tool', content: 'x' }] }, invalid('messages[0].tool_call_id')],
    [{ messages: [{ role: 'user', content: [{ type: 'input_audio', input_audio: { data: '', format: 'wav' } }] }] }, unsupported('messages[0].content[0].type')],
    [{ messages: [{ role: 'user', content: [{ type: 'file', file: { file_id: 'f' } }] }] }, unsupported('messages[0].content[0].type')],
    [{ messages: [{ role: 'system', content: [{ type: 'image_url', image_url: { url: 'https://x/y.png' } }] }, ...hi] }, unsupported('messages[0].content[0].type')],
    [{ messages: [{ role: 'assistant', content: [{ type: 'image_url', image_url: { url: 'https://x/y.png' } }] }] }, unsupported('messages[0].content[0].type')],
    [{ messages: [{ role: 'assistant', tool_calls: [{ id: 'c', type: 'custom', custom: {} }] }] }, unsupported('messages[0].tool_calls[0].type')],
    [{ messages: [{ role: 'assistant', tool_calls: [{ type: 'function', function: { name: 'f', arguments: '{}' } }] }] }, invalid('messages[0].tool_calls[0].id')],
    [{ messages: [{ role: 'assistant', content: 'x', thinking_blocks: [{ type: 'thinking', thinking: 'no signature' }] }] }, invalid('messages[0].thinking_blocks[0]')],
  ])('refuses malformed or unservable messages %#', (chat, expected) => {
    expect(refusal(chat)).toEqual(expected);
  });
});

describe('toAnthropicRequest: tools', () => {
  it('turns function tools into Anthropic tools, with an empty object schema by default', () => {
    const out = body({
      messages: hi,
      tools: [
        { type: 'function', function: { name: 'weather', description: 'Weather of a city', parameters: { type: 'object', properties: { city: { type: 'string' } } }, strict: true } },
        { type: 'function', function: { name: 'now' } },
      ],
    });
    expect(out.tools).toEqual([
      { name: 'weather', description: 'Weather of a city', input_schema: { type: 'object', properties: { city: { type: 'string' } } }, strict: true },
      { name: 'now', input_schema: { type: 'object', properties: {} } },
    ]);
    expect(out).not.toHaveProperty('tool_choice');
  });

  const tools = [{ type: 'function', function: { name: 'f' } }];
  it.each([
    ['auto', undefined, { type: 'auto' }],
    ['none', undefined, { type: 'none' }],
    ['required', undefined, { type: 'any' }],
    [{ type: 'function', function: { name: 'f' } }, undefined, { type: 'tool', name: 'f' }],
    [undefined, false, { type: 'auto', disable_parallel_tool_use: true }],
    ['required', false, { type: 'any', disable_parallel_tool_use: true }],
    [{ type: 'function', function: { name: 'f' } }, false, { type: 'tool', name: 'f', disable_parallel_tool_use: true }],
    ['none', false, { type: 'none' }],
    ['auto', true, { type: 'auto' }],
  ])('tool_choice %j with parallel_tool_calls %j is %j', (choice, parallel, expected) => {
    expect(body({ messages: hi, tools, tool_choice: choice, parallel_tool_calls: parallel }).tool_choice).toEqual(expected);
  });

  it("without tools, tool_choice 'auto' / 'none' and parallel_tool_calls mean nothing; a required tool is refused", () => {
    expect(body({ messages: hi, tool_choice: 'none', parallel_tool_calls: false })).not.toHaveProperty('tool_choice');
    expect(body({ messages: hi, tools: [], tool_choice: 'auto' })).not.toHaveProperty('tools');
    expect(refusal({ messages: hi, tool_choice: 'required' })).toEqual(invalid('tool_choice'));
  });

  it.each([
    [{ messages: hi, tools: [{ type: 'web_search' }] }, unsupported('tools[0].type')],
    [{ messages: hi, tools: [{ type: 'custom', custom: { name: 'x' } }] }, unsupported('tools[0].type')],
    [{ messages: hi, tools: [{ type: 'function', function: {} }] }, invalid('tools[0].function.name')],
    [{ messages: hi, tools: [{ type: 'function', function: { name: 'f', parameters: 'x' } }] }, invalid('tools[0].function.parameters')],
    [{ messages: hi, tools, tool_choice: 'allowed_tools' }, unsupported('tool_choice')],
    [{ messages: hi, tools, tool_choice: { type: 'allowed_tools', allowed_tools: {} } }, unsupported('tool_choice')],
    [{ messages: hi, tools, parallel_tool_calls: 'no' }, invalid('parallel_tool_calls')],
  ])('refuses tools it cannot serve %#', (chat, expected) => {
    expect(refusal(chat)).toEqual(expected);
  });
});

describe('toAnthropicRequest: parameters', () => {
  it('max_tokens is max_completion_tokens, else max_tokens, else the default', () => {
    expect(body({ messages: hi, max_completion_tokens: 10, max_tokens: 20 }).max_tokens).toBe(10);
    expect(body({ messages: hi, max_tokens: 20 }).max_tokens).toBe(20);
    expect(body({ messages: hi }).max_tokens).toBe(1000);
    expect(body({ messages: hi }, { defaultMaxTokens: 64 }).max_tokens).toBe(64);
    expect(refusal({ messages: hi, max_tokens: 0 })).toEqual(invalid('max_tokens'));
    expect(refusal({ messages: hi, max_completion_tokens: 1.5 })).toEqual(invalid('max_completion_tokens'));
  });

  it('passes temperature, top_p, top_k, stop and user', () => {
    const out = body({ messages: hi, temperature: 0.2, top_p: 0.9, top_k: 40, stop: ['END', 'STOP'], user: 'u-42' });
    expect(out).toMatchObject({ temperature: 0.2, top_p: 0.9, top_k: 40, stop_sequences: ['END', 'STOP'], metadata: { user_id: 'u-42' } });
    expect(body({ messages: hi, stop: 'END' }).stop_sequences).toEqual(['END']);
    expect(body({ messages: hi, stop: [] })).not.toHaveProperty('stop_sequences');
    expect(body({ messages: hi, temperature: 1 }).temperature).toBe(1);
    expect(body({ messages: hi, temperature: 0 }).temperature).toBe(0);
  });

  it('safety_identifier is the user id when there is no user', () => {
    expect(body({ messages: hi, safety_identifier: 'h-1' }).metadata).toEqual({ user_id: 'h-1' });
    expect(body({ messages: hi, safety_identifier: 'h-1', user: 'u-1' }).metadata).toEqual({ user_id: 'u-1' });
  });

  it('accepts and ignores what changes nothing about the answer; stream is always true', () => {
    const out = body({
      messages: hi,
      stream: false,
      stream_options: { include_usage: true },
      n: 1,
      store: true,
      metadata: { tag: 'x' },
      prompt_cache_key: 'k',
      logprobs: false,
      top_logprobs: 0,
      presence_penalty: 0,
      frequency_penalty: 0,
      logit_bias: {},
      response_format: { type: 'text' },
      modalities: ['text'],
      service_tier: 'auto',
      seed: null,
      reasoning_effort: 'none',
    });
    expect(out).toEqual({ model: 'claude-test', max_tokens: 1000, messages: [{ role: 'user', content: [{ type: 'text', text: 'hi' }] }], stream: true });
  });

  it("service_tier 'default' is Anthropic's standard_only", () => {
    expect(body({ messages: hi, service_tier: 'default' }).service_tier).toBe('standard_only');
  });

  it.each([
    [{ n: 2 }, unsupported('n')],
    [{ n: 0 }, invalid('n')],
    [{ logprobs: true }, unsupported('logprobs')],
    [{ top_logprobs: 3 }, unsupported('top_logprobs')],
    [{ response_format: { type: 'json_object' } }, unsupported('response_format')],
    [{ response_format: { type: 'json_schema', json_schema: { name: 'x', schema: {} } } }, unsupported('response_format')],
    [{ presence_penalty: 0.5 }, unsupported('presence_penalty')],
    [{ frequency_penalty: -1 }, unsupported('frequency_penalty')],
    [{ logit_bias: { '50256': -100 } }, unsupported('logit_bias')],
    [{ audio: { voice: 'alloy', format: 'wav' } }, unsupported('audio')],
    [{ modalities: ['text', 'audio'] }, unsupported('modalities')],
    [{ prediction: { type: 'content', content: 'x' } }, unsupported('prediction')],
    [{ web_search_options: {} }, unsupported('web_search_options')],
    [{ seed: 7 }, unsupported('seed')],
    [{ functions: [{ name: 'f' }] }, unsupported('functions')],
    [{ verbosity: 'low' }, unsupported('verbosity')],
    [{ made_up: true }, unsupported('made_up')],
    [{ service_tier: 'flex' }, unsupported('service_tier')],
    [{ temperature: 1.5 }, unsupported('temperature')],
    [{ temperature: -0.1 }, invalid('temperature')],
    [{ temperature: '0.5' }, invalid('temperature')],
    [{ top_p: 2 }, invalid('top_p')],
    [{ top_k: 0 }, invalid('top_k')],
    [{ stop: [' '] }, unsupported('stop')],
    [{ stop: [1] }, invalid('stop')],
    [{ user: 42 }, invalid('user')],
    [{ reasoning_effort: 'xhigh' }, unsupported('reasoning_effort')],
  ])('refuses %j', (fields, expected) => {
    expect(refusal({ messages: hi, ...fields })).toEqual(expected);
  });

  it('every field of the mapping table is documented with what it becomes', () => {
    for (const row of CHAT_TO_ANTHROPIC) {
      expect(row.chat).not.toBe('');
      expect(row.anthropic).not.toBe('');
    }
    for (const field of ['temperature', 'reasoning_effort', 'tool_choice', 'stop', 'user', 'response_format', 'logit_bias', 'seed']) {
      expect(CHAT_TO_ANTHROPIC.some((row) => row.chat.includes(field))).toBe(true);
    }
  });
});

describe('toAnthropicRequest: reasoning_effort', () => {
  it.each(['minimal', 'low', 'medium', 'high'] as const)('%s enables thinking with the default budget and room for the answer', (effort) => {
    const budget = DEFAULT_THINKING_BUDGETS[effort];
    const out = body({ messages: hi, reasoning_effort: effort, max_tokens: 500 });
    expect(out.thinking).toEqual({ type: 'enabled', budget_tokens: budget });
    expect(out.max_tokens).toBe(budget + 500);
  });

  it('documents the default budgets', () => {
    expect(DEFAULT_THINKING_BUDGETS).toEqual({ minimal: 1024, low: 2048, medium: 8192, high: 24576 });
  });

  it('keeps max_tokens when it already exceeds the budget; raises it when equal', () => {
    expect(body({ messages: hi, reasoning_effort: 'low', max_tokens: 4000 }).max_tokens).toBe(4000);
    expect(body({ messages: hi, reasoning_effort: 'low', max_tokens: 2048 }).max_tokens).toBe(4096);
    expect(body({ messages: hi, reasoning_effort: 'low' }).max_tokens).toBe(3048);
  });

  it('uses the configured budgets', () => {
    const thinkingBudgets = { minimal: 1100, low: 3000, medium: 9000, high: 30000 };
    expect(body({ messages: hi, reasoning_effort: 'medium', max_tokens: 20000 }, { thinkingBudgets }).thinking).toEqual({ type: 'enabled', budget_tokens: 9000 });
  });

  it("'none' is no thinking", () => {
    expect(body({ messages: hi, reasoning_effort: 'none', temperature: 0.3 })).not.toHaveProperty('thinking');
  });

  it('with thinking, takes temperature 1 and top_p from 0.95, and refuses the rest', () => {
    expect(body({ messages: hi, reasoning_effort: 'low', temperature: 1, top_p: 0.95 })).toMatchObject({ temperature: 1, top_p: 0.95 });
    expect(refusal({ messages: hi, reasoning_effort: 'low', temperature: 0.7 })).toEqual(unsupported('temperature'));
    expect(refusal({ messages: hi, reasoning_effort: 'low', top_p: 0.5 })).toEqual(unsupported('top_p'));
    expect(refusal({ messages: hi, reasoning_effort: 'low', top_k: 5 })).toEqual(unsupported('top_k'));
  });

  it('with thinking, refuses a tool_choice that forces tool use', () => {
    const tools = [{ type: 'function', function: { name: 'f' } }];
    expect(refusal({ messages: hi, tools, reasoning_effort: 'low', tool_choice: 'required' })).toEqual(unsupported('tool_choice'));
    expect(refusal({ messages: hi, tools, reasoning_effort: 'low', tool_choice: { type: 'function', function: { name: 'f' } } })).toEqual(unsupported('tool_choice'));
    expect(body({ messages: hi, tools, reasoning_effort: 'low', tool_choice: 'auto' }).tool_choice).toEqual({ type: 'auto' });
  });
});

describe('toAnthropicRequest: anthropic-version', () => {
  const NEW = { version: '2026-10-21' };

  it.each(['temperature', 'top_p', 'top_k'])('from 2026-10-21, %s is refused', (key) => {
    expect(refusal({ messages: hi, [key]: 1 }, NEW)).toEqual(unsupported(key));
    expect(refusal({ messages: hi, [key]: 1 }, { version: '2027-01-01' })).toEqual(unsupported(key));
  });

  it('from 2026-10-21 with dropParams, they are left out and named in dropped', () => {
    const out = translate({ messages: hi, temperature: 1.7, top_p: 0.5, top_k: 3, max_tokens: 9 }, { ...NEW, dropParams: true });
    expect(out.dropped).toEqual(['temperature', 'top_p', 'top_k']);
    expect(out.body).not.toHaveProperty('temperature');
    expect(out.body).not.toHaveProperty('top_p');
    expect(out.body).not.toHaveProperty('top_k');
    expect(out.body.max_tokens).toBe(9);
  });

  it('before 2026-10-21 they are sent, dropParams or not; absent or null, nothing is dropped', () => {
    expect(translate({ messages: hi, temperature: 0.5 }, { version: '2026-10-20', dropParams: true })).toMatchObject({ body: { temperature: 0.5 }, dropped: [] });
    expect(translate({ messages: hi, temperature: null }, { ...NEW, dropParams: false }).dropped).toEqual([]);
  });
});
