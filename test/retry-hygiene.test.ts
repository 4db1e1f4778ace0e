// The official openai SDK, with its default retries (2), against each kind of error Jarvis answers: it must
// retry exactly what the response's headers say. Calls are counted on both sides: what Jarvis received
// (jarvis_http_requests_total by status) and what reached the upstream (the mock's requests).
import OpenAI, { APIError } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { as, metric, until, waitForNoSlots } from './support/access.js';
import { postChat, user } from './support/chat.js';
import { StreamingChat } from './support/cluster.js';
import { startJarvis, type TestJarvis } from './support/jarvis.js';
import { startMockUpstream, type MockUpstream } from '../fakes/openai/index.js';

const ADMIN = 'sk-admin-retry-001';
const USER = 'sk-user-retry-0002';
const EVENTS = 'sk-events-only-003';
const ONE = 'sk-one-stream-0004';
const MINUTE = 'sk-one-per-min-005';
const HALF = 'sk-thirty-rpm-0006';
const WRONG = 'sk-wrong-key-00007';

let mock: MockUpstream;
let jarvis: TestJarvis;

beforeAll(async () => {
  mock = await startMockUpstream();
  jarvis = await startJarvis({
    apiKeys: [`admin=${ADMIN}`, `user=${USER}`],
    access: {
      keys: [
        { name: 'events', key: EVENTS, scopes: ['events'] },
        { name: 'one', key: ONE, maxStreams: 1 },
        { name: 'minute', key: MINUTE, rpm: 1 },
        // One request every 2 s once its burst is spent: a wait the SDK honours.
        { name: 'half', key: HALF, rpm: 30 },
      ],
    },
    bodyLimit: 4096,
    upstreams: [{ name: 'mock', baseUrl: mock.url, models: ['mock-model'] }],
    defaultModel: 'mock-model',
  });
});
afterAll(async () => {
  await jarvis.close();
  await mock.close();
});

/** The SDK as an application would use it: default retries, a short timeout so a mistake cannot hang the test. */
const sdk = (key: string) => new OpenAI({ baseURL: `${jarvis.url}/v1`, apiKey: key, timeout: 15_000 });

const STATUSES = [200, 400, 401, 403, 404, 409, 413, 429, 500, 502, 503];
const CHAT = (status: number) => `jarvis_http_requests_total{route="/v1/chat/completions",method="POST",status="${status}"}`;

async function counts(): Promise<Record<number, number>> {
  const out: Record<number, number> = {};
  for (const s of STATUSES) out[s] = await metric(jarvis.url, as(ADMIN), CHAT(s));
  return out;
}

/**
 * Runs `call` and returns how many requests Jarvis answered with each status meanwhile, and how many reached the
 * upstream. The SDK is done when `call` settles; the counter moves when each response closes, just after.
 */
async function measure(call: () => Promise<unknown>, expectedCalls: number): Promise<{ jarvis: Record<number, number>; upstream: number; error: unknown }> {
  const before = await counts();
  const upstreamBefore = mock.requests.length;
  let error: unknown;
  await call().catch((err: unknown) => (error = err));
  const total = (c: Record<number, number>) => STATUSES.reduce((sum, s) => sum + c[s]! - before[s]!, 0);
  const after = await until(async () => {
    const c = await counts();
    return total(c) >= expectedCalls ? c : undefined;
  }, `${expectedCalls} calls counted`);
  const delta: Record<number, number> = {};
  for (const s of STATUSES) if (after[s]! - before[s]! > 0) delta[s] = after[s]! - before[s]!;
  return { jarvis: delta, upstream: mock.requests.length - upstreamBefore, error };
}

const params = (extra: Record<string, unknown> = {}) => ({ model: 'mock-model', messages: user('hi'), max_tokens: 2, ...extra }) as OpenAI.ChatCompletionCreateParamsNonStreaming;
/** A request whose prompt carries the mock's knobs (`status:500`). */
const withMock = (knobs: string) => params({ messages: user(`hi ${knobs}`) });
/** A stream that sends one token and then nothing, until its client leaves. */
const stalled = (key: string, headers: Record<string, string> = {}) =>
  new StreamingChat(jarvis.url, { model: 'mock-model', messages: user('hold tokens:50 stall-after:1') }, { ...as(key), ...headers });

