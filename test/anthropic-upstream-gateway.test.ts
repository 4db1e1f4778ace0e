// What Jarvis does around an Anthropic upstream (the faithful fake, fakes/anthropic), over real HTTP: a barge-in
// cancelling an Anthropic stream (and its upstream request) for the next one, with the events a subscriber sees;
// a route failing over between Anthropic and OpenAI in both directions; /v1/responses translated to Messages;
// the configuration (JARVIS_UPSTREAM_PROVIDER, dropParams, anthropicVersion); and /v1/models from the fake's list.
import OpenAI, { BadRequestError } from 'openai';
import type { ChatCompletionChunk } from 'openai/resources/chat/completions';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { MODELS, startAnthropicUpstream, TEXT, TOOL_ARGS, type AnthropicUpstream } from '../fakes/anthropic/index.js';
import { ANTHROPIC_KEY, CLAUDE, requestFor, startAnthropicPair, type AnthropicPair } from './support/anthropic-pair.js';
import { orFail, waitForIdle } from './support/chat.js';
import { tag } from './support/faithful.js';
import { startJarvis, type TestJarvis } from './support/jarvis.js';
import { snapshotOf, startOpenAIUpstream, type OpenAIUpstream } from '../fakes/openai/index.js';
import { BusSubscriber } from './support/messages.js';

let pair: AnthropicPair;
beforeAll(async () => {
  pair = await startAnthropicPair();
});
afterAll(() => pair?.close());

const sdk = (baseURL: string) => new OpenAI({ baseURL, apiKey: 'sk-test', maxRetries: 0 });
const textOf = (chunks: ChatCompletionChunk[]) => chunks.map((c) => c.choices[0]?.delta.content ?? '').join('');
const finishOf = (chunks: ChatCompletionChunk[]) => chunks.flatMap((c) => (c.choices[0]?.finish_reason ? [c.choices[0].finish_reason] : []));

describe('a barge-in across an Anthropic stream', () => {
  afterEach(() => waitForIdle(pair.jarvis.url, 5000, { subscribers: true }));

  it('the first answer ends "cancelled" and its upstream request is closed; the second answers whole; the events say so', async () => {
    const session = `barge-${tag().slice(1)}`;
    const [tagA, tagB] = [tag(), tag()];
    const events = new BusSubscriber(pair.jarvis.url, session);
    try {
      await orFail(events.connected, 'the events subscription');
      const client = sdk(pair.through);
      const headers = { 'X-Session-Id': session };
      const a = await client.chat.completions.create({ model: CLAUDE, stream: true, messages: [{ role: 'user', content: `scenario:long tokens:400 delay:15 ${tagA}` }] }, { headers }).withResponse();
      const aChunks: ChatCompletionChunk[] = [];
      let b: Promise<{ chunks: ChatCompletionChunk[]; requestId: string }> | undefined;
      // The loop ending normally is part of the assertion: a superseded stream is not an error.
      for await (const chunk of a.data) {
        aChunks.push(chunk);
        if (!b && chunk.choices[0]?.delta.content) {
          b = (async () => {
            const r = await client.chat.completions.create({ model: CLAUDE, stream: true, messages: [{ role: 'user', content: `Hello ${tagB}` }] }, { headers }).withResponse();
            const chunks: ChatCompletionChunk[] = [];
            for await (const c of r.data) chunks.push(c);
            return { chunks, requestId: r.response.headers.get('x-request-id')! };
          })();
        }
      }
      expect(b, 'A never produced text').toBeDefined();
      expect(finishOf(aChunks)).toEqual(['cancelled']);
      const aText = textOf(aChunks);
      expect(aText.length).toBeGreaterThan(0);
      expect(aText.length).toBeLessThan('t0 '.length * 400);

      // A's upstream request: closed by Jarvis before the fake had sent it all.
      const recA = await requestFor(pair.fake, tagA);
      await orFail(recA.closed, "A's upstream request closing");
      expect(recA.clientClosed).toBe(true);

      const second = await b!;
      expect(finishOf(second.chunks)).toEqual(['stop']);
      expect(textOf(second.chunks)).toBe(TEXT.join(''));
      expect(pair.fake.requestsFor(tagB)).toHaveLength(1);

      const idA = a.response.headers.get('x-request-id')!;
      const idB = second.requestId;
      await orFail(events.until((e) => e.type === 'chat.end' && e.request_id === idB, 'chat.end of B'), 'chat.end of B');
      const summary = events.events.map((e) => `${e.request_id === idA ? 'A' : e.request_id === idB ? 'B' : '?'}:${e.type}`).join(' ');
      expect(summary).toMatch(/^A:chat\.start( A:chat\.token)+ A:chat\.cancelled B:chat\.start( B:chat\.token)* B:chat\.end$/);
      const cancelled = events.events.find((e) => e.type === 'chat.cancelled')!;
      expect(cancelled.data).toMatchObject({ reason: 'superseded', delivered_chars: aText.length, heard_chars: aText.length });
      const end = events.events.find((e) => e.type === 'chat.end')!;
      expect(end.data).toMatchObject({ finish_reason: 'stop', delivered_chars: TEXT.join('').length });
      const tokensOf = (id: string) => events.events.filter((e) => e.type === 'chat.token' && e.request_id === id).map((e) => e.data.text as string).join('');
      expect(tokensOf(idA)).toBe(aText);
      expect(tokensOf(idB)).toBe(TEXT.join(''));
    } finally {
      await events.close();
    }
  });
});

