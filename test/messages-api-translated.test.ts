// POST /v1/messages over upstreams that do not speak Anthropic: an OpenAI-compatible upstream (the OpenAI fake)
// and the built-in simulator, both translated each way, driven by the official Anthropic SDK. A text answer, a
// tool round trip, reasoning as a thinking block, errors in Anthropic's classes and shape, an abort that closes
// the upstream request, and a barge-in that ends the superseded stream as Anthropic ends one, with the event bus
// telling what was heard.
import Anthropic, { APIUserAbortError, BadRequestError, NotFoundError, OverloadedError, RateLimitError } from '@anthropic-ai/sdk';
import type { MessageStream } from '@anthropic-ai/sdk/lib/MessageStream';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { simulatedAnswer } from '../src/providers/simulated/answer.js';
import { orFail, waitForIdle } from './support/chat.js';
import { failure } from './support/faithful.js';
import { startJarvis, type TestJarvis } from './support/jarvis.js';
import { abortAtFirstText, bargeIn, BusSubscriber, expectWellFormed } from './support/messages.js';
import { ERRORS, startOpenAIUpstream, type OpenAIUpstream } from '../fakes/openai/index.js';

const MODEL = 'gpt-4o-mini';
const SIM = 'jarvis-sim';
const WEATHER = { name: 'get_weather', description: 'The weather in a city', input_schema: { type: 'object' as const, properties: { location: { type: 'string' } }, required: ['location'] } };
/** Hundreds of tokens from the simulator (seconds at its pace here), so a stream is mid-way when it is cut. */
const LONG = 'Long essay about the history of clocks';
const SHORT = 'What is the capital of France?';

let up: OpenAIUpstream;
let j: TestJarvis;
beforeAll(async () => {
  up = await startOpenAIUpstream();
  // The upstream names its model: any other is unknown (a '*' upstream would take every model).
  j = await startJarvis({ simulator: { tokensPerSec: 200, ttftMs: 0 }, upstreams: [{ name: 'openai', baseUrl: up.url, models: [MODEL] }], defaultModel: MODEL });
});
afterEach(async () => {
  await waitForIdle(j.url, 5000, { subscribers: true });
});
afterAll(async () => {
  await j?.close();
  await up?.close();
});

const sdk = () => new Anthropic({ apiKey: 'sk-ant-unused', baseURL: j.url, maxRetries: 2 });

let tags = 0;
/** Also a session and trace id: letters, digits and '-' only. */
const tag = () => `t${++tags}x${process.pid}`;

/** A streamed request read by the SDK's helper: every event it saw, and the Message it assembled (or how it failed). */
async function streamed(stream: MessageStream) {
  const events: Anthropic.MessageStreamEvent[] = [];
  stream.on('streamEvent', (e) => events.push(e));
  let text = '';
  stream.on('text', (t) => (text += t));
  const message = await stream.finalMessage();
  return { message, events, text };
}

/** The SDK's Message without what its stream helper adds (`parsed_output`). */
const plain = (m: Anthropic.Message) => {
  const { parsed_output: _parsed, ...rest } = m as Anthropic.Message & { parsed_output?: unknown };
  return rest;
};

const textOf = (m: Anthropic.Message) => m.content.flatMap((b) => (b.type === 'text' ? [b.text] : [])).join('');

// ===============================================================================================================

