// POST /v1/messages over an Anthropic upstream (the fake in fakes/anthropic), driven by the official Anthropic
// SDK: through Jarvis the SDK gets what it gets talking to the upstream directly. The stream's bytes are the
// upstream's, the Message it assembles and the one it is sent unstreamed are the same, every error keeps its
// class, status and the SDK's retries, an error event mid-stream fails the stream with its type, anthropic-beta
// reaches the upstream, and count_tokens is the upstream's count.
import Anthropic, { APIError, APIUserAbortError, BadRequestError, InternalServerError, OverloadedError, RateLimitError } from '@anthropic-ai/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERRORS, MODELS, STREAM_ERROR, inputTokensOf, startAnthropicUpstream, type AnthropicUpstream } from '../fakes/anthropic/index.js';
import { orFail, waitForIdle } from './support/chat.js';
import { failure } from './support/faithful.js';
import { startJarvis, type TestJarvis } from './support/jarvis.js';
import { abortAtFirstText, bargeIn, BusSubscriber, eventsOf, expectWellFormed, firstDifference, postMessages } from './support/messages.js';

const KEY = 'sk-ant-api03-test';
const MODEL = 'claude-sonnet-5-5';
const WEATHER = { name: 'get_weather', description: 'The weather in a city', input_schema: { type: 'object' as const, properties: { location: { type: 'string' } }, required: ['location'] } };
const TIME = { name: 'get_time', description: 'The time in a city', input_schema: { type: 'object' as const, properties: { location: { type: 'string' } } } };
const THINKING = { type: 'enabled' as const, budget_tokens: 1024 };

let fake: AnthropicUpstream;
let j: TestJarvis;
/** The SDK's baseURL: the fake itself, and Jarvis in front of it. */
const routes = { direct: '', through: '' };
beforeAll(async () => {
  fake = await startAnthropicUpstream({ apiKey: KEY, models: MODELS });
  j = await startJarvis({ upstreams: [{ name: 'claude', baseUrl: fake.url, provider: 'anthropic', apiKey: KEY, models: MODELS }], defaultModel: MODEL });
  routes.direct = fake.url;
  routes.through = j.url;
});
afterAll(async () => {
  await j?.close();
  await fake?.close();
});

const client = (baseURL: string, opts: { defaultHeaders?: Record<string, string> } = {}) => new Anthropic({ apiKey: KEY, baseURL, maxRetries: 2, ...opts });

let tags = 0;
const tag = () => `#m${++tags}-${process.pid}`;

/** Each scenario's request, with what it needs (tools, thinking) to show itself. */
const SCENARIOS: Record<string, (t: string) => Anthropic.MessageCreateParamsNonStreaming> = {
  text: (t) => ({ model: MODEL, max_tokens: 256, messages: [{ role: 'user', content: `What is the answer? ${t}` }] }),
  tool: (t) => ({ model: MODEL, max_tokens: 256, tools: [WEATHER], messages: [{ role: 'user', content: `Weather in Paris? ${t}` }] }),
  'tools-2': (t) => ({ model: MODEL, max_tokens: 256, tools: [WEATHER, TIME], messages: [{ role: 'user', content: `scenario:tools-2 ${t}` }] }),
  thinking: (t) => ({ model: MODEL, max_tokens: 2048, thinking: THINKING, messages: [{ role: 'user', content: `scenario:thinking ${t}` }] }),
  'thinking-tool': (t) => ({ model: MODEL, max_tokens: 2048, thinking: THINKING, tools: [WEATHER], messages: [{ role: 'user', content: `scenario:thinking-tool ${t}` }] }),
  'max-tokens': (t) => ({ model: MODEL, max_tokens: 5, messages: [{ role: 'user', content: `scenario:max-tokens ${t}` }] }),
  'stop-sequence': (t) => ({ model: MODEL, max_tokens: 256, stop_sequences: ['END'], messages: [{ role: 'user', content: `scenario:stop-sequence ${t}` }] }),
  refusal: (t) => ({ model: MODEL, max_tokens: 256, messages: [{ role: 'user', content: `scenario:refusal ${t}` }] }),
};

