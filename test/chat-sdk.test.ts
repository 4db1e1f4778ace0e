// The official openai SDK, unmodified, against Jarvis: on the built-in simulator and through an upstream.
import OpenAI from 'openai';
import type { ChatCompletionChunk, ChatCompletionCreateParamsNonStreaming, ChatCompletionCreateParamsStreaming } from 'openai/resources/chat/completions';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { simulatedAnswer } from '../src/providers/simulated/answer.js';
import { user } from './support/chat.js';
import { startJarvis, throughMock, type TestJarvis } from './support/jarvis.js';
import { startMockUpstream, type MockUpstream } from '../fakes/openai/index.js';

const sdk = (j: TestJarvis) => new OpenAI({ baseURL: `${j.url}/v1`, apiKey: 'x', maxRetries: 0 });

async function collect(stream: AsyncIterable<ChatCompletionChunk>): Promise<ChatCompletionChunk[]> {
  const chunks: ChatCompletionChunk[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  return chunks;
}

const contentOf = (chunks: ChatCompletionChunk[]) => chunks.map((c) => c.choices[0]?.delta.content ?? '').join('');
const contentChunks = (chunks: ChatCompletionChunk[]) => chunks.filter((c) => c.choices[0]?.delta.content);

/** What every well-formed stream looks like, whoever generated it. */
function expectWellFormed(chunks: ChatCompletionChunk[], finishReason: string): void {
  expect(chunks.length).toBeGreaterThan(1);
  expect(chunks[0]!.choices[0]!.delta.role).toBe('assistant');
  for (const c of chunks) {
    expect(c.object).toBe('chat.completion.chunk');
    expect(c.id).toBe(chunks[0]!.id);
  }
  const withChoices = chunks.filter((c) => c.choices.length > 0);
  expect(withChoices.at(-1)!.choices[0]!.finish_reason).toBe(finishReason);
  expect(withChoices.slice(0, -1).every((c) => c.choices[0]!.finish_reason === null)).toBe(true);
}

describe('on the simulator', () => {
  let jarvis: TestJarvis;
  let client: OpenAI;
  const prompt = 'What is the capital of France?';
  const expected = simulatedAnswer(prompt);

  beforeAll(async () => {
    jarvis = await startJarvis({ simulator: { tokensPerSec: 2000, ttftMs: 0 } });
    client = sdk(jarvis);
  });
  afterAll(() => jarvis.close());

  it('streams role, the whole answer as deltas, finish_reason, no usage unless asked, and ends', async () => {
    const chunks = await collect(await client.chat.completions.create({ model: 'jarvis-sim', messages: user(prompt), stream: true }));
    expectWellFormed(chunks, 'stop');
    expect(chunks[0]!.model).toBe('jarvis-sim');
    expect(contentOf(chunks)).toBe(expected.join(''));
    expect(contentChunks(chunks)).toHaveLength(expected.length);
    expect(chunks.some((c) => c.usage)).toBe(false);
  });

  it('sends a usage chunk last when stream_options.include_usage is true', async () => {
    const chunks = await collect(
      await client.chat.completions.create({ model: 'jarvis-sim', messages: user(prompt), stream: true, stream_options: { include_usage: true } }),
    );
    expectWellFormed(chunks, 'stop');
    const last = chunks.at(-1)!;
    expect(last.choices).toEqual([]);
    expect(last.usage).toMatchObject({ completion_tokens: expected.length });
    expect(last.usage!.total_tokens).toBe(last.usage!.prompt_tokens + last.usage!.completion_tokens);
    expect(chunks.filter((c) => c.usage)).toHaveLength(1);
  });

  it('serves the default model when model is omitted', async () => {
    // Jarvis accepts a request without `model`; the SDK's types insist on one, so it is left undefined (not sent).
    const params = { model: undefined as unknown as string, messages: user(prompt), stream: true } as const;
    const chunks = await collect(await client.chat.completions.create(params));
    expectWellFormed(chunks, 'stop');
    expect(chunks[0]!.model).toBe('jarvis-sim');
    expect(contentOf(chunks)).toBe(expected.join(''));
  });

  it('honours max_tokens with finish_reason length, streaming and not', async () => {
    const chunks = await collect(await client.chat.completions.create({ model: 'jarvis-sim', messages: user(prompt), stream: true, max_tokens: 5 }));
    expectWellFormed(chunks, 'length');
    expect(contentOf(chunks)).toBe(expected.slice(0, 5).join(''));

    const completion = await client.chat.completions.create({ model: 'jarvis-sim', messages: user(prompt), max_tokens: 5 });
    expect(completion.choices[0]!.finish_reason).toBe('length');
    expect(completion.usage?.completion_tokens).toBe(5);
  });

  it('answers without streaming as one chat.completion with usage', async () => {
    const completion = await client.chat.completions.create({ model: 'jarvis-sim', messages: user(prompt) });
    expect(completion.object).toBe('chat.completion');
    expect(completion.model).toBe('jarvis-sim');
    expect(completion.choices).toHaveLength(1);
    expect(completion.choices[0]!.message).toMatchObject({ role: 'assistant', content: expected.join('') });
    expect(completion.choices[0]!.finish_reason).toBe('stop');
    expect(completion.usage?.completion_tokens).toBe(expected.length);
    expect(completion.usage?.prompt_tokens).toBeGreaterThan(0);
  });

  it('answers "Long essay" at length and "2+2?" briefly', async () => {
    const essay = await client.chat.completions.create({ model: 'jarvis-sim', messages: user('Long essay about the sea') });
    expect(essay.usage!.completion_tokens).toBeGreaterThanOrEqual(200);

    const sum = await client.chat.completions.create({ model: 'jarvis-sim', messages: user('2+2?') });
    expect(sum.choices[0]!.message.content).toMatch(/^2 \+ 2 = 4\./);
    expect(sum.usage!.completion_tokens).toBeLessThan(100);
  });

  it('reads text-part-array content like plain string content', async () => {
    const parts = await client.chat.completions.create({ model: 'jarvis-sim', messages: [{ role: 'user', content: [{ type: 'text', text: '2+2?' }] }] });
    const plain = await client.chat.completions.create({ model: 'jarvis-sim', messages: user('2+2?') });
    expect(parts.choices[0]!.message.content).toBe(plain.choices[0]!.message.content);
    expect(parts.choices[0]!.message.content).toMatch(/^2 \+ 2 = 4\./);
  });
});

describe('through an upstream', () => {
  let mock: MockUpstream;
  let jarvis: TestJarvis;
  let client: OpenAI;
  // The mock's knobs ride in the prompt (`tokens:4`): they are not counted as its tokens.
  const stream = (knobs: string, extra: Partial<ChatCompletionCreateParamsStreaming> = {}) =>
    client.chat.completions.create({ model: 'mock-model', messages: user(`hello there ${knobs}`), stream: true, ...extra });
  const complete = (knobs: string, extra: Partial<ChatCompletionCreateParamsNonStreaming> = {}) =>
    client.chat.completions.create({ model: 'mock-model', messages: user(`hello there ${knobs}`), ...extra });

  beforeAll(async () => {
    mock = await startMockUpstream();
    jarvis = await startJarvis(throughMock(mock.url));
    client = sdk(jarvis);
  });
  afterAll(async () => {
    await jarvis.close();
    await mock.close();
  });

  it('relays the stream: role first, every token, finish_reason, no usage unless asked, and ends', async () => {
    const chunks = await collect(await stream('tokens:4'));
    expectWellFormed(chunks, 'stop');
    expect(chunks[0]!.model).toBe('mock-model');
    expect(contentOf(chunks)).toBe('tok0 tok1 tok2 tok3 ');
    expect(contentChunks(chunks)).toHaveLength(4);
    expect(chunks.some((c) => c.usage)).toBe(false);
  });

  it("relays the upstream's usage when stream_options.include_usage is true", async () => {
    const chunks = await collect(await stream('tokens:3', { stream_options: { include_usage: true } }));
    expectWellFormed(chunks, 'stop');
    expect(chunks.at(-1)).toMatchObject({ choices: [], usage: { prompt_tokens: 2, completion_tokens: 3, total_tokens: 5 } });
    expect(chunks.filter((c) => c.usage)).toHaveLength(1);
  });

  it('honours max_tokens with finish_reason length', async () => {
    const chunks = await collect(await stream('tokens:5', { max_tokens: 2 }));
    expectWellFormed(chunks, 'length');
    expect(contentOf(chunks)).toBe('tok0 tok1 ');
  });

  it('answers without streaming as one chat.completion with usage', async () => {
    const completion = await complete('tokens:3');
    expect(completion.object).toBe('chat.completion');
    expect(completion.model).toBe('mock-model');
    expect(completion.choices[0]!.message).toMatchObject({ role: 'assistant', content: 'tok0 tok1 tok2 ' });
    expect(completion.choices[0]!.finish_reason).toBe('stop');
    expect(completion.usage).toMatchObject({ prompt_tokens: 2, completion_tokens: 3, total_tokens: 5 });
  });

  it('passes text-part-array content to the upstream unchanged', async () => {
    const messages = [{ role: 'user' as const, content: [{ type: 'text' as const, text: 'parts reach the upstream' }, { type: 'text' as const, text: ' tokens:2 text:part' }] }];
    const completion = await complete('', { messages });
    expect(completion.choices[0]!.message.content).toBe('part0 part1 ');
    const forwarded = mock.requests.find((r) => r.knobs.text === 'part');
    expect(forwarded?.body.messages).toEqual(messages);
  });
});
