// Chat Completions → Gemini: each field where docs/providers.md says it goes, the thought signature carried on the
// first function call of the turn it belongs to, and what cannot be honoured refused naming the parameter.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { JarvisError } from '../../errors.js';
import { CHAT_TO_GEMINI, SKIP_THOUGHT_SIGNATURE, toGeminiRequest } from './request.js';
import { GEMINI_SCHEMA_RULES, toGeminiSchema } from './schema.js';

const M3 = { model: 'gemini-3-flash-preview' };
const M25 = { model: 'gemini-2.5-flash' };

function refusal(fn: () => unknown): { code: string; param: string | null } {
  try {
    fn();
  } catch (err) {
    if (err instanceof JarvisError) return { code: err.code, param: err.param };
    throw err;
  }
  throw new Error('not refused');
}

const weather = { type: 'function', function: { name: 'get_weather', description: 'Weather', parameters: { type: 'object', properties: { location: { type: 'string' } }, required: ['location'], additionalProperties: false } } };

describe('toGeminiRequest', () => {
  it('system and developer into systemInstruction, roles into user/model, sampling into generationConfig', () => {
    const body = toGeminiRequest(
      {
        model: 'x',
        messages: [
          { role: 'system', content: 'Be brief.' },
          { role: 'developer', content: [{ type: 'text', text: 'Use metric.' }] },
          { role: 'user', content: 'Hi' },
          { role: 'assistant', content: 'Hello' },
          { role: 'user', content: [{ type: 'text', text: 'Weather?' }, { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } }, { type: 'image_url', image_url: { url: 'https://example.com/a.jpg' } }] },
        ],
        max_tokens: 100,
        temperature: 0.5,
        top_p: 0.9,
        stop: 'END',
        seed: 7,
        reasoning_effort: 'low',
      },
      M3,
    );
    expect(body).toEqual({
      contents: [
        { role: 'user', parts: [{ text: 'Hi' }] },
        { role: 'model', parts: [{ text: 'Hello' }] },
        { role: 'user', parts: [{ text: 'Weather?' }, { inlineData: { mimeType: 'image/png', data: 'AAAA' } }, { fileData: { fileUri: 'https://example.com/a.jpg', mimeType: 'image/jpeg' } }] },
      ],
      systemInstruction: { parts: [{ text: 'Be brief.' }, { text: 'Use metric.' }] },
      generationConfig: { maxOutputTokens: 100, temperature: 0.5, topP: 0.9, stopSequences: ['END'], seed: 7, thinkingConfig: { thinkingLevel: 'low', includeThoughts: true } },
    });
  });

  it('reasoning effort: a budget on Gemini 2.x, none without thoughts; thoughts included by default on models that think', () => {
    const turn = { messages: [{ role: 'user', content: 'Hi' }] };
    expect(toGeminiRequest({ ...turn, reasoning_effort: 'medium' }, M25).generationConfig).toEqual({ thinkingConfig: { thinkingBudget: 8192, includeThoughts: true } });
    expect(toGeminiRequest({ ...turn, reasoning_effort: 'none' }, M25).generationConfig).toEqual({ thinkingConfig: { thinkingBudget: 0 } });
    expect(toGeminiRequest(turn, M3).generationConfig).toEqual({ thinkingConfig: { includeThoughts: true } });
    expect(toGeminiRequest(turn, { model: 'gemini-flash-latest' }).generationConfig).toEqual({ thinkingConfig: { includeThoughts: true } });
    for (const model of ['gemini-2.0-flash', 'gemma-3-27b-it']) expect(toGeminiRequest(turn, { model }).generationConfig).toBeUndefined();
  });

  it('a tool loop: calls into functionCall parts, results into functionResponse parts named by the call, signatures carried', () => {
    const body = toGeminiRequest(
      {
        messages: [
          { role: 'user', content: 'Weather in Paris and Tokyo?' },
          {
            role: 'assistant',
            content: null,
            thinking_blocks: [{ type: 'thinking', thinking: 'claude', signature: 'anthropic-sig' }, { type: 'thinking', thinking: '', signature: 'gemini:R0VN' }],
            tool_calls: [
              { id: 'call_a', type: 'function', function: { name: 'get_weather', arguments: '{"location":"Paris"}' } },
              { id: 'call_b', type: 'function', function: { name: 'get_time', arguments: '' } },
            ],
          },
          { role: 'tool', tool_call_id: 'call_a', content: '{"temp":21}' },
          { role: 'tool', tool_call_id: 'call_b', content: '10:00' },
        ],
        tools: [weather],
        tool_choice: 'required',
      },
      M3,
    );
    expect(body.contents).toEqual([
      { role: 'user', parts: [{ text: 'Weather in Paris and Tokyo?' }] },
      { role: 'model', parts: [{ functionCall: { name: 'get_weather', args: { location: 'Paris' } }, thoughtSignature: 'R0VN' }, { functionCall: { name: 'get_time', args: {} } }] },
      { role: 'user', parts: [{ functionResponse: { name: 'get_weather', response: { temp: 21 } } }, { functionResponse: { name: 'get_time', response: { result: '10:00' } } }] },
    ]);
    expect(body.tools).toEqual([{ functionDeclarations: [{ name: 'get_weather', description: 'Weather', parameters: { type: 'OBJECT', properties: { location: { type: 'STRING' } }, required: ['location'] } }] }]);
    expect(body.toolConfig).toEqual({ functionCallingConfig: { mode: 'ANY' } });
  });

  it('a lost signature: the remembered one, else the documented skip value on models that check them, else none', () => {
    const turn = (thinking?: unknown[]) => ({
      messages: [
        { role: 'user', content: 'q' },
        { role: 'assistant', ...(thinking ? { thinking_blocks: thinking } : {}), tool_calls: [{ id: 'call_a', type: 'function', function: { name: 'f', arguments: '{}' } }] },
        { role: 'tool', tool_call_id: 'call_a', content: 'r' },
      ],
    });
    const first = (b: Record<string, unknown>) => (b.contents as { parts: Record<string, unknown>[] }[])[1]!.parts[0]!;
    expect(first(toGeminiRequest(turn(), { ...M3, signatureOf: (id) => (id === 'call_a' ? 'TUVN' : undefined) })).thoughtSignature).toBe('TUVN');
    expect(first(toGeminiRequest(turn([{ type: 'thinking', thinking: '', signature: 'anthropic' }]), M3)).thoughtSignature).toBe(SKIP_THOUGHT_SIGNATURE);
    expect(first(toGeminiRequest(turn(), M25)).thoughtSignature).toBeUndefined();
    expect(first(toGeminiRequest(turn(), { model: 'gemma-3-27b-it' })).thoughtSignature).toBeUndefined();
  });

  it.each([
    ['tool_choice none', { tool_choice: 'none' }, { functionCallingConfig: { mode: 'NONE' } }],
    ['tool_choice auto', { tool_choice: 'auto' }, { functionCallingConfig: { mode: 'AUTO' } }],
    ['a named function', { tool_choice: { type: 'function', function: { name: 'get_weather' } } }, { functionCallingConfig: { mode: 'ANY', allowedFunctionNames: ['get_weather'] } }],
  ])('%s', (_, choice, expected) => {
    expect(toGeminiRequest({ messages: [{ role: 'user', content: 'q' }], tools: [weather], ...choice }, M3).toolConfig).toEqual(expected);
  });

  it('allowed_tools: required among some is ANY with their names; auto among some sends only those; among all, the mode alone', () => {
    const time = { type: 'function', function: { name: 'get_time' } };
    const turn = (mode: string, names: string[]) =>
      toGeminiRequest({ messages: [{ role: 'user', content: 'q' }], tools: [weather, time], tool_choice: { type: 'allowed_tools', allowed_tools: { mode, tools: names.map((name) => ({ type: 'function', function: { name } })) } } }, M3);
    expect(turn('required', ['get_time']).toolConfig).toEqual({ functionCallingConfig: { mode: 'ANY', allowedFunctionNames: ['get_time'] } });
    const some = turn('auto', ['get_time']);
    expect(some.toolConfig).toEqual({ functionCallingConfig: { mode: 'AUTO' } });
    expect(some.tools).toEqual([{ functionDeclarations: [{ name: 'get_time' }] }]);
    const all = turn('auto', ['get_weather', 'get_time']);
    expect(all.toolConfig).toEqual({ functionCallingConfig: { mode: 'AUTO' } });
    expect((all.tools as { functionDeclarations: unknown[] }[])[0]!.functionDeclarations).toHaveLength(2);
  });

  it.each([
    ['n', { n: 2 }],
    ['logprobs', { logprobs: true }],
    ['parallel_tool_calls', { parallel_tool_calls: false }],
    ['audio', { audio: { voice: 'alloy' } }],
    ['modalities', { modalities: ['text', 'audio'] }],
    ['reasoning_effort', { reasoning_effort: 'extreme' }],
    ['tools[0].type', { tools: [{ type: 'web_search' }] }],
    ['tools[0].function.parameters.properties.n.multipleOf', { tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object', properties: { n: { type: 'number', multipleOf: 2 } } } } }] }],
  ])('refuses %s with unsupported_value naming it', (param, extra) => {
    expect(refusal(() => toGeminiRequest({ messages: [{ role: 'user', content: 'q' }], ...extra }, M3))).toEqual({ code: 'unsupported_value', param });
  });

  it('a tool result for a call the conversation does not hold is a 400 naming it', () => {
    expect(refusal(() => toGeminiRequest({ messages: [{ role: 'user', content: 'q' }, { role: 'tool', tool_call_id: 'nope', content: 'r' }] }, M3))).toEqual({ code: 'invalid_value', param: 'messages[1].tool_call_id' });
  });
});

describe('toGeminiSchema', () => {
  it('converts what Gemini has another way to say and leaves out what only narrows', () => {
    expect(
      toGeminiSchema(
        {
          $schema: 'https://json-schema.org/draft/2020-12/schema',
          type: 'object',
          properties: {
            when: { type: 'string', format: 'date-time' },
            email: { type: 'string', format: 'email' },
            unit: { const: 'c' },
            note: { type: ['string', 'null'] },
            either: { oneOf: [{ type: 'string' }, { type: 'integer' }] },
            place: { $ref: '#/$defs/Place' },
            tags: { type: 'array', items: { type: 'string' }, examples: [['a']] },
          },
          additionalProperties: false,
          $defs: { Place: { type: 'object', properties: { city: { type: 'string' } } } },
        },
        'p',
      ),
    ).toEqual({
      type: 'OBJECT',
      properties: {
        when: { type: 'STRING', format: 'date-time' },
        email: { type: 'STRING' },
        unit: { enum: ['c'], type: 'STRING' },
        note: { type: 'STRING', nullable: true },
        either: { anyOf: [{ type: 'STRING' }, { type: 'INTEGER' }] },
        place: { type: 'OBJECT', properties: { city: { type: 'STRING' } } },
        tags: { type: 'ARRAY', items: { type: 'STRING' }, example: ['a'] },
      },
    });
  });

  it('refuses a recursive schema', () => {
    const schema = { type: 'object', properties: { next: { $ref: '#/$defs/Node' } }, $defs: { Node: { type: 'object', properties: { next: { $ref: '#/$defs/Node' } } } } };
    expect(refusal(() => toGeminiSchema(schema, 'p')).code).toBe('unsupported_value');
  });
});

describe('docs/providers.md', () => {
  const docs = readFileSync(new URL('../../../docs/providers.md', import.meta.url), 'utf8');
  const esc = (text: string) => text.replaceAll('|', '\\|');
  it('shows every row of the request mapping and of the schema rules as the code has them', () => {
    for (const r of CHAT_TO_GEMINI) expect(docs).toContain(`| ${esc(r.chat)} | ${esc(r.gemini)} | ${esc(r.note)} |`);
    for (const r of GEMINI_SCHEMA_RULES) expect(docs).toContain(`| ${esc(r.keyword)} | ${esc(r.becomes)} |`);
  });
});
