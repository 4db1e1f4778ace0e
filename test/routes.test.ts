// Routes: a model served by several targets, with failover before the first token, first-token deadlines,
// hedged starts and circuit breakers. Each upstream is its own mock HTTP server with its own behaviour.
import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chunksOf, postChat, user, waitForIdle } from './support/chat.js';
import { startJarvis, type TestJarvis } from './support/jarvis.js';
import { readSse } from './support/sse.js';
import { startMockUpstream, type MockUpstream } from '../fakes/openai/index.js';

let good: MockUpstream;
let failing: MockUpstream;
let limited: MockUpstream;
let limitedLong: MockUpstream;
let limitedBare: MockUpstream;
let silent: MockUpstream;
let slow: MockUpstream;
let slow2: MockUpstream;
let breaking: MockUpstream;
let flaky: MockUpstream;
let refused: string;
let jarvis: TestJarvis;

/** A port nothing listens on: connecting to it is refused. */
async function closedPort(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return `http://127.0.0.1:${port}/v1`;
}

beforeAll(async () => {
  [good, failing, limited, limitedLong, limitedBare, silent, slow, slow2, breaking, flaky] = await Promise.all([
    startMockUpstream({ defaults: { tokens: 5, delayMs: 5 } }),
    startMockUpstream({ defaults: { status: 503 } }),
    startMockUpstream({ defaults: { status: 429, retryAfterMs: 50 } }),
    startMockUpstream({ defaults: { status: 429, retryAfterMs: 10_000 } }),
    startMockUpstream({ defaults: { status: 429, noRetryAfter: true } }),
    startMockUpstream({ defaults: { ttftMs: 30_000, tokens: 5 } }),
    startMockUpstream({ defaults: { ttftMs: 3000, tokens: 5 } }),
    startMockUpstream({ defaults: { ttftMs: 3000, tokens: 5 } }),
    startMockUpstream({ defaults: { tokens: 20, delayMs: 5, failAfter: 3 } }),
    startMockUpstream({ defaults: { status: 500 } }),
  ]);
  refused = await closedPort();
  const up = (name: string, m: MockUpstream | string, extra = {}) => ({ name, baseUrl: typeof m === 'string' ? m : m.url, ...extra });
  jarvis = await startJarvis({
    upstreams: [
      up('good', good),
      up('failing', failing),
      up('limited', limited),
      up('limited-long', limitedLong),
      up('limited-bare', limitedBare),
      up('silent', silent),
      up('slow', slow),
      up('slow2', slow2),
      up('breaking', breaking),
      up('flaky', flaky, { circuit: { failures: 2, cooldownMs: 300 } }),
      up('refused', refused),
    ],
    routes: [
      { model: 'r-refused', targets: [{ upstream: 'refused', model: 'm1' }, { upstream: 'good', model: 'good-model', priority: 1 }] },
      { model: 'r-503', targets: [{ upstream: 'failing', model: 'm1' }, { upstream: 'good', model: 'good-model', priority: 1 }] },
      { model: 'r-429', retries: 1, targets: [{ upstream: 'limited', model: 'm1' }, { upstream: 'good', model: 'good-model', priority: 1 }] },
      { model: 'r-429-bare', retries: 1, targets: [{ upstream: 'limited-bare', model: 'm1' }, { upstream: 'good', model: 'good-model', priority: 1 }] },
      { model: 'r-429-long', retries: 1, targets: [{ upstream: 'limited-long', model: 'm1' }, { upstream: 'good', model: 'good-model', priority: 1 }] },
      { model: 'r-deadline', firstTokenTimeoutMs: 300, targets: [{ upstream: 'silent', model: 'm1' }, { upstream: 'good', model: 'good-model', priority: 1 }] },
      { model: 'r-hedge', hedgeAfterMs: 100, targets: [{ upstream: 'slow', model: 'm1' }, { upstream: 'good', model: 'good-model', priority: 1 }] },
      { model: 'r-hedge-slow', hedgeAfterMs: 100, targets: [{ upstream: 'slow', model: 'm1' }, { upstream: 'slow2', model: 'm2', priority: 1 }] },
      { model: 'r-committed', targets: [{ upstream: 'breaking', model: 'm1' }, { upstream: 'good', model: 'good-model', priority: 1 }] },
      { model: 'r-circuit', targets: [{ upstream: 'flaky', model: 'm1' }, { upstream: 'good', model: 'good-model', priority: 1 }] },
    ],
    // Hedges are bounded by a share of live streams (at least one at a time).
    simulator: { tokensPerSec: 1000, ttftMs: 0 },
  });
});
afterAll(async () => {
  await jarvis?.close();
  await Promise.all([good, failing, limited, limitedLong, limitedBare, silent, slow, slow2, breaking, flaky].map((m) => m?.close()));
});