describe('routes across Anthropic and OpenAI: failover both ways, and hedges', () => {
  let fake: AnthropicUpstream;
  let openai: OpenAIUpstream;
  let jarvis: TestJarvis;
  beforeAll(async () => {
    [fake, openai] = await Promise.all([startAnthropicUpstream({ apiKey: ANTHROPIC_KEY }), startOpenAIUpstream()]);
    jarvis = await startJarvis({
      upstreams: [
        { name: 'claude', baseUrl: fake.url, provider: 'anthropic', apiKey: ANTHROPIC_KEY },
        { name: 'openai', baseUrl: openai.url },
      ],
      routes: [
        { model: 'assistant', targets: [{ upstream: 'claude', model: 'claude-x', priority: 0 }, { upstream: 'openai', model: 'gpt-4o-mini', priority: 1 }] },
        { model: 'assistant-back', targets: [{ upstream: 'openai', model: 'gpt-4o-mini', priority: 0 }, { upstream: 'claude', model: 'claude-x', priority: 1 }] },
        // Hedged at once: both targets start long before either can send its first token (paced by delay:).
        { model: 'assistant-hedged', hedgeAfterMs: 1, targets: [{ upstream: 'claude', model: 'claude-x', priority: 0 }, { upstream: 'openai', model: 'gpt-4o-mini', priority: 1 }] },
      ],
    });
  });
  afterAll(async () => {
    await jarvis?.close();
    await Promise.all([fake?.close(), openai?.close()]);
  });

  const ask = async (model: string, prompt: string, stream: boolean) => {
    const client = sdk(`${jarvis.url}/v1`);
    if (!stream) {
      const c = await client.chat.completions.create({ model, messages: [{ role: 'user', content: prompt }] });
      return { text: c.choices[0]!.message.content, finish: [c.choices[0]!.finish_reason], model: c.model };
    }
    const chunks: ChatCompletionChunk[] = [];
    for await (const c of await client.chat.completions.create({ model, stream: true, messages: [{ role: 'user', content: prompt }] })) chunks.push(c);
    return { text: textOf(chunks), finish: finishOf(chunks), model: chunks[0]!.model };
  };

  // 529 is the failure only Anthropic has: a prompt asking for http-500 would fail the OpenAI fake as well.
  it.each([true, false])('Anthropic answering 529 (stream: %s): the client gets the OpenAI answer whole', async (stream) => {
    const t = tag();
    const answer = await ask('assistant', `scenario:http-529 ${t}`, stream);
    expect(answer).toEqual({ text: TEXT.join(''), finish: ['stop'], model: snapshotOf('gpt-4o-mini') });
    expect(fake.requestsFor(t).length).toBeGreaterThanOrEqual(1);
    expect(fake.requestsFor(t).every((r) => r.body.model === 'claude-x')).toBe(true);
    expect(openai.requestsFor(t)).toHaveLength(1);
    expect(openai.requestsFor(t)[0]!.body.model).toBe('gpt-4o-mini');
  });

  it.each([true, false])('OpenAI answering 503 (stream: %s): the client gets the Anthropic answer whole', async (stream) => {
    const t = tag();
    const answer = await ask('assistant-back', `scenario:http-503 ${t}`, stream);
    expect(answer).toEqual({ text: TEXT.join(''), finish: ['stop'], model: 'claude-x' });
    expect(openai.requestsFor(t).length).toBeGreaterThanOrEqual(1);
    expect(fake.requestsFor(t)).toHaveLength(1);
    expect(fake.requestsFor(t)[0]!.body.model).toBe('claude-x');
  });

  it.each([true, false])('the first token wins whichever provider sends it; the other request is closed (stream: %s)', async (stream) => {
    const t = tag();
    const client = sdk(`${jarvis.url}/v1`);
    const messages = [{ role: 'user' as const, content: `delay:200 ${t}` }];
    let text: string;
    if (stream) {
      const chunks: ChatCompletionChunk[] = [];
      for await (const c of await client.chat.completions.create({ model: 'assistant-hedged', stream: true, messages })) chunks.push(c);
      text = textOf(chunks);
      expect(finishOf(chunks)).toEqual(['stop']);
    } else {
      const c = await client.chat.completions.create({ model: 'assistant-hedged', messages });
      text = c.choices[0]!.message.content!;
    }
    // Both answer the same words: the client gets one whole answer, from whichever won.
    expect(text).toBe(TEXT.join(''));
    const [a, o] = [fake.requestsFor(t), openai.requestsFor(t)];
    expect([a.length, o.length]).toEqual([1, 1]);
    await orFail(Promise.all([a[0]!.closed, o[0]!.closed]), 'both upstream requests ending');
    // The loser's request was closed by Jarvis; the winner's ran to its end.
    expect([a[0]!.clientClosed, o[0]!.clientClosed].sort()).toEqual([false, true]);
    const log = await jarvis.waitForLog((l) => l.includes('attempt_won') && new RegExp(`hedge_start`).test(l));
    expect(log).toMatch(/attempt_cancelled .*reason=lost/);
    await waitForIdle(jarvis.url);
  });
});

