// The Realtime API in text mode (GET /v1/realtime over WSS) through the `openai` SDK's GA client OpenAIRealtimeWS:
// conversations over the simulator, the OpenAI fake and the Anthropic fake; a tool call and its result; barge-in by
// response.create, response.cancel, a truncate the next turn respects, out-of-band responses; audio refused in
// text; keys as a header or a browser's subprotocol.
import { Agent, getGlobalDispatcher, setGlobalDispatcher, type Dispatcher } from 'undici';
import { WebSocket } from 'ws';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startAnthropicUpstream, type AnthropicUpstream } from '../fakes/anthropic/index.js';
import { startMockUpstream, startOpenAIUpstream, type MockUpstream, type OpenAIUpstream, type RecordedRequest } from '../fakes/openai/index.js';
import { orFail } from './support/chat.js';
import { startJarvis, type TestJarvis } from './support/jarvis.js';
import { BusSubscriber } from './support/messages.js';
import { RtClient, type RtEvent } from './support/realtime.js';
import { makeCertificate, type TestCertificate } from './support/tls.js';

const KEY = 'sk-realtime-test-alice';
let cert: TestCertificate;
let openai: OpenAIUpstream;
let anthropic: AnthropicUpstream;
let mock: MockUpstream;
let jarvis: TestJarvis;
const clients: RtClient[] = [];
let dispatcher: Dispatcher;

beforeAll(async () => {
  [cert, openai, anthropic, mock] = await Promise.all([makeCertificate(), startOpenAIUpstream(), startAnthropicUpstream(), startMockUpstream()]);
  // This file's own fetches (an events subscriber) trust the test's certificate, as a client given it would.
  dispatcher = getGlobalDispatcher();
  setGlobalDispatcher(new Agent({ connect: { ca: cert.cert } }));
  jarvis = await startJarvis({
    apiKeys: [`alice=${KEY}`],
    tls: { certFile: cert.certFile, keyFile: cert.keyFile },
    upstreams: [
      { name: 'openai', baseUrl: openai.url, models: ['gpt-4o-mini'] },
      { name: 'claude', baseUrl: anthropic.url, provider: 'anthropic', models: ['claude-haiku-4-5'] },
      { name: 'mock', baseUrl: mock.url, models: ['mock-model'] },
    ],
    simulator: { tokensPerSec: 400, ttftMs: 0 },
  });
});
afterEach(() => {
  for (const c of clients.splice(0)) c.close();
});
afterAll(async () => {
  setGlobalDispatcher(dispatcher);
  await jarvis.close();
  await Promise.all([openai.close(), anthropic.close(), mock.close(), cert.remove()]);
});

async function connect(model: string, headers?: Record<string, string>): Promise<RtClient> {
  const c = new RtClient(jarvis.url, { key: KEY, model, ca: cert.cert, ...(headers ? { headers } : {}) });
  clients.push(c);
  await c.opened;
  return c;
}

/** The mock's request whose last message holds `tag`, once it has come. */
function mockRequest(tag: string): Promise<RecordedRequest> {
  return orFail(
    (async () => {
      for (;;) {
        const rec = mock.requests.findLast((r) => r.prompt.includes(tag));
        if (rec) return rec;
        await new Promise((r) => setTimeout(r, 5));
      }
    })(),
    `the upstream request tagged ${tag}`,
  );
}

const WEATHER = { type: 'function', name: 'get_weather', description: 'The weather in a city', parameters: { type: 'object', properties: { location: { type: 'string' } }, required: ['location'] } };
const text = (response: RtEvent) => (response.output as RtEvent[]).filter((o) => o.type === 'message').map((o) => o.content[0].text as string).join('');