const ask = async (model: string, headers: Record<string, string> = {}, tag = `${model}-${Math.random().toString(36).slice(2)}`) => {
  const res = await postChat(jarvis.url, { model, stream: true, messages: user(`hello ${tag}`), tag }, { headers });
  return { res, tag, chunks: res.status === 200 ? chunksOf(await readSse(res)) : [] };
};
const tagged = (m: MockUpstream, tag: string) => m.requests.filter((r) => r.body.tag === tag);
const textOf = (chunks: ReturnType<typeof chunksOf>) => chunks.map((c) => c.choices?.[0]?.delta?.content ?? '').join('');

it('lists each route as a model, and a routed answer names the target\'s model as its upstream reported it', async () => {
  const models = ((await (await fetch(`${jarvis.url}/v1/models`)).json()) as { data: { id: string }[] }).data.map((m) => m.id);
  expect(models).toEqual(expect.arrayContaining(['r-refused', 'r-hedge', 'r-circuit']));
  const { chunks } = await ask('r-refused');
  expect(chunks[0]!.model).toBe('good-model');
});

describe('failover before the first token', () => {
  it.each([
    ['connection refused', 'r-refused', 'upstream_unreachable'],
    ['a 503', 'r-503', 'mock_503'],
  ])('on %s, the next target answers, and the log says which attempt failed and which won', async (_what, model, reason) => {
    const { res, tag, chunks } = await ask(model);
    expect(res.status).toBe(200);
    expect(chunks.at(-1)?.choices[0]?.finish_reason).toBe('stop');
    expect(tagged(good, tag)).toHaveLength(1);
    expect(tagged(good, tag)[0]!.body.model).toBe('good-model');
    const log = await jarvis.waitForLog((l) => new RegExp(`stream_end .*upstream=good upstream_model=good-model`).test(l));
    expect(log).toMatch(new RegExp(`attempt_failed .*reason=${reason}`));
    expect(log).toMatch(/attempt_won .*upstream=good/);
  });

  it('on a 429 with a short retry-after, retries the same target after it, then moves on', async () => {
    const { res, tag } = await ask('r-429');
    expect(res.status).toBe(200);
    expect(tagged(limited, tag)).toHaveLength(2);
    expect(tagged(good, tag)).toHaveLength(1);
  });

  it('on a 429 without retry-after, retries the same target at once, then moves on', async () => {
    const { res, tag } = await ask('r-429-bare');
    expect(res.status).toBe(200);
    expect(tagged(limitedBare, tag)).toHaveLength(2);
    expect(tagged(good, tag)).toHaveLength(1);
  });

  it('on a 429 asking to wait longer than a retry may, moves on at once', async () => {
    const started = performance.now();
    const { res, tag } = await ask('r-429-long');
    expect(res.status).toBe(200);
    expect(tagged(limitedLong, tag)).toHaveLength(1);
    expect(tagged(good, tag)).toHaveLength(1);
    // It did not wait the 10 s it was asked to.
    expect(performance.now() - started).toBeLessThan(8000);
  });

  it('on no first token within firstTokenTimeoutMs, abandons the attempt (its connection closed) and tries the next', async () => {
    const { res, tag, chunks } = await ask('r-deadline');
    expect(res.status).toBe(200);
    expect(textOf(chunks).length).toBeGreaterThan(0);
    const abandoned = tagged(silent, tag)[0]!;
    expect(abandoned).toBeDefined();
    expect(tagged(good, tag)).toHaveLength(1);
    await expect.poll(() => abandoned.clientClosed, { timeout: 5000 }).toBe(true);
    expect(await jarvis.logs()).toMatch(/attempt_failed .*upstream=silent .*reason=first_token_timeout/);
  });

  it('does not retry a request the upstream says is wrong (4xx)', async () => {
    const bad = await startMockUpstream({ defaults: { status: 400 } });
    const j = await startJarvis({
      upstreams: [{ name: 'bad', baseUrl: bad.url }, { name: 'good', baseUrl: good.url }],
      routes: [{ model: 'r', targets: [{ upstream: 'bad', model: 'm' }, { upstream: 'good', model: 'g', priority: 1 }] }],
    });
    try {
      const tag = `bad-${Date.now()}`;
      const res = await postChat(j.url, { model: 'r', stream: true, messages: user('x'), tag });
      expect(res.status).toBe(400);
      expect(tagged(good, tag)).toHaveLength(0);
    } finally {
      await j.close();
      await bad.close();
    }
  });

  it('never fails over once the first token is out: the upstream failure ends the stream', async () => {
    const { res, tag, chunks } = await ask('r-committed');
    expect(res.status).toBe(200);
    expect(textOf(chunks).length).toBeGreaterThan(0);
    expect(tagged(good, tag)).toHaveLength(0);
    const log = await jarvis.waitForLog((l) => /stream_error .*code=upstream_stream_error/.test(l));
    expect(log).toMatch(/attempt_won .*upstream=breaking/);
  });
});

