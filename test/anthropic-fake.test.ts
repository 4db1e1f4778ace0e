// The Anthropic fake (fakes/anthropic) speaks Anthropic: the official SDK, pointed at it, assembles from its
// stream the same Message it returns unstreamed, raises its own error class for each HTTP failure after the
// retries it makes for that status, reports an error event mid-stream, closes the request it aborts, counts
// tokens, lists models, and carries a thinking block's signature into a tool round trip, which the fake checks.
import Anthropic, {
  APIError,
  APIUserAbortError,
  AuthenticationError,
  BadRequestError,
  InternalServerError,
  NotFoundError,
  OverloadedError,
  PermissionDeniedError,
  RateLimitError,
} from '@anthropic-ai/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ERRORS,
  REFUSAL_DETAILS,
  STREAM_ERROR,
  USAGE,
  answerFor,
  inputTokensOf,
  render,
  signatureValid,
  startAnthropicUpstream,
  type AnthropicUpstream,
} from '../fakes/anthropic/index.js';
import { abortAtFirstText, eventsOf } from './support/messages.js';

const KEY = 'sk-ant-api03-test';
const MODEL = 'claude-sonnet-5-5';
const MODELS = ['claude-opus-5-5', 'claude-sonnet-5-5', 'claude-haiku-4-5'];
const WEATHER = { name: 'get_weather', description: 'The weather in a city', input_schema: { type: 'object' as const, properties: { location: { type: 'string' } }, required: ['location'] } };
const TIME = { name: 'get_time', description: 'The time in a city', input_schema: { type: 'object' as const, properties: { location: { type: 'string' } } } };
const THINKING = { type: 'enabled' as const, budget_tokens: 1024 };

let fake: AnthropicUpstream;
beforeAll(async () => {
  fake = await startAnthropicUpstream({ apiKey: KEY, models: MODELS });
});
afterAll(() => fake.close());

const client = (opts: { apiKey?: string; maxRetries?: number; defaultHeaders?: Record<string, string> } = {}) => new Anthropic({ apiKey: KEY, baseURL: fake.url, maxRetries: 2, ...opts });

let tags = 0;
const tag = () => `#a${++tags}`;

/** The body as a plain object, for the fake's own helpers and for fields the SDK's types leave out. */
const asJson = (params: object) => params as Record<string, unknown>;

/** A Message as the SDK's stream helper assembles it, without the `parsed_output` the helper adds. */
function assembled(message: object): Record<string, unknown> {
  const { parsed_output: parsed, ...rest } = message as Record<string, unknown>;
  expect(parsed).toBeNull();
  return rest;
}

/** The server-sent events of a raw POST /v1/messages, checked for Anthropic's framing: `event:` names the data's type. */
async function rawEvents(body: object): Promise<Array<Record<string, unknown>>> {
  const res = await post(body);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
  return eventsOf(res.text);
}