describe('/v1/responses to an Anthropic upstream', () => {
  const client = () => sdk(pair.through);
  const WEATHER = { type: 'function' as const, name: 'get_weather', description: 'The weather in a city', parameters: { type: 'object', properties: { location: { type: 'string' } }, required: ['location'] }, strict: false };

  it.each([false, true])('answers text (stream: %s)', async (stream) => {
    const t = tag();
    const params = { model: CLAUDE, input: `Hello ${t}` };
    const r = stream ? await client().responses.stream(params).finalResponse() : await client().responses.create(params);
    expect(r.status).toBe('completed');
    expect(r.output_text).toBe(TEXT.join(''));
    expect(r.output).toEqual([expect.objectContaining({ type: 'message', role: 'assistant', content: [expect.objectContaining({ type: 'output_text', text: TEXT.join('') })] })]);
    expect(r.usage!.input_tokens).toBeGreaterThan(0);
    expect(r.usage!.output_tokens).toBeGreaterThan(0);
    expect(pair.fake.requestsFor(t)[0]!.body).toMatchObject({ model: CLAUDE, messages: [{ role: 'user', content: [{ type: 'text', text: `Hello ${t}` }] }] });
  });

  it.each([false, true])('makes a function call, and answers its output (stream: %s)', async (stream) => {
    const t = tag();
    const ask = (params: OpenAI.Responses.ResponseCreateParamsNonStreaming) =>
      stream ? client().responses.stream(params as Parameters<OpenAI['responses']['stream']>[0]).finalResponse() : client().responses.create(params);
    const first = await ask({ model: CLAUDE, input: `What is the weather in Paris? ${t}`, tools: [WEATHER] });
    const call = first.output.find((o) => o.type === 'function_call') as OpenAI.Responses.ResponseFunctionToolCall | undefined;
    expect(call).toMatchObject({ type: 'function_call', name: 'get_weather', arguments: TOOL_ARGS[0], call_id: expect.stringMatching(/^toolu_01/) });
    expect(pair.fake.requestsFor(t)[0]!.body.tools).toEqual([{ name: 'get_weather', description: WEATHER.description, input_schema: WEATHER.parameters, strict: false }]);
    const second = await ask({ model: CLAUDE, previous_response_id: first.id, input: [{ type: 'function_call_output', call_id: call!.call_id, output: '{"temperature":21}' }], tools: [WEATHER] });
    expect(second.output_text).toBe('The tool says: {"temperature":21}.');
  });
});

