// The AI SDK (@ai-sdk/openai-compatible) and LangChain's ChatOpenAI through Jarvis to an Anthropic upstream (the
// faithful fake, fakes/anthropic), over real HTTP: a streamed text answer, a tool round trip the library runs
// itself, and a thinking tool loop, where neither library sends the signed thinking back and Anthropic still
// accepts the next turn because Jarvis puts it first.
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { HumanMessage, ToolMessage, type AIMessage, type AIMessageChunk, type BaseMessage } from '@langchain/core/messages';
import { ChatOpenAI } from '@langchain/openai';
import { generateText, stepCountIs, streamText, tool } from 'ai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { signatureValid, TEXT, THINKING, THINKING_TOOL } from '../fakes/anthropic/index.js';
import { CLAUDE, startAnthropicPair, type AnthropicPair } from './support/anthropic-pair.js';
import { tag, WEATHER_TOOL } from './support/faithful.js';

let pair: AnthropicPair;
beforeAll(async () => {
  pair = await startAnthropicPair();
});
afterAll(() => pair.close());

type Sent = { thinking?: unknown; messages: { role: string; content: Record<string, unknown>[] }[] };
/** The bodies the fake was sent for the conversation tagged `t` (anywhere in it), in order. */
const sentFor = (t: string) => pair.fake.requests.filter((q) => JSON.stringify(q.body.messages).includes(t)).map((q) => q.body as Sent);

/** Checks that the assistant turn answering a thinking tool call starts with the fake's own signed thinking. */
function expectSignedThinkingFirst(sent: Sent): void {
  const assistant = sent.messages.find((m) => m.role === 'assistant')!;
  expect(assistant.content[0]).toMatchObject({ type: 'thinking', thinking: THINKING_TOOL.join('') });
  expect(signatureValid(THINKING_TOOL.join(''), assistant.content[0]!.signature)).toBe(true);
  expect(assistant.content[1]).toMatchObject({ type: 'tool_use', name: 'get_weather', input: { location: 'Paris' } });
}

describe('the AI SDK (@ai-sdk/openai-compatible) through Jarvis to Anthropic', () => {
  const model = () => createOpenAICompatible({ name: 'upstream', baseURL: pair.through, apiKey: 'sk-test', includeUsage: true })(CLAUDE);
  const tools = {
    get_weather: tool({
      description: 'The weather in a city',
      inputSchema: z.object({ location: z.string() }),
      execute: async ({ location }) => ({ location, temperature: 21 }),
    }),
  };

  it('streams a text answer', async () => {
    const t = tag();
    const r = streamText({ model: model(), prompt: `Hello ${t}` });
    const deltas: string[] = [];
    for await (const d of r.textStream) deltas.push(d);
    expect(deltas).toEqual(TEXT);
    expect(await r.finishReason).toBe('stop');
    const usage = await r.totalUsage;
    expect(usage.inputTokens).toBeGreaterThan(0);
    expect(usage.outputTokens).toBeGreaterThan(0);
    expect((await r.response).modelId).toBe(CLAUDE);
  });

  it.each([false, true])('does a tool round trip (stream: %s)', async (stream) => {
    const t = tag();
    const opts = { model: model(), prompt: `Weather in Paris? ${t}`, tools, stopWhen: stepCountIs(3) };
    const r = stream ? streamText(opts) : await generateText(opts);
    const steps = await r.steps;
    expect(steps.map((s) => s.finishReason)).toEqual(['tool-calls', 'stop']);
    expect(steps[0]!.toolCalls.map((c) => ({ name: c.toolName, input: c.input }))).toEqual([{ name: 'get_weather', input: { location: 'Paris' } }]);
    expect(steps[0]!.toolCalls[0]!.toolCallId).toMatch(/^toolu_01/);
    expect(await r.text).toBe('The tool says: {"location":"Paris","temperature":21}.');
    expect(sentFor(t)).toHaveLength(2);
  });

  it.each([false, true])('reasons, calls the tool, and answers on the next turn, the thinking carried by Jarvis (stream: %s)', async (stream) => {
    const t = tag();
    const opts = {
      model: model(),
      prompt: `scenario:thinking-tool weather in Paris? ${t}`,
      tools,
      stopWhen: stepCountIs(3),
      providerOptions: { upstream: { reasoningEffort: 'low' } },
    };
    const r = stream ? streamText(opts) : await generateText(opts);
    const steps = await r.steps;
    expect(steps.map((s) => s.finishReason)).toEqual(['tool-calls', 'stop']);
    expect(steps[0]!.reasoningText).toBe(THINKING_TOOL.join(''));
    expect(await r.text).toBe('The tool says: {"location":"Paris","temperature":21}.');
    // Both turns thought; the second was accepted only because its assistant turn began with the signed thinking.
    const sent = sentFor(t);
    expect(sent).toHaveLength(2);
    expect(sent.map((b) => b.thinking)).toEqual([{ type: 'enabled', budget_tokens: 2048 }, { type: 'enabled', budget_tokens: 2048 }]);
    expectSignedThinkingFirst(sent[1]!);
  });

  it('streams the reasoning before the answer', async () => {
    const r = streamText({ model: model(), prompt: `scenario:thinking ${tag()}`, providerOptions: { upstream: { reasoningEffort: 'low' } } });
    const kinds: string[] = [];
    for await (const p of r.fullStream) if (p.type === 'reasoning-delta' || p.type === 'text-delta') kinds.push(p.type);
    expect(kinds.indexOf('text-delta')).toBeGreaterThan(kinds.lastIndexOf('reasoning-delta'));
    expect(await r.reasoningText).toBe(THINKING.join(''));
    expect(await r.text).toBe(TEXT.join(''));
  });
});