describe.each([
  { backend: 'the OpenAI fake', model: MODEL, prompt: (t: string) => `What is the answer? ${t}`, answer: () => 'The answer is 42.' },
  { backend: 'the simulator', model: SIM, prompt: (t: string) => `${SHORT} ${t}`, answer: (t: string) => simulatedAnswer(`${SHORT} ${t}`).join('') },
])('/v1/messages over $backend', ({ model, prompt, answer }) => {
  it('a text answer: finalMessage with the text, end_turn and usage; input tokens in message_start', async () => {
    const t = tag();
    const params = { model, max_tokens: 1024, messages: [{ role: 'user' as const, content: prompt(t) }] };
    const { message, events, text } = await streamed(sdk().messages.stream(params));
    expectWellFormed(events);
    expect(text).toBe(answer(t));
    // The model the upstream says answered (the OpenAI fake names a dated snapshot of the one asked for).
    expect(message.model.startsWith(model)).toBe(true);
    expect(message).toMatchObject({ type: 'message', role: 'assistant', stop_reason: 'end_turn', stop_sequence: null, content: [{ type: 'text', text: answer(t) }] });
    expect(message.id).toMatch(/^msg_/);
    expect(message.usage.input_tokens).toBeGreaterThan(0);
    expect(message.usage.output_tokens).toBeGreaterThan(0);
    // Unstreamed, the same answer.
    const created = await sdk().messages.create(params);
    expect({ ...created, id: '' }).toEqual({ ...plain(message), id: '' });
  });

  it('aborting mid-stream ends the stream in Jarvis (and closes the upstream request)', async () => {
    const t = tag();
    const ac = new AbortController();
    const content = model === SIM ? `${LONG} ${t}` : `scenario:long tokens:500 delay:20 ${t}`;
    const stream = sdk().messages.stream({ model, max_tokens: 4096, messages: [{ role: 'user', content }] }, { signal: ac.signal, headers: { 'x-trace-id': `abort-${t}` } });
    const { error: err, texts } = await abortAtFirstText(stream, ac);
    expect(err).toBeInstanceOf(APIUserAbortError);
    expect(texts).toBeGreaterThanOrEqual(1);
    if (model !== SIM) {
      const [rec] = up.requestsFor(t);
      await orFail(rec!.closed, 'the upstream request closing');
      expect(rec!.clientClosed).toBe(true);
      expect(up.requestsFor(t)).toHaveLength(1);
    }
    // Jarvis saw its client go and ended the stream as cancelled.
    const ofTrace = (log: string) => log.split('\n').filter((l) => l.includes(` trace=abort-${t}`));
    const lines = ofTrace(await j.waitForLog((log) => ofTrace(log).some((l) => l.includes(' stream_end '))));
    expect(lines.find((l) => l.includes(' stream_cancelled '))).toMatch(/ reason=client_disconnected/);
    expect(lines.find((l) => l.includes(' stream_end '))).toMatch(/ outcome=cancelled/);
  });

  it('barge-in: a second request in the session supersedes the first, which ends as Anthropic ends a stream', async () => {
    const t = tag();
    const session = `messages-barge-${t}`;
    const bus = new BusSubscriber(j.url, session);
    try {
      await orFail(bus.connected, 'the events subscription');
      const longContent = model === SIM ? `${LONG} ${t}` : `scenario:long tokens:500 delay:20 A${t}`;
      const shortContent = model === SIM ? `${SHORT} ${t}` : `What is the answer? B${t}`;
      const { a, b } = await bargeIn(
        sdk(),
        session,
        { model, max_tokens: 4096, messages: [{ role: 'user', content: longContent }] },
        { model, max_tokens: 1024, messages: [{ role: 'user', content: shortContent }] },
      );

      expect(a.message.stop_reason).toBe('end_turn');
      expect(textOf(a.message)).toBe(a.text);
      expect(a.events.map((e) => e.type).slice(-3)).toEqual(['content_block_stop', 'message_delta', 'message_stop']);
      expectWellFormed(a.events);
      const fullA = model === SIM ? simulatedAnswer(longContent).join('') : Array.from({ length: 500 }, (_, i) => `t${i} `).join('');
      expect(fullA.startsWith(a.text)).toBe(true);
      expect(a.text.length).toBeLessThan(fullA.length);

      expect(b.message.stop_reason).toBe('end_turn');
      expect(textOf(b.message)).toBe(model === SIM ? simulatedAnswer(shortContent).join('') : 'The answer is 42.');

      if (model !== SIM) {
        const [recA] = up.requestsFor(`A${t}`);
        await orFail(recA!.closed, "A's upstream request closing");
        expect(recA!.clientClosed).toBe(true);
      }

      // The bus: A cancelled, superseded, with what its client heard; B ended.
      expect(a.requestId).toBeTruthy();
      const cancelled = await orFail(bus.until((e) => e.type === 'chat.cancelled' && e.request_id === a.requestId, "A's chat.cancelled"), "A's chat.cancelled");
      expect(cancelled.data).toMatchObject({ reason: 'superseded', heard_chars: a.text.length });
      expect(a.message.usage.output_tokens).toBe(cancelled.data.delivered_tokens);
      const end = await orFail(bus.until((e) => e.type === 'chat.end' && e.request_id === b.requestId, "B's chat.end"), "B's chat.end");
      expect(end.data).toMatchObject({ delivered_chars: textOf(b.message).length });
      expect(bus.events.some((e) => e.type === 'chat.end' && e.request_id === a.requestId)).toBe(false);
    } finally {
      await bus.close();
    }
  });
  it('barge-in on an unstreamed request: its Message ends with what was generated, end_turn, and that usage', async () => {
    const t = tag();
    const session = `messages-barge-json-${t}`;
    const headers = { 'X-Session-Id': session };
    const bus = new BusSubscriber(j.url, session);
    try {
      await orFail(bus.connected, 'the events subscription');
      const longContent = model === SIM ? `${LONG} ${t}` : `scenario:long tokens:500 delay:20 A${t}`;
      const a = sdk().messages.create({ model, max_tokens: 4096, messages: [{ role: 'user', content: longContent }] }, { headers }).withResponse();
      // A is mid-answer once the bus has had tokens of it.
      const started = await orFail(bus.until((e) => e.type === 'chat.token', "A's first tokens"), "A's first tokens");
      const b = await sdk().messages.create({ model, max_tokens: 1024, messages: [{ role: 'user', content: `${SHORT} B${t}` }] }, { headers });
      const { data: message, response } = await a;
      expect(response.headers.get('x-request-id')).toBe(started.request_id);
      expect(b.stop_reason).toBe('end_turn');

      const cancelled = await orFail(bus.until((e) => e.type === 'chat.cancelled' && e.request_id === started.request_id, "A's chat.cancelled"), "A's chat.cancelled");
      const fullA = model === SIM ? simulatedAnswer(longContent).join('') : Array.from({ length: 500 }, (_, i) => `t${i} `).join('');
      expect(message.stop_reason).toBe('end_turn');
      expect(message.content).toEqual([{ type: 'text', text: expect.any(String) }]);
      expect(fullA.startsWith(textOf(message))).toBe(true);
      expect(textOf(message).length).toBeLessThan(fullA.length);
      expect(cancelled.data).toMatchObject({ reason: 'superseded', heard_chars: textOf(message).length });
      // The usage says what was generated before the cut, as the streamed answer's message_delta does.
      expect(cancelled.data.delivered_tokens).toBeGreaterThan(0);
      expect(message.usage.output_tokens).toBe(cancelled.data.delivered_tokens);
    } finally {
      await bus.close();
    }
  });
});

