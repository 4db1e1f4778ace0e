// RedisQuotaStore against the real Redis on 127.0.0.1:6379: two stores on one key prefix are two instances.
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { RedisLink } from '../cluster/redis-link.js';
import type { Admission } from './quota-store.js';
import { RedisQuotaStore } from './redis-store.js';

const REDIS_URL = 'redis://127.0.0.1:6379';
const log = pino({ level: 'silent' });
const uid = () => randomBytes(5).toString('hex');

interface Instance {
  link: RedisLink;
  store: RedisQuotaStore;
}

const opened: Instance[] = [];
const prefixes: string[] = [];

async function instances(n: number, ttlMs = 10_000): Promise<{ prefix: string; list: Instance[] }> {
  const prefix = `jt:${uid()}:`;
  prefixes.push(prefix);
  const list: Instance[] = [];
  for (let i = 0; i < n; i++) {
    const link = new RedisLink({ url: REDIS_URL, prefix, log });
    await link.connect();
    const inst = { link, store: new RedisQuotaStore({ link, ttlMs }) };
    opened.push(inst);
    list.push(inst);
  }
  return { prefix, list };
}

afterEach(async () => {
  for (const { link, store } of opened.splice(0)) {
    await store.close();
    await link.close();
  }
  const cleaner = new RedisLink({ url: REDIS_URL, prefix: 'jt:', log });
  await cleaner.connect();
  for (const prefix of prefixes.splice(0)) {
    let cursor = '0';
    do {
      const [next, keys] = await cleaner.cmd.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
      cursor = next;
      if (keys.length) await cleaner.cmd.del(...keys);
    } while (cursor !== '0');
  }
  await cleaner.close();
});

function admitted(a: Admission): () => void {
  if (!a.ok) throw new Error(`refused: ${a.quota}`);
  return a.release;
}

async function until<T>(check: () => Promise<T | undefined>, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('RedisQuotaStore', () => {
  it('counts rpm across instances, and says when the next request fits', async () => {
    const { list: [a, b] } = await instances(2);
    const limits = { rpm: 2, maxStreams: 0 };
    admitted(await a!.store.admit('alice', limits, 'r1'));
    admitted(await b!.store.admit('alice', limits, 'r2'));
    const refused = await a!.store.admit('alice', limits, 'r3');
    expect(refused).toMatchObject({ ok: false, quota: 'rpm' });
    // One request every 30 s once the minute's two are spent; a few ms have passed since.
    const wait = (refused as { retryAfterMs: number }).retryAfterMs;
    expect(wait).toBeGreaterThan(25_000);
    expect(wait).toBeLessThanOrEqual(30_000);
    admitted(await b!.store.admit('bob', limits, 'r4'));
  });

  it('counts streams across instances; a released slot is free for any instance', async () => {
    const { prefix, list: [a, b] } = await instances(2);
    const limits = { rpm: 0, maxStreams: 1 };
    const release = admitted(await a!.store.admit('alice', limits, 's1'));
    expect(a!.store.size).toBe(1);
    expect(await b!.store.admit('alice', limits, 's2')).toEqual({ ok: false, quota: 'streams', retryAfterMs: undefined });
    release();
    expect(a!.store.size).toBe(0);
    await until(async () => ((await a!.link.cmd.zcard(`${prefix}quota:{alice}:streams`)) === 0 ? true : undefined), 'slot removed');
    admitted(await b!.store.admit('alice', limits, 's3'));
  });

  it('frees the slots of an instance that died, within the TTL, and keeps a live stream’s slot past it', async () => {
    const { prefix, list: [a, b, c] } = await instances(3, 1000);
    const limits = { rpm: 0, maxStreams: 1 };
    const key = `${prefix}quota:{alice}:streams`;

    // A live stream on `a`: refreshed, so it outlives the expiry it was first given.
    const release = admitted(await a!.store.admit('alice', limits, 'live'));
    const firstExpiry = Number(await a!.link.cmd.zscore(key, 'live'));
    await until(async () => {
      const [s, us] = await a!.link.cmd.time();
      return Number(s) * 1000 + Number(us) / 1000 > firstExpiry + 100 ? true : undefined;
    }, 'the first expiry passed');
    expect(await b!.store.admit('alice', limits, 'other')).toMatchObject({ ok: false, quota: 'streams' });
    release();
    await until(async () => ((await a!.link.cmd.zcard(key)) === 0 ? true : undefined), 'slot removed');

    // `b` takes the slot and dies without releasing it (no refresh, no ZREM).
    admitted(await b!.store.admit('alice', limits, 'orphan'));
    await b!.store.close();
    b!.link.cmd.disconnect();
    expect(await c!.store.admit('alice', limits, 'waiting')).toMatchObject({ ok: false, quota: 'streams' });
    const release2 = await until(async () => {
      const a2 = await c!.store.admit('alice', limits, 'after');
      return a2.ok ? a2.release : undefined;
    }, 'the dead instance’s slot expired');
    release2();
  });

  it('falls back to this instance’s own counts while Redis cannot be reached', async () => {
    const port = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    const link = new RedisLink({ url: `redis://127.0.0.1:${port}`, prefix: `jt:${uid()}:`, log });
    link.connectInBackground();
    const store = new RedisQuotaStore({ link, ttlMs: 1000 });
    opened.push({ link, store });
    const limits = { rpm: 0, maxStreams: 1 };
    const release = admitted(await store.admit('alice', limits, 's1'));
    expect(await store.admit('alice', limits, 's2')).toMatchObject({ ok: false, quota: 'streams' });
    release();
    admitted(await store.admit('alice', limits, 's3'))();
  });
});
