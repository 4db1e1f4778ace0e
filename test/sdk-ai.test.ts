// The AI SDK behaves through Jarvis exactly as it does talking to the upstream directly, with both of its
// providers for OpenAI-compatible chat: @ai-sdk/openai-compatible, and @ai-sdk/openai's .chat(). Tool round trips
// (the SDK runs the tool and sends its result), reasoning, an abort mid-stream, and errors: the same error, with
// the same isRetryable, after the same number of upstream requests.
import { createOpenAI } from '@ai-sdk/openai';
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { generateText, stepCountIs, streamText, tool, type LanguageModel } from 'ai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { expectUpstreamClosed, failure, startPair, tag, type Pair } from './support/faithful.js';

let pair: Pair;
beforeAll(async () => {
  pair = await startPair();
});
afterAll(() => pair.close());

const PROVIDERS: [string, (baseURL: string) => LanguageModel][] = [
  ['@ai-sdk/openai-compatible', (baseURL) => createOpenAICompatible({ name: 'upstream', baseURL, apiKey: 'sk-test', includeUsage: true })('gpt-4o-mini')],
  ['@ai-sdk/openai .chat()', (baseURL) => createOpenAI({ baseURL, apiKey: 'sk-test' }).chat('gpt-4o-mini')],
];

const tools = {
  get_weather: tool({
    description: 'The weather in a city',
    inputSchema: z.object({ location: z.string() }),
    execute: async ({ location }) => ({ location, temperature: 21 }),
  }),
};

/** What a caller reads of a finished generation: everything but timings and transport headers. */
function outcome(r: { text: string; reasoningText?: string | undefined; finishReason: string; steps: { finishReason: string; text: string; toolCalls: { toolName: string; toolCallId: string; input: unknown }[]; response: { id: string; modelId: string } }[]; totalUsage: unknown }) {
  return {
    text: r.text,
    reasoning: r.reasoningText,
    finishReason: r.finishReason,
    usage: r.totalUsage,
    steps: r.steps.map((s) => ({ finishReason: s.finishReason, text: s.text, calls: s.toolCalls.map((c) => ({ name: c.toolName, id: c.toolCallId, input: c.input })), id: s.response.id, model: s.response.modelId })),
  };
}

describe.each(PROVIDERS)('the AI SDK with %s', (_name, model) => {
  const generate = async (baseURL: string, prompt: string, stream: boolean, withTools: boolean) => {
    const opts = { model: model(baseURL), prompt, ...(withTools ? { tools, stopWhen: stepCountIs(3) } : {}) };
    if (!stream) return outcome(await generateText(opts));
    const r = streamText(opts);
    return outcome({ text: await r.text, reasoningText: await r.reasoningText, finishReason: await r.finishReason, steps: await r.steps, totalUsage: await r.totalUsage });
  };

  it.each([false, true])('does a tool round trip (stream: %s) as it does directly', async (stream) => {
    const [direct, through] = await Promise.all([generate(pair.routes.direct, 'Weather in Paris?', stream, true), generate(pair.routes.through, 'Weather in Paris?', stream, true)]);
    expect(through).toEqual(direct);
    expect(through.steps.map((s) => s.finishReason)).toEqual(['tool-calls', 'stop']);
    expect(through.steps[0]!.calls).toEqual([{ name: 'get_weather', id: expect.any(String), input: { location: 'Paris' } }]);
    expect(through.text).toBe('The tool says: {"location":"Paris","temperature":21}.');
  });

  it.each([false, true])('gets the reasoning (stream: %s) as directly', async (stream) => {
    const [direct, through] = await Promise.all([generate(pair.routes.direct, 'scenario:reasoning 2+2?', stream, false), generate(pair.routes.through, 'scenario:reasoning 2+2?', stream, false)]);
    expect(through).toEqual(direct);
    expect(through.text).toBe('2 + 2 = 4.');
  });

  it('aborting mid-stream closes the upstream request', async () => {
    const t = tag();
    const ac = new AbortController();
    const r = streamText({ model: model(pair.routes.through), prompt: `scenario:long tokens:500 delay:20 ${t}`, abortSignal: ac.signal, onError: () => {} });
    for await (const _delta of r.textStream) {
      ac.abort();
      break;
    }
    await expectUpstreamClosed(pair, t);
  });

  const run = async (baseURL: string, scenario: string, stream: boolean) => {
    const t = tag();
    const prompt = `scenario:${scenario} ${t}`;
    const pick = (e: Record<string, unknown>) => {
      // After retries the SDK throws a RetryError whose lastError is the APICallError.
      const last = (e.lastError ?? e) as Record<string, unknown>;
      return { lastName: (last as object).constructor.name, statusCode: last.statusCode, isRetryable: last.isRetryable, message: last.message, reason: e.reason };
    };
    const result = await failure(async () => {
      if (!stream) return generateText({ model: model(baseURL), prompt });
      // A stream's errors arrive in it: the first one is what the caller gets.
      let streamError: unknown;
      const r = streamText({ model: model(baseURL), prompt, onError: ({ error }) => void (streamError ??= error) });
      await r.consumeStream();
      if (streamError) throw streamError;
    }, pick);
    return { ...result, upstreamRequests: pair.up.requestsFor(t).length };
  };

  it.each([
    ['http-400', false],
    ['http-429', false],
    ['http-500', true],
    ['http-503', false],
    ['error-first', true],
    ['error-mid', true],
    ['error-first', false],
  ])('%s (stream: %s): the same error after as many upstream requests as directly', async (scenario, stream) => {
    const [direct, through] = await Promise.all([run(pair.routes.direct, scenario, stream), run(pair.routes.through, scenario, stream)]);
    expect(through).toEqual(direct);
    expect(through.name).not.toBe('no error');
  });
});
