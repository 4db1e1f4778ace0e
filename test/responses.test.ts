// POST /v1/responses through the openai SDK, served by translating to Chat Completions (an OpenAI-shaped chat
// upstream, and the simulator): text and streamed events, a function-tool round trip, previous_response_id
// chains, stored responses read and deleted per tenant, barge-in on a response, and refusals that name the
// parameter Jarvis cannot serve.
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { as } from './support/access.js';
import { sseData } from './support/sse.js';
import { startJarvis, type TestJarvis } from './support/jarvis.js';
import { startOpenAIUpstream, type OpenAIUpstream } from '../fakes/openai/index.js';

const ALICE = 'sk-alice-responses-01';
const BOB = 'sk-bob-responses-0002';

let up: OpenAIUpstream;
let jarvis: TestJarvis;

beforeAll(async () => {
  up = await startOpenAIUpstream();
  jarvis = await startJarvis({
    apiKeys: [`alice=${ALICE}`, `bob=${BOB}`],
    upstreams: [{ name: 'openai', baseUrl: up.url, models: ['gpt-4o-mini'] }],
    simulator: { tokensPerSec: 200, ttftMs: 0 },
  });
});
afterAll(async () => {
  await jarvis.close();
  await up.close();
});

const sdk = (key = ALICE, headers: Record<string, string> = {}) => new OpenAI({ baseURL: `${jarvis.url}/v1`, apiKey: key, maxRetries: 0, defaultHeaders: headers });
const WEATHER = { type: 'function' as const, name: 'get_weather', description: 'The weather in a city', parameters: { type: 'object', properties: { location: { type: 'string' } }, required: ['location'] }, strict: false };

