// A Gemini upstream through Jarvis (the fake, fakes/gemini, proven with @google/genai), as a Chat Completions
// client sees it through the `openai` SDK: what Jarvis sends Google (the URL, the key header, the request as
// Google's strict parser takes it), finish reasons, the errors each with its meaning, a stream that breaks, the
// model list, and the one-upstream configuration from the environment. The behaviours every client API shares
// over every provider are in matrix.test.ts.
import OpenAI, { type APIError } from 'openai';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ERRORS, MALFORMED_MESSAGE, MODELS, SKIP_SIGNATURE, startGeminiUpstream, type GeminiUpstream } from '../fakes/gemini/index.js';
import { loadConfig } from '../src/config.js';
import { waitForIdle } from './support/chat.js';
import { startJarvis, type TestJarvis } from './support/jarvis.js';

const KEY = 'gk-upstream-secret-0001';
const GEMINI = 'gemini-3-flash-preview';

let fake: GeminiUpstream;
let j: TestJarvis;
beforeAll(async () => {
  fake = await startGeminiUpstream({ apiKey: KEY });
  j = await startJarvis({ upstreams: [{ name: 'gemini', provider: 'gemini', baseUrl: fake.url, apiKey: KEY, models: ['*'] }], defaultModel: GEMINI });
});
afterEach(async () => {
  await waitForIdle(j.url, 10_000);
});
afterAll(async () => {
  await j?.close();
  await fake?.close();
});

const client = (baseURL = `${j?.url}/v1`) => new OpenAI({ apiKey: 'sk-unused', baseURL, maxRetries: 0 });
let tags = 0;
const tag = () => `g${++tags}x${process.pid}`;

async function streamed(params: OpenAI.Chat.ChatCompletionCreateParamsNonStreaming) {
  const chunks: OpenAI.Chat.ChatCompletionChunk[] = [];
  let error: unknown;
  try {
    for await (const c of await client().chat.completions.create({ ...params, stream: true })) chunks.push(c);
  } catch (err) {
    error = err;
  }
  return { chunks, error, text: chunks.map((c) => c.choices[0]?.delta.content ?? '').join(''), finish: chunks.flatMap((c) => (c.choices[0]?.finish_reason ? [c.choices[0].finish_reason] : [])) };
}

