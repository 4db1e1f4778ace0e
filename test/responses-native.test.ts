// /v1/responses relayed to an upstream that speaks the Responses API itself (upstreams[].responses: native):
// its events reach the client as it sent them, Jarvis keeps the conversation (the upstream stores nothing), and
// barge-in, abort and what was heard work as they do for translated requests. Through the openai SDK and the AI
// SDK's default provider.
import { createOpenAI } from '@ai-sdk/openai';
import { generateText, stepCountIs, streamText, tool } from 'ai';
import { z } from 'zod';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startJarvis, type TestJarvis } from './support/jarvis.js';
import { startOpenAIUpstream, type OpenAIUpstream } from '../fakes/openai/index.js';

let up: OpenAIUpstream;
let jarvis: TestJarvis;

beforeAll(async () => {
  up = await startOpenAIUpstream();
  jarvis = await startJarvis({ upstreams: [{ name: 'openai', baseUrl: up.url, models: ['gpt-4o-mini'], responses: 'native' }] });
});
afterAll(async () => {
  await jarvis.close();
  await up.close();
});

const sdk = (headers: Record<string, string> = {}) => new OpenAI({ baseURL: `${jarvis.url}/v1`, apiKey: 'sk-test', maxRetries: 0, defaultHeaders: headers });
const direct = () => new OpenAI({ baseURL: up.url, apiKey: 'sk-test', maxRetries: 0 });

describe('a native Responses upstream', () => {
  it('relays the events as the upstream sent them, and the response, as directly', async () => {
    const collect = async (client: OpenAI) => {
      const events = [];
      for await (const e of await client.responses.create({ model: 'gpt-4o-mini', input: 'Hello there', stream: true, store: false })) events.push(e);
      return events;
    };
    const [through, straight] = await Promise.all([collect(sdk()), collect(direct())]);
    expect(through).toEqual(straight);
    expect(up.requests.at(-1)).toMatchObject({ path: '/v1/responses', body: { model: 'gpt-4o-mini', stream: true, store: false } });
    const r = await sdk().responses.create({ model: 'gpt-4o-mini', input: 'Hello there', store: false });
    expect(r).toEqual(await direct().responses.create({ model: 'gpt-4o-mini', input: 'Hello there', store: false }));
  });

  it('keeps the conversation itself: a chain sends the upstream the whole input, and stores nothing there', async () => {
    const first = await sdk().responses.create({ model: 'gpt-4o-mini', input: 'My name is Ada.' });
    expect((await sdk().responses.retrieve(first.id)).output_text).toBe('The answer is 42.');
    await sdk().responses.create({ model: 'gpt-4o-mini', input: 'What is my name?', previous_response_id: first.id });
    const sent = up.requests.at(-1)!.body;
    expect(sent.store).toBe(false);
    expect(sent.previous_response_id).toBeUndefined();
    expect(sent.input).toEqual([
      { type: 'message', role: 'user', content: 'My name is Ada.' },
      expect.objectContaining({ type: 'message', role: 'assistant', content: [expect.objectContaining({ type: 'output_text', text: 'The answer is 42.' })] }),
      { type: 'message', role: 'user', content: 'What is my name?' },
    ]);
  });

  it('a barge-in ends the older stream with Jarvis\'s response.incomplete, numbered after the upstream\'s events, and the chain hears only what was delivered', async () => {
    const session = { 'x-session-id': `native-barge-${Date.now()}` };
    const stream = await sdk(session).responses.create({ model: 'gpt-4o-mini', input: 'scenario:long tokens:300 delay:10 a story', stream: true });
    const events: OpenAI.Responses.ResponseStreamEvent[] = [];
    let delivered = '';
    let second: Promise<unknown> | undefined;
    for await (const e of stream) {
      events.push(e);
      if (e.type === 'response.output_text.delta') delivered += e.delta;
      if (delivered.length > 20) second ??= sdk(session).responses.create({ model: 'gpt-4o-mini', input: 'Something else' });
    }
    await second;
    const last = events.at(-1) as OpenAI.Responses.ResponseIncompleteEvent;
    expect(last).toMatchObject({ type: 'response.incomplete', response: { status: 'incomplete', incomplete_details: { reason: 'interrupted' } } });
    expect(last.sequence_number).toBe(events.at(-2)!.sequence_number + 1);
    const upstream = up.requestsFor('a story').at(-1)!;
    await upstream.closed;
    expect(upstream.clientClosed).toBe(true);
    await sdk().responses.create({ model: 'gpt-4o-mini', input: 'Go on', previous_response_id: last.response.id });
    expect(up.requests.at(-1)!.body.input[1]).toMatchObject({ role: 'assistant', content: [{ text: `${delivered} [interrupted by the user]` }] });
  });

  it.each([false, true])('does a function-tool round trip with the openai SDK (stream: %s), the call relayed as the upstream made it', async (stream) => {
    const weather = { type: 'function' as const, name: 'get_weather', parameters: { type: 'object', properties: { location: { type: 'string' } } }, strict: false };
    const ask = (params: OpenAI.Responses.ResponseCreateParamsNonStreaming) =>
      stream ? sdk().responses.stream(params as Parameters<OpenAI['responses']['stream']>[0]).finalResponse() : sdk().responses.create(params);
    const first = await ask({ model: 'gpt-4o-mini', input: `Weather in Paris? ${stream}`, tools: [weather] });
    const call = first.output[0] as OpenAI.Responses.ResponseFunctionToolCall;
    expect(call).toMatchObject({ type: 'function_call', name: 'get_weather', arguments: '{"location":"Paris"}' });
    expect(up.requests.at(-1)!.body.tools).toEqual([weather]);
    const second = await ask({ model: 'gpt-4o-mini', previous_response_id: first.id, input: [{ type: 'function_call_output', call_id: call.call_id, output: '{"t":21}' }], tools: [weather] });
    expect(second.output_text).toBe('The tool says: {"t":21}.');
    expect(up.requests.at(-1)!.body.input).toEqual([
      { type: 'message', role: 'user', content: `Weather in Paris? ${stream}` },
      expect.objectContaining({ type: 'function_call', call_id: call.call_id, name: 'get_weather', arguments: '{"location":"Paris"}' }),
      { type: 'function_call_output', call_id: call.call_id, output: '{"t":21}' },
    ]);
  });

  it('does a tool round trip with the AI SDK default provider', async () => {
    const model = createOpenAI({ baseURL: `${jarvis.url}/v1`, apiKey: 'sk-test' })('gpt-4o-mini');
    const tools = { get_weather: tool({ description: 'The weather', inputSchema: z.object({ location: z.string() }), execute: async ({ location }) => ({ location, temperature: 21 }) }) };
    const r = await generateText({ model, prompt: 'Weather in Paris, AI SDK?', tools, stopWhen: stepCountIs(3) });
    expect(r.steps.map((s) => s.finishReason)).toEqual(['tool-calls', 'stop']);
    expect(r.text).toBe('The tool says: {"location":"Paris","temperature":21}.');
  });

  it('serves the AI SDK default provider', async () => {
    const model = createOpenAI({ baseURL: `${jarvis.url}/v1`, apiKey: 'sk-test' })('gpt-4o-mini');
    expect((await generateText({ model, prompt: 'Hello there' })).text).toBe('The answer is 42.');
    const r = streamText({ model, prompt: 'Hello there' });
    expect(await r.text).toBe('The answer is 42.');
  });
});

