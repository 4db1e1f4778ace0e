// Signed reasoning across instances: a tool loop whose client sends back only `tool_calls` (as the openai SDK's
// users do) continues on another instance of the cluster with the signature the upstream gave on the first, not
// a refusal (Anthropic) or a placeholder (Gemini): the instances share what they remember through Redis.
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signatureValid as anthropicSignatureValid } from '../fakes/anthropic/index.js';
import type { FakeRequest } from '../fakes/http.js';
import { SKIP_SIGNATURE, signatureValid as geminiSignatureValid } from '../fakes/gemini/index.js';
import { deletePrefix, startClusteredJarvis, testPrefix } from './support/access.js';
import type { TestJarvis } from './support/jarvis.js';
import { startProviders, type Providers } from './support/matrix.js';

const CLAUDE = 'claude-sonnet-5-5';
const GEMINI = 'gemini-3-flash-preview';
const prefix = testPrefix();
let providers: Providers;
let i1: TestJarvis;
let i2: TestJarvis;

beforeAll(async () => {
  providers = await startProviders();
  const opts = { upstreams: providers.upstreams({ anthropic: [CLAUDE], gemini: [GEMINI] }), defaultModel: CLAUDE };
  [i1, i2] = await Promise.all([startClusteredJarvis(prefix, opts), startClusteredJarvis(prefix, opts)]);
});
afterAll(async () => {
  await Promise.all([i1?.close(), i2?.close()]);
  await providers?.close();
  await deletePrefix(prefix);
});

const sdk = (j: TestJarvis) => new OpenAI({ baseURL: `${j.url}/v1`, apiKey: 'sk-unused', maxRetries: 0 });
const tools: OpenAI.Chat.ChatCompletionTool[] = [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { location: { type: 'string' } } } } }];
let tags = 0;
const tag = () => `sig${++tags}x${process.pid}`;

/** The tool loop's first turn on one instance, the second (only `tool_calls` sent back) on the other: what the upstream got. */
async function acrossInstances(model: string, requests: () => FakeRequest[]): Promise<FakeRequest> {
  const t = tag();
  const prompt = `scenario:thinking-tool Weather in Paris? ${t}`;
  const first = await sdk(i1).chat.completions.create({ model, messages: [{ role: 'user', content: prompt }], tools, reasoning_effort: 'low' });
  const call = first.choices[0]!.message.tool_calls![0]! as OpenAI.Chat.ChatCompletionMessageFunctionToolCall;
  const second = await sdk(i2).chat.completions.create({
    model,
    messages: [
      { role: 'user', content: prompt },
      { role: 'assistant', content: null, tool_calls: [call] },
      { role: 'tool', tool_call_id: call.id, content: '{"temperature":21}' },
    ],
    tools,
    reasoning_effort: 'low',
  });
  expect(second.choices[0]!.message.content).toContain('21');
  return requests().filter((r) => JSON.stringify(r.body).includes(t)).at(-1)!;
}

describe('a tool loop whose client sends back only tool_calls, continued on another instance', () => {
  it("gets Anthropic's signed thinking back to Anthropic", async () => {
    const sent = await acrossInstances(CLAUDE, () => providers.anthropic.requests);
    const turn = (sent.body.messages as { role: string; content: { type: string; thinking?: string; signature?: string }[] }[]).find((m) => m.role === 'assistant')!;
    expect(turn.content[0]!.type).toBe('thinking');
    expect(anthropicSignatureValid(turn.content[0]!.thinking!, turn.content[0]!.signature)).toBe(true);
  });

  it("gets Gemini's thought signature back to Gemini, not the placeholder", async () => {
    const sent = await acrossInstances(GEMINI, () => providers.gemini.requests);
    const turn = (sent.body.contents as { role: string; parts: { functionCall?: { name: string }; thoughtSignature?: string }[] }[]).find((c) => c.role === 'model')!;
    const call = turn.parts.find((p) => p.functionCall)!;
    expect(call.thoughtSignature).not.toBe(SKIP_SIGNATURE);
    expect(geminiSignatureValid(call.functionCall!.name, call.thoughtSignature)).toBe(true);
  });
});