describe('errors a retry cannot fix: the SDK calls once (x-should-retry: false)', () => {
  it('400 invalid request', async () => {
    const r = await measure(() => sdk(USER).chat.completions.create(params({ temperature: 5 })), 1);
    expect(r.error).toBeInstanceOf(OpenAI.BadRequestError);
    expect(r).toMatchObject({ jarvis: { 400: 1 }, upstream: 0 });
  });

  it('401 wrong key', async () => {
    const r = await measure(() => sdk(WRONG).chat.completions.create(params()), 1);
    expect(r.error).toBeInstanceOf(OpenAI.AuthenticationError);
    expect(r).toMatchObject({ jarvis: { 401: 1 }, upstream: 0 });
  });

  it('403 key without the chat scope', async () => {
    const r = await measure(() => sdk(EVENTS).chat.completions.create(params()), 1);
    expect(r.error).toBeInstanceOf(OpenAI.PermissionDeniedError);
    expect(r).toMatchObject({ jarvis: { 403: 1 }, upstream: 0 });
  });

  it('404 unknown model', async () => {
    const r = await measure(() => sdk(USER).chat.completions.create(params({ model: 'jarvis-nothing' })), 1);
    expect(r.error).toBeInstanceOf(OpenAI.NotFoundError);
    expect(r).toMatchObject({ jarvis: { 404: 1 }, upstream: 0 });
  });

  it('413 body too large', async () => {
    const r = await measure(() => sdk(USER).chat.completions.create(params({ messages: user('x'.repeat(8000)) })), 1);
    expect(r.error).toBeInstanceOf(APIError);
    expect((r.error as APIError).status).toBe(413);
    expect(r).toMatchObject({ jarvis: { 413: 1 }, upstream: 0 });
  });

  it('409 session busy (which the SDK would otherwise retry)', async () => {
    const session = { 'x-session-id': 'retry-busy' };
    const held = stalled(USER, session);
    await held.untilTokens(1);
    const upstreamBefore = mock.requests.length;
    const r = await measure(() => sdk(USER).chat.completions.create(params(), { headers: { ...session, 'x-session-policy': 'reject' } }), 1);
    expect(r.error).toBeInstanceOf(OpenAI.ConflictError);
    expect(r.jarvis).toEqual({ 409: 1 });
    expect(mock.requests.length).toBe(upstreamBefore);
    held.controller.abort();
    await held.result.catch(() => {});
  });

  it('429 for a quota that frees up only after a long wait (1 request per minute)', async () => {
    expect((await postChat(jarvis.url, params(), { headers: as(MINUTE) })).status).toBe(200);
    const r = await measure(() => sdk(MINUTE).chat.completions.create(params()), 1);
    expect(r.error).toBeInstanceOf(OpenAI.RateLimitError);
    expect((r.error as APIError).headers?.get('retry-after')).toMatch(/^[1-6]\d$/);
    expect(r).toMatchObject({ jarvis: { 429: 1 }, upstream: 0 });
  });
});