describe('what Jarvis sends Google', () => {
  it('streamGenerateContent?alt=sse on the model, the key as x-goog-api-key (never in the URL), the turn as Gemini takes it', async () => {
    const t = tag();
    const tools: OpenAI.Chat.ChatCompletionTool[] = [
      {
        type: 'function',
        function: {
          name: 'get_weather',
          description: 'The weather',
          // What zod and pydantic write: keywords Google's parser refuses, converted or left out on the way.
          parameters: { $schema: 'http://json-schema.org/draft-07/schema#', type: 'object', properties: { location: { type: 'string' }, unit: { type: ['string', 'null'], enum: ['c', 'f'] } }, required: ['location'], additionalProperties: false },
        },
      },
    ];
    const c = await client().chat.completions.create({
      model: GEMINI,
      messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: `Weather in Paris? ${t}` }],
      tools,
      tool_choice: { type: 'function', function: { name: 'get_weather' } },
      max_completion_tokens: 256,
      temperature: 0.3,
      stop: ['END'],
      reasoning_effort: 'low',
    });
    expect(c.choices[0]!.finish_reason).toBe('tool_calls');
    const [rec] = fake.requestsFor(t);
    // The fake records the path; it answered in SSE, which it does only for ?alt=sse (else a JSON array).
    expect(rec!.path).toBe(`/v1beta/models/${GEMINI}:streamGenerateContent`);
    expect(rec!.headers['x-goog-api-key']).toBe(KEY);
    expect(rec!.headers.authorization).toBeUndefined();
    expect(rec!.body).toEqual({
      contents: [{ role: 'user', parts: [{ text: `Weather in Paris? ${t}` }] }],
      systemInstruction: { parts: [{ text: 'Be brief.' }] },
      tools: [{ functionDeclarations: [{ name: 'get_weather', description: 'The weather', parameters: { type: 'OBJECT', properties: { location: { type: 'STRING' }, unit: { type: 'STRING', nullable: true, enum: ['c', 'f'] } }, required: ['location'] } }] }],
      toolConfig: { functionCallingConfig: { mode: 'ANY', allowedFunctionNames: ['get_weather'] } },
      generationConfig: { maxOutputTokens: 256, temperature: 0.3, stopSequences: ['END'], thinkingConfig: { thinkingLevel: 'low', includeThoughts: true } },
    });
    const logs = await j.logs();
    expect(logs).not.toContain(KEY);
  });

  it('a tool loop of a client that sends back only tool_calls: the signature Gemini gave is put back; on an instance that never saw it, the documented placeholder', async () => {
    const t = tag();
    const tools: OpenAI.Chat.ChatCompletionTool[] = [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { location: { type: 'string' } } } } }];
    const prompt = `Weather in Paris? ${t}`;
    const first = await client().chat.completions.create({ model: GEMINI, messages: [{ role: 'user', content: prompt }], tools });
    const call = first.choices[0]!.message.tool_calls![0]! as OpenAI.Chat.ChatCompletionMessageFunctionToolCall;
    const messages: OpenAI.Chat.ChatCompletionMessageParam[] = [
      { role: 'user', content: prompt },
      { role: 'assistant', content: null, tool_calls: [call] },
      { role: 'tool', tool_call_id: call.id, content: '{"temperature":21}' },
    ];
    const second = await client().chat.completions.create({ model: GEMINI, messages, tools });
    expect(second.choices[0]!.message.content).toContain('21');
    const sent = (r: { body: { contents: { role: string; parts: { thoughtSignature?: string }[] }[] } }) => r.body.contents.find((c) => c.role === 'model')!.parts[0]!.thoughtSignature;
    const back = fake.requests.filter((r) => JSON.stringify(r.body).includes(t)).at(-1)!;
    expect(sent(back)).toMatch(/^[A-Za-z0-9+/=]{20,}$/);

    const other = await startJarvis({ upstreams: [{ name: 'gemini', provider: 'gemini', baseUrl: fake.url, apiKey: KEY, models: ['*'] }], defaultModel: GEMINI });
    try {
      const again = await client(`${other.url}/v1`).chat.completions.create({ model: GEMINI, messages, tools });
      expect(again.choices[0]!.message.content).toContain('21');
      expect(sent(fake.requests.filter((r) => JSON.stringify(r.body).includes(t)).at(-1)!)).toBe(SKIP_SIGNATURE);
    } finally {
      await other.close();
    }
  });

  it('what Gemini cannot honour is a 400 unsupported_value naming the parameter, before any request to Google', async () => {
    const t = tag();
    for (const [param, extra] of [
      ['parallel_tool_calls', { parallel_tool_calls: false, tools: [{ type: 'function', function: { name: 'f' } }] }],
      ['logprobs', { logprobs: true }],
      ['tools[0].function.parameters.properties.n.multipleOf', { tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object', properties: { n: { type: 'number', multipleOf: 2 } } } } }] }],
    ] as const) {
      const err = await client()
        .chat.completions.create({ model: GEMINI, messages: [{ role: 'user', content: `hi ${t}` }], ...(extra as object) })
        .then(() => undefined, (e: unknown) => e as APIError);
      expect({ status: err?.status, code: err?.code, param: err?.param }).toEqual({ status: 400, code: 'unsupported_value', param });
    }
    expect(fake.requestsFor(t)).toHaveLength(0);
  });
});

describe('finish reasons', () => {
  it.each([
    ['max-tokens', 'length'],
    ['safety', 'content_filter'],
    ['recitation', 'content_filter'],
  ])('%s is %s, streamed and not', async (scenario, finish) => {
    const params = { model: GEMINI, messages: [{ role: 'user' as const, content: `scenario:${scenario} ${tag()}` }], max_tokens: 4 };
    expect((await streamed(params)).finish).toEqual([finish]);
    expect((await client().chat.completions.create(params)).choices[0]!.finish_reason).toBe(finish);
  });

  it('a malformed function call is an error with its own code, not a finish', async () => {
    const s = await streamed({ model: GEMINI, messages: [{ role: 'user', content: `scenario:malformed-call ${tag()}` }] });
    expect(s.error).toMatchObject({ code: 'malformed_function_call' });
    expect((s.error as Error).message).toContain(MALFORMED_MESSAGE);
    const err = await client()
      .chat.completions.create({ model: GEMINI, messages: [{ role: 'user', content: `scenario:malformed-call ${tag()}` }] })
      .then(() => undefined, (e: unknown) => e as APIError);
    expect({ status: err?.status, code: err?.code }).toEqual({ status: 502, code: 'malformed_function_call' });
  });

  it('a stream Google cuts short is the upstream stream error', async () => {
    const s = await streamed({ model: GEMINI, messages: [{ role: 'user', content: `scenario:cut ${tag()}` }] });
    expect(s.text).not.toBe('');
    expect(s.error).toMatchObject({ code: 'upstream_stream_error' });
  });
});