// ===============================================================================================================

describe('/v1/messages over the OpenAI fake: tools and reasoning', () => {
  describe.each([false, true])('stream: %s', (stream) => {
    const ask = (params: Anthropic.MessageCreateParamsNonStreaming) => (stream ? sdk().messages.stream(params).finalMessage().then(plain) : sdk().messages.create(params));

    it('a tool round trip: tool_use with its input parsed, then the tool_result turn answered', async () => {
      const t = tag();
      const params: Anthropic.MessageCreateParamsNonStreaming = { model: MODEL, max_tokens: 1024, tools: [WEATHER], messages: [{ role: 'user', content: `Weather in Paris? ${t}` }] };
      const first = await ask(params);
      expect(first.stop_reason).toBe('tool_use');
      expect(first.content).toEqual([{ type: 'tool_use', id: expect.any(String), name: 'get_weather', input: { location: 'Paris' } }]);
      const call = first.content[0] as Anthropic.ToolUseBlock;

      const second = await ask({
        ...params,
        messages: [...params.messages, { role: 'assistant', content: first.content }, { role: 'user', content: [{ type: 'tool_result', tool_use_id: call.id, content: '{"temperature":21}' }] }],
      });
      expect(second).toMatchObject({ stop_reason: 'end_turn', content: [{ type: 'text', text: 'The tool says: {"temperature":21}.' }] });
      // The upstream got the call and its result as Chat Completions has them.
      const sent = up.requests.filter((r) => JSON.stringify(r.body.messages).includes(t)).at(-1)!.body as { messages: Array<Record<string, unknown>> };
      expect(sent.messages.slice(-2)).toMatchObject([
        { role: 'assistant', tool_calls: [{ id: call.id, type: 'function', function: { name: 'get_weather' } }] },
        { role: 'tool', tool_call_id: call.id, content: '{"temperature":21}' },
      ]);
    });

    it("a refusal is a text block with Anthropic's stop_reason refusal", async () => {
      const message = await ask({ model: MODEL, max_tokens: 1024, messages: [{ role: 'user', content: `scenario:refusal ${tag()}` }] });
      expect(message).toMatchObject({ stop_reason: 'refusal', content: [{ type: 'text', text: "I'm sorry, I can't help with that." }] });
    });

    it("the answer's request id is Jarvis's, where the SDK reads Anthropic's (request-id)", async () => {
      const t = tag();
      const params = { model: MODEL, max_tokens: 1024, messages: [{ role: 'user' as const, content: `Hello ${t}` }] };
      let id: string | null | undefined;
      if (stream) {
        const s = sdk().messages.stream(params);
        await s.finalMessage();
        id = s.request_id;
      } else {
        id = (await sdk().messages.create(params))._request_id;
      }
      expect(id).toMatch(/^req_/);
      const log = await j.waitForLog((l) => l.includes(`stream_id=${id} `));
      expect(log).toContain(`stream_id=${id} `);
    });

    it('reasoning comes as a thinking block before the text', async () => {
      const message = await ask({ model: MODEL, max_tokens: 1024, messages: [{ role: 'user', content: `scenario:reasoning 2+2? ${tag()}` }] });
      expect(message.content.map((b) => b.type)).toEqual(['thinking', 'text']);
      expect(message.content[0]).toMatchObject({ type: 'thinking', thinking: 'The user wants a sum.' });
      expect(textOf(message)).toBe('2 + 2 = 4.');
      expect(message.stop_reason).toBe('end_turn');
    });
  });
});

