import { describe, expect, it } from 'vitest';
import { JarvisError } from '../errors.js';
import { toChatBody } from './translate.js';

const refusal = (body: Record<string, unknown>) => {
  try {
    toChatBody(body, []);
  } catch (err) {
    if (err instanceof JarvisError) return { code: err.code, param: err.param };
    throw err;
  }
  throw new Error('not refused');
};

describe('toChatBody', () => {
  it('turns instructions, history and input items into messages, in order', () => {
    const history = [
      { type: 'message', role: 'user', content: 'Weather in Paris?' },
      { type: 'function_call', call_id: 'call_1', name: 'get_weather', arguments: '{"location":"Paris"}' },
      { type: 'function_call', call_id: 'call_2', name: 'get_weather', arguments: '{"location":"Lyon"}' },
      { type: 'reasoning', id: 'rs_1', summary: [] },
    ];
    const input = [
      { type: 'function_call_output', call_id: 'call_1', output: '{"t":21}' },
      { type: 'function_call_output', call_id: 'call_2', output: { t: 19 } },
      { role: 'user', content: [{ type: 'input_text', text: 'And ' }, { type: 'input_text', text: 'tomorrow?' }] },
    ];
    const { chat } = toChatBody({ model: 'm', instructions: 'Be brief.', input, max_output_tokens: 50, text: { format: { type: 'json_object' } }, reasoning: { effort: 'low' } }, history);
    expect(chat).toEqual({
      model: 'm',
      max_tokens: 50,
      response_format: { type: 'json_object' },
      reasoning_effort: 'low',
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'Weather in Paris?' },
        {
          role: 'assistant',
          content: null,
          tool_calls: [
            { id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"location":"Paris"}' } },
            { id: 'call_2', type: 'function', function: { name: 'get_weather', arguments: '{"location":"Lyon"}' } },
          ],
        },
        { role: 'tool', tool_call_id: 'call_1', content: '{"t":21}' },
        { role: 'tool', tool_call_id: 'call_2', content: '{"t":19}' },
        { role: 'user', content: [{ type: 'text', text: 'And ' }, { type: 'text', text: 'tomorrow?' }] },
      ],
    });
  });

  it('writes function tools, tool_choice and a JSON schema format as Chat Completions does', () => {
    const { chat } = toChatBody(
      {
        input: 'hi',
        tools: [{ type: 'function', name: 'f', description: 'd', parameters: { type: 'object' }, strict: true }],
        tool_choice: { type: 'function', name: 'f' },
        text: { format: { type: 'json_schema', name: 'out', schema: { type: 'object' }, strict: true } },
      },
      [],
    );
    expect(chat.tools).toEqual([{ type: 'function', function: { name: 'f', description: 'd', parameters: { type: 'object' }, strict: true } }]);
    expect(chat.tool_choice).toEqual({ type: 'function', function: { name: 'f' } });
    expect(chat.response_format).toEqual({ type: 'json_schema', json_schema: { name: 'out', schema: { type: 'object' }, strict: true } });
  });

  it('an assistant turn goes back as text', () => {
    const { chat } = toChatBody({ input: [{ type: 'message', role: 'assistant', content: [{ type: 'output_text', text: 'Hello' }] }, { role: 'user', content: 'again' }] }, []);
    expect(chat.messages).toEqual([
      { role: 'assistant', content: 'Hello' },
      { role: 'user', content: 'again' },
    ]);
  });

  it.each([
    [{ input: 'hi', background: true }, 'background'],
    [{ input: 'hi', tools: [{ type: 'web_search' }] }, 'tools[0].type'],
    [{ input: [{ type: 'item_reference', id: 'x' }] }, 'input[0].type'],
    [{ input: [{ role: 'user', content: [{ type: 'input_file', file_id: 'f' }] }] }, 'input[0].content[0].type'],
    [{ input: 'hi', text: { format: { type: 'grammar' } } }, 'text.format.type'],
    [{ input: 'hi', include: ['file_search_call.results'] }, 'include'],
    [{ input: 'hi', truncation: 'auto' }, 'truncation'],
    [{ input: 'hi', tool_choice: { type: 'web_search' } }, 'tool_choice'],
  ])('refuses %j naming the parameter', (body, param) => {
    expect(refusal(body)).toEqual({ code: 'unsupported_value', param });
  });

  it('refuses malformed input as invalid_value', () => {
    expect(refusal({ input: 42 })).toEqual({ code: 'invalid_value', param: 'input' });
    expect(refusal({ input: [{ type: 'message', role: 'tool', content: 'x' }] })).toEqual({ code: 'invalid_value', param: 'input[0].role' });
    expect(refusal({ input: [{ type: 'function_call', name: 'f' }] })).toEqual({ code: 'invalid_value', param: 'input[0]' });
  });
});