describe('a conversation in text', () => {
  it('opens with session.created, takes session.update, and answers in the GA events, in OpenAI\'s order', async () => {
    const c = await connect('jarvis-sim');
    await c.waitFor((e) => e.type === 'session.created', 'session.created');
    expect(c.events[0]).toMatchObject({ type: 'session.created', session: { type: 'realtime', model: 'jarvis-sim', output_modalities: ['text'] } });
    c.send({ type: 'session.update', session: { type: 'realtime', instructions: 'Be brief.', output_modalities: ['text'] } });
    expect(await c.next('session.updated')).toMatchObject({ session: { instructions: 'Be brief.' } });
    c.say('Hello there');
    const response = await c.respond({ metadata: { turn: 'one' }, max_output_tokens: 12 });
    const types = c.events.map((e) => e.type).filter((t) => t !== 'response.output_text.delta');
    expect(types.slice(2)).toEqual([
      'conversation.item.added',
      'conversation.item.done',
      'response.created',
      'response.output_item.added',
      'conversation.item.added',
      'response.content_part.added',
      'response.output_text.done',
      'response.content_part.done',
      'response.output_item.done',
      'conversation.item.done',
      'response.done',
    ]);
    expect(c.events.find((e) => e.type === 'response.created')!.response.metadata).toEqual({ turn: 'one' });
    expect(response).toMatchObject({ object: 'realtime.response', status: 'incomplete', status_details: { type: 'incomplete', reason: 'max_output_tokens' }, metadata: { turn: 'one' }, usage: { output_tokens: 12 } });
    expect(text(response)).toBe(c.textOf(response.id));
    for (const e of c.events) expect(e.event_id).toMatch(/^event_/);
  });

  it('holds several turns over the simulator, the conversation growing by each turn\'s items', async () => {
    const c = await connect('jarvis-sim');
    for (const words of ['Hello there', 'Tell me more', 'And then?']) {
      c.say(words);
      const response = await c.respond({ max_output_tokens: 6 });
      expect(response.status).toBe('incomplete');
      expect(text(response)).not.toBe('');
    }
    const added = c.events.filter((e) => e.type === 'conversation.item.added');
    expect(added.map((e) => e.item.role)).toEqual(['user', 'assistant', 'user', 'assistant', 'user', 'assistant']);
    // Each item follows the one before it.
    added.slice(1).forEach((e, i) => expect(e.previous_item_id).toBe(added[i]!.item.id));
  });

  it.each([
    ['the OpenAI fake', 'gpt-4o-mini', () => openai.requests.at(-1)!.body],
    ['the Anthropic fake', 'claude-haiku-4-5', () => anthropic.requests.at(-1)!.body],
  ])('holds several turns over %s: each response sees the conversation so far', async (_, model, lastRequest) => {
    const c = await connect(model);
    c.send({ type: 'session.update', session: { type: 'realtime', instructions: 'You are terse.' } });
    c.say('My name is Ada.');
    const first = await c.respond();
    expect(first.status).toBe('completed');
    c.say('What is my name?');
    const second = await c.respond();
    expect(second.status).toBe('completed');
    const sent = JSON.stringify(lastRequest());
    expect(sent).toContain('You are terse.');
    expect(sent).toContain('My name is Ada.');
    expect(sent).toContain(JSON.stringify(text(first)).slice(1, -1));
    expect(sent).toContain('What is my name?');
  });

  it.each([
    ['the OpenAI fake', 'gpt-4o-mini'],
    ['the Anthropic fake', 'claude-haiku-4-5'],
  ])('calls a tool over %s and answers with its result', async (_, model) => {
    const c = await connect(model);
    c.send({ type: 'session.update', session: { type: 'realtime', tools: [WEATHER], tool_choice: 'auto' } });
    c.say('What is the weather in Paris?');
    const first = await c.respond();
    const call = (first.output as RtEvent[]).find((o) => o.type === 'function_call')!;
    expect(call).toMatchObject({ type: 'function_call', name: 'get_weather', status: 'completed' });
    expect(JSON.parse(call.arguments)).toEqual({ location: 'Paris' });
    const args = await c.waitFor((e) => e.type === 'response.function_call_arguments.done', 'the arguments');
    expect(args).toMatchObject({ call_id: call.call_id, name: 'get_weather', arguments: call.arguments });
    c.send({ type: 'conversation.item.create', item: { type: 'function_call_output', call_id: call.call_id, output: '{"temperature":21}' } });
    const second = await c.respond();
    expect(text(second)).toBe('The tool says: {"temperature":21}.');
  });
});

