// Upstream failures before and during a stream: the client always gets a coded error and a stream that ends.
import OpenAI, { APIError } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chunksOf, closedPort, postChat, textOf, user, waitForIdle } from './support/chat.js';
import { startJarvis, throughMock, type TestJarvis } from './support/jarvis.js';
import { readSse, SseReader } from './support/sse.js';
import { startMockUpstream, type MockUpstream } from '../fakes/openai/index.js';

/** A request whose prompt carries the mock's knobs (`tokens:5 fail-after:3`). */
const ask = (knobs: string, stream: boolean) => ({ messages: user(`hello there ${knobs}`), stream });

async function errorOf(res: Response) {
  const body = (await res.json()) as { error: { message: string; type: string; param: string | null; code: string | null } };
  expect(Object.keys(body.error).sort()).toEqual(['code', 'message', 'param', 'type']);
  return body.error;
}

let mock: MockUpstream;
let jarvis: TestJarvis;

beforeAll(async () => {
  mock = await startMockUpstream();
  jarvis = await startJarvis(throughMock(mock.url));
});
afterAll(async () => {
  await jarvis.close();
  await mock.close();
});

describe('an upstream error status before the first token', () => {
  it.each([
    { upstream: 429, status: 429, type: 'rate_limit_error', code: 'rate_limit_exceeded' },
    { upstream: 400, status: 400, type: 'invalid_request_error', code: 'mock_400' },
    { upstream: 500, status: 500, type: 'server_error', code: 'mock_500' },
    { upstream: 503, status: 503, type: 'server_error', code: 'mock_503' },
  ])('upstream $upstream → client $status $code, as the upstream sent it', async ({ upstream, status, type, code }) => {
    for (const stream of [true, false]) {
      const res = await postChat(jarvis.url, ask(`status:${upstream}`, stream));
      expect(res.status).toBe(status);
      expect(res.headers.get('content-type')).toMatch(/^application\/json/);
      expect(res.headers.get('x-request-id')).toMatch(/^req_/);
      expect(await errorOf(res)).toMatchObject({ type, code });
    }
  });

  it("passes a 429's Retry-After through", async () => {
    const res = await postChat(jarvis.url, ask('status:429', true));
    expect(res.headers.get('retry-after')).toBe('1');
    await res.arrayBuffer();
  });

  it('reaches the openai SDK as its typed error', async () => {
    const client = new OpenAI({ baseURL: `${jarvis.url}/v1`, apiKey: 'x', maxRetries: 0 });
    const create = (knobs: string) => client.chat.completions.create({ model: 'mock-model', messages: user(`hi ${knobs}`), stream: true });
    await expect(create('status:429')).rejects.toBeInstanceOf(OpenAI.RateLimitError);
    await expect(create('status:400')).rejects.toBeInstanceOf(OpenAI.BadRequestError);
    await expect(create('status:503')).rejects.toBeInstanceOf(OpenAI.InternalServerError);
    await expect(create('status:503')).rejects.toMatchObject({ status: 503, code: 'mock_503' });
  });
});

describe('upstream connections', () => {
  it('a finished stream hands its connection back: the next requests reuse it; a cancelled one does not', async () => {
    const before = mock.requests.length;
    // The mock holds each response open a little after [DONE]: Jarvis has answered by then, and must read the
    // rest rather than close the connection.
    for (const stream of [true, false, true]) {
      const res = await postChat(jarvis.url, ask('tokens:20 end-delay:50', stream));
      expect(res.status).toBe(200);
      await res.text();
      await mock.requests.at(-1)!.closed;
      await waitForIdle(jarvis.url);
    }
    const ports = mock.requests.slice(before).map((r) => r.remotePort);
    expect(ports).toHaveLength(3);
    expect(new Set(ports).size).toBe(1);

    // A client that leaves mid-stream: the upstream request is closed, so its connection cannot serve again.
    const aborter = new AbortController();
    const res = await postChat(jarvis.url, ask('tokens:1000 delay:20', true), { signal: aborter.signal });
    await new SseReader(res.body!).until((text) => text !== '', 'its first bytes');
    const rec = mock.requests.at(-1)!;
    aborter.abort();
    await rec.closed;
    expect(rec.clientClosed).toBe(true);
    await waitForIdle(jarvis.url);
    await (await postChat(jarvis.url, ask('tokens:3', true))).text();
    expect(mock.requests.at(-1)!.remotePort).not.toBe(rec.remotePort);
  });
});