describe('errors a retry can fix: the SDK retries as told', () => {
  it('429 streams in flight: 1 + 2 retries, each after retry-after-ms, none reaching the upstream', async () => {
    const held = stalled(ONE);
    await held.untilTokens(1);
    const upstreamBefore = mock.requests.length;
    const started = performance.now();
    const r = await measure(() => sdk(ONE).chat.completions.create(params()), 3);
    // Two waits of retry-after-ms (1000) each: the SDK took the header's word, not its own back-off (at most
    // 0.5 s + 1 s); the margin is timer granularity only.
    expect(performance.now() - started).toBeGreaterThan(1900);
    expect(r.error).toBeInstanceOf(OpenAI.RateLimitError);
    expect(r.jarvis).toEqual({ 429: 3 });
    expect(mock.requests.length).toBe(upstreamBefore);
    held.controller.abort();
    await held.result.catch(() => {});
    await waitForNoSlots(jarvis.url);
  });

  it('429 requests per minute with a short wait: the retry after retry-after-ms succeeds', async () => {
    // Spend the burst, then wait (as told) until one request fits and take it: the next fits 2 s later.
    for (;;) {
      const res = await postChat(jarvis.url, params(), { headers: as(HALF) });
      await res.arrayBuffer();
      if (res.status === 429) break;
    }
    for (;;) {
      const res = await postChat(jarvis.url, params(), { headers: as(HALF) });
      await res.arrayBuffer();
      if (res.status === 200) break;
      await new Promise((r) => setTimeout(r, Number(res.headers.get('retry-after-ms'))));
    }
    const upstreamBefore = mock.requests.length;
    const r = await measure(() => sdk(HALF).chat.completions.create(params()), 2);
    expect(r.error).toBeUndefined();
    expect(r.jarvis).toEqual({ 429: 1, 200: 1 });
    expect(mock.requests.length).toBe(upstreamBefore + 1);
  });

  it('503 overloaded: retried after Retry-After until served', async () => {
    const shedding = await startJarvis({ apiKeys: [USER], shedEventLoopDelayMs: 50, upstreams: [{ name: 'mock', baseUrl: mock.url, models: ['mock-model'] }], defaultModel: 'mock-model' });
    try {
      const upstreamBefore = mock.requests.length;
      // Saturate this process's event loop (it hosts the server), as a busy one is: every turn blocks 80 ms, so
      // every watchdog tick is late, whenever the SDK's first request is read. The first 503 the SDK receives
      // frees the loop, and its retry after Retry-After is served. (A single stall before the request was read
      // only when the machine was quick enough that no later, punctual tick came first.) Retries to spare: on a
      // machine busy with other tests a retry may itself meet a late tick, and is then shed and retried again.
      const busy = setInterval(() => {
        const until = performance.now() + 80;
        while (performance.now() < until);
      }, 0);
      const client = new OpenAI({
        baseURL: `${shedding.url}/v1`,
        apiKey: USER,
        timeout: 15_000,
        maxRetries: 8,
        fetch: async (url, init) => {
          const res = await fetch(url, init);
          if (res.status === 503) clearInterval(busy);
          return res;
        },
      });
      const shedSeen = shedding.waitForLog((l) => /request_rejected .*status=503 code=overloaded/.test(l), 15_000).finally(() => clearInterval(busy));
      const answer = await client.chat.completions.create(params());
      await shedSeen;
      expect(answer.choices[0]!.message.content).toBeTruthy();
      const served = await metric(shedding.url, as(USER), CHAT(200));
      const shed = await metric(shedding.url, as(USER), CHAT(503));
      expect(shed).toBeGreaterThanOrEqual(1);
      expect(served).toBe(1);
      expect(mock.requests.length).toBe(upstreamBefore + 1);
    } finally {
      await shedding.close();
    }
  });

  it('an upstream 500 (passed through): 1 + 2 retries, each reaching the upstream, as talking to it directly', async () => {
    const r = await measure(() => sdk(USER).chat.completions.create(withMock('status:500')), 3);
    expect(r.error).toBeInstanceOf(OpenAI.InternalServerError);
    expect(r).toMatchObject({ jarvis: { 500: 3 }, upstream: 3 });
  });
});

describe('the headers themselves', () => {
  it('say x-should-retry: false and nothing else about retrying on a 400; nothing on an upstream 500', async () => {
    const bad = await postChat(jarvis.url, params({ temperature: 5 }), { headers: as(USER) });
    expect(bad.headers.get('x-should-retry')).toBe('false');
    expect(bad.headers.get('retry-after')).toBeNull();
    const upstream = await postChat(jarvis.url, withMock('status:500'), { headers: as(USER) });
    expect(upstream.status).toBe(500);
    expect(upstream.headers.get('x-should-retry')).toBeNull();
    await Promise.all([bad.arrayBuffer(), upstream.arrayBuffer()]);
  });

  it('pass an upstream 429 through with its Retry-After and add retry-after-ms', async () => {
    const res = await postChat(jarvis.url, withMock('status:429'), { headers: as(USER) });
    expect(res.status).toBe(429);
    expect(res.headers.get('retry-after')).toBe('1');
    expect(res.headers.get('retry-after-ms')).toBe('1000');
    expect(res.headers.get('x-should-retry')).toBeNull();
    await res.arrayBuffer();
  });
});
