// Per-key quotas across two instances in this process on one Redis: one count for the key wherever its requests
// land. And with Redis gone, quotas fall back to each instance's own counts: no request fails because of it.
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { as, deletePrefix, REDIS_URL, startClusteredJarvis, testPrefix, until, waitForNoSlots } from './support/access.js';
import { postChat, user } from './support/chat.js';
import { StreamingChat } from './support/cluster.js';
import type { TestJarvis } from './support/jarvis.js';
import { startMockUpstream, type MockUpstream } from '../fakes/openai/index.js';
import { startRedisServer, type RedisServer } from './support/redis-server.js';

const ONE = 'sk-one-stream-0001';
const RPM = 'sk-three-rpm-00002';

let mock: MockUpstream;
beforeAll(async () => {
  mock = await startMockUpstream();
});
afterAll(() => mock.close());

const overrides = () => ({
  access: {
    keys: [
      { name: 'one', key: ONE, maxStreams: 1 },
      { name: 'rpm', key: RPM, rpm: 3 },
    ],
  },
  upstreams: [{ name: 'mock', baseUrl: mock.url, models: ['mock-model'] }],
  simulator: { tokensPerSec: 2000, ttftMs: 0 },
});
const quick = { model: 'jarvis-sim', messages: user('hi'), max_tokens: 2 };
const stalled = (url: string, key: string) => new StreamingChat(url, { model: 'mock-model', messages: user('hold tokens:50 stall-after:1') }, as(key));

describe('two instances on one Redis', () => {
  const prefix = testPrefix();
  let one: TestJarvis;
  let two: TestJarvis;
  let redis: Redis;
  beforeAll(async () => {
    [one, two] = await Promise.all([startClusteredJarvis(prefix, overrides()), startClusteredJarvis(prefix, overrides())]);
    redis = new Redis(REDIS_URL);
  });
  afterAll(async () => {
    await Promise.all([one?.close(), two?.close()]);
    redis?.disconnect();
    await deletePrefix(prefix);
  });

  it('share a key’s streams: a stream on one instance holds the key’s only slot on the other', async () => {
    const held = stalled(one.url, ONE);
    await held.untilTokens(1);
    const refused = await postChat(two.url, quick, { headers: as(ONE) });
    expect(refused.status).toBe(429);
    expect(refused.headers.get('retry-after-ms')).toBe('1000');
    expect(await refused.json()).toMatchObject({ error: { code: 'rate_limit_exceeded' } });
    expect(await redis.zcard(`${prefix}quota:{one}:streams`)).toBe(1);

    held.controller.abort();
    await held.result.catch(() => {});
    await waitForNoSlots(one.url);
    await until(async () => ((await redis.zcard(`${prefix}quota:{one}:streams`)) === 0 ? true : undefined), 'the slot removed from Redis');
    const admitted = await postChat(two.url, quick, { headers: as(ONE) });
    expect(admitted.status).toBe(200);
    await admitted.json();
  });

  it('share a key’s requests per minute', async () => {
    for (const url of [one.url, two.url, one.url]) expect((await postChat(url, quick, { headers: as(RPM) })).status).toBe(200);
    for (const url of [two.url, one.url]) {
      const res = await postChat(url, quick, { headers: as(RPM) });
      expect(res.status).toBe(429);
      expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(10);
    }
  });
});

describe('with Redis gone', () => {
  let server: RedisServer;
  let jarvis: TestJarvis;
  const prefix = testPrefix();
  afterEach(async () => {
    await jarvis?.close();
    await server?.stop('SIGKILL');
  });

  it('quotas fall back to this instance’s counts: requests are served, and limits still apply here', async () => {
    server = await startRedisServer();
    jarvis = await startClusteredJarvis(prefix, overrides(), server.url);
    const health = async () => (await (await fetch(`${jarvis.url}/healthz`)).json()) as { redis: { state: string } };
    await until(async () => ((await health()).redis.state === 'up' ? true : undefined), 'Redis linked');
    await server.stop('SIGKILL');
    await until(async () => ((await health()).redis.state === 'down' ? true : undefined), 'Redis seen as down');

    const held = stalled(jarvis.url, ONE);
    await held.untilTokens(1);
    expect((await postChat(jarvis.url, quick, { headers: as(ONE) })).status).toBe(429);
    held.controller.abort();
    await held.result.catch(() => {});
    await waitForNoSlots(jarvis.url);
    const res = await postChat(jarvis.url, quick, { headers: as(ONE) });
    expect(res.status).toBe(200);
    await res.json();
  });
});