describe('an upstream that breaks mid-stream', () => {
  // Jarvis's own error for a stream that broke, or the upstream's own error event as it sent it.
  const BROKEN = { type: 'api_error', code: 'upstream_stream_error', param: null, message: expect.stringMatching(/\S/) };
  const REPORTED = { message: 'mock mid-stream error', type: 'server_error', code: 'mock_error' };
  const CASES: { name: string; knobs: string; text: string; error: Record<string, unknown>; finished?: string }[] = [
    { name: 'dies (failAfter)', knobs: 'tokens:5 fail-after:3', text: 'tok0 tok1 tok2 ', error: BROKEN },
    { name: 'sends an error event (errorAfter)', knobs: 'tokens:5 error-after:3', text: 'tok0 tok1 tok2 ', error: REPORTED },
    { name: 'sends malformed SSE (malformedAfter)', knobs: 'tokens:5 malformed-after:3', text: 'tok0 tok1 tok2 ', error: BROKEN },
    { name: 'ends without [DONE] (noDone)', knobs: 'tokens:5 no-done', text: 'tok0 tok1 tok2 tok3 tok4 ', error: BROKEN, finished: 'stop' },
  ];

  it.each(CASES)('$name: the client gets the chunks so far, an error event, then [DONE]', async ({ knobs, text, error, finished }) => {
    const res = await postChat(jarvis.url, ask(knobs, true));
    expect(res.status).toBe(200);
    const chunks = chunksOf(await readSse(res));
    const last = chunks.at(-1)!;
    expect(Object.keys(last)).toEqual(['error']);
    expect(last.error).toEqual(error);
    const tokens = chunks.slice(0, -1);
    expect(tokens[0]!.choices[0]!.delta.role).toBe('assistant');
    expect(textOf(tokens)).toBe(text);
    // Only what the upstream said: a finish_reason only where it sent one, and no ending of Jarvis's own.
    expect(tokens.slice(0, -1).every((c) => c.choices[0]!.finish_reason === null)).toBe(true);
    expect(tokens.at(-1)!.choices[0]!.finish_reason).toBe(finished ?? null);
    await waitForIdle(jarvis.url);
  });

  it.each(CASES)('$name: the openai SDK loop throws an APIError after the tokens so far', async ({ knobs, text, error }) => {
    const client = new OpenAI({ baseURL: `${jarvis.url}/v1`, apiKey: 'x', maxRetries: 0 });
    const stream = await client.chat.completions.create({ model: 'mock-model', messages: user(`hi ${knobs}`), stream: true });
    let received = '';
    const consume = async () => {
      for await (const chunk of stream) received += chunk.choices[0]?.delta.content ?? '';
    };
    const err: unknown = await consume().then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(APIError);
    expect(err).toMatchObject({ type: error.type, code: error.code });
    expect(received).toBe(text);
  });
});

describe('an unreachable upstream', () => {
  let down: TestJarvis;
  beforeAll(async () => {
    down = await startJarvis(throughMock(`http://127.0.0.1:${await closedPort()}/v1`));
  });
  afterAll(() => down.close());

  it('is a 502 upstream_unreachable, streaming or not', async () => {
    for (const stream of [true, false]) {
      const res = await postChat(down.url, ask('', stream));
      expect(res.status).toBe(502);
      expect(await errorOf(res)).toMatchObject({ type: 'api_error', code: 'upstream_unreachable' });
    }
    await waitForIdle(down.url);
  });

  it('makes /readyz 503, while the simulator still serves', async () => {
    const res = await fetch(`${down.url}/readyz`);
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ status: 'not_ready', providers: expect.arrayContaining([expect.objectContaining({ id: 'upstream:mock', ready: false })]) });
    expect((await postChat(down.url, { model: 'jarvis-sim', messages: user('hi') })).status).toBe(200);
  });
});

it('/readyz is 200 while the upstream is up', async () => {
  const res = await fetch(`${jarvis.url}/readyz`);
  expect(res.status).toBe(200);
  expect(await res.json()).toMatchObject({ status: 'ready', providers: expect.arrayContaining([{ id: 'upstream:mock', ready: true }]) });
});

describe('an upstream slower than its configured timeouts', () => {
  let slow: TestJarvis;
  beforeAll(async () => {
    slow = await startJarvis({ ...throughMock(mock.url), upstreamTimeoutMs: 200, upstreamIdleMs: 200 });
  });
  afterAll(() => slow.close());

  it('to send headers is a 504 upstream_timeout, and the upstream request is released', async () => {
    const res = await postChat(slow.url, ask('headers-delay:30000', true));
    expect(res.status).toBe(504);
    expect(await errorOf(res)).toMatchObject({ type: 'api_error', code: 'upstream_timeout' });
    const rec = mock.requests.find((r) => r.knobs.headersDelayMs === 30_000)!;
    await rec.closed;
    expect(rec.clientClosed).toBe(true);
    await waitForIdle(slow.url);
  });

  it('to send the next token ends the stream with upstream_idle_timeout and [DONE]', async () => {
    const res = await postChat(slow.url, ask('tokens:5 stall-after:2', true));
    expect(res.status).toBe(200);
    const chunks = chunksOf(await readSse(res));
    expect(textOf(chunks.slice(0, -1))).toBe('tok0 tok1 ');
    expect(chunks.at(-1)).toEqual({ error: expect.objectContaining({ type: 'api_error', code: 'upstream_idle_timeout' }) });
    const rec = mock.requests.find((r) => r.knobs.stallAfter === 2)!;
    await rec.closed;
    expect(rec.clientClosed).toBe(true);
    await waitForIdle(slow.url);
  });
});