describe('/v1/messages over the simulator: a tool_result turn', () => {
  it('is answered, streamed and not', async () => {
    const t = tag();
    const params: Anthropic.MessageCreateParamsNonStreaming = {
      model: SIM,
      max_tokens: 1024,
      tools: [WEATHER],
      messages: [
        { role: 'user', content: `Weather in Paris? ${t}` },
        { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_01', name: 'get_weather', input: { location: 'Paris' } }] },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_01', content: '{"temperature":21}' }] },
      ],
    };
    const { message, events } = await streamed(sdk().messages.stream(params));
    expectWellFormed(events);
    expect(message.stop_reason).toBe('end_turn');
    expect(message.content).toEqual([{ type: 'text', text: expect.stringMatching(/\S/) }]);
    const created = await sdk().messages.create(params);
    expect(created.content).toEqual(message.content);
  });
});

// ===============================================================================================================

describe('/v1/messages errors over a translated upstream', () => {
  const run = async (model: string, content: string, stream: boolean) => {
    const params = { model, max_tokens: 64, messages: [{ role: 'user' as const, content }] };
    return failure(
      () => (stream ? sdk().messages.stream(params).finalMessage() : sdk().messages.create(params)),
      (e) => ({ status: e.status, type: e.type, error: e.error }),
    );
  };

  describe.each([false, true])('stream: %s', (stream) => {
    it("the OpenAI fake's 400 is a BadRequestError in Anthropic's shape, not retried", async () => {
      const t = tag();
      const result = await run(MODEL, `scenario:http-400 ${t}`, stream);
      expect(result).toMatchObject({ name: BadRequestError.name, status: 400, type: 'invalid_request_error' });
      expect(result.error).toMatchObject({ type: 'error', error: { type: 'invalid_request_error', message: ERRORS['http-400']!.error.message } });
      expect(up.requestsFor(t)).toHaveLength(1);
    });

    it("the OpenAI fake's 429 is a RateLimitError, retried by the SDK as Anthropic's", async () => {
      const t = tag();
      const result = await run(MODEL, `scenario:http-429 ${t}`, stream);
      expect(result).toMatchObject({ name: RateLimitError.name, status: 429, type: 'rate_limit_error', error: { type: 'error', error: { type: 'rate_limit_error' } } });
      expect(up.requestsFor(t)).toHaveLength(3);
    });

    it('an unknown model is a NotFoundError (404 not_found_error), asking no upstream', async () => {
      const t = tag();
      const result = await run('claude-nonexistent-1', t, stream);
      expect(result).toMatchObject({ name: NotFoundError.name, status: 404, type: 'not_found_error', error: { type: 'error', error: { type: 'not_found_error' } } });
      expect(up.requestsFor(t)).toHaveLength(0);
    });
  });
});