async function post(body: object, headers: Record<string, string> = {}, path = '/v1/messages') {
  const res = await fetch(`${fake.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': KEY, 'anthropic-version': '2026-10-21', ...headers },
    body: JSON.stringify(body),
  });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

/** Each scenario's request: what it needs of the request (tools, thinking, stop sequences) to show itself. */
const SCENARIOS: Record<string, (t: string) => Anthropic.MessageCreateParamsNonStreaming> = {
  text: (t) => ({ model: MODEL, max_tokens: 256, messages: [{ role: 'user', content: `What is the answer? ${t}` }] }),
  'tokens:7': (t) => ({ model: MODEL, max_tokens: 256, messages: [{ role: 'user', content: `tokens:7 ${t}` }] }),
  tool: (t) => ({ model: MODEL, max_tokens: 256, tools: [WEATHER], messages: [{ role: 'user', content: `Weather in Paris? ${t}` }] }),
  'tools-2': (t) => ({ model: MODEL, max_tokens: 256, tools: [WEATHER, TIME], messages: [{ role: 'user', content: `scenario:tools-2 ${t}` }] }),
  thinking: (t) => ({ model: MODEL, max_tokens: 2048, thinking: THINKING, messages: [{ role: 'user', content: `scenario:thinking ${t}` }] }),
  'thinking-tool': (t) => ({ model: MODEL, max_tokens: 2048, thinking: THINKING, tools: [WEATHER], messages: [{ role: 'user', content: `scenario:thinking-tool ${t}` }] }),
  'thinking-redacted': (t) => ({ model: MODEL, max_tokens: 2048, thinking: THINKING, messages: [{ role: 'user', content: `scenario:thinking-redacted ${t}` }] }),
  'max-tokens': (t) => ({ model: MODEL, max_tokens: 5, messages: [{ role: 'user', content: `scenario:max-tokens ${t}` }] }),
  'stop-sequence': (t) => ({ model: MODEL, max_tokens: 256, stop_sequences: ['END'], messages: [{ role: 'user', content: `scenario:stop-sequence ${t}` }] }),
  refusal: (t) => ({ model: MODEL, max_tokens: 256, messages: [{ role: 'user', content: `scenario:refusal ${t}` }] }),
};

describe('the Anthropic SDK against the fake', () => {
  describe.each(Object.keys(SCENARIOS))('scenario %s', (name) => {
    it('streams the Message that it returns unstreamed, in the documented shape', async () => {
      const params = SCENARIOS[name]!(tag());
      const sdk = client();
      const streamed = assembled(await sdk.messages.stream(params).finalMessage());
      const created = await sdk.messages.create(params);
      expect(streamed).toEqual(created);
      // The fake's own description of the answer is what went over the wire, both ways.
      expect(created).toEqual(render(asJson(params), answerFor(asJson(params))).message);

      expect(created).toMatchObject({ id: expect.stringMatching(/^msg_01\w{22}$/), type: 'message', role: 'assistant', model: MODEL, container: null });
      expect(created._request_id).toMatch(/^req_011C\w{20}$/);
      const { input_tokens, output_tokens } = created.usage;
      expect(input_tokens).toBe(inputTokensOf(asJson(params)));
      expect(input_tokens).toBeGreaterThan(0);
      expect(created.usage).toEqual(USAGE(input_tokens, output_tokens, created.usage.output_tokens_details!.thinking_tokens));
      const text = created.content.flatMap((b) => (b.type === 'text' ? [b.text] : [])).join('');
      const types = created.content.map((b) => b.type);
      switch (name) {
        case 'text':
          expect({ types, text, stop: created.stop_reason, output_tokens }).toEqual({ types: ['text'], text: 'The answer is 42.', stop: 'end_turn', output_tokens: 4 });
          break;
        case 'tokens:7':
          expect({ text, output_tokens }).toEqual({ text: 't0 t1 t2 t3 t4 t5 t6 ', output_tokens: 7 });
          break;
        case 'tool':
        case 'tools-2':
        case 'thinking-tool': {
          const calls = created.content.filter((b) => b.type === 'tool_use');
          expect(created.stop_reason).toBe('tool_use');
          expect(calls).toEqual(
            (name === 'tools-2' ? [['get_weather', { location: 'Paris' }], ['get_time', { location: 'Tokyo', unit: 'c' }]] : [['get_weather', { location: 'Paris' }]]).map(([n, input]) => ({
              type: 'tool_use',
              id: expect.stringMatching(/^toolu_01\w{22}$/),
              name: n,
              input,
            })),
          );
          expect(new Set(calls.map((c) => c.id)).size).toBe(calls.length);
          expect(types).toEqual(name === 'thinking-tool' ? ['thinking', 'tool_use'] : name === 'tool' ? ['tool_use'] : ['tool_use', 'tool_use']);
          break;
        }
        case 'thinking':
        case 'thinking-redacted': {
          expect(types).toEqual(name === 'thinking' ? ['thinking', 'text'] : ['redacted_thinking', 'thinking', 'text']);
          const thought = created.content.find((b) => b.type === 'thinking')!;
          expect(thought).toEqual({ type: 'thinking', thinking: 'The user asks for the answer; it is 42.', signature: expect.any(String) });
          expect(signatureValid(thought.thinking, thought.signature)).toBe(true);
          expect(created.usage.output_tokens_details!.thinking_tokens).toBeGreaterThan(0);
          expect(text).toBe('The answer is 42.');
          break;
        }
        case 'max-tokens':
          expect({ stop: created.stop_reason, output_tokens }).toEqual({ stop: 'max_tokens', output_tokens: 5 });
          break;
        case 'stop-sequence':
          expect({ stop: created.stop_reason, seq: created.stop_sequence }).toEqual({ stop: 'stop_sequence', seq: 'END' });
          break;
        case 'refusal':
          expect({ stop: created.stop_reason, details: created.stop_details, text }).toEqual({ stop: 'refusal', details: REFUSAL_DETAILS, text: "I can't help with that." });
          break;
      }
      if (name !== 'stop-sequence') expect(created.stop_sequence).toBeNull();
    });

    it('streams the documented event flow', async () => {
      const params = SCENARIOS[name]!(tag());
      const events = await rawEvents({ ...params, stream: true });
      const types = events.map((e) => e.type);
      expect(types.slice(0, 3)).toEqual(['message_start', 'content_block_start', 'ping']);
      expect(types.slice(-2)).toEqual(['message_delta', 'message_stop']);
      const start = events[0]!.message as Record<string, unknown>;
      expect(start).toMatchObject({ content: [], stop_reason: null, stop_sequence: null, model: MODEL, usage: { input_tokens: inputTokensOf(asJson(params)), cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: 1 } });
      // Blocks one after the other, indexed in order; each delta of the kind its block takes.
      const expected = render(asJson(params), answerFor(asJson(params))).message;
      const content = expected.content as Array<Record<string, unknown>>;
      let open = -1;
      const json: string[] = [];
      for (const e of events.slice(1, -2)) {
        if (e.type === 'ping') continue;
        if (e.type === 'content_block_start') {
          expect(e.index).toBe(++open);
          json[open] = '';
          continue;
        }
        expect(e.index).toBe(open);
        if (e.type === 'content_block_stop') continue;
        const delta = e.delta as Record<string, string>;
        const kind = content[open]!.type;
        expect(delta.type).toBe({ text: 'text_delta', tool_use: 'input_json_delta', thinking: delta.type === 'signature_delta' ? 'signature_delta' : 'thinking_delta' }[kind as string]);
        if (delta.type === 'input_json_delta') json[open] = `${json[open] ?? ''}${delta.partial_json ?? ''}`;
      }
      expect(open).toBe(content.length - 1);
      content.forEach((b, i) => {
        if (b.type === 'tool_use') {
          expect(json[i]!.length).toBeGreaterThan(0);
          expect(JSON.parse(json[i]!)).toEqual(b.input);
        }
      });
      const tools = events.filter((e) => e.type === 'content_block_delta' && (e.delta as { type: string }).type === 'input_json_delta');
      if (tools.length > 0) expect(tools.length).toBeGreaterThan(2);
      expect(events.at(-2)).toEqual({
        type: 'message_delta',
        delta: { stop_reason: expected.stop_reason, stop_sequence: expected.stop_sequence, stop_details: expected.stop_details, container: null },
        usage: expect.objectContaining({ output_tokens: (expected.usage as { output_tokens: number }).output_tokens, input_tokens: start.usage && (start.usage as { input_tokens: number }).input_tokens }),
      });
    });
  });

  it('sends the key as a bearer token with anthropic-version 2026-10-21, and the fake accepts x-api-key too', async () => {
    const t = tag();
    await client().messages.create({ model: MODEL, max_tokens: 64, messages: [{ role: 'user', content: t }] });
    const [rec] = fake.requestsFor(t);
    expect(rec!.headers).toMatchObject({ authorization: `Bearer ${KEY}`, 'anthropic-version': '2026-10-21' });
    expect(rec!.headers['x-api-key']).toBeUndefined();
    expect(rec).toMatchObject({ method: 'POST', path: '/v1/messages', scenario: 'text', prompt: t, clientClosed: false });
    await rec!.closed;
    expect((await post({ model: MODEL, max_tokens: 64, messages: [{ role: 'user', content: 'hi' }] })).status).toBe(200);
  });

  it('echoes a model it does not know', async () => {
    const message = await client().messages.create({ model: 'claude-imaginary-9', max_tokens: 64, messages: [{ role: 'user', content: tag() }] });
    expect(message.model).toBe('claude-imaginary-9');
  });

  it('gives the same conversation the same ids', async () => {
    const params = SCENARIOS.tool!('same');
    const [a, b] = await Promise.all([client().messages.create(params), client().messages.create(params)]);
    expect(a).toEqual(b);
    expect(a._request_id).toBe(b._request_id);
  });
});

describe('HTTP errors', () => {
  // Status, the SDK's class for it, and how many requests the SDK makes with maxRetries 2: 4xx is not retried,
  // 429 and 5xx are. 529 has its own class, OverloadedError, a kind of InternalServerError.
  const cases: Array<[string, number, new (...args: never[]) => APIError, number]> = [
    ['http-400', 400, BadRequestError, 1],
    ['http-401', 401, AuthenticationError, 1],
    ['http-403', 403, PermissionDeniedError, 1],
    ['http-404', 404, NotFoundError, 1],
    ['http-429', 429, RateLimitError, 3],
    ['http-500', 500, InternalServerError, 3],
    ['http-529', 529, OverloadedError, 3],
  ];
  describe.each([false, true])('stream: %s', (stream) => {
    it.each(cases)('%s is a %i, raised as the SDK class for it after its retries', async (scenario, status, cls, requests) => {
      const t = tag();
      const params = { model: MODEL, max_tokens: 64, messages: [{ role: 'user' as const, content: `scenario:${scenario} ${t}` }] };
      const sdk = client();
      const err: unknown = await (stream ? sdk.messages.stream(params).finalMessage() : sdk.messages.create(params)).then(
        () => expect.fail('resolved'),
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(cls);
      const apiErr = err as APIError;
      const spec = ERRORS[scenario]!;
      expect({ status: apiErr.status, type: apiErr.type, apiMessage: apiErr.apiMessage }).toEqual({ status, type: spec.type, apiMessage: spec.message });
      expect(apiErr.error).toEqual({ type: 'error', error: { type: spec.type, message: spec.message }, request_id: apiErr.requestID });
      expect(apiErr.requestID).toMatch(/^req_011C/);
      if (status === 529) expect(err).toBeInstanceOf(InternalServerError);
      if (status === 429) expect(apiErr.headers?.get('retry-after')).toBe('1');
      const recs = fake.requestsFor(t);
      expect(recs.map((r) => r.headers['x-stainless-retry-count'])).toEqual(['0', '1', '2'].slice(0, requests));
      expect(recs.every((r) => r.scenario === scenario)).toBe(true);
    });
  });

  it('as Anthropic writes them: the error JSON and its request-id header', async () => {
    const res = await post({ model: MODEL, max_tokens: 64, messages: [{ role: 'user', content: 'scenario:http-403' }] });
    const body = JSON.parse(res.text) as { request_id: string };
    expect(res.status).toBe(403);
    expect(body).toEqual({ type: 'error', error: { type: 'permission_error', message: ERRORS['http-403']!.message }, request_id: expect.stringMatching(/^req_/) });
    expect(res.headers.get('request-id')).toBe(body.request_id);
  });

  it('a key the fake was not given is a 401 authentication_error, not retried', async () => {
    const t = tag();
    const err = await client({ apiKey: 'sk-ant-wrong' })
      .messages.create({ model: MODEL, max_tokens: 64, messages: [{ role: 'user', content: t }] })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AuthenticationError);
    expect((err as APIError).type).toBe('authentication_error');
    expect(fake.requestsFor(t)).toHaveLength(1);
  });
});

describe('streams that fail or are cut', () => {
  it('an error event mid-stream fails the SDK stream with its type, after the text before it, and is not retried', async () => {
    const t = tag();
    const stream = client().messages.stream({ model: MODEL, max_tokens: 64, messages: [{ role: 'user', content: `scenario:error-mid ${t}` }] });
    let text = '';
    stream.on('text', (delta) => (text += delta));
    const err = await stream.finalMessage().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(APIError);
    expect({ status: (err as APIError).status, type: (err as APIError).type, apiMessage: (err as APIError).apiMessage, error: (err as APIError).error }).toEqual({
      status: undefined,
      type: 'overloaded_error',
      apiMessage: 'Overloaded',
      error: STREAM_ERROR,
    });
    expect(text).toBe('Hello there and');
    expect(fake.requestsFor(t)).toHaveLength(1);
  });

  it('writes the error event as Anthropic does, and ends the response', async () => {
    const events = await rawEvents({ model: MODEL, max_tokens: 64, stream: true, messages: [{ role: 'user', content: 'scenario:error-mid' }] });
    expect(events.at(-1)).toEqual({ type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } });
    expect(events.map((e) => e.type)).not.toContain('message_stop');
  });

  it('unstreamed, the same overload is a 529, retried', async () => {
    const t = tag();
    const err = await client()
      .messages.create({ model: MODEL, max_tokens: 64, messages: [{ role: 'user', content: `scenario:error-mid ${t}` }] })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OverloadedError);
    expect(fake.requestsFor(t)).toHaveLength(3);
  });

  it('aborting mid-stream closes the request at the fake', async () => {
    const t = tag();
    const ac = new AbortController();
    const stream = client().messages.stream({ model: MODEL, max_tokens: 1024, messages: [{ role: 'user', content: `tokens:500 delay:20 ${t}` }] }, { signal: ac.signal });
    const { error: err, texts } = await abortAtFirstText(stream, ac);
    expect(err).toBeInstanceOf(APIUserAbortError);
    // Events that arrived in the same read as the first text may still be handled; the stream was cut all the same.
    expect(texts).toBeGreaterThanOrEqual(1);
    expect(texts).toBeLessThan(500);
    const [rec] = fake.requestsFor(t);
    await rec!.closed;
    expect(rec!.clientClosed).toBe(true);
    expect(fake.requestsFor(t)).toHaveLength(1);
  });
});

describe('count_tokens and models', () => {
  it('counts the tokens message_start reports for the same request', async () => {
    const params = { model: MODEL, system: 'Be brief.', tools: [WEATHER], messages: [{ role: 'user' as const, content: `How is the weather in Paris today? ${tag()}` }] };
    const counted = await client().messages.countTokens(params);
    expect(counted).toEqual({ input_tokens: inputTokensOf(asJson(params)) });
    const events = await rawEvents({ ...params, max_tokens: 64, stream: true });
    expect((events[0]!.message as { usage: { input_tokens: number } }).usage.input_tokens).toBe(counted.input_tokens);
  });

  it('lists the models, a page at a time when asked, counting the requests', async () => {
    const before = fake.modelListRequests;
    const all = [];
    for await (const m of client().models.list()) all.push(m);
    expect(all.map((m) => m.id)).toEqual(MODELS);
    expect(all[0]).toMatchObject({ type: 'model', id: 'claude-opus-5-5', display_name: 'Claude Opus 5.5', created_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/) });
    expect(fake.modelListRequests).toBe(before + 1);

    const page = await client().models.list({ limit: 1 });
    expect({ data: page.data.map((m) => m.id), has_more: page.has_more, first_id: page.first_id, last_id: page.last_id }).toEqual({
      data: ['claude-opus-5-5'],
      has_more: true,
      first_id: 'claude-opus-5-5',
      last_id: 'claude-opus-5-5',
    });
    const paged = [];
    for await (const m of client().models.list({ limit: 1 })) paged.push(m.id);
    expect(paged).toEqual(MODELS);
    expect(fake.modelListRequests).toBe(before + 1 + 1 + 3);
    expect(await client().models.retrieve('claude-haiku-4-5')).toMatchObject({ id: 'claude-haiku-4-5', display_name: 'Claude Haiku 4.5' });
    await expect(client().models.retrieve('claude-none')).rejects.toBeInstanceOf(NotFoundError);
  });
});

describe('a thinking tool round trip', () => {
  const first = async (t: string) => {
    const params = { ...SCENARIOS['thinking-tool']!(t) };
    const message = await client().messages.stream(params).finalMessage();
    const call = message.content.find((b) => b.type === 'tool_use')!;
    const second = (content: Anthropic.ContentBlockParam[]): Anthropic.MessageCreateParamsNonStreaming => ({
      ...params,
      messages: [...params.messages, { role: 'assistant', content }, { role: 'user', content: [{ type: 'tool_result', tool_use_id: call.id, content: '{"temperature":21}' }] }],
    });
    return { message, second };
  };
  const asParams = (blocks: Anthropic.ContentBlock[]) => blocks as Anthropic.ContentBlockParam[];

  it('answers the tool result when the assistant turn carries its thinking block and signature', async () => {
    const { message, second } = await first(tag());
    expect(message.content.map((b) => b.type)).toEqual(['thinking', 'tool_use']);
    const answer = await client().messages.create(second(asParams(message.content)));
    expect(answer.content).toEqual([{ type: 'text', text: 'The tool says: {"temperature":21}.' }]);
    expect(answer.stop_reason).toBe('end_turn');
    // Streamed, the same.
    expect(assembled(await client().messages.stream(second(asParams(message.content))).finalMessage())).toEqual(answer);
  });

  it('is a 400 without the thinking block, as Anthropic answers it', async () => {
    const { message, second } = await first(tag());
    const err = await client()
      .messages.create(second(asParams(message.content.filter((b) => b.type !== 'thinking'))))
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BadRequestError);
    expect((err as APIError).type).toBe('invalid_request_error');
    expect((err as APIError).apiMessage).toMatch(/^messages\.1\.content\.0\.type: Expected `thinking` or `redacted_thinking`, but found `tool_use`\./);
  });

  it('is a 400 when the signature or the thinking it signs was changed', async () => {
    const { message, second } = await first(tag());
    const thought = message.content[0] as Anthropic.ThinkingBlock;
    for (const changed of [{ ...thought, signature: `${thought.signature.slice(0, -4)}AAAA` }, { ...thought, thinking: `${thought.thinking} Also,` }]) {
      const err = await client()
        .messages.create(second([changed, ...asParams(message.content.slice(1))]))
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(BadRequestError);
      expect((err as APIError).apiMessage).toBe('messages.1.content.0: Invalid `signature` in `thinking` block');
    }
  });
});

describe('validation', () => {
  const base = { model: MODEL, max_tokens: 64, messages: [{ role: 'user' as const, content: 'hi' }] };

  it.each(['temperature', 'top_p', 'top_k'])('2026-10-21 refuses %s, naming it; 2023-06-01 accepts it', async (param) => {
    const params = { ...base, [param]: param === 'top_k' ? 40 : 1 } as Anthropic.MessageCreateParamsNonStreaming;
    const err = await client().messages.create(params).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BadRequestError);
    expect((err as APIError).apiMessage).toBe(`${param}: Extra inputs are not permitted`);
    const old = await client({ defaultHeaders: { 'anthropic-version': '2023-06-01' } }).messages.create(params);
    expect(old.content).toEqual([{ type: 'text', text: 'The answer is 42.' }]);
  });

  it.each([
    ['no max_tokens', { model: MODEL, messages: base.messages }, {}, 'max_tokens: Field required'],
    ['no messages', { model: MODEL, max_tokens: 64 }, {}, 'messages: Field required'],
    ['empty messages', { ...base, messages: [] }, {}, 'messages: at least one message is required'],
    ['no anthropic-version', base, { 'anthropic-version': '' }, 'anthropic-version: header is required'],
  ])('%s is a 400 invalid_request_error', async (_name, body, headers, message) => {
    const h: Record<string, string> = { ...headers };
    const res = await fetch(`${fake.url}/v1/messages`, {
      method: 'POST',
      headers: Object.fromEntries(Object.entries({ 'content-type': 'application/json', 'x-api-key': KEY, 'anthropic-version': '2026-10-21', ...h }).filter(([, v]) => v !== '')),
      body: JSON.stringify(body),
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ type: 'error', error: { type: 'invalid_request_error', message }, request_id: expect.stringMatching(/^req_/) });
  });
});