/** What each scenario's answer is: its block types and stop reason, so an equality of two wrong answers fails too. */
const SHAPES: Record<string, { types: string[]; stop: string }> = {
  text: { types: ['text'], stop: 'end_turn' },
  tool: { types: ['tool_use'], stop: 'tool_use' },
  'tools-2': { types: ['tool_use', 'tool_use'], stop: 'tool_use' },
  thinking: { types: ['thinking', 'text'], stop: 'end_turn' },
  'thinking-tool': { types: ['thinking', 'tool_use'], stop: 'tool_use' },
  'max-tokens': { types: ['text'], stop: 'max_tokens' },
  'stop-sequence': { types: ['text'], stop: 'stop_sequence' },
  refusal: { types: ['text'], stop: 'refusal' },
};

/** The Message the SDK's stream helper assembles. */
const streamed = async (baseURL: string, params: Anthropic.MessageCreateParamsNonStreaming) => ({ message: await client(baseURL).messages.stream(params).finalMessage() });

describe.each(Object.keys(SCENARIOS))('scenario %s over an Anthropic upstream', (name) => {
  it("the SDK's finalMessage() through Jarvis equals the one it assembles directly", async () => {
    const params = SCENARIOS[name]!(tag());
    const [direct, through] = await Promise.all([streamed(routes.direct, params), streamed(routes.through, params)]);
    expect(through.message).toEqual(direct.message);
    expect({ types: through.message.content.map((b) => b.type), stop: through.message.stop_reason }).toEqual(SHAPES[name]);
    expect(through.message.usage.input_tokens).toBe(inputTokensOf(params as unknown as Record<string, unknown>));
  });

  it('the raw SSE bytes through Jarvis are the bytes the upstream sends', async () => {
    const body = { ...SCENARIOS[name]!(tag()), stream: true };
    const [direct, through] = await Promise.all([postMessages(routes.direct, body, { 'x-api-key': KEY }), postMessages(routes.through, body)]);
    expect([direct.status, through.status]).toEqual([200, 200]);
    expect(through.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(through.text === direct.text, firstDifference(direct.text, through.text)).toBe(true);
    // And they are a whole, well-framed Messages stream.
    const types = eventsOf(through.text).map((e) => e.type);
    expect([types[0], ...types.slice(-2)]).toEqual(['message_start', 'message_delta', 'message_stop']);
  });

  it('messages.create (not streamed) through Jarvis equals the Message the upstream returns', async () => {
    const params = SCENARIOS[name]!(tag());
    const [direct, through] = await Promise.all([client(routes.direct).messages.create(params), client(routes.through).messages.create(params)]);
    expect(through).toEqual(direct);
    expect({ types: through.content.map((b) => b.type), stop: through.stop_reason }).toEqual(SHAPES[name]);
  });
});

describe('a thinking tool round trip over an Anthropic upstream', () => {
  /** The first turn streamed, then the tool result answered with the thinking block carried back, both ways. */
  async function roundTrip(baseURL: string, t: string, stream: boolean) {
    const params = SCENARIOS['thinking-tool']!(t);
    const first = await client(baseURL).messages.stream(params).finalMessage();
    const call = first.content.find((b) => b.type === 'tool_use')!;
    const second: Anthropic.MessageCreateParamsNonStreaming = {
      ...params,
      messages: [
        ...params.messages,
        { role: 'assistant', content: first.content as Anthropic.ContentBlockParam[] },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: call.id, content: '{"temperature":21}' }] },
      ],
    };
    const answer = stream ? await client(baseURL).messages.stream(second).finalMessage() : await client(baseURL).messages.create(second);
    return { first, answer };
  }

  it.each([false, true])('the second turn (stream: %s) is answered through Jarvis as directly', async (stream) => {
    const t = tag();
    const [direct, through] = await Promise.all([roundTrip(routes.direct, t, stream), roundTrip(routes.through, t, stream)]);
    expect(through).toEqual(direct);
    expect(through.first.content.map((b) => b.type)).toEqual(['thinking', 'tool_use']);
    expect(through.answer.content).toEqual([{ type: 'text', text: 'The tool says: {"temperature":21}.' }]);
    expect(through.answer.stop_reason).toBe('end_turn');
    // The fake checks the thinking block's signature: the second turn reached it and was accepted, both ways.
    const ofConversation = fake.requests.filter((r) => String(r.body.messages[0].content).includes(t));
    expect(ofConversation.map((r) => r.scenario).sort()).toEqual(['thinking-tool', 'thinking-tool', 'tool-result', 'tool-result']);
  });
});