// ===============================================================================================================

describe('/v1/messages before the first token', () => {
  // A simulator that takes a minute to its first token: a stream is certainly still waiting when the test acts.
  let slow: TestJarvis;
  beforeAll(async () => {
    slow = await startJarvis({ simulator: { tokensPerSec: 200, ttftMs: 60_000 }, upstreams: [{ name: 'openai', baseUrl: up.url, models: [MODEL] }], defaultModel: MODEL });
  });
  afterAll(() => slow?.close());
  const slowSdk = () => new Anthropic({ apiKey: 'sk-ant-unused', baseURL: slow.url, maxRetries: 0 });
  const started = (trace: string) => slow.waitForLog((log) => log.split('\n').some((l) => l.includes(' stream_start ') && l.includes(` trace=${trace}`)));

  it('superseded before its first event, a stream still ends as Anthropic ends one: message_start, message_delta, message_stop', async () => {
    const t = tag();
    const session = `messages-early-${t}`;
    const a = slowSdk().messages.stream({ model: SIM, max_tokens: 1024, messages: [{ role: 'user', content: `${SHORT} ${t}` }] }, { headers: { 'X-Session-Id': session, 'x-trace-id': `early-${t}` } });
    const events: Anthropic.MessageStreamEvent[] = [];
    a.on('streamEvent', (e) => events.push(e));
    await started(`early-${t}`);
    const b = await slowSdk().messages.create({ model: MODEL, max_tokens: 1024, messages: [{ role: 'user', content: `What is the answer? B${t}` }] }, { headers: { 'X-Session-Id': session } });
    expect(b.content).toEqual([{ type: 'text', text: 'The answer is 42.' }]);
    const message = await a.finalMessage();
    expect(events.map((e) => e.type)).toEqual(['message_start', 'message_delta', 'message_stop']);
    expect(message).toMatchObject({ content: [], stop_reason: 'end_turn', model: SIM });
    // Jarvis's estimate of the input, as a translated answer's message_start has it: never a 0 that breaks cost displays.
    expect((events[0] as Anthropic.RawMessageStartEvent).message.usage.input_tokens).toBeGreaterThan(0);
    await waitForIdle(slow.url);
  });

  it('Jarvis at its limit of streams answers 529 overloaded_error, the SDK\'s OverloadedError', async () => {
    const full = await startJarvis({ maxStreams: 1, simulator: { tokensPerSec: 200, ttftMs: 60_000 } });
    try {
      const t = tag();
      const ac = new AbortController();
      const sdk = new Anthropic({ apiKey: 'sk-ant-unused', baseURL: full.url, maxRetries: 0 });
      const held = sdk.messages.stream({ model: SIM, max_tokens: 64, messages: [{ role: 'user', content: SHORT }] }, { signal: ac.signal, headers: { 'x-trace-id': `held-${t}` } });
      held.finalMessage().catch(() => {});
      await full.waitForLog((log) => log.includes(` trace=held-${t}`) && log.includes(' stream_start '));
      for (const call of [() => sdk.messages.create({ model: SIM, max_tokens: 64, messages: [{ role: 'user', content: SHORT }] }), () => sdk.messages.stream({ model: SIM, max_tokens: 64, messages: [{ role: 'user', content: SHORT }] }).finalMessage()]) {
        const result = await failure(call, (e) => ({ status: e.status, type: e.type, error: e.error, retryAfter: (e.headers as Headers | undefined)?.get('retry-after') }));
        expect(result).toMatchObject({ name: OverloadedError.name, status: 529, type: 'overloaded_error', error: { type: 'error', error: { type: 'overloaded_error' } } });
        expect(Number(result.retryAfter)).toBeGreaterThan(0);
      }
      ac.abort();
      await waitForIdle(full.url);
    } finally {
      await full.close();
    }
  });
});
