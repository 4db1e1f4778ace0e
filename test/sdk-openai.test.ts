// The openai SDK behaves through Jarvis exactly as it does talking to the upstream directly: tool round trips
// streamed and not, reasoning, an abort mid-stream, and every error with the same class after the same number
// of upstream requests.
import OpenAI from 'openai';
import type { ChatCompletionMessageParam } from 'openai/resources/chat/completions';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectUpstreamClosed, failure, startPair, tag, WEATHER_TOOL, type Pair } from './support/faithful.js';

let pair: Pair;
beforeAll(async () => {
  pair = await startPair();
});
afterAll(() => pair.close());

const client = (baseURL: string) => new OpenAI({ baseURL, apiKey: 'sk-test', maxRetries: 2 });
const MODEL = 'gpt-4o-mini';

/** Model asks for the tool, the client sends the result, the model answers: with the SDK's own stream helper when streaming. */
async function toolRoundTrip(baseURL: string, stream: boolean) {
  const sdk = client(baseURL);
  const ask = (messages: ChatCompletionMessageParam[]) =>
    stream ? sdk.chat.completions.stream({ model: MODEL, messages, tools: [WEATHER_TOOL] }).finalChatCompletion() : sdk.chat.completions.create({ model: MODEL, messages, tools: [WEATHER_TOOL] });
  const messages: ChatCompletionMessageParam[] = [{ role: 'user', content: 'What is the weather in Paris?' }];
  const first = await ask(messages);
  const call = first.choices[0]!.message.tool_calls![0]!;
  messages.push(first.choices[0]!.message, { role: 'tool', tool_call_id: call.id, content: '{"temperature":21}' });
  const second = await ask(messages);
  return { first, second };
}

describe.each([false, true])('the openai SDK (stream: %s)', (stream) => {
  it('does a tool round trip through Jarvis as it does directly', async () => {
    const [direct, through] = await Promise.all([toolRoundTrip(pair.routes.direct, stream), toolRoundTrip(pair.routes.through, stream)]);
    expect(through).toEqual(direct);
    expect(through.first.choices[0]).toMatchObject({ finish_reason: 'tool_calls', message: { content: null, tool_calls: [{ function: { name: 'get_weather', arguments: '{"location":"Paris"}' } }] } });
    expect(through.second.choices[0]!.message.content).toBe('The tool says: {"temperature":21}.');
  });

  it('gets the reasoning as directly', async () => {
    const run = async (baseURL: string) => {
      const sdk = client(baseURL);
      const params = { model: MODEL, messages: [{ role: 'user' as const, content: 'scenario:reasoning 2+2?' }] };
      return stream ? sdk.chat.completions.stream(params).finalChatCompletion() : sdk.chat.completions.create(params);
    };
    const [direct, through] = await Promise.all([run(pair.routes.direct), run(pair.routes.through)]);
    expect(through).toEqual(direct);
    expect(through.choices[0]!.message).toMatchObject({ content: '2 + 2 = 4.' });
    // The SDK's stream helper keeps only the last reasoning_content it saw (null); a JSON answer has it all.
    if (!stream) expect(through.choices[0]!.message).toMatchObject({ reasoning_content: 'The user wants a sum.' });
  });
});

describe('the openai SDK', () => {
  it('aborting mid-stream closes the upstream request', async () => {
    const t = tag();
    const ac = new AbortController();
    const stream = await client(pair.routes.through).chat.completions.create(
      { model: MODEL, stream: true, messages: [{ role: 'user', content: `scenario:long tokens:500 delay:20 ${t}` }] },
      { signal: ac.signal },
    );
    let chunks = 0;
    await (async () => {
      for await (const _chunk of stream) {
        chunks++;
        ac.abort();
      }
    })().catch(() => {});
    expect(chunks).toBe(1);
    await expectUpstreamClosed(pair, t);
  });

  const run = async (baseURL: string, scenario: string, stream: boolean) => {
    const t = tag();
    const messages = [{ role: 'user' as const, content: `scenario:${scenario} ${t}` }];
    const result = await failure(
      async () => {
        const sdk = client(baseURL);
        if (!stream) return sdk.chat.completions.create({ model: MODEL, messages });
        for await (const _chunk of await sdk.chat.completions.create({ model: MODEL, messages, stream: true }));
      },
      (e) => ({ status: e.status, type: e.type, code: e.code, message: e.message }),
    );
    return { ...result, upstreamRequests: pair.up.requestsFor(t).length };
  };

  it.each([
    ['http-400', false],
    ['http-404', true],
    ['http-429', false],
    ['http-500', true],
    ['http-500', false],
    ['http-503', false],
    ['error-first', true],
    ['error-mid', true],
    ['error-first', false],
  ])('%s (stream: %s): the same error class after as many upstream requests as directly', async (scenario, stream) => {
    const [direct, through] = await Promise.all([run(pair.routes.direct, scenario, stream), run(pair.routes.through, scenario, stream)]);
    expect(through).toEqual(direct);
    expect(through.name).not.toBe('no error');
  });

  it("an upstream 401 (Jarvis's own key refused) is a 502 told not to be retried, without the upstream's message", async () => {
    const through = await run(pair.routes.through, 'http-401', false);
    expect(through).toMatchObject({ name: 'InternalServerError', status: 502, code: 'upstream_auth_failed', upstreamRequests: 1 });
    expect(String((through as Record<string, unknown>).message)).not.toMatch(/sk-|wxyz/);
  });
});
