// Per-key quotas over real HTTP on one instance: requests per minute and streams in flight, the 429 they answer
// (OpenAI's shape, Retry-After and retry-after-ms), and the stream slot released on every way a stream can end.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { as, metric, waitForNoSlots } from './support/access.js';
import { postChat, user } from './support/chat.js';
import { StreamingChat } from './support/cluster.js';
import { startJarvis, type TestJarvis } from './support/jarvis.js';
import { startMockUpstream, type MockUpstream } from '../fakes/openai/index.js';

const ADMIN = 'sk-admin-quota-01';
const SLOW = 'sk-rpm-two-00002';
const ONE = 'sk-one-stream-003';
const TWO = 'sk-two-streams-04';
const FREE = 'sk-no-limits-0005';

let mock: MockUpstream;
let jarvis: TestJarvis;

beforeAll(async () => {
  mock = await startMockUpstream();
  jarvis = await startJarvis({
    apiKeys: [`admin=${ADMIN}`],
    access: {
      keys: [
        { name: 'slow', key: SLOW, rpm: 2 },
        { name: 'one', key: ONE, maxStreams: 1, models: ['mock-model', 'jarvis-sim'] },
        { name: 'two', key: TWO, maxStreams: 2 },
        { name: 'free', key: FREE, rpm: 0, maxStreams: 0 },
      ],
      // Defaults for keys that set nothing (admin): generous, so the admin's own requests never hit them.
      rpm: 10_000,
      maxStreams: 100,
    },
    upstreams: [{ name: 'mock', baseUrl: mock.url, models: ['mock-model'] }],
    simulator: { tokensPerSec: 2000, ttftMs: 0 },
  });
});
afterAll(async () => {
  await jarvis.close();
  await mock.close();
});

const quick = { model: 'jarvis-sim', messages: user('hi'), max_tokens: 2 };
/** A stream that sends one token and then nothing, until its client leaves or Jarvis cancels it. */
const stalled = (key: string, headers: Record<string, string> = {}) =>
  new StreamingChat(jarvis.url, { model: 'mock-model', messages: user('hold tokens:50 stall-after:1') }, { ...as(key), ...headers });

async function expect429(res: Response, retryAfterMs: (ms: number) => void): Promise<Record<string, unknown>> {
  expect(res.status).toBe(429);
  const ms = Number(res.headers.get('retry-after-ms'));
  retryAfterMs(ms);
  expect(Number(res.headers.get('retry-after'))).toBe(Math.ceil(ms / 1000));
  const body = (await res.json()) as { error: Record<string, unknown> };
  expect(body.error).toMatchObject({ type: 'rate_limit_error', code: 'rate_limit_exceeded', param: null });
  return { ...body.error, shouldRetry: res.headers.get('x-should-retry') };
}

describe('requests per minute', () => {
  it('admits rpm requests, then answers 429 with the wait; a wait that long says x-should-retry: false', async () => {
    expect((await postChat(jarvis.url, quick, { headers: as(SLOW) })).status).toBe(200);
    expect((await postChat(jarvis.url, quick, { headers: as(SLOW) })).status).toBe(200);
    const err = await expect429(await postChat(jarvis.url, quick, { headers: as(SLOW) }), (ms) => {
      // Two per minute: the next one fits 30 s after the first two (less the few ms they took).
      expect(ms).toBeGreaterThan(20_000);
      expect(ms).toBeLessThanOrEqual(30_000);
    });
    expect(err.message).toMatch(/2 requests per minute/);
    expect(err.shouldRetry).toBe('false');
    // Other keys are not affected.
    expect((await postChat(jarvis.url, quick, { headers: as(FREE) })).status).toBe(200);
    expect(await metric(jarvis.url, as(ADMIN), 'jarvis_quota_exceeded_total{quota="rpm"}')).toBe(1);
    expect(await jarvis.logs()).toMatch(/quota_exceeded request_id=\S+ owner=slow quota=rpm limit=2 retry_after_ms=\d+/);
  });
});

