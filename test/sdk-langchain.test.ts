// LangChain's ChatOpenAI behaves through Jarvis exactly as it does talking to the upstream directly: a tool round
// trip (the model asks, the application answers with a ToolMessage, the model replies), streamed and not,
// reasoning, an abort mid-stream, and errors with the same class after the same number of upstream requests.
import { AIMessageChunk, HumanMessage, ToolMessage, type AIMessage, type BaseMessage } from '@langchain/core/messages';
import { ChatOpenAI } from '@langchain/openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectUpstreamClosed, failure, startPair, tag, WEATHER_TOOL, type Pair } from './support/faithful.js';

let pair: Pair;
beforeAll(async () => {
  pair = await startPair();
});
afterAll(() => pair.close());

// One retry, not LangChain's six: its back-off starts at a second, and one retry already shows the count.
const chat = (baseURL: string) => new ChatOpenAI({ model: 'gpt-4o-mini', apiKey: 'sk-test', configuration: { baseURL }, maxRetries: 1 });

/** One turn, streamed (chunks concatenated, as LangChain's own agents do) or not. */
async function turn(baseURL: string, messages: BaseMessage[], stream: boolean, tools = true): Promise<AIMessage | AIMessageChunk> {
  const model = tools ? chat(baseURL).bindTools([WEATHER_TOOL]) : chat(baseURL);
  if (!stream) return model.invoke(messages);
  let all: AIMessageChunk | undefined;
  for await (const chunk of await model.stream(messages)) all = all ? all.concat(chunk) : chunk;
  return all!;
}

/** What an application reads of a message: not LangChain's run ids. */
const seen = (m: AIMessage | AIMessageChunk) => ({
  content: m.content,
  tool_calls: m.tool_calls,
  additional_kwargs: m.additional_kwargs,
  finish_reason: m.response_metadata.finish_reason,
  model: m.response_metadata.model_name,
  usage: m.usage_metadata,
});

describe.each([false, true])('LangChain ChatOpenAI (stream: %s)', (stream) => {
  it('does a tool round trip through Jarvis as it does directly', async () => {
    const roundTrip = async (baseURL: string) => {
      const messages: BaseMessage[] = [new HumanMessage('What is the weather in Paris?')];
      const first = await turn(baseURL, messages, stream);
      const call = first.tool_calls![0]!;
      const second = await turn(baseURL, [...messages, first, new ToolMessage({ tool_call_id: call.id!, content: '{"temperature":21}' })], stream);
      return { first: seen(first), second: seen(second) };
    };
    const [direct, through] = await Promise.all([roundTrip(pair.routes.direct), roundTrip(pair.routes.through)]);
    expect(through).toEqual(direct);
    expect(through.first.tool_calls).toEqual([expect.objectContaining({ name: 'get_weather', args: { location: 'Paris' } })]);
    expect(through.second.content).toBe('The tool says: {"temperature":21}.');
  });

  it('gets the reasoning as directly', async () => {
    const ask = async (baseURL: string) => seen(await turn(baseURL, [new HumanMessage('scenario:reasoning 2+2?')], stream, false));
    const [direct, through] = await Promise.all([ask(pair.routes.direct), ask(pair.routes.through)]);
    expect(through).toEqual(direct);
    expect(through.content).toBe('2 + 2 = 4.');
    expect(through.additional_kwargs.reasoning_content).toBe('The user wants a sum.');
  });
});

describe('LangChain ChatOpenAI', () => {
  it('aborting mid-stream closes the upstream request', async () => {
    const t = tag();
    const ac = new AbortController();
    const stream = await chat(pair.routes.through).stream([new HumanMessage(`scenario:long tokens:500 delay:20 ${t}`)], { signal: ac.signal });
    await (async () => {
      for await (const _chunk of stream) ac.abort();
    })().catch(() => {});
    await expectUpstreamClosed(pair, t);
  });

  const run = async (baseURL: string, scenario: string, stream: boolean) => {
    const t = tag();
    const result = await failure(
      () => turn(baseURL, [new HumanMessage(`scenario:${scenario} ${t}`)], stream, false),
      (e) => ({ status: e.status, code: e.code, message: e.message }),
    );
    return { ...result, upstreamRequests: pair.up.requestsFor(t).length };
  };

  it.each([
    ['http-400', false],
    ['http-404', true],
    ['http-500', false],
    ['error-first', true],
    ['error-mid', true],
  ])('%s (stream: %s): the same error after as many upstream requests as directly', async (scenario, stream) => {
    const [direct, through] = await Promise.all([run(pair.routes.direct, scenario, stream), run(pair.routes.through, scenario, stream)]);
    expect(through).toEqual(direct);
    expect(through.name).not.toBe('no error');
  });
});