describe('LangChain ChatOpenAI through Jarvis to Anthropic', () => {
  const chat = (kwargs: Record<string, unknown> = {}) =>
    new ChatOpenAI({ model: CLAUDE, apiKey: 'sk-test', configuration: { baseURL: pair.through }, maxRetries: 1, modelKwargs: kwargs });

  /** One turn, streamed (chunks concatenated, as LangChain's own agents do) or not. */
  async function turn(messages: BaseMessage[], stream: boolean, opts: { tools?: boolean; kwargs?: Record<string, unknown> } = {}): Promise<AIMessage | AIMessageChunk> {
    const model = opts.tools === false ? chat(opts.kwargs) : chat(opts.kwargs).bindTools([WEATHER_TOOL]);
    if (!stream) return model.invoke(messages);
    let all: AIMessageChunk | undefined;
    for await (const chunk of await model.stream(messages)) all = all ? all.concat(chunk) : chunk;
    return all!;
  }

  it('streams a text answer', async () => {
    const pieces: string[] = [];
    for await (const chunk of await chat().stream([new HumanMessage(`Hello ${tag()}`)])) if (typeof chunk.content === 'string' && chunk.content !== '') pieces.push(chunk.content);
    expect(pieces).toEqual(TEXT);
  });

  it.each([false, true])('does a tool round trip (stream: %s)', async (stream) => {
    const t = tag();
    const messages: BaseMessage[] = [new HumanMessage(`What is the weather in Paris? ${t}`)];
    const first = await turn(messages, stream);
    expect(first.tool_calls).toEqual([expect.objectContaining({ name: 'get_weather', args: { location: 'Paris' }, id: expect.stringMatching(/^toolu_01/) })]);
    expect(first.response_metadata.finish_reason).toBe('tool_calls');
    const second = await turn([...messages, first, new ToolMessage({ tool_call_id: first.tool_calls![0]!.id!, content: '{"temperature":21}' })], stream);
    expect(second.content).toBe('The tool says: {"temperature":21}.');
    expect(second.response_metadata.finish_reason).toBe('stop');
  });

  it.each([false, true])('reasons, calls the tool, and answers on the next turn (stream: %s)', async (stream) => {
    const t = tag();
    const kwargs = { reasoning_effort: 'low' };
    const messages: BaseMessage[] = [new HumanMessage(`scenario:thinking-tool weather in Paris? ${t}`)];
    const first = await turn(messages, stream, { kwargs });
    expect(first.additional_kwargs.reasoning_content).toBe(THINKING_TOOL.join(''));
    expect(first.tool_calls).toEqual([expect.objectContaining({ name: 'get_weather', args: { location: 'Paris' } })]);
    const second = await turn([...messages, first, new ToolMessage({ tool_call_id: first.tool_calls![0]!.id!, content: '{"temperature":21}' })], stream, { kwargs });
    expect(second.content).toBe('The tool says: {"temperature":21}.');
    const sent = sentFor(t);
    expect(sent).toHaveLength(2);
    expect(sent.map((b) => b.thinking)).toEqual([{ type: 'enabled', budget_tokens: 2048 }, { type: 'enabled', budget_tokens: 2048 }]);
    expectSignedThinkingFirst(sent[1]!);
  });
});