describe('hedged starts', () => {
  it('after hedgeAfterMs without a first token, the next target starts too; its first token wins and the other is closed', async () => {
    const { res, tag, chunks } = await ask('r-hedge');
    expect(res.status).toBe(200);
    expect(textOf(chunks).length).toBeGreaterThan(0);
    const loser = tagged(slow, tag)[0]!;
    expect(tagged(good, tag)).toHaveLength(1);
    // Closed when the hedge won, long before its own first token (3 s after it was asked) would have come.
    await expect.poll(() => loser.clientClosed, { timeout: 2500 }).toBe(true);
    expect(loser.closedAt! - loser.receivedAt).toBeLessThan(2500);
    const log = await jarvis.logs();
    expect(log).toMatch(/hedge_start .*upstream=good/);
    expect(log).toMatch(/attempt_cancelled .*upstream=slow .*reason=lost/);
    const metrics = await (await fetch(`${jarvis.url}/metrics`)).text();
    expect(metrics).toMatch(/^jarvis_hedges_total [1-9]/m);
    expect(metrics).toMatch(/^jarvis_hedge_losers_total [1-9]/m);
    expect(metrics).toMatch(/^jarvis_upstream_attempts_total\{upstream="slow",outcome="lost"\} [1-9]/m);
  });

  it('is not done for a request that says X-Jarvis-Hedge: off', async () => {
    const session = `nohedge-${Date.now()}`;
    const pending = ask('r-hedge', { 'x-jarvis-hedge': 'off', 'x-session-id': session });
    await expect.poll(() => slow.requests.some((r) => String(r.body.tag).startsWith('r-hedge')), { timeout: 5000 }).toBe(true);
    const { tag } = await pending;
    expect(tagged(good, tag)).toHaveLength(0);
  });

  it('a barge-in while both attempts wait for their first token cancels both', async () => {
    const session = `hedge-barge-${Date.now()}`;
    const first = ask('r-hedge-slow', { 'x-session-id': session }, 'hedge-barge-a');
    await expect.poll(() => tagged(slow2, 'hedge-barge-a').length, { timeout: 5000 }).toBe(1);
    const second = ask('jarvis-sim', { 'x-session-id': session }, 'hedge-barge-b');
    const [a, b] = await Promise.all([first, second]);
    expect(a.chunks.at(-1)?.choices[0]?.finish_reason).toBe('cancelled');
    expect(b.res.status).toBe(200);
    const attempts = [tagged(slow, 'hedge-barge-a')[0]!, tagged(slow2, 'hedge-barge-a')[0]!];
    await expect.poll(() => attempts.every((r) => r.clientClosed), { timeout: 2000 }).toBe(true);
    await waitForIdle(jarvis.url, 5000);
  });
});

describe('circuit breaker', () => {
  it('opens after consecutive failures (the upstream is skipped), lets one probe through after the cooldown, and closes on its success', async () => {
    for (let i = 0; i < 2; i++) {
      const r = await ask('r-circuit');
      expect(r.res.status).toBe(200);
    }
    await jarvis.waitForLog((l) => /circuit_open .*upstream=flaky/.test(l));
    const skipped = await ask('r-circuit');
    expect(tagged(flaky, skipped.tag)).toHaveLength(0);
    expect(await (await fetch(`${jarvis.url}/metrics`)).text()).toMatch(/^jarvis_circuit_open\{upstream="flaky"\} 1/m);
    expect(((await (await fetch(`${jarvis.url}/healthz`)).json()) as { circuits: unknown[] }).circuits).toEqual([{ upstream: 'flaky', state: 'open' }]);
    // The upstream recovers; after the cooldown one request probes it.
    flaky.setDefaults({ tokens: 3 });
    await new Promise((r) => setTimeout(r, 350));
    const probe = await ask('r-circuit');
    expect(tagged(flaky, probe.tag)).toHaveLength(1);
    await jarvis.waitForLog((l) => /circuit_closed .*upstream=flaky/.test(l));
    expect(await (await fetch(`${jarvis.url}/metrics`)).text()).toMatch(/^jarvis_circuit_open\{upstream="flaky"\} 0/m);
  });
});
