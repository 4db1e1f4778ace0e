// The openai SDK through Jarvis to an Anthropic upstream (the faithful fake, fakes/anthropic), over real HTTP: what
// a Chat Completions client sees when its model is served by Anthropic's Messages API. Text with usage, tool round
// trips (one call and two in parallel), signed thinking carried into a tool loop's next turn whether or not the
// client sends it back, finish reasons, an abort reaching the upstream, and each error with the class and retry
// count a client acts on.
import OpenAI, { APIError, BadRequestError, InternalServerError, RateLimitError } from 'openai';
import type { ChatCompletion, ChatCompletionChunk, ChatCompletionCreateParamsNonStreaming, ChatCompletionMessageParam } from 'openai/resources/chat/completions';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { answerFor, ERRORS, REFUSAL_TEXT, render, signatureValid, TEXT, THINKING, THINKING_TOOL, TOOL_ARGS } from '../fakes/anthropic/index.js';
import { ANTHROPIC_KEY, CLAUDE, expectAnthropicClosed, startAnthropicPair, type AnthropicPair } from './support/anthropic-pair.js';
import { failure, tag, WEATHER_TOOL } from './support/faithful.js';
import { startJarvis, type TestJarvis } from './support/jarvis.js';

let pair: AnthropicPair;
/** A second Jarvis over the same fake: it has seen none of the first one's answers (no remembered thinking). */
let other: TestJarvis;
beforeAll(async () => {
  pair = await startAnthropicPair();
  other = await startJarvis({ upstreams: [{ name: 'claude', baseUrl: pair.fake.url, provider: 'anthropic', apiKey: ANTHROPIC_KEY, models: ['*'] }], defaultModel: CLAUDE });
});
afterAll(async () => {
  await other?.close();
  await pair?.close();
});

const MAX_RETRIES = 2;
const client = (baseURL = pair.through) => new OpenAI({ baseURL, apiKey: 'sk-test', maxRetries: MAX_RETRIES });

const TIME_TOOL = {
  type: 'function' as const,
  function: { name: 'get_time', description: 'The time in a city', parameters: { type: 'object', properties: { location: { type: 'string' } } } },
};

type Body = Omit<ChatCompletionCreateParamsNonStreaming, 'model' | 'stream'> & { model?: string };

/** One turn, streamed (the chunks as they came, and the SDK's own assembly of them) or not. */
async function ask(body: Body, stream: boolean, baseURL = pair.through): Promise<{ completion: ChatCompletion; chunks: ChatCompletionChunk[] }> {
  const params = { model: CLAUDE, ...body };
  if (!stream) return { completion: await client(baseURL).chat.completions.create(params), chunks: [] };
  const chunks: ChatCompletionChunk[] = [];
  const s = client(baseURL).chat.completions.stream({ ...params, stream_options: { include_usage: true } });
  s.on('chunk', (c) => chunks.push(c));
  return { completion: await s.finalChatCompletion(), chunks };
}

/** The reasoning text and the thinking_blocks deltas of a stream, joined in order. */
const reasoningOf = (chunks: ChatCompletionChunk[]) => chunks.map((c) => (c.choices[0]?.delta as { reasoning_content?: string } | undefined)?.reasoning_content ?? '').join('');
const thinkingBlocksOf = (chunks: ChatCompletionChunk[]) => chunks.flatMap((c) => (c.choices[0]?.delta as { thinking_blocks?: Record<string, unknown>[] } | undefined)?.thinking_blocks ?? []);

/** The usage the fake reported for the request it was sent (its own Message's usage). */
function fakeUsage(tagged: string) {
  const rec = pair.fake.requestsFor(tagged).at(-1)!;
  return render(rec.body, answerFor(rec.body)).message.usage as {
    input_tokens: number;
    cache_read_input_tokens: number;
    cache_creation_input_tokens: number;
    output_tokens: number;
    output_tokens_details: { thinking_tokens: number };
  };
}

