// What Jarvis shows and lets open to whoever can reach it: /readyz says ready or not to anyone and the details
// only to the admin scope, and it cannot be used to multiply traffic to the upstreams; /v1/events admits a
// bounded number of subscribers per key and in all.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { as, Events, upgrade, until } from './support/access.js';
import { startJarvis, type TestJarvis } from './support/jarvis.js';
import { startMockUpstream, type MockUpstream } from '../fakes/openai/index.js';

const ADMIN = 'sk-admin-exposure-01';
const ALICE = 'sk-alice-exposure-02';
const BOB = 'sk-bob-exposure-0003';

let mock: MockUpstream;
let jarvis: TestJarvis;

beforeAll(async () => {
  mock = await startMockUpstream();
  jarvis = await startJarvis({
    apiKeys: [`ops=${ADMIN}`],
    access: {
      keys: [
        { name: 'alice', key: ALICE, scopes: ['chat', 'events'] },
        { name: 'bob', key: BOB, scopes: ['chat', 'events'] },
      ],
    },
    upstreams: [
      { name: 'mock', baseUrl: mock.url, models: ['mock-model'] },
      // Nothing listens there: this upstream is down, so Jarvis is not ready.
      { name: 'gone', baseUrl: 'http://127.0.0.9:8001/v1', models: ['gone-model'] },
    ],
    events: { maxSubscribers: 5, maxSubscribersPerKey: 3 },
  });
});
afterAll(async () => {
  await jarvis.close();
  await mock.close();
});

const readyz = (headers: Record<string, string> = {}) => fetch(`${jarvis.url}/readyz`, { headers });

describe('/readyz', () => {
  it('tells anyone without the admin scope ready or not, and nothing more', async () => {
    for (const headers of [{}, as(ALICE), as('sk-not-a-key-at-all')]) {
      const res = await readyz(headers);
      expect(res.status).toBe(503);
      const text = await res.text();
      expect(JSON.parse(text)).toEqual({ status: 'not_ready' });
      for (const leak of ['127.0.0.9', '8001', 'gone', 'mock', 'ECONNREFUSED']) expect(text).not.toContain(leak);
    }
  });

  it('gives the admin scope every upstream and why it is not ready', async () => {
    const res = await readyz(as(ADMIN));
    expect(res.status).toBe(503);
    const body = (await res.json()) as { status: string; checked_at: string; providers: { id: string; ready: boolean; error?: string }[] };
    expect(body.status).toBe('not_ready');
    expect(Date.parse(body.checked_at)).not.toBeNaN();
    expect(body.providers).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ id: expect.stringContaining('mock'), ready: true }),
        expect.objectContaining({ id: expect.stringContaining('gone'), ready: false, error: expect.any(String) }),
      ]),
    );
  });

  it('asks each upstream at most once however often it is hit (a cached check)', async () => {
    const before = mock.modelListRequests;
    await Promise.all(Array.from({ length: 50 }, () => readyz().then((r) => r.arrayBuffer())));
    for (let i = 0; i < 20; i++) await (await readyz()).arrayBuffer();
    const asked = mock.modelListRequests - before;
    // 70 hits within the cache's 5 s: at most one check (two, if the previous one expired meanwhile).
    expect(asked).toBeLessThanOrEqual(2);
  });
});

describe('/v1/events subscriber limits', () => {
  it('refuses a key past its limit with 429, and everyone past the instance limit with 503, both with Retry-After', async () => {
    const open: Events[] = [];
    try {
      for (let i = 0; i < 3; i++) open.push(await Events.open(jarvis.url, as(ALICE)));
      const refused = await fetch(`${jarvis.url}/v1/events`, { headers: as(ALICE) });
      expect(refused.status).toBe(429);
      expect(refused.headers.get('retry-after')).toMatch(/^\d+$/);
      expect(await refused.json()).toEqual({ error: { message: expect.stringContaining('3'), type: 'rate_limit_error', param: null, code: 'rate_limit_exceeded' } });
      // The WebSocket is the same subscriber: refused before the upgrade, with the same answer.
      const ws = await upgrade(jarvis.url, '/v1/events', as(ALICE));
      expect(ws.status).toBe(429);
      expect(JSON.parse(ws.body)).toMatchObject({ error: { type: 'rate_limit_error', code: 'rate_limit_exceeded' } });

      // Another key still has room, until the instance is full.
      for (let i = 0; i < 2; i++) open.push(await Events.open(jarvis.url, as(BOB)));
      const full = await fetch(`${jarvis.url}/v1/events`, { headers: as(BOB) });
      expect(full.status).toBe(503);
      expect(full.headers.get('retry-after')).toMatch(/^\d+$/);
      expect(await full.json()).toMatchObject({ error: { type: 'api_error', code: 'overloaded' } });

      // A subscriber that leaves gives its place back.
      await open.shift()!.close();
      await until(async () => ((await (await fetch(`${jarvis.url}/healthz`)).json()) as { subscribers: number }).subscribers === 4 || undefined, 'one place free');
      open.push(await Events.open(jarvis.url, as(ALICE)));
    } finally {
      await Promise.all(open.map((e) => e.close()));
    }
    await until(async () => ((await (await fetch(`${jarvis.url}/healthz`)).json()) as { subscribers: number }).subscribers === 0 || undefined, 'no subscribers');
    // Refused subscribers held no place: the full quota is there again.
    const again: Events[] = [];
    for (let i = 0; i < 3; i++) again.push(await Events.open(jarvis.url, as(ALICE)));
    await Promise.all(again.map((e) => e.close()));
  });
});
