// Request limits past the body size, each refused with an OpenAI-shaped error a client can act on, and the
// per-process stream limit, which refuses new streams at once without touching the running ones.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chunksOf, postChat, textOf, user, waitForIdle } from './support/chat.js';
import { startJarvis, throughMock, type TestJarvis } from './support/jarvis.js';
import { readSse, SseReader } from './support/sse.js';
import { startMockUpstream, type MockUpstream } from '../fakes/openai/index.js';

const fast = { simulator: { tokensPerSec: 2000, ttftMs: 0 } };

async function errorOf(res: Response) {
  expect(res.headers.get('content-type')).toMatch(/^application\/json/);
  const body = (await res.json()) as { error: Record<string, unknown> };
  expect(Object.keys(body.error).sort()).toEqual(['code', 'message', 'param', 'type']);
  return body.error;
}

describe('messages and content', () => {
  let jarvis: TestJarvis;
  beforeAll(async () => {
    jarvis = await startJarvis({ ...fast, maxMessages: 5, maxContentChars: 100 });
  });
  afterAll(() => jarvis.close());

  const messages = (n: number, content = 'hi') => Array.from({ length: n }, () => ({ role: 'user', content }));

  it('more messages than JARVIS_MAX_MESSAGES is a 400 array_above_max_length on messages', async () => {
    const res = await postChat(jarvis.url, { messages: messages(6), stream: true });
    expect(res.status).toBe(400);
    expect(await errorOf(res)).toMatchObject({ type: 'invalid_request_error', code: 'array_above_max_length', param: 'messages', message: expect.stringMatching(/at most 5/) });
  });

  it('exactly the limit is served', async () => {
    const res = await postChat(jarvis.url, { messages: messages(5), stream: true });
    expect(res.status).toBe(200);
    expect(chunksOf(await readSse(res)).at(-1)!.choices[0]!.finish_reason).toBe('stop');
  });

  it('more content than JARVIS_MAX_CONTENT_CHARS, across messages and text parts, is a 400 context_length_exceeded', async () => {
    const parts = [{ role: 'user', content: [{ type: 'text', text: 'x'.repeat(40) }] }];
    for (const body of [{ messages: messages(2, 'x'.repeat(51)) }, { messages: [...messages(1, 'x'.repeat(61)), ...parts] }]) {
      const res = await postChat(jarvis.url, body);
      expect(res.status).toBe(400);
      expect(await errorOf(res)).toMatchObject({ type: 'invalid_request_error', code: 'context_length_exceeded', param: 'messages' });
    }
    const atLimit = await postChat(jarvis.url, { messages: [...messages(1, 'x'.repeat(60)), ...parts] });
    expect(atLimit.status).toBe(200);
    await atLimit.arrayBuffer();
  });

  it('are logged as rejections, and leave nothing behind', async () => {
    const log = await jarvis.waitForLog((l) => /request_rejected .*code=context_length_exceeded/.test(l));
    expect(log).toMatch(/request_rejected .*status=400 code=array_above_max_length/);
    expect(log).not.toMatch(/request_failed/);
    await waitForIdle(jarvis.url);
  });
});

describe('concurrent streams', () => {
  let mock: MockUpstream;
  let jarvis: TestJarvis;
  beforeAll(async () => {
    mock = await startMockUpstream();
    jarvis = await startJarvis({ ...throughMock(mock.url), maxStreams: 2 });
  });
  afterAll(async () => {
    await jarvis.close();
    await mock.close();
  });

  /** Opens a stream and returns once its first token is in, with a way to read the rest. */
  async function openStream(tokens: number) {
    const res = await postChat(jarvis.url, { messages: user(`hi tokens:${tokens} delay:10`), stream: true });
    expect(res.status).toBe(200);
    const body = new SseReader(res.body!);
    await body.until((text) => text.includes('tok0'), 'its first token');
    return async () => {
      await body.rest();
      return chunksOf(body.data);
    };
  }

  it('past JARVIS_MAX_STREAMS, a new request is refused with 503 overloaded and Retry-After while the running ones go on', async () => {
    const TOKENS = 100;
    const rest = await Promise.all([openStream(TOKENS), openStream(TOKENS)]);

    const refused = await postChat(jarvis.url, { messages: user('one more tokens:1'), stream: true });
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('1');
    expect(await errorOf(refused)).toMatchObject({ type: 'api_error', code: 'overloaded' });
    // Answered while both streams were still running, not after them.
    expect(await (await fetch(`${jarvis.url}/healthz`)).json()).toMatchObject({ streams: 2 });

    for (const read of rest) {
      const chunks = await read();
      expect(chunks.at(-1)!.choices[0]!.finish_reason).toBe('stop');
      expect(textOf(chunks).split(' ').filter(Boolean)).toHaveLength(TOKENS);
    }
    await waitForIdle(jarvis.url);
    const after = await postChat(jarvis.url, { messages: user('now tokens:1'), stream: true });
    expect(after.status).toBe(200);
    await after.arrayBuffer();
    expect(await jarvis.logs()).toMatch(/request_rejected .*status=503 code=overloaded/);
  });
});

describe('the request timeout', () => {
  let jarvis: TestJarvis;
  beforeAll(async () => {
    // A short answer is 12 to 42 simulator tokens: at 50/s, several times the request timeout.
    jarvis = await startJarvis({ simulator: { tokensPerSec: 50, ttftMs: 0 }, requestTimeoutMs: 100 });
  });
  afterAll(() => jarvis.close());

  it('bounds receiving a request, never a response that streams for longer', async () => {
    const started = Date.now();
    const res = await postChat(jarvis.url, { messages: user('What is a lighthouse?'), stream: true });
    expect(res.status).toBe(200);
    const chunks = chunksOf(await readSse(res));
    expect(Date.now() - started).toBeGreaterThan(100 * 2);
    expect(chunks.at(-1)!.choices[0]!.finish_reason).toBe('stop');
    expect(await jarvis.logs()).not.toMatch(/client_error|request_timeout/);
  });
});