describe('barge-in and what was heard', () => {
  it('a response.create while a response is generating supersedes it: cancelled, its upstream closed, the conversation keeping what was delivered', async () => {
    const c = await connect('mock-model', { 'x-session-id': 'rt-barge' });
    c.say('tell me a story tag:rt-barge-1 tokens:400 delay:20');
    c.send({ type: 'response.create' });
    const created = await c.next('response.created');
    await c.waitFor((e) => e.type === 'response.output_text.delta' && c.events.filter((x) => x.type === 'response.output_text.delta').length >= 3, 'three deltas');
    c.say('stop, tag:rt-barge-2 tokens:3');
    c.send({ type: 'response.create' });
    const cut = await c.waitFor((e) => e.type === 'response.done' && e.response.id === created.response.id, 'the cut response');
    expect(cut.response).toMatchObject({ status: 'cancelled', status_details: { type: 'cancelled', reason: 'turn_detected' } });
    const first = await mockRequest('tag:rt-barge-1');
    await orFail(first.closed, 'the first upstream request closing');
    expect(first.clientClosed).toBe(true);
    await c.waitFor((e) => e.type === 'response.done' && e.response.id !== created.response.id, 'the new response');
    const heard = c.textOf(created.response.id);
    const req = await mockRequest('tag:rt-barge-2');
    expect(req.body.messages.at(-2)).toEqual({ role: 'assistant', content: `${heard} [interrupted by the user]` });
    await jarvis.waitForLog((l) => /stream_cancelled .*reason=superseded/.test(l));
  });

  it('under X-Session-Policy: reject, a response.create while one is generating gets conversation_already_has_active_response', async () => {
    const c = await connect('mock-model', { 'x-session-policy': 'reject' });
    c.say('tag:rt-reject tokens:100 delay:10');
    c.send({ type: 'response.create' });
    const created = await c.next('response.created');
    c.send({ type: 'response.create', event_id: 'evt_second' });
    const error = await c.next('error');
    expect(error.error).toMatchObject({ type: 'invalid_request_error', code: 'conversation_already_has_active_response', event_id: 'evt_second' });
    const done = await c.waitFor((e) => e.type === 'response.done' && e.response.id === created.response.id, 'the first response');
    expect(done.response.status).toBe('completed');
  });

  it('response.cancel ends the active response (client_cancelled); with nothing active it is response_cancel_not_active', async () => {
    const c = await connect('mock-model');
    c.send({ type: 'response.cancel', event_id: 'evt_nothing' });
    expect((await c.next('error')).error).toMatchObject({ code: 'response_cancel_not_active', event_id: 'evt_nothing' });
    c.say('tag:rt-cancel tokens:400 delay:20');
    c.send({ type: 'response.create' });
    const created = await c.next('response.created');
    await c.next('response.output_text.delta');
    c.send({ type: 'response.cancel' });
    const done = await c.waitFor((e) => e.type === 'response.done', 'response.done');
    expect(done.response).toMatchObject({ id: created.response.id, status: 'cancelled', status_details: { reason: 'client_cancelled' } });
    const rec = await mockRequest('tag:rt-cancel');
    await orFail(rec.closed, 'the upstream request closing');
    c.send({ type: 'response.cancel', response_id: created.response.id });
    expect((await c.next('error')).error.code).toBe('response_cancel_not_active');
  });

  it('under policy queue, a second response waits for the first; response.cancel ends the one generating, and the next runs', async () => {
    const c = await connect('mock-model', { 'x-session-policy': 'queue' });
    c.say('tag:rt-queue-1 tokens:400 delay:20');
    c.send({ type: 'response.create' });
    const first = await c.next('response.created');
    c.say('tag:rt-queue-2 tokens:2');
    c.send({ type: 'response.create' });
    await c.next('response.output_text.delta');
    c.send({ type: 'response.cancel' });
    const cut = await c.waitFor((e) => e.type === 'response.done' && e.response.id === first.response.id, 'the first response');
    expect(cut.response.status).toBe('cancelled');
    const second = await c.waitFor((e) => e.type === 'response.done' && e.response.id !== first.response.id, 'the second response');
    expect(second.response.status).toBe('completed');
  });

  it('a truncate cuts the assistant\'s text where the person stopped hearing it, and the next turn sees only that', async () => {
    const bus = new BusSubscriber(jarvis.url, 'rt-heard', { authorization: `Bearer ${KEY}` });
    await bus.connected;
    const c = await connect('mock-model', { 'x-session-id': 'rt-heard' });
    c.say('tag:rt-heard-1 tokens:40');
    const first = await c.respond();
    const item = (first.output as RtEvent[])[0]!;
    c.send({ type: 'conversation.item.truncate', item_id: item.id, content_index: 0, audio_end_ms: 1000, heard_chars: 10 });
    expect(await c.next('conversation.item.truncated')).toMatchObject({ item_id: item.id, content_index: 0, audio_end_ms: 1000 });
    c.send({ type: 'conversation.item.retrieve', item_id: item.id });
    expect((await c.next('conversation.item.retrieved')).item.content[0].text).toBe(text(first).slice(0, 10));
    c.say('go on tag:rt-heard-2 tokens:2');
    await c.respond();
    const req = await mockRequest('tag:rt-heard-2');
    expect(req.body.messages.at(-2)).toEqual({ role: 'assistant', content: `${text(first).slice(0, 10)} [interrupted by the user]` });
    const truncated = await bus.until((e) => e.type === ('chat.truncated' as string), 'chat.truncated');
    expect(truncated.data).toMatchObject({ item_id: item.id, heard_chars: 10 });
    await bus.close();
  });

  it('reads audio_end_ms at the configured speaking rate when heard_chars is not given', async () => {
    const c = await connect('mock-model');
    c.say('tag:rt-rate tokens:40');
    const first = await c.respond();
    const item = (first.output as RtEvent[])[0]!;
    // 15 characters a second (JARVIS_REALTIME_CHARS_PER_SECOND's default): 2 s of speech are 30 characters.
    c.send({ type: 'conversation.item.truncate', item_id: item.id, content_index: 0, audio_end_ms: 2000 });
    await c.next('conversation.item.truncated');
    c.send({ type: 'conversation.item.retrieve', item_id: item.id });
    expect((await c.next('conversation.item.retrieved')).item.content[0].text).toBe(text(first).slice(0, 30));
  });

  it('an out-of-band response (conversation: "none") runs beside the conversation\'s, which it neither joins nor cuts', async () => {
    const c = await connect('mock-model');
    c.say('tag:rt-main tokens:60 delay:10');
    c.send({ type: 'response.create' });
    const main = await c.next('response.created');
    c.send({ type: 'response.create', response: { conversation: 'none', metadata: { purpose: 'classify' }, input: [{ type: 'message', role: 'user', content: [{ type: 'input_text', text: 'classify tag:rt-oob tokens:2' }] }] } });
    const oob = await c.waitFor((e) => e.type === 'response.done' && e.response.metadata?.purpose === 'classify', 'the out-of-band response');
    expect(oob.response).toMatchObject({ status: 'completed', conversation_id: null });
    const done = await c.waitFor((e) => e.type === 'response.done' && e.response.id === main.response.id, 'the main response');
    expect(done.response.status).toBe('completed');
    // Its items stayed out of the conversation: the next turn's context has no trace of it.
    expect(c.events.filter((e) => e.type === 'conversation.item.added' && e.item.id === oob.response.output[0].id)).toEqual([]);
  });
});