describe('streams in flight', () => {
  it('refuses a key’s stream past maxStreams with a retryable 429 (Retry-After 1 s), other keys unaffected', async () => {
    const held = stalled(ONE);
    await held.untilTokens(1);
    const err = await expect429(await postChat(jarvis.url, quick, { headers: as(ONE) }), (ms) => expect(ms).toBe(1000));
    expect(err.message).toMatch(/already has 1 stream in flight/);
    expect(err.shouldRetry).toBeNull();
    expect((await postChat(jarvis.url, quick, { headers: as(TWO) })).status).toBe(200);
    expect(await metric(jarvis.url, as(ADMIN), 'jarvis_quota_stream_slots')).toBe(1);
    held.controller.abort();
    await held.result.catch(() => {});
    await waitForNoSlots(jarvis.url);
    expect((await postChat(jarvis.url, quick, { headers: as(ONE) })).status).toBe(200);
  });

  /** After each way out, the slot is free again: /healthz says 0 held, and the key's next stream is admitted. */
  const ways: [string, () => Promise<void>][] = [
    ['a normal end (SSE)', async () => void (await new StreamingChat(jarvis.url, quick, as(ONE)).result)],
    ['a normal end (JSON)', async () => void (await postChat(jarvis.url, quick, { headers: as(ONE) })).json()],
    [
      'the client leaving mid-stream',
      async () => {
        const s = stalled(ONE);
        await s.untilTokens(1);
        s.controller.abort();
        await s.result.catch(() => {});
      },
    ],
    ['an upstream error before the stream', async () => expect((await postChat(jarvis.url, { model: 'mock-model', messages: user('x status:500') }, { headers: as(ONE) })).status).toBe(500)],
    [
      'an upstream error mid-stream',
      async () => {
        const res = await postChat(jarvis.url, { model: 'mock-model', messages: user('x tokens:5 error-after:2'), stream: true }, { headers: as(ONE) });
        expect(await res.text()).toContain('"code":"mock_error"');
      },
    ],
    ['a refusal after admission (an unknown model)', async () => expect((await postChat(jarvis.url, { ...quick, model: 'no-such-model' }, { headers: as(ONE) })).status).toBe(404)],
    ['a model outside the key’s list', async () => expect((await postChat(jarvis.url, { ...quick, model: 'gpt-elsewhere' }, { headers: as(ONE) })).status).toBe(404)],
    ['an invalid session id', async () => expect((await postChat(jarvis.url, quick, { headers: { ...as(ONE), 'x-session-id': 'bad id!' } })).status).toBe(400)],
  ];
  it.each(ways)('frees its slot after %s', async (_way, run) => {
    await run();
    await waitForNoSlots(jarvis.url);
    const next = await postChat(jarvis.url, quick, { headers: as(ONE) });
    expect(next.status).toBe(200);
    await next.json();
    await waitForNoSlots(jarvis.url);
  });

  it('frees both slots of a barge-in (the superseded stream’s and the new one’s), and of a 409 under policy reject', async () => {
    const session = { 'x-session-id': 'quota-barge' };
    const a = stalled(TWO, session);
    await a.untilTokens(1);
    const b = await new StreamingChat(jarvis.url, quick, { ...as(TWO), ...session }).result;
    expect((await a.result).finishReason).toBe('cancelled');
    expect(b.finishReason).toBe('length');
    await waitForNoSlots(jarvis.url);

    const c = stalled(TWO, session);
    await c.untilTokens(1);
    const busy = await postChat(jarvis.url, quick, { headers: { ...as(TWO), ...session, 'x-session-policy': 'reject' } });
    expect(busy.status).toBe(409);
    await busy.json();
    // c still holds its slot; the rejected request's is free again, so one more stream fits under maxStreams 2.
    const d = stalled(TWO);
    await d.untilTokens(1);
    expect((await postChat(jarvis.url, quick, { headers: as(TWO) })).status).toBe(429);
    for (const s of [c, d]) {
      s.controller.abort();
      await s.result.catch(() => {});
    }
    await waitForNoSlots(jarvis.url);
  });
});