describe('/v1/responses to an Anthropic upstream with thinking', () => {
  // A second Jarvis over the same fake: it never saw the first turn, so it has no signed thinking of its own.
  let other: TestJarvis;
  beforeAll(async () => {
    other = await startJarvis({ upstreams: [{ name: 'claude', baseUrl: pair.fake.url, provider: 'anthropic', apiKey: ANTHROPIC_KEY, models: ['*'] }], defaultModel: CLAUDE });
  });
  afterAll(() => other?.close());
  const WEATHER = { type: 'function' as const, name: 'get_weather', description: 'The weather in a city', parameters: { type: 'object', properties: { location: { type: 'string' } }, required: ['location'] }, strict: false };

  it.each([false, true])(
    'the signed thinking rides in the reasoning item (encrypted_content): sent back statelessly, another instance continues the tool loop (stream: %s)',
    async (stream) => {
      const t = tag();
      const ask = (baseURL: string, params: OpenAI.Responses.ResponseCreateParamsNonStreaming) =>
        stream ? sdk(baseURL).responses.stream(params as Parameters<OpenAI['responses']['stream']>[0]).finalResponse() : sdk(baseURL).responses.create(params);
      const base = { model: CLAUDE, tools: [WEATHER], reasoning: { effort: 'low' as const }, store: false };
      const first = await ask(pair.through, { ...base, input: `scenario:thinking-tool Weather in Paris? ${t}` });
      const reasoning = first.output.find((o) => o.type === 'reasoning') as OpenAI.Responses.ResponseReasoningItem | undefined;
      expect(reasoning?.encrypted_content).toMatch(/^jarvis\.thinking\.v1:/);
      const call = first.output.find((o) => o.type === 'function_call') as OpenAI.Responses.ResponseFunctionToolCall;
      const input: OpenAI.Responses.ResponseInput = [
        { role: 'user', content: `scenario:thinking-tool Weather in Paris? ${t}` },
        ...(first.output as OpenAI.Responses.ResponseInputItem[]),
        { type: 'function_call_output', call_id: call.call_id, output: '{"temperature":21}' },
      ];
      const second = await ask(`${other.url}/v1`, { ...base, input });
      expect(second.status).toBe('completed');
      expect(second.output_text).toContain('{"temperature":21}');
      // Anthropic got the assistant turn back beginning with its signed thinking block.
      // (Its last user message is the tool result: found as the request whose conversation holds the tag.)
      const sent = pair.fake.requests.filter((r) => JSON.stringify(r.body).includes(t)).at(-1)!.body as { messages: { role: string; content: { type: string; signature?: string }[] }[] };
      const assistant = sent.messages.find((m) => m.role === 'assistant')!;
      expect(assistant.content[0]).toMatchObject({ type: 'thinking', signature: expect.any(String) });
      // Without the reasoning item the same request is refused by Anthropic (no memory on the other instance).
      const bare = input.filter((i) => (i as { type?: string }).type !== 'reasoning');
      await expect(ask(`${other.url}/v1`, { ...base, input: bare })).rejects.toMatchObject({ status: 400 });
    },
  );
});