describe('what text mode refuses, and keys', () => {
  it('answers audio events and audio output with an error naming the event; the socket stays open', async () => {
    const c = await connect('jarvis-sim');
    c.send({ type: 'input_audio_buffer.append', audio: 'AAAA' });
    expect((await c.next('error')).error).toMatchObject({ code: 'unsupported_value', message: expect.stringMatching(/^input_audio_buffer\.append: this model is served in text only/) });
    c.send({ type: 'session.update', session: { type: 'realtime', output_modalities: ['audio'] } });
    expect((await c.next('error')).error.message).toMatch(/served in text only/);
    c.say('hello');
    expect((await c.respond({ max_output_tokens: 3 })).status).toBe('incomplete');
  });

  it('takes a browser\'s key as the subprotocol openai-insecure-api-key.<key>, answers with realtime, and never logs the key', async () => {
    const url = `${jarvis.url.replace('https', 'wss')}/v1/realtime?model=jarvis-sim`;
    const ws = new WebSocket(url, ['realtime', `openai-insecure-api-key.${KEY}`], { ca: cert.cert });
    const first = new Promise<RtEvent>((resolve) => ws.once('message', (m) => resolve(JSON.parse(String(m)) as RtEvent)));
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    expect(ws.protocol).toBe('realtime');
    expect((await first).type).toBe('session.created');
    ws.close();
    const log = await jarvis.waitForLog((l) => /ws_open .*path=\/v1\/realtime/.test(l));
    expect(log).not.toContain(KEY);
  });

  it('refuses a bad key before the upgrade, as the SDK sees it', async () => {
    const c = new RtClient(jarvis.url, { key: 'sk-wrong-key-0000', model: 'jarvis-sim', ca: cert.cert });
    await expect(c.opened).rejects.toThrow(/401/);
    const refused = await new Promise<number>((resolve) => {
      const ws = new WebSocket(`${jarvis.url.replace('https', 'wss')}/v1/realtime?model=jarvis-sim`, ['realtime', 'openai-insecure-api-key.sk-wrong-key-0000'], { ca: cert.cert });
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.on('error', () => {});
    });
    expect(refused).toBe(401);
  });

  it('refuses a model the gateway does not serve, before the upgrade', async () => {
    const status = await new Promise<number>((resolve) => {
      const ws = new WebSocket(`${jarvis.url.replace('https', 'wss')}/v1/realtime?model=no-such-model`, { ca: cert.cert, headers: { authorization: `Bearer ${KEY}` } });
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.on('error', () => {});
    });
    expect(status).toBe(404);
  });
});