describe('POST /v1/responses (translated to Chat Completions)', () => {
  it('answers a string input, with the upstream text, usage and a stored response', async () => {
    const r = await sdk().responses.create({ model: 'gpt-4o-mini', input: 'Hello there' });
    expect(r).toMatchObject({ object: 'response', status: 'completed', model: 'gpt-4o-mini', error: null, incomplete_details: null });
    expect(r.id).toMatch(/^resp_/);
    expect(r.output_text).toBe('The answer is 42.');
    expect(r.output).toEqual([{ id: expect.stringMatching(/^msg_/), type: 'message', status: 'completed', role: 'assistant', content: [{ type: 'output_text', text: 'The answer is 42.', annotations: [], logprobs: [] }] }]);
    expect(r.usage).toMatchObject({ input_tokens: expect.any(Number), output_tokens: 4, total_tokens: expect.any(Number) });
    expect(await sdk().responses.retrieve(r.id)).toEqual(r);
  });

  it('streams the semantic events, numbered, ending response.completed, whose deltas make the text', async () => {
    const stream = await sdk().responses.create({ model: 'gpt-4o-mini', input: 'Hello there', stream: true });
    const events = [];
    for await (const e of stream) events.push(e);
    expect(events.map((e) => e.sequence_number)).toEqual(events.map((_, i) => i));
    expect(events.map((e) => e.type)).toEqual([
      'response.created',
      'response.in_progress',
      'response.output_item.added',
      'response.content_part.added',
      ...Array<string>(4).fill('response.output_text.delta'),
      'response.output_text.done',
      'response.content_part.done',
      'response.output_item.done',
      'response.completed',
    ]);
    const text = events.flatMap((e) => (e.type === 'response.output_text.delta' ? [e.delta] : [])).join('');
    const done = events.at(-1) as OpenAI.Responses.ResponseCompletedEvent;
    expect(text).toBe('The answer is 42.');
    expect(done.response.output[0]).toMatchObject({ type: 'message', content: [{ text }] });
    // The SDK's own helper accumulates the same.
    const final = await sdk().responses.stream({ model: 'gpt-4o-mini', input: 'Hello there' }).finalResponse();
    expect(final.output_text).toBe(text);
  });

  it.each([false, true])('does a function-tool round trip (stream: %s)', async (stream) => {
    const ask = async (params: OpenAI.Responses.ResponseCreateParamsNonStreaming) =>
      stream ? sdk().responses.stream(params as Parameters<OpenAI["responses"]["stream"]>[0]).finalResponse() : sdk().responses.create(params);
    const first = await ask({ model: 'gpt-4o-mini', input: 'What is the weather in Paris?', tools: [WEATHER] });
    const call = first.output.find((o) => o.type === 'function_call');
    expect(call).toMatchObject({ type: 'function_call', name: 'get_weather', arguments: '{"location":"Paris"}', call_id: expect.stringMatching(/^call_/) });
    // The upstream got the tool as Chat Completions takes it.
    expect(up.requests.at(-1)!.body.tools).toEqual([{ type: 'function', function: { name: 'get_weather', description: WEATHER.description, parameters: WEATHER.parameters, strict: false } }]);
    const second = await ask({
      model: 'gpt-4o-mini',
      previous_response_id: first.id,
      input: [{ type: 'function_call_output', call_id: (call as OpenAI.Responses.ResponseFunctionToolCall).call_id, output: '{"temperature":21}' }],
      tools: [WEATHER],
    });
    expect(second.output_text).toBe('The tool says: {"temperature":21}.');
    // The chain was rebuilt for the upstream: the question, the call, its result.
    expect(up.requests.at(-1)!.body.messages).toEqual([
      { role: 'user', content: 'What is the weather in Paris?' },
      { role: 'assistant', content: null, tool_calls: [{ id: (call as OpenAI.Responses.ResponseFunctionToolCall).call_id, type: 'function', function: { name: 'get_weather', arguments: '{"location":"Paris"}' } }] },
      { role: 'tool', tool_call_id: (call as OpenAI.Responses.ResponseFunctionToolCall).call_id, content: '{"temperature":21}' },
    ]);
  });

  it.each(['What is the weather in Paris?', 'Hello there'])('opens with response.created as the response began (no output yet), and numbers every event in the order sent: %s', async (input) => {
    const res = await fetch(`${jarvis.url}/v1/responses`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ALICE}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-4o-mini', stream: true, input, tools: [WEATHER] }),
    });
    const events = sseData(await res.text()).map((d) => JSON.parse(d) as { type: string; sequence_number: number; response?: { output: unknown[] } });
    expect(events[0]).toMatchObject({ type: 'response.created', sequence_number: 0, response: { output: [] } });
    expect(events[1]).toMatchObject({ type: 'response.in_progress', sequence_number: 1, response: { output: [] } });
    expect(events.map((e) => e.sequence_number)).toEqual(events.map((_, i) => i));
    expect(events.at(-1)!.type).toBe('response.completed');
  });

  it('gives a chat upstream\'s reasoning as a reasoning item before the message, which the SDK\'s stream helper accumulates', async () => {
    const r = await sdk().responses.stream({ model: 'gpt-4o-mini', input: 'scenario:reasoning 2+2?' }).finalResponse();
    expect(r.output.map((o) => o.type)).toEqual(['reasoning', 'message']);
    expect(r.output[0]).toMatchObject({ type: 'reasoning', content: [{ type: 'reasoning_text', text: expect.stringMatching(/.+/) }] });
    expect(r.output_text).toBe('2 + 2 = 4.');
  });

  it.each([false, true])('gives a refusal as the message\'s refusal part (stream: %s)', async (stream) => {
    const params = { model: 'gpt-4o-mini', input: 'scenario:refusal do something bad' };
    const r = stream ? await sdk().responses.stream(params).finalResponse() : await sdk().responses.create(params);
    expect(r.output).toEqual([expect.objectContaining({ type: 'message', content: [expect.objectContaining({ type: 'refusal', refusal: "I'm sorry, I can't help with that." })] })]);
  });

  it('continues a conversation with previous_response_id, instructions first', async () => {
    const first = await sdk().responses.create({ model: 'gpt-4o-mini', input: 'My name is Ada.', instructions: 'Be brief.' });
    await sdk().responses.create({ model: 'gpt-4o-mini', input: 'What is my name?', previous_response_id: first.id, instructions: 'Be brief.' });
    expect(up.requests.at(-1)!.body.messages).toEqual([
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'My name is Ada.' },
      { role: 'assistant', content: 'The answer is 42.' },
      { role: 'user', content: 'What is my name?' },
    ]);
  });

  it('keeps each tenant to its own responses: another key can neither read, chain nor delete them', async () => {
    const mine = await sdk(ALICE).responses.create({ model: 'gpt-4o-mini', input: 'secret' });
    await expect(sdk(BOB).responses.retrieve(mine.id)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    await expect(sdk(BOB).responses.delete(mine.id)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    await expect(sdk(BOB).responses.create({ model: 'gpt-4o-mini', input: 'more', previous_response_id: mine.id })).rejects.toMatchObject({ status: 400, code: 'previous_response_not_found' });
    await sdk(ALICE).responses.delete(mine.id);
    await expect(sdk(ALICE).responses.retrieve(mine.id)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
  });

  it('does not store a response asked with store: false', async () => {
    const r = await sdk().responses.create({ model: 'gpt-4o-mini', input: 'forget me', store: false });
    expect((r as unknown as { store: boolean }).store).toBe(false);
    await expect(sdk().responses.retrieve(r.id)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
  });

  it.each([
    [{ tools: [{ type: 'web_search' }] }, 'tools[0].type'],
    [{ background: true }, 'background'],
    [{ input: [{ type: 'file_search_call', id: 'x' }] }, 'input[0].type'],
    [{ text: { format: { type: 'grammar' } } }, 'text.format.type'],
  ])('refuses what the translation cannot serve with a 400 naming it: %j', async (extra, param) => {
    const res = await fetch(`${jarvis.url}/v1/responses`, {
      method: 'POST',
      headers: { ...as(ALICE), 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-4o-mini', input: 'hi', ...extra }),
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: { type: 'invalid_request_error', code: 'unsupported_value', param } });
  });
});

describe('a client that aborts', () => {
  it('closes the upstream request, and the response is stored interrupted with what it received', async () => {
    const controller = new AbortController();
    const stream = await sdk().responses.create({ model: 'gpt-4o-mini', input: 'scenario:long tokens:400 delay:10 abort me', stream: true }, { signal: controller.signal });
    let id = '';
    let received = '';
    // The SDK ends the loop (or throws APIUserAbortError, by version) once aborted.
    try {
      for await (const e of stream) {
        if (e.type === 'response.created') id = e.response.id;
        if (e.type === 'response.output_text.delta') received += e.delta;
        if (received.length > 20) controller.abort();
      }
    } catch (err) {
      expect(err).toBeInstanceOf(OpenAI.APIUserAbortError);
    }
    const upstream = up.requestsFor('abort me').at(-1)!;
    await upstream.closed;
    expect(upstream.clientClosed).toBe(true);
    await jarvis.waitForLog((l) => new RegExp(`stream_end .*stream_id=req_${id.slice(5)} .*outcome=cancelled`).test(l));
    const stored = await sdk().responses.retrieve(id);
    expect(stored).toMatchObject({ status: 'incomplete', incomplete_details: { reason: 'interrupted' } });
    expect(received.startsWith(stored.output_text)).toBe(true);
  });
});

describe('barge-in on /v1/responses', () => {
  it('a newer request in the session ends the older response response.incomplete (interrupted), stored with what was delivered', async () => {
    const session = { 'x-session-id': `resp-barge-${Date.now()}` };
    const first = await sdk(ALICE, session).responses.create({ model: 'jarvis-sim', input: 'Write a long essay about rivers', stream: true });
    const events: OpenAI.Responses.ResponseStreamEvent[] = [];
    let second: Promise<OpenAI.Responses.Response> | undefined;
    for await (const e of first) {
      events.push(e);
      if (e.type === 'response.output_text.delta' && !second) second = sdk(ALICE, session).responses.create({ model: 'jarvis-sim', input: 'Say hi' });
    }
    const last = events.at(-1) as OpenAI.Responses.ResponseIncompleteEvent;
    expect(last.type).toBe('response.incomplete');
    expect(last.response).toMatchObject({ status: 'incomplete', incomplete_details: { reason: 'interrupted' } });
    const delivered = events.flatMap((e) => (e.type === 'response.output_text.delta' ? [e.delta] : [])).join('');
    expect(delivered.length).toBeGreaterThan(0);
    expect((await second!).status).toBe('completed');
    const stored = await sdk().responses.retrieve(last.response.id);
    expect(stored.status).toBe('incomplete');
    expect(stored.output_text).toBe(delivered);
    // The seed's log sequence: A cancelled and cleaned up, only then B starts generating.
    const a = `req_${last.response.id.slice(5)}`;
    const log = await jarvis.waitForLog((l) => new RegExp(`stream_end .*stream_id=${a}`).test(l) && /prev_stream_finished_cleanly .*prev=/.test(l));
    const lines = log.split('\n');
    const at = (re: RegExp) => lines.findIndex((l) => re.test(l));
    const bPrev = at(new RegExp(`prev_stream_finished_cleanly .*prev=${a}`));
    const order = [
      at(new RegExp(`stream_start .*stream_id=${a}`)),
      at(new RegExp(`stream_cancelled .*reason=superseded request_id=${a}`)),
      at(new RegExp(`cleanup_buffer request_id=${a}`)),
      at(new RegExp(`stream_end .*cleanup_done=true stream_id=${a}`)),
      bPrev,
    ];
    expect(order.every((i) => i >= 0), order.join(' ')).toBe(true);
    expect([...order].sort((x, y) => x - y)).toEqual(order);
  });
});

describe('what was heard', () => {
  it('an interrupted answer, truncated to what was heard, is what a chained request sends the model, marked as cut off', async () => {
    const session = { 'x-session-id': `heard-${Date.now()}` };
    const first = await sdk(ALICE, session).responses.create({ model: 'gpt-4o-mini', input: 'scenario:long tokens:200 delay:10 tell me a story', stream: true });
    let delivered = '';
    let id = '';
    let barged: Promise<unknown> | undefined;
    for await (const e of first) {
      if (e.type === 'response.created') id = e.response.id;
      if (e.type === 'response.output_text.delta') {
        delivered += e.delta;
        if (delivered.length > 30) barged ??= sdk(ALICE, session).responses.create({ model: 'gpt-4o-mini', input: 'stop, something else' });
      }
    }
    await barged;
    const stored = await sdk().responses.retrieve(id);
    expect(stored).toMatchObject({ status: 'incomplete', incomplete_details: { reason: 'interrupted' } });
    expect(stored.output_text).toBe(delivered);

    // The speaker got through 12 characters before the person spoke.
    const truncate = (heard: number) =>
      fetch(`${jarvis.url}/v1/responses/${id}/truncate`, { method: 'POST', headers: { ...as(ALICE), 'content-type': 'application/json' }, body: JSON.stringify({ heard_chars: heard }) });
    const cut = await truncate(12);
    expect(cut.status).toBe(200);
    const heard = delivered.slice(0, 12);
    expect(((await cut.json()) as { output: { content: { text: string }[] }[] }).output[0]!.content[0]!.text).toBe(heard);
    // Idempotent, and it never lengthens what was heard.
    expect((await truncate(12)).status).toBe(200);
    expect((await truncate(500)).status).toBe(200);
    expect((await sdk().responses.retrieve(id)).output_text).toBe(heard);
    // Another tenant's id is not there.
    const theirs = await fetch(`${jarvis.url}/v1/responses/${id}/truncate`, { method: 'POST', headers: { ...as(BOB), 'content-type': 'application/json' }, body: '{"heard_chars":1}' });
    expect(theirs.status).toBe(404);

    await sdk().responses.create({ model: 'gpt-4o-mini', input: 'Go on, but shorter', previous_response_id: id });
    expect(up.requests.at(-1)!.body.messages).toEqual([
      { role: 'user', content: 'scenario:long tokens:200 delay:10 tell me a story' },
      { role: 'assistant', content: `${heard} [interrupted by the user]` },
      { role: 'user', content: 'Go on, but shorter' },
    ]);
  });
});