describe('a route whose targets all serve the Responses API themselves', () => {
  let route: TestJarvis;
  let live: OpenAIUpstream;
  beforeAll(async () => {
    live = await startOpenAIUpstream();
    // A port nothing listens on: the first target is unreachable, so the route fails over before the first token.
    const dead = await new Promise<string>((resolve) => {
      const server = createServer().listen(0, '127.0.0.1', () => {
        const { port } = server.address() as AddressInfo;
        server.close(() => resolve(`http://127.0.0.1:${port}/v1`));
      });
    });
    route = await startJarvis({
      upstreams: [
        { name: 'dead', baseUrl: dead, responses: 'native' },
        { name: 'live', baseUrl: live.url, responses: 'native' },
        { name: 'chat-only', baseUrl: live.url },
      ],
      routes: [
        { model: 'assistant', targets: [{ upstream: 'dead', model: 'gpt-4o', priority: 0 }, { upstream: 'live', model: 'gpt-4o-mini', priority: 1 }] },
        { model: 'mixed', targets: [{ upstream: 'live', model: 'gpt-4o-mini', priority: 0 }, { upstream: 'chat-only', model: 'gpt-4o-mini', priority: 1 }] },
      ],
    });
  });
  afterAll(async () => {
    await route.close();
    await live.close();
  });
  const client = () => new OpenAI({ baseURL: `${route.url}/v1`, apiKey: 'sk-test', maxRetries: 0 });

  it.each([false, true])('relays /v1/responses natively, failing over as a chat route does (stream: %s)', async (stream) => {
    const input = `Hello route ${stream}`;
    const r = stream ? await client().responses.stream({ model: 'assistant', input }).finalResponse() : await client().responses.create({ model: 'assistant', input });
    expect(r.output_text).toBe('The answer is 42.');
    expect(live.requestsFor(input)).toEqual([expect.objectContaining({ path: '/v1/responses', body: expect.objectContaining({ model: 'gpt-4o-mini', stream: true }) })]);
    await route.waitForLog((l) => new RegExp(`stream_end .*outcome=end .*upstream=live upstream_model=gpt-4o-mini`).test(l));
  });

  it('a route with a target that does not is served through Chat Completions', async () => {
    const input = 'Hello mixed route';
    const r = await client().responses.create({ model: 'mixed', input });
    expect(r.output_text).toBe('The answer is 42.');
    expect(live.requestsFor(input).map((q) => q.path)).toEqual(['/v1/chat/completions']);
  });
});
