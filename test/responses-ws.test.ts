// The Responses API over one WebSocket (GET /v1/responses), through the `openai` SDK's ResponsesWS: tool loops
// that send only the new input with store: false, lanes and barge-in, steering, errors, a slow reader, shutdown;
// over the simulator, the OpenAI fake (and the mock upstream, whose requests show when they were closed) and the
// Anthropic fake.
import { WebSocket } from 'ws';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startAnthropicUpstream, type AnthropicUpstream } from '../fakes/anthropic/index.js';
import { startGeminiUpstream, type GeminiUpstream } from '../fakes/gemini/index.js';
import { startMockUpstream, startOpenAIUpstream, type MockUpstream, type OpenAIUpstream, type RecordedRequest } from '../fakes/openai/index.js';
import { orFail } from './support/chat.js';
import { startJarvis, type TestJarvis } from './support/jarvis.js';
import { BusSubscriber } from './support/messages.js';
import { WsClient, type WsEvent } from './support/responses-ws.js';

const KEY = 'sk-ws-test-alice';
let openai: OpenAIUpstream;
let anthropic: AnthropicUpstream;
let mock: MockUpstream;
let jarvis: TestJarvis;
const clients: WsClient[] = [];

beforeAll(async () => {
  [openai, anthropic, mock] = await Promise.all([startOpenAIUpstream(), startAnthropicUpstream(), startMockUpstream()]);
  jarvis = await startJarvis({
    apiKeys: [`alice=${KEY}`],
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
  await jarvis.close();
  await Promise.all([openai.close(), anthropic.close(), mock.close()]);
});

function connect(headers: Record<string, string> = {}): WsClient {
  const c = new WsClient(jarvis.url, { key: KEY, headers });
  clients.push(c);
  return c;
}

const WEATHER = { type: 'function', name: 'get_weather', description: 'The weather in a city', parameters: { type: 'object', properties: { location: { type: 'string' } }, required: ['location'] } };

/** The mock's request whose last message holds `tag`, once it has come. */
function mockRequest(tag: string): Promise<RecordedRequest> {
  return orFail(
    (async () => {
      for (;;) {
        const rec = mock.requests.find((r) => r.prompt.includes(tag));
        if (rec) return rec;
        await new Promise((r) => setTimeout(r, 5));
      }
    })(),
    `the upstream request tagged ${tag}`,
  );
}

describe('a tool loop on one socket, each turn sending only its new input (store: false)', () => {
  it.each([
    ['the OpenAI fake', 'gpt-4o-mini'],
    ['the Anthropic fake', 'claude-haiku-4-5'],
  ])('runs ten tool calls over %s, and the upstream gets the whole conversation each time', async (_, model) => {
    const c = connect();
    const tag = `loop-${model}`;
    let turn = await c.create({ model, input: `What is the weather in Paris? ${tag}`, tools: [WEATHER], store: false });
    const ids = [turn.response.id];
    for (let i = 1; i <= 10; i++) {
      const call = turn.response.output.find((o: WsEvent) => o.type === 'function_call');
      expect(call, `turn ${i} asks for the tool: ${JSON.stringify(turn.response.output)}`).toMatchObject({ name: 'get_weather' });
      expect(JSON.parse(call.arguments)).toEqual({ location: 'Paris' });
      // The fakes call the tool again while its output names the scenario; the tenth output ends the loop.
      const output = i < 10 ? `{"temperature":${20 + i}} scenario:tool` : '{"temperature":30}';
      turn = await c.create({ model, previous_response_id: turn.response.id, input: [{ type: 'function_call_output', call_id: call.call_id, output }], tools: [WEATHER], store: false });
      expect(turn.response).toMatchObject({ status: 'completed', previous_response_id: ids.at(-1), store: false });
      ids.push(turn.response.id);
    }
    expect(turn.response.output).toEqual([expect.objectContaining({ type: 'message', content: [expect.objectContaining({ text: 'The tool says: {"temperature":30}.' })] })]);
    // Each turn sent one item; the upstream got the question, ten calls and ten results.
    const sent = JSON.stringify((model.startsWith('claude') ? anthropic.requests : openai.requests).at(-1)!.body);
    expect(sent).toContain(`What is the weather in Paris? ${tag}`);
    expect(sent.match(/temperature/g)).toHaveLength(10);
    // store: false: nothing was stored; the chain lived in the connection.
    const stored = await fetch(`${jarvis.url}/v1/responses/${ids[5]}`, { headers: { authorization: `Bearer ${KEY}` } });
    expect(stored.status).toBe(404);
  });

  it('runs ten turns over the simulator, and a chain continues on another connection only from stored responses', async () => {
    const c = connect();
    let previous: string | undefined;
    for (let i = 0; i < 10; i++) {
      const { response } = await c.create({ input: `turn ${i}`, store: i === 9, max_output_tokens: 8, ...(previous ? { previous_response_id: previous } : {}) });
      expect(response).toMatchObject({ status: expect.stringMatching(/completed|incomplete/), previous_response_id: previous ?? null, model: 'jarvis-sim' });
      previous = response.id as string;
    }
    const other = connect();
    const next = await other.create({ input: 'and then?', previous_response_id: previous });
    expect(next.response.previous_response_id).toBe(previous);
  });

  it('prepares a turn without output (generate: false), which the next turn continues', async () => {
    const c = connect();
    const prepared = await c.create({ model: 'gpt-4o-mini', input: 'My name is Ada. tag:prepared', generate: false, store: false });
    expect(prepared.response).toMatchObject({ status: 'completed', output: [] });
    const before = openai.requests.length;
    await c.create({ model: 'gpt-4o-mini', input: 'What is my name?', previous_response_id: prepared.response.id, store: false });
    expect(openai.requests.length).toBe(before + 1);
    expect(openai.requests.at(-1)!.body.messages).toEqual([
      { role: 'user', content: 'My name is Ada. tag:prepared' },
      { role: 'user', content: 'What is my name?' },
    ]);
  });
});

describe('lanes', () => {
  it('a response.create on a lane that is generating supersedes it: interrupted, its upstream closed, the chain continuing from what was heard', async () => {
    const c = connect({ 'x-session-id': 'lanes-barge' });
    c.send({ type: 'response.create', model: 'mock-model', input: 'tell me a story tag:barge-1 tokens:400 delay:20', stream_id: 'voice' });
    const created = await c.nth('response.created', 0, 'voice');
    await c.nth('response.output_text.delta', 2, 'voice');
    c.send({ type: 'response.create', model: 'mock-model', input: 'stop, tag:barge-2 tokens:3', stream_id: 'voice', previous_response_id: created.response.id });
    const cut = await c.end(created.response.id);
    expect(cut).toMatchObject({ type: 'response.incomplete', stream_id: 'voice', response: { status: 'incomplete', incomplete_details: { reason: 'interrupted' } } });
    const first = await mockRequest('tag:barge-1');
    await orFail(first.closed, 'the first upstream request closing');
    expect(first.clientClosed).toBe(true);
    const second = await c.nth('response.created', 1, 'voice');
    expect(second.response.previous_response_id).toBe(created.response.id);
    await c.end(second.response.id);
    // The next turn told the model what was delivered of the cut answer, no more.
    const heard = c.textOf(created.response.id);
    const req = await mockRequest('tag:barge-2');
    expect(req.body.messages.at(-2)).toMatchObject({ role: 'assistant', content: expect.stringContaining(heard) });
    expect(req.body.messages.at(-2).content.length).toBeLessThan(heard.length + 200);
    // The lane is the session `{session}:{stream_id}`: its events and logs say so.
    const log = await jarvis.waitForLog((l) => /stream_cancelled .*reason=superseded/.test(l) && l.includes('session=lanes-barge:voice'));
    expect(log).toMatch(/stream_start .*session=lanes-barge:voice/);
  });

  it('two lanes stream in parallel on one socket, each event carrying its stream_id', async () => {
    const c = connect();
    c.send({ type: 'response.create', model: 'mock-model', input: 'lane a tag:par-a tokens:100 delay:10', stream_id: 'a' });
    c.send({ type: 'response.create', model: 'mock-model', input: 'lane b tag:par-b tokens:100 delay:10', stream_id: 'b' });
    const [a, b] = await Promise.all([c.nth('response.created', 0, 'a'), c.nth('response.created', 0, 'b')]);
    const [endA, endB] = await Promise.all([c.end(a.response.id), c.end(b.response.id)]);
    expect(endA.type).toBe('response.completed');
    expect(endB.type).toBe('response.completed');
    // Both were generating at once: each lane's first delta came before the other lane's end.
    const at = (test: (e: WsEvent) => boolean) => c.events.findIndex(test);
    expect(at((e) => e.type === 'response.output_text.delta' && e.stream_id === 'b')).toBeLessThan(c.events.indexOf(endA));
    expect(at((e) => e.type === 'response.output_text.delta' && e.stream_id === 'a')).toBeLessThan(c.events.indexOf(endB));
    for (const e of c.events.filter((x) => x.type.startsWith('response.') && x.response?.id === a.response.id)) expect(e.stream_id).toBe('a');
    expect(c.textOf(a.response.id)).not.toBe('');
  });

  it('a response.create on another lane that continues a generating response waits for it, without cutting it', async () => {
    const c = connect();
    c.send({ type: 'response.create', model: 'mock-model', input: 'tag:fork-1 tokens:20 delay:10', stream_id: 'main' });
    const created = await c.nth('response.created', 0, 'main');
    c.send({ type: 'response.create', model: 'mock-model', input: 'tag:fork-2 tokens:2', stream_id: 'side', previous_response_id: created.response.id });
    expect((await c.end(created.response.id)).type).toBe('response.completed');
    const side = await c.nth('response.created', 0, 'side');
    expect(side.response.previous_response_id).toBe(created.response.id);
    await c.end(side.response.id);
    const req = await mockRequest('tag:fork-2');
    expect(req.body.messages.at(-2)).toEqual({ role: 'assistant', content: c.textOf(created.response.id) });
  });

  it('under X-Session-Policy: reject, a second response on a generating lane is refused with conversation_already_has_active_response', async () => {
    const c = connect({ 'x-session-policy': 'reject' });
    c.send({ type: 'response.create', model: 'mock-model', input: 'tag:reject-1 tokens:100 delay:10' });
    const created = await c.nth('response.created', 0);
    c.send({ type: 'response.create', model: 'mock-model', input: 'tag:reject-2' });
    const error = await c.waitFor((e) => e.type === 'error', 'the error event');
    expect(error).toMatchObject({ status: 409, error: { type: 'invalid_request_error', code: 'conversation_already_has_active_response' } });
    // The first goes on.
    expect((await c.end(created.response.id)).type).toBe('response.completed');
  });
});

describe('response.steer', () => {
  it('mid-answer: accepted, the response ends steered at what was delivered, and a successor answers with the steering input', async () => {
    const c = connect();
    c.send({ type: 'response.create', model: 'mock-model', input: 'tag:steer-1 tokens:400 delay:20', instructions: 'Be brief.', max_output_tokens: 500 });
    const created = await c.nth('response.created', 0);
    await c.nth('response.output_text.delta', 2);
    c.send({ type: 'response.steer', previous_response_id: created.response.id, input: 'Actually, in French tag:steer-2 tokens:4' });
    const accepted = await c.waitFor((e) => e.type === 'response.steer.accepted', 'response.steer.accepted');
    expect(accepted.steer).toEqual({ id: expect.stringMatching(/^steer_/), previous_response_id: created.response.id });
    const cut = await c.end(created.response.id);
    expect(cut).toMatchObject({ type: 'response.incomplete', response: { incomplete_details: { reason: 'steered' } } });
    const successor = await c.nth('response.created', 1);
    expect(c.events.indexOf(accepted)).toBeLessThan(c.events.indexOf(cut));
    expect(c.events.indexOf(cut)).toBeLessThan(c.events.indexOf(successor));
    // Inheriting the settings, chained to the cut response.
    expect(successor.response).toMatchObject({ previous_response_id: created.response.id, instructions: 'Be brief.', max_output_tokens: 500 });
    expect((await c.end(successor.response.id)).type).toBe('response.completed');
    const req = await mockRequest('tag:steer-2');
    const heard = c.textOf(created.response.id);
    expect(req.body.messages[0]).toEqual({ role: 'system', content: 'Be brief.' });
    expect(req.body.messages.at(-2)).toMatchObject({ role: 'assistant', content: expect.stringContaining(heard) });
    expect(req.body.messages.at(-1)).toEqual({ role: 'user', content: 'Actually, in French tag:steer-2 tokens:4' });
    const first = await mockRequest('tag:steer-1');
    await orFail(first.closed, 'the steered upstream request closing');
    expect(first.clientClosed).toBe(true);
  });

  it('under policy queue, the response finishes first and the successor follows', async () => {
    const c = connect({ 'x-session-policy': 'queue' });
    c.send({ type: 'response.create', model: 'mock-model', input: 'tag:steerq-1 tokens:100 delay:10' });
    const created = await c.nth('response.created', 0);
    c.send({ type: 'response.steer', previous_response_id: created.response.id, input: [{ role: 'user', content: 'and then? tag:steerq-2 tokens:3' }] });
    await c.waitFor((e) => e.type === 'response.steer.accepted', 'response.steer.accepted');
    expect((await c.end(created.response.id)).type).toBe('response.completed');
    const successor = await c.nth('response.created', 1);
    expect(successor.response.previous_response_id).toBe(created.response.id);
    expect((await c.end(successor.response.id)).type).toBe('response.completed');
  });

  it('after a tool call: pending with the required_input stubs, then prepended to the request that brings the output', async () => {
    const c = connect();
    const first = await c.create({ model: 'gpt-4o-mini', input: 'Weather in Paris? tag:steer-tool', tools: [WEATHER] });
    const call = first.response.output.find((o: WsEvent) => o.type === 'function_call');
    c.send({ type: 'response.steer', previous_response_id: first.response.id, input: 'And tell me in Celsius.' });
    await c.waitFor((e) => e.type === 'response.steer.accepted', 'response.steer.accepted');
    const pending = await c.waitFor((e) => e.type === 'response.steer.pending', 'response.steer.pending');
    expect(pending).toMatchObject({ reason: 'waiting_for_required_input', required_input: [{ type: 'function_call_output', call_id: call.call_id, name: 'get_weather' }] });
    expect(c.events.indexOf(first.end)).toBeLessThan(c.events.indexOf(pending));
    await c.create({ model: 'gpt-4o-mini', previous_response_id: first.response.id, input: [{ type: 'function_call_output', call_id: call.call_id, output: '{"temperature":21}' }], tools: [WEATHER] });
    const messages = openai.requests.at(-1)!.body.messages as WsEvent[];
    expect(messages.slice(-2)).toEqual([
      { role: 'tool', tool_call_id: call.call_id, content: '{"temperature":21}' },
      { role: 'user', content: 'And tell me in Celsius.' },
    ]);
  });

  it('fails with OpenAI\'s codes, returning the input, and the socket stays open', async () => {
    const c = connect({ 'x-session-policy': 'queue' });
    const failed = async (steer: WsEvent) => {
      const from = c.events.length;
      c.send({ type: 'response.steer', ...steer });
      return c.waitFor((e) => e.type === 'response.steer.failed' || e.type === 'response.steer.accepted', 'the steering answer', from);
    };
    expect(await failed({ previous_response_id: 'resp_nothere', input: 'hi' })).toMatchObject({ type: 'response.steer.failed', error: { type: 'invalid_request_error', code: 'response_not_found' }, steer: { previous_response_id: 'resp_nothere', input: 'hi' } });
    const done = await c.create({ input: 'hello', max_output_tokens: 4 });
    expect(await failed({ previous_response_id: done.response.id, input: 'hi' })).toMatchObject({ error: { code: 'response_already_completed' } });
    for (const input of [[{ role: 'assistant', content: 'x' }], [{ type: 'function_call_output', call_id: 'c', output: 'x' }], [], 42, [{ role: 'user', content: 'x', id: 'm' }]]) {
      expect(await failed({ previous_response_id: done.response.id, input }), JSON.stringify(input)).toMatchObject({ error: { code: 'invalid_input' }, steer: { input } });
    }
    expect(await failed({ previous_response_id: done.response.id, input: 'x', stream_id: 'a' })).toMatchObject({ error: { code: 'invalid_input' } });
    // A response continued by a later one no longer takes steering.
    await c.create({ input: 'and?', previous_response_id: done.response.id, max_output_tokens: 4 });
    expect(await failed({ previous_response_id: done.response.id, input: 'hi' })).toMatchObject({ error: { code: 'response_not_active' } });
    // Too many held at once (policy queue holds them until the response ends).
    c.send({ type: 'response.create', model: 'mock-model', input: 'tag:steer-many tokens:200 delay:20' });
    const slow = await c.nth('response.created', 2);
    const answers: WsEvent[] = [];
    for (let i = 0; i < 9; i++) answers.push(await failed({ previous_response_id: slow.response.id, input: `more ${i}` }));
    expect(answers.slice(0, 8).every((a) => a.type === 'response.steer.accepted')).toBe(true);
    expect(answers[8]).toMatchObject({ type: 'response.steer.failed', error: { code: 'too_many_pending_steers' }, steer: { input: 'more 8' } });
    c.send({ type: 'response.create', model: 'mock-model', input: 'barge tag:steer-many-2 tokens:2', previous_response_id: slow.response.id });
    await c.end(slow.response.id);
  });

  it('fails with response_not_active on a response a barge-in interrupted', async () => {
    const c = connect();
    c.send({ type: 'response.create', model: 'mock-model', input: 'tag:steer-na tokens:400 delay:20' });
    const created = await c.nth('response.created', 0);
    await c.nth('response.output_text.delta', 1);
    c.send({ type: 'response.create', model: 'mock-model', input: 'tag:steer-na-2 tokens:2' });
    await c.end(created.response.id);
    c.send({ type: 'response.steer', previous_response_id: created.response.id, input: 'wait' });
    expect(await c.waitFor((e) => e.type === 'response.steer.failed', 'response.steer.failed')).toMatchObject({ error: { code: 'response_not_active' } });
  });
});

describe('errors', () => {
  it('are error events in OpenAI\'s shape with the HTTP status; the socket stays open for the next turn', async () => {
    const c = connect();
    c.send({ type: 'response.create', input: 'x', previous_response_id: 'resp_missing' });
    expect(await c.waitFor((e) => e.type === 'error', 'an error event')).toEqual({
      type: 'error',
      status: 400,
      error: { type: 'invalid_request_error', code: 'previous_response_not_found', message: "Previous response with id 'resp_missing' not found.", param: 'previous_response_id' },
    });
    c.send({ type: 'response.create', input: 'x', temperature: 'hot', stream_id: 'l1' });
    expect(await c.waitFor((e) => e.type === 'error' && e.stream_id === 'l1', 'a schema error')).toMatchObject({ status: 400, error: { code: 'invalid_value', param: 'temperature' } });
    c.send({ type: 'response.create', model: 'no-such-model', input: 'x' });
    expect(await c.waitFor((e) => e.type === 'error' && e.error.code === 'model_not_found', 'model_not_found')).toMatchObject({ status: 404 });
    c.send({ type: 'response.cancel' });
    expect(await c.waitFor((e) => e.type === 'error' && e.error.param === 'type', 'an unknown type')).toMatchObject({ status: 400 });
    c.ws.sendRaw('{not json');
    expect(await c.waitFor((e) => e.type === 'error' && e.error.code === 'invalid_json', 'invalid_json')).toMatchObject({ status: 400 });
    c.send({ type: 'response.create', input: 'x', background: true });
    expect(await c.waitFor((e) => e.type === 'error' && e.error.param === 'background', 'background refused')).toMatchObject({ error: { code: 'unsupported_value' } });
    const { response } = await c.create({ input: 'still here', max_output_tokens: 4 });
    expect(response.status).toMatch(/completed|incomplete/);
  });

  it('answers each of many bad messages with its own error event, starts nothing, and stays open', async () => {
    const c = connect();
    const bad: WsEvent[] = [
      { type: 'response.create' },
      { type: 'response.create', input: 5 },
      { type: 'response.create', input: 'x', model: 5 },
      { type: 'response.create', input: 'x', max_output_tokens: 0 },
      { type: 'response.create', input: 'x', stream_id: 'bad lane!' },
      { type: 'response.create', input: 'x', stream_id: 7 },
      { type: 'response.create', input: 'x', generate: 'no' },
      { type: 'response.create', input: [{ type: 'mystery' }] },
      { type: 'response.create', input: 'x', tools: [{ type: 'web_search' }] },
      { type: 'response.create', input: 'x', conversation: 'conv_1' },
      { type: 'response.steer' },
      { type: 'response.steer', previous_response_id: 5, input: 'x' },
      { type: 'response.append' },
    ];
    for (const b of bad) c.send(b);
    for (const raw of ['[]', '"x"', 'null', '{"type":5}']) c.ws.sendRaw(raw);
    const answers = (e: WsEvent) => e.type === 'error' || e.type === 'response.steer.failed';
    await c.waitFor(() => c.events.filter(answers).length >= bad.length + 4, 'an answer to each bad message');
    expect(c.events.filter((e) => e.type.startsWith('response.') && !e.type.startsWith('response.steer'))).toEqual([]);
    for (const e of c.events.filter((x) => x.type === 'error')) expect(e).toMatchObject({ status: expect.any(Number), error: { type: 'invalid_request_error', message: expect.any(String) } });
    const { response } = await c.create({ input: 'fine', max_output_tokens: 2 });
    expect(response.status).toMatch(/completed|incomplete/);
  });

  it('a binary message breaks the protocol: the socket closes with 1003', async () => {
    const c = connect();
    c.ws.sendRaw(new Uint8Array([1, 2, 3]));
    expect((await orFail(c.closed, 'the close')).code).toBe(1003);
  });

  it('refuses the upgrade without a key (401) and with a bad X-Session-Id (400), as HTTP errors; GET without an upgrade is 405', async () => {
    const refused = (headers: Record<string, string>) =>
      new Promise<number>((resolve, reject) => {
        const ws = new WebSocket(`${jarvis.url.replace('http', 'ws')}/v1/responses`, { headers });
        ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
        ws.on('open', () => reject(new Error('upgraded')));
        ws.on('error', () => {});
      });
    expect(await refused({})).toBe(401);
    expect(await refused({ authorization: `Bearer ${KEY}`, 'x-session-id': 'bad id!' })).toBe(400);
    const get = await fetch(`${jarvis.url}/v1/responses`, { headers: { authorization: `Bearer ${KEY}` } });
    expect(get.status).toBe(405);
    expect(((await get.json()) as { error: { code: string } }).error.code).toBe('method_not_allowed');
  });

  it('takes a message as large as an HTTP body (the WebSocket plugin\'s 64 KiB default is far below)', async () => {
    const c = connect();
    const { response } = await c.create({ input: `big ${'x'.repeat(200_000)}`, max_output_tokens: 4, store: false });
    expect(response.status).toMatch(/completed|incomplete/);
  });
});

describe('the connection', () => {
  it('drops a client that stops reading, and closes its upstream requests', async () => {
    const slow = await startJarvis({ apiKeys: [`alice=${KEY}`], upstreams: [{ name: 'mock', baseUrl: mock.url, models: ['mock-model'] }], clientStallMs: 200, maxAnswerBytes: 1024 * 1024 * 1024, events: { flushBytes: 1024 * 1024 } });
    try {
      const ws = new WebSocket(`${slow.url.replace('http', 'ws')}/v1/responses`, { headers: { authorization: `Bearer ${KEY}` } });
      await new Promise((resolve) => ws.once('open', resolve));
      const closed = new Promise<number>((resolve) => ws.once('close', resolve));
      ws.send(JSON.stringify({ type: 'response.create', model: 'mock-model', input: `tag:ws-flood flood tokens:1000000 delay:0 text:${'x'.repeat(1000)}` }));
      const rec = await mockRequest('tag:ws-flood');
      ws.pause();
      await slow.waitForLog((l) => /stream_cancelled .*reason=client_backpressure/.test(l));
      await orFail(rec.closed, 'the upstream request closing');
      expect(rec.clientClosed).toBe(true);
      expect(rec.tokensSent).toBeLessThan(1_000_000);
      ws.resume();
      expect(await orFail(closed, 'the socket closing')).toBe(4008);
      expect(await slow.waitForLog((l) => /ws_close .*code=4008/.test(l))).toMatch(/stream_end .*outcome=cancelled/);
    } finally {
      await slow.close();
    }
  });

  it('on shutdown, finishes the responses in flight, then closes with 1001', async () => {
    const own = await startJarvis({ apiKeys: [`alice=${KEY}`], upstreams: [{ name: 'mock', baseUrl: mock.url, models: ['mock-model'] }], shutdownGraceMs: 10_000 });
    const c = new WsClient(own.url, { key: KEY });
    c.send({ type: 'response.create', model: 'mock-model', input: 'tag:ws-shutdown tokens:30 delay:20' });
    const created = await c.nth('response.created', 0);
    const down = own.jarvis.shutdown();
    expect((await c.end(created.response.id)).type).toBe('response.completed');
    expect((await orFail(c.closed, 'the close')).code).toBe(1001);
    await down;
    await own.close();
  });

  it('on shutdown, cuts a response still generating when the grace period ends (incomplete), then closes with 1001', async () => {
    const own = await startJarvis({ apiKeys: [`alice=${KEY}`], upstreams: [{ name: 'mock', baseUrl: mock.url, models: ['mock-model'] }], shutdownGraceMs: 50 });
    const c = new WsClient(own.url, { key: KEY });
    c.send({ type: 'response.create', model: 'mock-model', input: 'tag:ws-shutdown-cut tokens:1000 delay:20' });
    const created = await c.nth('response.created', 0);
    const down = own.jarvis.shutdown();
    expect(await c.end(created.response.id)).toMatchObject({ type: 'response.incomplete', response: { incomplete_details: { reason: 'interrupted' } } });
    expect((await orFail(c.closed, 'the close')).code).toBe(1001);
    await down;
    await own.close();
  });

  it('logs its open and close, and each response as a stream with the vocabulary', async () => {
    const c = connect({ 'x-session-id': 'logged' });
    await c.create({ input: 'hello', max_output_tokens: 4 });
    c.close();
    await orFail(c.closed, 'the close');
    const log = await jarvis.waitForLog((l) => /ws_close connection=ws_\w+ code=1000/.test(l));
    expect(log).toMatch(/ws_open connection=ws_\w+ session=logged/);
    expect(log).toMatch(/stream_end .*cleanup_done=true/);
  });
});

describe('access, quotas, limits and events, as over HTTP', () => {
  const OPS = 'sk-ws-test-ops';
  const LIMITED = 'sk-ws-test-limited';
  const WATCHER = 'sk-ws-test-watcher';
  // Its own key, so that the connections other cases leave closing never count against its limit.
  const PAIR = 'sk-ws-test-pair';
  let own: TestJarvis;
  beforeAll(async () => {
    own = await startJarvis({
      apiKeys: [`ops=${OPS}`],
      access: {
        keys: [
          { name: 'limited', key: LIMITED, models: ['jarvis-sim'], rpm: 2 },
          { name: 'watcher', key: WATCHER, scopes: ['events'] },
          { name: 'pair', key: PAIR },
        ],
      },
      upstreams: [{ name: 'mock', baseUrl: mock.url, models: ['mock-model'] }],
      simulator: { tokensPerSec: 2000, ttftMs: 0 },
      websocket: { maxConnectionsPerKey: 2, maxResponsesInFlight: 1, idleTimeoutMs: 1000 },
      bodyLimit: 100_000,
      heartbeatMs: 50,
    });
  });
  afterAll(() => own.close());

  const refusal = (headers: Record<string, string>) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const ws = new WebSocket(`${own.url.replace('http', 'ws')}/v1/responses`, { headers });
      ws.on('unexpected-response', (_req, res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      ws.on('open', () => reject(new Error('upgraded')));
      ws.on('error', () => {});
    });

  it('needs the chat scope at the upgrade', async () => {
    const { status, body } = await refusal({ authorization: `Bearer ${WATCHER}` });
    expect(status).toBe(403);
    expect(JSON.parse(body)).toMatchObject({ error: { code: 'insufficient_scope' } });
  });

  it('holds a key to its models and its requests per minute, each response counted as one request', async () => {
    const c = new WsClient(own.url, { key: LIMITED });
    try {
      c.send({ type: 'response.create', model: 'mock-model', input: 'not mine' });
      expect(await c.waitFor((e) => e.type === 'error', 'the model refused')).toMatchObject({ error: { code: 'model_not_found' } });
      await c.create({ input: 'one', max_output_tokens: 2 });
      const from = c.events.length;
      c.send({ type: 'response.create', input: 'two', max_output_tokens: 2 });
      const over = await c.waitFor((e) => e.type === 'error', 'the quota', from);
      expect(over).toMatchObject({ status: 429, error: { type: 'rate_limit_error', code: 'rate_limit_exceeded' } });
    } finally {
      c.close();
    }
  });

  it('limits connections per key (429 before the upgrade) and responses in flight per connection (an error event)', async () => {
    const a = new WsClient(own.url, { key: PAIR });
    const b = new WsClient(own.url, { key: PAIR });
    try {
      await Promise.all([a.create({ input: 'a', max_output_tokens: 2 }), b.create({ input: 'b', max_output_tokens: 2 })]);
      const third = await refusal({ authorization: `Bearer ${PAIR}` });
      expect(third.status).toBe(429);
      expect(JSON.parse(third.body)).toMatchObject({ error: { type: 'rate_limit_error', code: 'rate_limit_exceeded' } });
      a.send({ type: 'response.create', model: 'mock-model', input: 'tag:inflight-1 tokens:100 delay:10', stream_id: 'x' });
      const created = await a.nth('response.created', 0, 'x');
      a.send({ type: 'response.create', input: 'too many', stream_id: 'y' });
      expect(await a.waitFor((e) => e.type === 'error' && e.stream_id === 'y', 'the in-flight limit')).toMatchObject({ status: 429, error: { code: 'rate_limit_exceeded' } });
      a.send({ type: 'response.create', model: 'mock-model', input: 'tag:inflight-2 tokens:2', stream_id: 'x' });
      await a.end(created.response.id);
    } finally {
      a.close();
      b.close();
    }
  });

  it('closes with 1009 on a message over JARVIS_BODY_LIMIT, the one case of a bad message that ends the connection', async () => {
    const c = new WsClient(own.url, { key: OPS });
    c.send({ type: 'response.create', input: 'x'.repeat(150_000) });
    expect((await orFail(c.closed, 'the close')).code).toBe(1009);
  });

  it('pings an idle connection, and closes one idle past JARVIS_WS_IDLE_TIMEOUT_MS with 1000', async () => {
    const ws = new WebSocket(`${own.url.replace('http', 'ws')}/v1/responses`, { headers: { authorization: `Bearer ${OPS}` } });
    const pinged = new Promise<void>((resolve) => ws.once('ping', () => resolve()));
    const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    await orFail(pinged, 'a ping');
    expect(await orFail(closed, 'the idle close')).toEqual({ code: 1000, reason: 'idle_timeout' });
  });

  it('publishes each response as the lane session\'s chat.* events', async () => {
    const bus = new BusSubscriber(own.url, 'ws-events:talk', { authorization: `Bearer ${OPS}` });
    await bus.connected;
    const c = new WsClient(own.url, { key: OPS, headers: { 'x-session-id': 'ws-events' } });
    try {
      const { response } = await c.create({ input: 'hello', max_output_tokens: 8, stream_id: 'talk' });
      const start = await bus.until((e) => e.type === 'chat.start', 'chat.start');
      const end = await bus.until((e) => e.type === 'chat.end' || e.type === 'chat.cancelled', 'the end');
      expect(start.session_id).toBe('ws-events:talk');
      expect(end.request_id).toBe(start.request_id);
      expect(end.data.delivered_chars).toBe(c.textOf(response.id).length);
    } finally {
      c.close();
      await bus.close();
    }
  });
});

describe('over every upstream, through the same core', () => {
  let native: OpenAIUpstream;
  let gemini: GeminiUpstream;
  let own: TestJarvis;
  beforeAll(async () => {
    [native, gemini] = await Promise.all([startOpenAIUpstream(), startGeminiUpstream()]);
    own = await startJarvis({
      upstreams: [
        { name: 'native', baseUrl: native.url, models: ['gpt-4o-mini'], responses: 'native' },
        { name: 'gemini', provider: 'gemini', baseUrl: gemini.url, models: ['gemini-3-flash-preview'] },
      ],
    });
  });
  afterAll(async () => {
    await own.close();
    await Promise.all([native.close(), gemini.close()]);
  });

  it.each([
    ['a native Responses upstream', 'gpt-4o-mini'],
    ['Gemini', 'gemini-3-flash-preview'],
  ])('%s: a turn, and the next from the connection\'s memory (store: false)', async (_, model) => {
    const c = new WsClient(own.url);
    try {
      const first = await c.create({ model, input: `My name is Ada. tag:every-${model}`, store: false, stream_id: 'one' });
      expect(first.end).toMatchObject({ type: 'response.completed', stream_id: 'one' });
      const second = await c.create({ model, input: 'What is my name?', previous_response_id: first.response.id, store: false, stream_id: 'one' });
      expect(second.end.type).toBe('response.completed');
      const sent = JSON.stringify((model.startsWith('gemini') ? gemini.requests : native.requests).at(-1)!.body);
      expect(sent).toContain(`My name is Ada. tag:every-${model}`);
      expect(sent).toContain('What is my name?');
    } finally {
      c.close();
    }
  });

  it('a native Responses upstream: steering ends its response steered, numbered after the upstream\'s last event, and the successor follows', async () => {
    const c = new WsClient(own.url);
    try {
      c.send({ type: 'response.create', model: 'gpt-4o-mini', input: 'scenario:long tokens:400 delay:20 tag:native-steer' });
      const created = await c.nth('response.created', 0);
      await c.nth('response.output_text.delta', 2);
      c.send({ type: 'response.steer', previous_response_id: created.response.id, input: 'shorter, please' });
      const cut = await c.end(created.response.id);
      expect(cut).toMatchObject({ type: 'response.incomplete', response: { incomplete_details: { reason: 'steered' } } });
      const before = c.events.slice(0, c.events.indexOf(cut)).filter((e) => typeof e.sequence_number === 'number' && e.type.startsWith('response.') && !e.type.startsWith('response.steer'));
      expect(cut.sequence_number).toBe(Math.max(...before.map((e) => e.sequence_number as number)) + 1);
      const successor = await c.nth('response.created', 1);
      expect((await c.end(successor.response.id)).type).toBe('response.completed');
      const input = native.requests.at(-1)!.body.input as WsEvent[];
      expect(input.at(-1)).toMatchObject({ role: 'user', content: 'shorter, please' });
      expect(JSON.stringify(input.at(-2))).toContain(c.textOf(created.response.id));
    } finally {
      c.close();
    }
  });
});