describe.each([false, true])('the openai SDK through Jarvis to Anthropic (stream: %s)', (stream) => {
  it('gets a text answer, finish_reason stop, and the usage Anthropic reported', async () => {
    const t = tag();
    const { completion, chunks } = await ask({ messages: [{ role: 'user', content: `Hello ${t}` }] }, stream);
    expect(completion.choices).toHaveLength(1);
    expect(completion.choices[0]).toMatchObject({ index: 0, finish_reason: 'stop', message: { role: 'assistant', content: TEXT.join('') } });
    expect(completion.model).toBe(CLAUDE);
    const up = fakeUsage(t);
    expect(completion.usage).toMatchObject({
      prompt_tokens: up.input_tokens + up.cache_read_input_tokens + up.cache_creation_input_tokens,
      completion_tokens: up.output_tokens,
      total_tokens: up.input_tokens + up.cache_read_input_tokens + up.cache_creation_input_tokens + up.output_tokens,
      prompt_tokens_details: { cached_tokens: up.cache_read_input_tokens },
    });
    expect(completion.usage!.prompt_tokens).toBeGreaterThan(0);
    if (stream) {
      // Each text delta its own chunk, in order; the usage last, in a chunk with no choices.
      expect(chunks.map((c) => c.choices[0]?.delta.content ?? '').filter((s) => s !== '')).toEqual(TEXT);
      expect(chunks.at(-1)!.choices).toEqual([]);
      expect(chunks.slice(0, -1).every((c) => c.usage === undefined || c.usage === null)).toBe(true);
    }
    const rec = pair.fake.requestsFor(t)[0]!;
    expect(rec.headers['anthropic-version']).toBe('2026-10-21');
    expect(rec.body).toMatchObject({ model: CLAUDE, stream: true, max_tokens: 4096, messages: [{ role: 'user', content: [{ type: 'text', text: `Hello ${t}` }] }] });
  });

  it('does a tool round trip: the call whole, then an answer quoting the result', async () => {
    const t = tag();
    const messages: ChatCompletionMessageParam[] = [{ role: 'user', content: `What is the weather in Paris? ${t}` }];
    const first = await ask({ messages, tools: [WEATHER_TOOL] }, stream);
    const choice = first.completion.choices[0]!;
    expect(choice.finish_reason).toBe('tool_calls');
    expect(choice.message.tool_calls).toEqual([{ id: expect.stringMatching(/^toolu_01/), type: 'function', function: { name: 'get_weather', arguments: TOOL_ARGS[0] } }]);
    const call = choice.message.tool_calls![0]!;
    if (stream) {
      // The call's id and name first, then its arguments' fragments, each at index 0.
      const calls = first.chunks.flatMap((c) => c.choices[0]?.delta.tool_calls ?? []);
      expect(calls[0]).toMatchObject({ index: 0, id: call.id, type: 'function', function: { name: 'get_weather' } });
      expect(calls.every((c) => c.index === 0)).toBe(true);
      expect(calls.map((c) => c.function?.arguments ?? '').join('')).toBe(TOOL_ARGS[0]);
    }
    messages.push(choice.message, { role: 'tool', tool_call_id: call.id, content: '{"temperature":21}' });
    const second = await ask({ messages, tools: [WEATHER_TOOL] }, stream);
    expect(second.completion.choices[0]).toMatchObject({ finish_reason: 'stop', message: { content: 'The tool says: {"temperature":21}.' } });
    // What reached Anthropic: the call as a tool_use, the result as a tool_result for it.
    const sent = pair.fake.requests.at(-1)!.body as { messages: unknown[] };
    expect(sent.messages).toEqual([
      { role: 'user', content: [{ type: 'text', text: `What is the weather in Paris? ${t}` }] },
      { role: 'assistant', content: [{ type: 'tool_use', id: call.id, name: 'get_weather', input: { location: 'Paris' } }] },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: call.id, content: '{"temperature":21}' }] },
    ]);
  });

  it('keeps two parallel tool calls apart, at indexes 0 and 1', async () => {
    const { completion, chunks } = await ask({ messages: [{ role: 'user', content: `scenario:tools-2 Paris and Tokyo ${tag()}` }], tools: [WEATHER_TOOL, TIME_TOOL] }, stream);
    const calls = completion.choices[0]!.message.tool_calls!;
    expect(completion.choices[0]!.finish_reason).toBe('tool_calls');
    expect(calls.map((c) => ({ type: c.type, name: c.type === 'function' ? c.function.name : '', args: c.type === 'function' ? c.function.arguments : '' }))).toEqual([
      { type: 'function', name: 'get_weather', args: TOOL_ARGS[0] },
      { type: 'function', name: 'get_time', args: TOOL_ARGS[1] },
    ]);
    expect(calls[0]!.id).not.toBe(calls[1]!.id);
    if (stream) {
      const deltas = chunks.flatMap((c) => c.choices[0]?.delta.tool_calls ?? []);
      expect([...new Set(deltas.map((d) => d.index))]).toEqual([0, 1]);
      for (const i of [0, 1]) {
        const mine = deltas.filter((d) => d.index === i);
        expect(mine[0]).toMatchObject({ id: calls[i]!.id, function: { name: i === 0 ? 'get_weather' : 'get_time' } });
        expect(mine.slice(1).every((d) => d.id === undefined)).toBe(true);
        expect(mine.map((d) => d.function?.arguments ?? '').join('')).toBe(TOOL_ARGS[i]);
      }
    }
  });

  it('with reasoning_effort, turns thinking on and gives the reasoning to the client', async () => {
    const t = tag();
    const { completion, chunks } = await ask({ messages: [{ role: 'user', content: `scenario:thinking ${t}` }], reasoning_effort: 'low' }, stream);
    const rec = pair.fake.requestsFor(t)[0]!;
    expect(rec.body.thinking).toEqual({ type: 'enabled', budget_tokens: 2048 });
    expect(completion.choices[0]).toMatchObject({ finish_reason: 'stop', message: { content: TEXT.join('') } });
    // The output tokens Anthropic says went to thinking are the reasoning tokens of the usage.
    const up = fakeUsage(t);
    expect(up.output_tokens_details.thinking_tokens).toBeGreaterThan(0);
    expect(completion.usage).toMatchObject({ completion_tokens: up.output_tokens, completion_tokens_details: { reasoning_tokens: up.output_tokens_details.thinking_tokens } });
    if (stream) {
      expect(reasoningOf(chunks)).toBe(THINKING.join(''));
      const blocks = thinkingBlocksOf(chunks);
      expect(blocks).toEqual([{ type: 'thinking', thinking: THINKING.join(''), signature: expect.any(String) }]);
      expect(signatureValid(THINKING.join(''), blocks[0]!.signature)).toBe(true);
      // The reasoning comes before the answer.
      const firstText = chunks.findIndex((c) => c.choices[0]?.delta.content);
      const lastReasoning = chunks.findLastIndex((c) => (c.choices[0]?.delta as { reasoning_content?: string } | undefined)?.reasoning_content);
      expect(lastReasoning).toBeLessThan(firstText);
    } else {
      expect(completion.choices[0]!.message).toMatchObject({ reasoning_content: THINKING.join('') });
    }
  });

  /** A thinking tool call, then the next turn with the tool's result: `back` says what the client sends of the assistant message. */
  async function thinkingToolLoop(t: string, back: 'as the SDK gives it' | 'with thinking_blocks', secondTo = pair.through) {
    const messages: ChatCompletionMessageParam[] = [{ role: 'user', content: `scenario:thinking-tool weather in Paris? ${t}` }];
    const first = await ask({ messages, tools: [WEATHER_TOOL], reasoning_effort: 'low' }, stream);
    const choice = first.completion.choices[0]!;
    expect(choice.finish_reason).toBe('tool_calls');
    const call = choice.message.tool_calls![0]!;
    expect(call).toMatchObject({ type: 'function', function: { name: 'get_weather', arguments: TOOL_ARGS[0] } });
    const reasoning = stream ? reasoningOf(first.chunks) : (choice.message as { reasoning_content?: string }).reasoning_content;
    expect(reasoning).toBe(THINKING_TOOL.join(''));
    const blocks = stream ? thinkingBlocksOf(first.chunks) : (choice.message as { thinking_blocks?: Record<string, unknown>[] }).thinking_blocks;
    expect(blocks).toEqual([{ type: 'thinking', thinking: THINKING_TOOL.join(''), signature: expect.any(String) }]);
    // What most clients send back: the content and the tool calls, nothing of the thinking.
    const assistant: ChatCompletionMessageParam & Record<string, unknown> = { role: 'assistant', content: choice.message.content, tool_calls: choice.message.tool_calls };
    if (back === 'with thinking_blocks') assistant.thinking_blocks = blocks;
    messages.push(assistant, { role: 'tool', tool_call_id: call.id, content: '{"temperature":21}' });
    const second = await ask({ messages, tools: [WEATHER_TOOL], reasoning_effort: 'low' }, stream, secondTo);
    return { call, blocks: blocks!, second };
  }

  it('a thinking tool call, sent back without its thinking_blocks: Jarvis puts the signed thinking first, and the answer quotes the result', async () => {
    const t = tag();
    const { call, blocks, second } = await thinkingToolLoop(t, 'as the SDK gives it');
    expect(second.completion.choices[0]).toMatchObject({ finish_reason: 'stop', message: { content: 'The tool says: {"temperature":21}.' } });
    const sent = pair.fake.requests.at(-1)!.body as { messages: { role: string; content: Record<string, unknown>[] }[] };
    expect(sent.messages[1]).toEqual({ role: 'assistant', content: [blocks[0], { type: 'tool_use', id: call.id, name: 'get_weather', input: { location: 'Paris' } }] });
  });

  it('a thinking tool call, sent back with its thinking_blocks: accepted even by a Jarvis that never saw the first turn', async () => {
    const t = tag();
    const { call, blocks, second } = await thinkingToolLoop(t, 'with thinking_blocks', `${other.url}/v1`);
    expect(second.completion.choices[0]).toMatchObject({ finish_reason: 'stop', message: { content: 'The tool says: {"temperature":21}.' } });
    const sent = pair.fake.requests.at(-1)!.body as { messages: { role: string; content: Record<string, unknown>[] }[] };
    expect(sent.messages[1]!.content).toEqual([blocks[0], { type: 'tool_use', id: call.id, name: 'get_weather', input: { location: 'Paris' } }]);
  });

  it('without thinking_blocks, a Jarvis that never saw the first turn cannot make Anthropic accept it (what the memory is for)', async () => {
    const result = await failure(() => thinkingToolLoop(tag(), 'as the SDK gives it', `${other.url}/v1`), (e) => ({ status: e.status, message: e.message }));
    expect(result).toMatchObject({ name: 'BadRequestError', status: 400, message: expect.stringContaining('a final `assistant` message must start with a thinking block') });
  });

  it.each([
    ['max-tokens', 'length'],
    ['refusal', 'content_filter'],
    ['stop-sequence', 'stop'],
  ])('%s finishes with %s', async (scenario, reason) => {
    const params: Body = { messages: [{ role: 'user', content: `scenario:${scenario} ${tag()}` }], ...(scenario === 'max-tokens' ? { max_tokens: 5 } : {}), ...(scenario === 'stop-sequence' ? { stop: ['END'] } : {}) };
    // The SDK's stream helper turns length and content_filter into errors only when parsing a response_format: the raw stream says it.
    const sdk = client();
    let finish: string | null | undefined;
    let content = '';
    if (stream) {
      for await (const c of await sdk.chat.completions.create({ model: CLAUDE, ...params, stream: true })) {
        content += c.choices[0]?.delta.content ?? '';
        finish = c.choices[0]?.finish_reason ?? finish;
      }
    } else {
      const completion = await sdk.chat.completions.create({ model: CLAUDE, ...params });
      finish = completion.choices[0]!.finish_reason;
      content = completion.choices[0]!.message.content ?? '';
    }
    expect(finish).toBe(reason);
    if (scenario === 'refusal') expect(content).toBe(REFUSAL_TEXT.join(''));
    if (scenario === 'stop-sequence') expect(content).toBe('The answer is');
    if (scenario === 'max-tokens') expect(content).toBe('t0 t1 t2 t3 t4 ');
  });
});

