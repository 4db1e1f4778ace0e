import { describe, expect, it } from 'vitest';
import { invalid, refusalOf, unsupported } from '../../../test/support/refusal.js';
import type { Obj } from '../../json.js';
import { DEFAULT_THINKING_BUDGETS, toAnthropicRequest } from '../../providers/anthropic/request.js';
import { estimateInputTokens, messagesToChat, THINKING_EFFORT_THRESHOLDS } from './to-chat.js';

const hi = [{ role: 'user', content: 'hi' }];

const refusal = (body: Obj) => refusalOf(() => messagesToChat(body));

describe('messagesToChat', () => {
  it('turns a whole conversation into Chat Completions messages', () => {
    const chat = messagesToChat({
      model: 'claude-sonnet',
      max_tokens: 256,
      system: 'Be brief.',
      messages: [
        { role: 'user', content: 'Weather in Paris?' },
        {
          role: 'assistant',
          content: [
            { type: 'thinking', thinking: 'I should call the tool.', signature: 'sig-1' },
            { type: 'redacted_thinking', data: 'opaque' },
            { type: 'text', text: 'Let me check.' },
            { type: 'tool_use', id: 'toolu_1', name: 'weather', input: { city: 'Paris' } },
          ],
        },
        {
          role: 'user',
          content: [
            { type: 'text', text: 'Also, hurry.' },
            { type: 'tool_result', tool_use_id: 'toolu_1', content: '21C' },
          ],
        },
      ],
    });
    expect(chat).toEqual({
      model: 'claude-sonnet',
      max_completion_tokens: 256,
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'Weather in Paris?' },
        {
          role: 'assistant',
          content: 'Let me check.',
          tool_calls: [{ id: 'toolu_1', type: 'function', function: { name: 'weather', arguments: '{"city":"Paris"}' } }],
          reasoning_content: 'I should call the tool.',
          thinking_blocks: [
            { type: 'thinking', thinking: 'I should call the tool.', signature: 'sig-1' },
            { type: 'redacted_thinking', data: 'opaque' },
          ],
        },
        { role: 'tool', tool_call_id: 'toolu_1', content: '21C' },
        { role: 'user', content: 'Also, hurry.' },
      ],
    });
  });

  it('system text blocks: one is a string, several are text parts; an empty system is none', () => {
    expect(messagesToChat({ system: [{ type: 'text', text: 'S', cache_control: { type: 'ephemeral' } }], messages: hi }).messages).toEqual([{ role: 'system', content: 'S' }, ...hi]);
    expect((messagesToChat({ system: [{ type: 'text', text: 'A' }, { type: 'text', text: 'B' }], messages: hi }).messages as Obj[])[0]).toEqual({
      role: 'system',
      content: [
        { type: 'text', text: 'A' },
        { type: 'text', text: 'B' },
      ],
    });
    expect(messagesToChat({ system: '', messages: hi }).messages).toEqual(hi);
    expect(messagesToChat({ system: [], messages: hi }).messages).toEqual(hi);
  });

  it('user text blocks: one is a string, several (or with images) are parts; images become image_url parts', () => {
    const chat = messagesToChat({
      messages: [
        { role: 'user', content: [{ type: 'text', text: 'only' }] },
        { role: 'assistant', content: [{ type: 'text', text: 'a' }, { type: 'text', text: 'b' }] },
        {
          role: 'user',
          content: [
            { type: 'text', text: 'What is this?' },
            { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'iVBORw0KGgo=' } },
            { type: 'image', source: { type: 'url', url: 'https://example.com/cat.jpg' } },
          ],
        },
      ],
    });
    expect(chat.messages).toEqual([
      { role: 'user', content: 'only' },
      { role: 'assistant', content: 'ab' },
      {
        role: 'user',
        content: [
          { type: 'text', text: 'What is this?' },
          { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } },
          { type: 'image_url', image_url: { url: 'https://example.com/cat.jpg' } },
        ],
      },
    ]);
  });

  it('tool results become tool messages before the rest of the turn; an error result says so', () => {
    const chat = messagesToChat({
      messages: [
        {
          role: 'assistant',
          content: [
            { type: 'tool_use', id: 't1', name: 'f', input: {} },
            { type: 'tool_use', id: 't2', name: 'g', input: { deep: { list: [1, 2] } } },
            { type: 'tool_use', id: 't3', name: 'h' },
          ],
        },
        {
          role: 'user',
          content: [
            { type: 'tool_result', tool_use_id: 't1', content: [{ type: 'text', text: 'part 1' }, { type: 'text', text: 'part 2' }] },
            { type: 'tool_result', tool_use_id: 't2', content: 'not found', is_error: true },
            { type: 'tool_result', tool_use_id: 't3' },
          ],
        },
      ],
    });
    expect(chat.messages).toEqual([
      {
        role: 'assistant',
        content: null,
        tool_calls: [
          { id: 't1', type: 'function', function: { name: 'f', arguments: '{}' } },
          { id: 't2', type: 'function', function: { name: 'g', arguments: '{"deep":{"list":[1,2]}}' } },
          { id: 't3', type: 'function', function: { name: 'h', arguments: '{}' } },
        ],
      },
      { role: 'tool', tool_call_id: 't1', content: [{ type: 'text', text: 'part 1' }, { type: 'text', text: 'part 2' }] },
      { role: 'tool', tool_call_id: 't2', content: 'Error: not found' },
      { role: 'tool', tool_call_id: 't3', content: '' },
    ]);
    expect((messagesToChat({ messages: [{ role: 'user', content: [{ type: 'tool_result', tool_use_id: 'x', is_error: true }] }] }).messages as Obj[])[0]).toEqual({
      role: 'tool',
      tool_call_id: 'x',
      content: 'Error',
    });
  });

  it('tools become function tools', () => {
    const chat = messagesToChat({
      messages: hi,
      tools: [
        { name: 'weather', description: 'Weather of a city', input_schema: { type: 'object', properties: { city: { type: 'string' } } }, cache_control: { type: 'ephemeral' } },
        { type: 'custom', name: 'now', input_schema: { type: 'object' }, strict: true },
      ],
    });
    expect(chat.tools).toEqual([
      { type: 'function', function: { name: 'weather', description: 'Weather of a city', parameters: { type: 'object', properties: { city: { type: 'string' } } } } },
      { type: 'function', function: { name: 'now', parameters: { type: 'object' }, strict: true } },
    ]);
  });

  it.each([
    [{ type: 'auto' }, 'auto', undefined],
    [{ type: 'any' }, 'required', undefined],
    [{ type: 'none' }, 'none', undefined],
    [{ type: 'tool', name: 'f' }, { type: 'function', function: { name: 'f' } }, undefined],
    [{ type: 'auto', disable_parallel_tool_use: true }, 'auto', false],
    [{ type: 'any', disable_parallel_tool_use: true }, 'required', false],
    [{ type: 'tool', name: 'f', disable_parallel_tool_use: true }, { type: 'function', function: { name: 'f' } }, false],
    [{ type: 'auto', disable_parallel_tool_use: false }, 'auto', undefined],
  ])('tool_choice %j is %j with parallel_tool_calls %j', (choice, expected, parallel) => {
    const chat = messagesToChat({ messages: hi, tools: [{ name: 'f', input_schema: { type: 'object' } }], tool_choice: choice });
    expect(chat.tool_choice).toEqual(expected);
    expect(chat.parallel_tool_calls).toBe(parallel);
  });

  it('passes sampling, stop sequences and the user id', () => {
    const chat = messagesToChat({ messages: hi, temperature: 0.3, top_p: 0.8, stop_sequences: ['END'], metadata: { user_id: 'u-1' } });
    expect(chat).toEqual({ messages: hi, temperature: 0.3, top_p: 0.8, stop: ['END'], user: 'u-1' });
    expect(messagesToChat({ messages: hi, stop_sequences: [], metadata: {} })).toEqual({ messages: hi });
  });

  it('a stream asks for usage; a non-streamed request says so', () => {
    expect(messagesToChat({ messages: hi, stream: true })).toMatchObject({ stream: true, stream_options: { include_usage: true } });
    const plain = messagesToChat({ messages: hi, stream: false });
    expect(plain.stream).toBe(false);
    expect(plain).not.toHaveProperty('stream_options');
    expect(messagesToChat({ messages: hi })).not.toHaveProperty('stream');
  });

  it.each([
    [1024, 'minimal'],
    [1535, 'minimal'],
    [1536, 'low'],
    [2048, 'low'],
    [5119, 'low'],
    [5120, 'medium'],
    [8192, 'medium'],
    [16383, 'medium'],
    [16384, 'high'],
    [24576, 'high'],
    [100000, 'high'],
  ])('a thinking budget of %i is reasoning_effort %s', (budget, effort) => {
    expect(messagesToChat({ messages: hi, thinking: { type: 'enabled', budget_tokens: budget } }).reasoning_effort).toBe(effort);
  });

  it("each of request.ts's default budgets comes back as its own effort", () => {
    for (const [effort, budget] of Object.entries(DEFAULT_THINKING_BUDGETS)) {
      expect(THINKING_EFFORT_THRESHOLDS.find((row) => budget < row.below)?.effort).toBe(effort);
    }
  });

  it('disabled or adaptive thinking asks no reasoning_effort; output_config.effort does when thinking gives none', () => {
    expect(messagesToChat({ messages: hi, thinking: { type: 'disabled' } })).not.toHaveProperty('reasoning_effort');
    expect(messagesToChat({ messages: hi, thinking: { type: 'adaptive' } })).not.toHaveProperty('reasoning_effort');
    expect(messagesToChat({ messages: hi, thinking: { type: 'adaptive' }, output_config: { effort: 'low' } }).reasoning_effort).toBe('low');
    expect(messagesToChat({ messages: hi, thinking: { type: 'enabled', budget_tokens: 24576 }, output_config: { effort: 'low' } }).reasoning_effort).toBe('high');
  });

  it('ignores cache_control and service_tier auto', () => {
    expect(messagesToChat({ messages: hi, cache_control: { type: 'ephemeral' }, service_tier: 'auto' })).toEqual({ messages: hi });
  });

  it.each([
    [{ top_k: 5 }, unsupported('top_k')],
    [{ stop_sequences: ['a', 'b', 'c', 'd', 'e'] }, unsupported('stop_sequences')],
    [{ stop_sequences: 'END' }, invalid('stop_sequences')],
    [{ container: 'container_1' }, unsupported('container')],
    [{ mcp_servers: [{ type: 'url', url: 'https://mcp.example.com', name: 'x' }] }, unsupported('mcp_servers')],
    [{ service_tier: 'standard_only' }, unsupported('service_tier')],
    [{ made_up: 1 }, unsupported('made_up')],
    [{ inference_geo: 'us' }, unsupported('inference_geo')],
    [{ output_config: { format: { type: 'json_schema', schema: {} } } }, unsupported('output_config.format')],
    [{ output_config: { effort: 'max' } }, unsupported('output_config.effort')],
    [{ tools: [{ type: 'web_search_20250305', name: 'web_search' }] }, unsupported('tools[0].type')],
    [{ tools: [{ type: 'bash_20250124', name: 'bash' }] }, unsupported('tools[0].type')],
    [{ tools: [{ name: 'f' }] }, invalid('tools[0].input_schema')],
    [{ tool_choice: { type: 'tool' } }, invalid('tool_choice.name')],
    [{ tool_choice: { type: 'maybe' } }, unsupported('tool_choice.type')],
    [{ thinking: { type: 'enabled' } }, invalid('thinking.budget_tokens')],
    [{ thinking: { type: 'sometimes' } }, invalid('thinking.type')],
    [{ max_tokens: 0 }, invalid('max_tokens')],
    [{ temperature: 1.5 }, invalid('temperature')],
    [{ metadata: { user_id: 5 } }, invalid('metadata.user_id')],
    [{ stream: 'yes' }, invalid('stream')],
    [{ system: [{ type: 'image', source: { type: 'url', url: 'https://x/y.png' } }] }, unsupported('system[0].type')],
  ])('refuses %j', (fields, expected) => {
    expect(refusal({ messages: hi, ...fields })).toEqual(expected);
  });

  it.each([
    [[], invalid('messages')],
    ['hi', invalid('messages')],
    [[{ role: 'system', content: 'x' }], invalid('messages[0].role')],
    [[{ role: 'user', content: 5 }], invalid('messages[0].content')],
    [[{ role: 'user', content: [{ type: 'document', source: { type: 'text', media_type: 'text/plain', data: 'x' } }] }], unsupported('messages[0].content[0].type')],
    [[{ role: 'user', content: [{ type: 'image', source: { type: 'file', file_id: 'f' } }] }], unsupported('messages[0].content[0].source.type')],
    [[{ role: 'user', content: [{ type: 'tool_result', tool_use_id: 't', content: [{ type: 'image', source: { type: 'url', url: 'https://x' } }] }] }], unsupported('messages[0].content[0].content[0].type')],
    [[{ role: 'user', content: [{ type: 'tool_use', id: 't', name: 'f', input: {} }] }], invalid('messages[0].content[0].type')],
    [[{ role: 'assistant', content: [{ type: 'tool_result', tool_use_id: 't' }] }], invalid('messages[0].content[0].type')],
    [[{ role: 'assistant', content: [{ type: 'server_tool_use', id: 's', name: 'web_search', input: {} }] }], unsupported('messages[0].content[0].type')],
    [[{ role: 'assistant', content: [{ type: 'thinking', thinking: 'x' }] }], invalid('messages[0].content[0].signature')],
    [[{ role: 'assistant', content: [{ type: 'tool_use', name: 'f', input: {} }] }], invalid('messages[0].content[0].id')],
  ])('refuses the messages %j', (messages, expected) => {
    expect(refusal({ messages })).toEqual(expected);
  });
});