describe('errors over an Anthropic upstream', () => {
  /**
   * How a request fails: the SDK's class, status, type and error body, and the requests that reached the upstream.
   * The same prompt both ways, one after the other, so the fake's answers (and the request ids in them) are the same.
   */
  type Failure = { name: string; retryCounts: Array<string | null>; upstreamRequests: number; [field: string]: unknown };
  const failing = async (baseURL: string, t: string, scenario: string, stream: boolean): Promise<Failure> => {
    const before = fake.requestsFor(t).length;
    const params = { model: MODEL, max_tokens: 64, messages: [{ role: 'user' as const, content: `scenario:${scenario} ${t}` }] };
    // The SDK's own count of its attempts, as it sends it with each.
    const retryCounts: Array<string | null> = [];
    const sdk = new Anthropic({
      apiKey: KEY,
      baseURL,
      maxRetries: 2,
      fetch: (url: string | URL | Request, init?: RequestInit) => {
        retryCounts.push(new Headers(init?.headers).get('x-stainless-retry-count'));
        return fetch(url, init);
      },
    });
    const result = await failure(
      () => (stream ? sdk.messages.stream(params).finalMessage() : sdk.messages.create(params)),
      (e) => ({ status: e.status, type: e.type, apiMessage: e.apiMessage, error: e.error }),
    );
    return { ...result, retryCounts, upstreamRequests: fake.requestsFor(t).length - before };
  };
  const run = async (scenario: string, stream: boolean) => {
    const t = tag();
    const direct = await failing(routes.direct, t, scenario, stream);
    const through = await failing(routes.through, t, scenario, stream);
    return { direct, through };
  };

  const cases: Array<[string, number, new (...args: never[]) => APIError, number]> = [
    ['http-400', 400, BadRequestError, 1],
    ['http-429', 429, RateLimitError, 3],
    ['http-529', 529, OverloadedError, 3],
    ['http-500', 500, InternalServerError, 3],
  ];
  describe.each([false, true])('stream: %s', (stream) => {
    it.each(cases)('%s: a %i raised as the same SDK class after the same retries as directly', async (scenario, status, cls, requests) => {
      const { direct, through } = await run(scenario, stream);
      expect(through).toEqual(direct);
      const spec = ERRORS[scenario]!;
      expect(through).toMatchObject({ name: cls.name, status, type: spec.type, apiMessage: spec.message, upstreamRequests: requests });
      expect(through.retryCounts).toEqual(['0', '1', '2'].slice(0, requests));
    });

    it("an upstream 401 (the gateway's own key refused) is a 502, not retried, without the upstream's message", async () => {
      const through = await failing(routes.through, tag(), 'http-401', stream);
      expect(through).toMatchObject({ name: 'InternalServerError', status: 502, type: 'api_error', retryCounts: ['0'], upstreamRequests: 1 });
      expect(through.error).toMatchObject({ type: 'error', error: { type: 'api_error' } });
      expect(String(through.apiMessage)).not.toContain(ERRORS['http-401']!.message);
    });
  });

  it("an error event mid-stream fails the SDK's stream with the same type and body, after the same text", async () => {
    const runMid = async (baseURL: string) => {
      const t = tag();
      const stream = client(baseURL).messages.stream({ model: MODEL, max_tokens: 64, messages: [{ role: 'user', content: `scenario:error-mid ${t}` }] });
      let text = '';
      stream.on('text', (delta) => (text += delta));
      const result = await failure(
        () => stream.finalMessage(),
        (e) => ({ status: e.status, type: e.type, apiMessage: e.apiMessage, error: e.error }),
      );
      return { ...result, text, upstreamRequests: fake.requestsFor(t).length };
    };
    const [direct, through] = await Promise.all([runMid(routes.direct), runMid(routes.through)]);
    expect(through).toEqual(direct);
    expect(through).toMatchObject({ name: 'APIError', status: undefined, type: 'overloaded_error', error: STREAM_ERROR, text: 'Hello there and', upstreamRequests: 1 });
  });

  it('an error event mid-stream, unstreamed, is the same 529 OverloadedError after the same retries', async () => {
    const { direct, through } = await run('error-mid', false);
    // Directly the fake answers a 529 of its own, with a request id; through Jarvis the 529 is made of the error event
    // its stream carried (Jarvis always streams from the upstream), which names no request.
    const withoutRequestId = (r: typeof direct) => ({ ...r, error: { ...(r.error as object), request_id: undefined } });
    expect(withoutRequestId(through)).toEqual(withoutRequestId(direct));
    expect(through).toMatchObject({ name: 'OverloadedError', status: 529, type: 'overloaded_error', retryCounts: ['0', '1', '2'], upstreamRequests: 3 });
  });
});