describe('configuring an Anthropic upstream', () => {
  it('JARVIS_UPSTREAM_PROVIDER=anthropic with JARVIS_UPSTREAM_BASE_URL: an Anthropic upstream, which answers', async () => {
    const config = loadConfig({ JARVIS_UPSTREAM_BASE_URL: pair.fake.url, JARVIS_UPSTREAM_PROVIDER: 'anthropic', JARVIS_UPSTREAM_API_KEY: ANTHROPIC_KEY, JARVIS_DEFAULT_MODEL: CLAUDE });
    expect(config.upstreams).toEqual([expect.objectContaining({ name: 'default', baseUrl: pair.fake.url, provider: 'anthropic', apiKey: ANTHROPIC_KEY, models: ['*'] })]);
    const j = await startJarvis({ upstreams: config.upstreams, defaultModel: config.defaultModel });
    try {
      const t = tag();
      const c = await sdk(`${j.url}/v1`).chat.completions.create({ model: CLAUDE, messages: [{ role: 'user', content: `Hello ${t}` }] });
      expect(c.choices[0]!.message.content).toBe(TEXT.join(''));
      const rec = pair.fake.requestsFor(t)[0]!;
      expect(rec.path).toBe('/v1/messages');
      expect(rec.headers.authorization).toBe(`Bearer ${ANTHROPIC_KEY}`);
    } finally {
      await j.close();
    }
  });

  describe('sampling parameters and the anthropic-version', () => {
    let j: TestJarvis;
    beforeAll(async () => {
      const up = (name: string, model: string, extra: Record<string, unknown>) => ({ name, baseUrl: pair.fake.url, provider: 'anthropic' as const, apiKey: ANTHROPIC_KEY, models: [model], ...extra });
      j = await startJarvis({
        upstreams: [
          up('dropping', 'claude-dropping', { dropParams: true, anthropicVersion: '2026-10-21' }),
          up('strict', 'claude-strict', {}),
          up('old', 'claude-old', { anthropicVersion: '2023-06-01' }),
        ],
      });
    });
    afterAll(() => j?.close());

    it.each([false, true])('dropParams: temperature left out, and named in x-jarvis-dropped-params (stream: %s)', async (stream) => {
      const t = tag();
      const body = { model: 'claude-dropping', temperature: 0.5, messages: [{ role: 'user' as const, content: `Hello ${t}` }] };
      const client = sdk(`${j.url}/v1`);
      let text: string | null;
      let response: Response;
      if (stream) {
        const r = await client.chat.completions.create({ ...body, stream: true }).withResponse();
        const chunks: ChatCompletionChunk[] = [];
        for await (const c of r.data) chunks.push(c);
        text = textOf(chunks);
        response = r.response;
      } else {
        const r = await client.chat.completions.create(body).withResponse();
        text = r.data.choices[0]!.message.content;
        response = r.response;
      }
      expect(text).toBe(TEXT.join(''));
      expect(response.headers.get('x-jarvis-dropped-params')).toBe('temperature');
      const rec = pair.fake.requestsFor(t)[0]!;
      expect(rec.headers['anthropic-version']).toBe('2026-10-21');
      expect(rec.body).not.toHaveProperty('temperature');
    });

    it('without dropParams, temperature is a 400 unsupported_value naming it, and nothing reaches Anthropic', async () => {
      const t = tag();
      const err = await sdk(`${j.url}/v1`)
        .chat.completions.create({ model: 'claude-strict', temperature: 0.5, messages: [{ role: 'user', content: `Hello ${t}` }] })
        .then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(BadRequestError);
      expect(err).toMatchObject({ status: 400, code: 'unsupported_value', param: 'temperature' });
      expect(pair.fake.requestsFor(t)).toHaveLength(0);
    });

    it("with anthropicVersion 2023-06-01, temperature reaches Anthropic", async () => {
      const t = tag();
      const r = await sdk(`${j.url}/v1`).chat.completions.create({ model: 'claude-old', temperature: 0.5, messages: [{ role: 'user', content: `Hello ${t}` }] }).withResponse();
      expect(r.data.choices[0]!.message.content).toBe(TEXT.join(''));
      expect(r.response.headers.get('x-jarvis-dropped-params')).toBeNull();
      const rec = pair.fake.requestsFor(t)[0]!;
      expect(rec.headers['anthropic-version']).toBe('2023-06-01');
      expect(rec.body).toMatchObject({ model: 'claude-old', temperature: 0.5 });
    });
  });
});

describe('/v1/models with an Anthropic upstream serving every model', () => {
  it("lists what the fake's GET /v1/models says", async () => {
    const list = (await sdk(pair.through).models.list()).data;
    expect(pair.fake.modelListRequests).toBeGreaterThanOrEqual(1);
    const claude = list.filter((m) => m.owned_by === 'claude');
    expect(claude.map((m) => m.id)).toEqual(MODELS);
    // The fake dates its models a day apart from 2026-10-21.
    expect(claude[0]!.created).toBe(Date.UTC(2026, 9, 21) / 1000);
  });
});