describe('errors keep their meaning', () => {
  const fail = (scenario: string) =>
    client()
      .chat.completions.create({ model: GEMINI, messages: [{ role: 'user', content: `scenario:${scenario} ${tag()}` }] })
      .then(() => undefined, (e: unknown) => e as APIError);

  it('429 RESOURCE_EXHAUSTED stays 429, with the RetryInfo delay as retry-after', async () => {
    const err = await fail('http-429');
    expect({ status: err?.status, type: err?.type, message: err?.error && (err.error as { message: string }).message }).toEqual({ status: 429, type: 'rate_limit_error', message: ERRORS['http-429']!.message });
    expect(err?.headers?.get('retry-after')).toBe('7');
  });

  it('503 UNAVAILABLE stays 503; 400 INVALID_ARGUMENT stays 400 with the message', async () => {
    expect((await fail('http-503'))?.status).toBe(503);
    const bad = await fail('http-400');
    expect({ status: bad?.status, message: (bad?.error as { message: string }).message }).toEqual({ status: 400, message: ERRORS['http-400']!.message });
  });

  it.each(['http-401', 'http-403'])('%s is 502 upstream_auth_failed, Google\'s words not repeated', async (scenario) => {
    const err = await fail(scenario);
    expect({ status: err?.status, code: err?.code }).toEqual({ status: 502, code: 'upstream_auth_failed' });
    expect(JSON.stringify(err?.error)).not.toContain(ERRORS[scenario]!.message);
  });

  it('a key Google calls invalid (400 API_KEY_INVALID) is 502 upstream_auth_failed too', async () => {
    const wrong = await startJarvis({ upstreams: [{ name: 'gemini', provider: 'gemini', baseUrl: fake.url, apiKey: 'gk-wrong', models: ['*'] }], defaultModel: GEMINI });
    try {
      const err = await client(`${wrong.url}/v1`)
        .chat.completions.create({ model: GEMINI, messages: [{ role: 'user', content: 'hi' }] })
        .then(() => undefined, (e: unknown) => e as APIError);
      expect({ status: err?.status, code: err?.code }).toEqual({ status: 502, code: 'upstream_auth_failed' });
      expect(JSON.stringify(err?.error)).not.toContain('API key not valid');
    } finally {
      await wrong.close();
    }
  });
});

describe('configuration', () => {
  it('/v1/models lists what GET {baseUrl}/models says, without the models/ prefix, asked once for many lists', async () => {
    const before = fake.modelListRequests;
    const [a, b] = await Promise.all([client().models.list(), client().models.list()]);
    expect(a.data.map((m) => m.id)).toEqual(expect.arrayContaining(MODELS));
    expect(b.data.map((m) => m.id)).toEqual(a.data.map((m) => m.id));
    expect(fake.modelListRequests - before).toBeLessThanOrEqual(1);
  });

  it('JARVIS_UPSTREAM_PROVIDER=gemini with the base URL and key: a Gemini upstream that answers', async () => {
    const config = loadConfig({ JARVIS_UPSTREAM_BASE_URL: fake.url, JARVIS_UPSTREAM_PROVIDER: 'gemini', JARVIS_UPSTREAM_API_KEY: KEY, JARVIS_DEFAULT_MODEL: GEMINI });
    expect(config.upstreams).toEqual([{ name: 'default', baseUrl: fake.url, apiKey: KEY, models: ['*'], provider: 'gemini' }]);
    const env = await startJarvis({ upstreams: config.upstreams, defaultModel: GEMINI });
    try {
      const c = await client(`${env.url}/v1`).chat.completions.create({ model: GEMINI, messages: [{ role: 'user', content: 'hi' }] });
      expect(c.choices[0]!.message.content).toBe('The answer is 42.');
    } finally {
      await env.close();
    }
  });
});
