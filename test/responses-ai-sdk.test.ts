// The AI SDK's default OpenAI provider (`openai('model')` from @ai-sdk/openai) speaks the Responses API: through
// Jarvis, translated to a Chat Completions upstream, generateText, streamText and a tool round trip (the SDK runs
// the tool and sends its result back) work as a user expects.
import { createOpenAI } from '@ai-sdk/openai';
import { generateText, stepCountIs, streamText, tool } from 'ai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { startJarvis, type TestJarvis } from './support/jarvis.js';
import { startOpenAIUpstream, type OpenAIUpstream } from '../fakes/openai/index.js';

let up: OpenAIUpstream;
let jarvis: TestJarvis;

beforeAll(async () => {
  up = await startOpenAIUpstream();
  jarvis = await startJarvis({ upstreams: [{ name: 'openai', baseUrl: up.url, models: ['gpt-4o-mini'] }], simulator: { tokensPerSec: 200, ttftMs: 0 } });
});
afterAll(async () => {
  await jarvis.close();
  await up.close();
});

const model = (id = 'gpt-4o-mini', headers: Record<string, string> = {}) => createOpenAI({ baseURL: `${jarvis.url}/v1`, apiKey: 'sk-test', headers })(id);
const tools = {
  get_weather: tool({
    description: 'The weather in a city',
    inputSchema: z.object({ location: z.string() }),
    execute: async ({ location }) => ({ location, temperature: 21 }),
  }),
};

describe('the AI SDK default provider (Responses API) through Jarvis', () => {
  it('generateText', async () => {
    const r = await generateText({ model: model(), prompt: 'Hello there' });
    expect(r.text).toBe('The answer is 42.');
    expect(r.finishReason).toBe('stop');
    expect(r.usage.outputTokens).toBe(4);
    expect(r.response.id).toMatch(/^resp_/);
  });

  it('streamText', async () => {
    const r = streamText({ model: model(), prompt: 'Hello there' });
    const parts: string[] = [];
    for await (const t of r.textStream) parts.push(t);
    expect(parts.join('')).toBe('The answer is 42.');
    expect(parts.length).toBeGreaterThan(1);
    expect(await r.finishReason).toBe('stop');
  });

  it.each([false, true])('does a tool round trip (stream: %s)', async (stream) => {
    const opts = { model: model(), prompt: 'Weather in Paris?', tools, stopWhen: stepCountIs(3) };
    const r = stream ? streamText(opts) : await generateText(opts);
    const steps = await r.steps;
    expect(steps.map((s) => s.finishReason)).toEqual(['tool-calls', 'stop']);
    expect(steps[0]!.toolCalls).toEqual([expect.objectContaining({ toolName: 'get_weather', input: { location: 'Paris' } })]);
    expect(await r.text).toBe('The tool says: {"location":"Paris","temperature":21}.');
  });

  it('a streamed response superseded by a newer one in its session ends without an error (finish reason other)', async () => {
    const headers = { 'x-session-id': `ai-sdk-barge-${Date.now()}` };
    const first = streamText({ model: model('jarvis-sim', headers), prompt: 'Write a long essay about rivers' });
    let second: Promise<string> | undefined;
    let heard = '';
    for await (const t of first.textStream) {
      heard += t;
      second ??= generateText({ model: model('jarvis-sim', headers), prompt: 'Say hi' }).then((r) => r.text);
    }
    expect(heard.length).toBeGreaterThan(0);
    expect(await first.finishReason).toBe('other');
    expect((await second!).length).toBeGreaterThan(0);
  });
});