describe('the openai SDK through Jarvis to Anthropic', () => {
  it('aborting mid-stream closes the upstream request', async () => {
    const t = tag();
    const ac = new AbortController();
    const s = await client().chat.completions.create({ model: CLAUDE, stream: true, messages: [{ role: 'user', content: `scenario:long tokens:500 delay:20 ${t}` }] }, { signal: ac.signal });
    let texts = 0;
    await (async () => {
      for await (const chunk of s) {
        if (chunk.choices[0]?.delta.content) {
          texts++;
          ac.abort();
        }
      }
    })().catch(() => {});
    expect(texts).toBe(1);
    await expectAnthropicClosed(pair, t);
  });

  const run = async (scenario: string, stream: boolean) => {
    const t = tag();
    const messages = [{ role: 'user' as const, content: `scenario:${scenario} ${t}` }];
    let err: unknown;
    const result = await failure(
      async () => {
        const sdk = client();
        if (!stream) return sdk.chat.completions.create({ model: CLAUDE, messages });
        for await (const _chunk of await sdk.chat.completions.create({ model: CLAUDE, messages, stream: true }));
      },
      (e) => {
        err = e;
        return { status: e.status, type: e.type, code: e.code, message: e.message, headers: e.headers };
      },
    );
    return { ...result, err, upstreamRequests: pair.fake.requestsFor(t).length } as { name: string; err: unknown; upstreamRequests: number; message?: unknown; headers?: Headers };
  };

  it('http-400: a BadRequestError with Anthropic\'s message, not retried', async () => {
    const r = await run('http-400', false);
    expect(r.err).toBeInstanceOf(BadRequestError);
    expect(r).toMatchObject({ status: 400, type: 'invalid_request_error', message: `400 ${ERRORS['http-400']!.message}`, upstreamRequests: 1 });
  });

  it.each([false, true])('http-429 (stream: %s): a RateLimitError after the SDK\'s retries, each reaching Anthropic', async (stream) => {
    const r = await run('http-429', stream);
    expect(r.err).toBeInstanceOf(RateLimitError);
    expect(r).toMatchObject({ status: 429, type: 'rate_limit_error', message: `429 ${ERRORS['http-429']!.message}`, upstreamRequests: 1 + MAX_RETRIES });
    // Anthropic's retry-after reaches the client (the SDK waited retry-after-ms, the fake's short form of it).
    expect(r.headers!.get('retry-after')).toBe('1');
    expect(r.headers!.get('retry-after-ms')).toBe('20');
  });

  it.each([false, true])('http-529 (stream: %s): an InternalServerError with status 503, retried', async (stream) => {
    const r = await run('http-529', stream);
    expect(r.err).toBeInstanceOf(InternalServerError);
    expect(r).toMatchObject({ status: 503, message: '503 Overloaded', upstreamRequests: 1 + MAX_RETRIES });
  });

  it("http-401 (Jarvis's own key refused): a 502 upstream_auth_failed, not retried", async () => {
    const r = await run('http-401', false);
    expect(r).toMatchObject({ name: 'InternalServerError', status: 502, code: 'upstream_auth_failed', upstreamRequests: 1 });
    expect(r.headers!.get('x-should-retry')).toBe('false');
    expect(String(r.message)).not.toContain('x-api-key');
  });

  it('error-mid: the stream, after some text, throws an APIError with Anthropic\'s message', async () => {
    const t = tag();
    let text = '';
    let caught: unknown;
    try {
      for await (const c of await client().chat.completions.create({ model: CLAUDE, stream: true, messages: [{ role: 'user', content: `scenario:error-mid ${t}` }] })) {
        text += c.choices[0]?.delta.content ?? '';
      }
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(APIError);
    // The error event in OpenAI's shape, with Anthropic's message and its type as the code.
    expect((caught as APIError).error).toEqual({ message: 'Overloaded', type: 'server_error', param: null, code: 'overloaded_error' });
    expect(caught).toMatchObject({ message: 'Overloaded', type: 'server_error', code: 'overloaded_error' });
    expect(text).toBe('Hello there and');
    expect(pair.fake.requestsFor(t)).toHaveLength(1);
  });
});