describe('quotas and limits, as for chat', () => {
  const LIMITED = 'sk-realtime-test-limited';
  let own: TestJarvis;
  beforeAll(async () => {
    own = await startJarvis({
      access: { keys: [{ name: 'limited', key: LIMITED, rpm: 1, models: ['jarvis-sim'] }] },
      tls: { certFile: cert.certFile, keyFile: cert.keyFile },
      simulator: { tokensPerSec: 2000, ttftMs: 0 },
      websocket: { maxConnectionsPerKey: 1 },
    });
  });
  afterAll(() => own.close());

  it('counts each response against the key\'s requests per minute, holds it to its models and to its connections', async () => {
    const c = new RtClient(own.url, { key: LIMITED, model: 'jarvis-sim', ca: cert.cert });
    clients.push(c);
    await c.opened;
    c.say('one');
    await c.respond({ max_output_tokens: 2 });
    c.say('two');
    c.send({ type: 'response.create', event_id: 'evt_over' });
    expect((await c.next('error')).error).toMatchObject({ type: 'rate_limit_error', code: 'rate_limit_exceeded', event_id: 'evt_over' });
    const second = await new Promise<number>((resolve) => {
      const ws = new WebSocket(`${own.url.replace('https', 'wss')}/v1/realtime?model=jarvis-sim`, { ca: cert.cert, headers: { authorization: `Bearer ${LIMITED}` } });
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.on('error', () => {});
    });
    expect(second).toBe(429);
    const model = await new Promise<number>((resolve) => {
      const ws = new WebSocket(`${own.url.replace('https', 'wss')}/v1/realtime?model=gpt-4o-mini`, { ca: cert.cert, headers: { authorization: `Bearer ${LIMITED}` } });
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.on('error', () => {});
    });
    expect(model).toBe(404);
  });
});