describe('headers and count_tokens over an Anthropic upstream', () => {
  it('anthropic-beta and anthropic-version reach the upstream as the client sent them', async () => {
    const t = tag();
    const beta = 'interleaved-thinking-2025-05-14,fine-grained-tool-streaming-2025-05-14';
    await client(routes.through, { defaultHeaders: { 'anthropic-beta': beta } }).messages.create({ model: MODEL, max_tokens: 64, messages: [{ role: 'user', content: t }] });
    const [rec] = fake.requestsFor(t);
    expect(rec!.headers).toMatchObject({ 'anthropic-beta': beta, 'anthropic-version': '2026-10-21', authorization: `Bearer ${KEY}` });
    // The body went up as it came, but for stream: true.
    expect(rec!.body).toEqual({ model: MODEL, max_tokens: 64, messages: [{ role: 'user', content: t }], stream: true });
  });

  it("count_tokens is the upstream's count, not an estimate", async () => {
    const params = { model: MODEL, system: 'Be brief.', tools: [WEATHER], messages: [{ role: 'user' as const, content: `How is the weather in Paris today? ${tag()}` }] };
    const [direct, through] = await Promise.all([client(routes.direct).messages.countTokens(params), client(routes.through).messages.countTokens(params).withResponse()]);
    expect(through.data).toEqual(direct);
    expect(direct).toEqual({ input_tokens: inputTokensOf(params) });
    expect(through.response.headers.get('x-jarvis-token-count')).toBeNull();
    await waitForIdle(j.url);
  });
});

describe('streams cut short over an Anthropic upstream', () => {
  it("aborting mid-stream closes Jarvis's upstream request", async () => {
    const t = tag();
    const ac = new AbortController();
    const stream = client(routes.through).messages.stream({ model: MODEL, max_tokens: 1024, messages: [{ role: 'user', content: `tokens:500 delay:20 ${t}` }] }, { signal: ac.signal });
    expect((await abortAtFirstText(stream, ac)).error).toBeInstanceOf(APIUserAbortError);
    const [rec] = fake.requestsFor(t);
    await orFail(rec!.closed, 'the upstream request closing');
    expect(rec!.clientClosed).toBe(true);
    expect(fake.requestsFor(t)).toHaveLength(1);
    await waitForIdle(j.url);
  });

  // Cut in its text, or in its thinking block: either way the open block is stopped and the Message ends.
  it.each([
    ['text', (e: Anthropic.MessageStreamEvent) => e.type === 'content_block_delta' && e.delta.type === 'text_delta'],
    ['thinking', (e: Anthropic.MessageStreamEvent) => e.type === 'content_block_delta' && e.delta.type === 'thinking_delta'],
  ] as const)('barge-in (cut in its %s): the superseded stream ends as Anthropic ends one, its upstream request closed', async (_where, trigger) => {
    const t = tag();
    const session = `anthropic-barge-${tags}`;
    const bus = new BusSubscriber(j.url, session);
    try {
      await orFail(bus.connected, 'the events subscription');
      const { a, b } = await bargeIn(
        client(routes.through),
        session,
        { model: MODEL, max_tokens: 2048, thinking: THINKING, messages: [{ role: 'user', content: `tokens:500 delay:20 A${t}` }] },
        { model: MODEL, max_tokens: 256, messages: [{ role: 'user', content: `What is the answer? B${t}` }] },
        trigger,
      );
      expectWellFormed(a.events);
      expect(a.events.map((e) => e.type).slice(-3)).toEqual(['content_block_stop', 'message_delta', 'message_stop']);
      expect(a.message.stop_reason).toBe('end_turn');
      expect(a.message.content[0]!.type).toBe('thinking');
      expect(a.text.length).toBeLessThan(500 * 'tNNN '.length);
      expect(b.message.content).toEqual([{ type: 'text', text: 'The answer is 42.' }]);

      const [recA] = fake.requestsFor(`A${t}`);
      await orFail(recA!.closed, "A's upstream request closing");
      expect(recA!.clientClosed).toBe(true);
      const cancelled = await orFail(bus.until((e) => e.type === 'chat.cancelled' && e.request_id === a.requestId, "A's chat.cancelled"), "A's chat.cancelled");
      expect(cancelled.data).toMatchObject({ reason: 'superseded', heard_chars: a.text.length });
      await orFail(bus.until((e) => e.type === 'chat.end' && e.request_id === b.requestId, "B's chat.end"), "B's chat.end");
    } finally {
      await bus.close();
    }
    await waitForIdle(j.url, 5000, { subscribers: true });
  });
});