describe('round trips', () => {
  const opts = { model: 'claude-test', version: '2023-06-01', dropParams: false, defaultMaxTokens: 1000 };

  it('chat → anthropic → chat keeps tool ids, arguments and thinking signatures', () => {
    const thinking = [
      { type: 'thinking', thinking: 'Two cities: two calls.', signature: 'EqQBCkYIARgCIkD' },
      { type: 'redacted_thinking', data: 'EmwKAhgBEgy3va' },
    ];
    const messages = [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Weather in Paris and Lyon?' },
      {
        role: 'assistant',
        content: null,
        tool_calls: [
          { id: 'call_Ab1', type: 'function', function: { name: 'weather', arguments: '{"city":"Paris","units":"C"}' } },
          { id: 'call_Cd2', type: 'function', function: { name: 'weather', arguments: '{"city":"Lyon","days":[1,2]}' } },
        ],
        thinking_blocks: thinking,
      },
      { role: 'tool', tool_call_id: 'call_Ab1', content: '21C' },
      { role: 'tool', tool_call_id: 'call_Cd2', content: '19C' },
      { role: 'user', content: 'Thanks' },
    ];
    const tools = [{ type: 'function', function: { name: 'weather', description: 'Weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }];
    const chat = { model: 'route', messages, tools, tool_choice: 'auto', max_tokens: 300, reasoning_effort: 'low', stream: true };

    const { body } = toAnthropicRequest(chat, opts);
    const back = messagesToChat(body);
    expect(back).toEqual({
      model: 'claude-test',
      messages: [
        messages[0],
        messages[1],
        { ...messages[2], reasoning_content: 'Two cities: two calls.' },
        messages[3],
        messages[4],
        messages[5],
      ],
      tools,
      tool_choice: 'auto',
      max_completion_tokens: DEFAULT_THINKING_BUDGETS.low + 300,
      reasoning_effort: 'low',
      stream: true,
      stream_options: { include_usage: true },
    });
  });

  it('anthropic → chat → anthropic gives back the same request', () => {
    const anthropic = {
      model: 'claude-test',
      max_tokens: 4096,
      system: 'Be brief.',
      messages: [
        { role: 'user', content: [{ type: 'text', text: 'Look:' }, { type: 'image', source: { type: 'base64', media_type: 'image/jpeg', data: '/9j/4AAQ' } }] },
        {
          role: 'assistant',
          content: [
            { type: 'thinking', thinking: 'Zoom in.', signature: 'sig' },
            { type: 'text', text: 'Zooming.' },
            { type: 'tool_use', id: 'toolu_01', name: 'zoom', input: { factor: 2 } },
          ],
        },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_01', content: 'zoomed' }, { type: 'text', text: 'Well?' }] },
      ],
      tools: [{ name: 'zoom', description: 'Zoom in', input_schema: { type: 'object', properties: { factor: { type: 'number' } } } }],
      tool_choice: { type: 'auto', disable_parallel_tool_use: true },
      thinking: { type: 'enabled', budget_tokens: 2048 },
      stop_sequences: ['END'],
      metadata: { user_id: 'u-1' },
      stream: true,
    };
    expect(toAnthropicRequest(messagesToChat(anthropic), opts).body).toEqual(anthropic);
  });
});

describe('estimateInputTokens', () => {
  it('counts characters / 4, rounded up, over system, message text and tool definitions', () => {
    expect(estimateInputTokens({ messages: [{ role: 'user', content: 'abcd' }] })).toBe(1);
    expect(estimateInputTokens({ messages: [{ role: 'user', content: 'abcde' }] })).toBe(2);
    expect(estimateInputTokens({ system: [{ type: 'text', text: 'x'.repeat(8) }], messages: [{ role: 'user', content: [{ type: 'text', text: 'y'.repeat(8) }] }] })).toBe(4);
    const tools = [{ name: 'f', input_schema: { type: 'object' } }];
    expect(estimateInputTokens({ messages: [], tools })).toBe(Math.ceil(JSON.stringify(tools).length / 4));
  });

  it('counts tool inputs, tool results and thinking, and no images', () => {
    const body = {
      messages: [
        { role: 'assistant', content: [{ type: 'thinking', thinking: 'tttt', signature: 's' }, { type: 'tool_use', id: 'i', name: 'ff', input: { a: 1 } }] },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'i', content: [{ type: 'text', text: 'rrrr' }] }, { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'x'.repeat(1000) } }] },
      ],
    };
    // 'tttt' 4 + 'ff' 2 + '{"a":1}' 7 + 'rrrr' 4 = 17 characters.
    expect(estimateInputTokens(body)).toBe(5);
  });

  it('is at least 1 and never throws on odd shapes', () => {
    expect(estimateInputTokens({})).toBe(1);
    expect(estimateInputTokens({ system: 5, messages: 'x', tools: {} })).toBe(1);
    expect(estimateInputTokens({ messages: [null, { content: [null, 3, { type: 'tool_result', content: 'abcdefgh' }] }] })).toBe(2);
  });
});