describe('bad events', () => {
  it('each get an error event naming the client event, nothing else happens, and the socket stays open', async () => {
    const ws = new WebSocket(`${jarvis.url.replace('https', 'wss')}/v1/realtime?model=jarvis-sim`, { ca: cert.cert, headers: { authorization: `Bearer ${KEY}` } });
    const got: RtEvent[] = [];
    ws.on('message', (m) => got.push(JSON.parse(String(m)) as RtEvent));
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    const bad: RtEvent[] = [
      { type: 'session.update' },
      { type: 'session.update', session: 'x' },
      { type: 'session.update', session: { tools: 'x' } },
      { type: 'session.update', session: { tools: [{ type: 'web_search' }] } },
      { type: 'session.update', session: { tool_choice: 5 } },
      { type: 'session.update', session: { instructions: 5 } },
      { type: 'session.update', session: { max_output_tokens: -1 } },
      { type: 'session.update', session: { voice_of_god: true } },
      { type: 'conversation.item.create' },
      { type: 'conversation.item.create', item: null },
      { type: 'conversation.item.create', item: { type: 'message', role: 'user', content: 'hi' } },
      { type: 'conversation.item.create', item: { type: 'message', role: 'user', content: [{ type: 'input_text' }] } },
      { type: 'conversation.item.create', item: { type: 'message', role: 'tool', content: [] } },
      { type: 'conversation.item.create', item: { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'x' }] }, previous_item_id: 'nope' },
      { type: 'conversation.item.delete' },
      { type: 'conversation.item.retrieve', item_id: 5 },
      { type: 'conversation.item.truncate', item_id: 'nope', audio_end_ms: 5 },
      { type: 'response.create', response: 'x' },
      { type: 'response.create', response: { conversation: 'other' } },
      { type: 'response.create', response: { input: 'x' } },
      { type: 'response.create', response: { input: [{ type: 'item_reference', id: 'nope' }] } },
      { type: 'response.create', response: { max_output_tokens: 0 } },
      { type: 'response.cancel', response_id: 5 },
      { type: 'response.create' },
    ];
    for (const [i, b] of bad.entries()) ws.send(JSON.stringify({ ...b, event_id: `bad_${i}` }));
    for (const raw of ['[]', '"x"', 'null', '{"type":5}', '{not json']) ws.send(raw);
    await orFail(
      (async () => {
        while (got.filter((e) => e.type === 'error').length < bad.length + 5) await new Promise((r) => setTimeout(r, 5));
      })(),
      'an error for each bad event',
    );
    const errors = got.filter((e) => e.type === 'error');
    for (const [i] of bad.entries()) expect(errors.some((e) => e.error.event_id === `bad_${i}`), JSON.stringify(bad[i])).toBe(true);
    for (const e of errors) expect(e.error).toMatchObject({ type: 'invalid_request_error', message: expect.any(String) });
    expect(got.filter((e) => e.type !== 'error' && e.type !== 'session.created')).toEqual([]);
    // Still open, and still serving.
    ws.send(JSON.stringify({ type: 'conversation.item.create', item: { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'hi' }] } }));
    ws.send(JSON.stringify({ type: 'response.create', response: { max_output_tokens: 2 } }));
    await orFail(
      (async () => {
        while (!got.some((e) => e.type === 'response.done')) await new Promise((r) => setTimeout(r, 5));
      })(),
      'a response after the bad events',
    );
    ws.close();
  });
});
