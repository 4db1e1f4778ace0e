// The session registry when Redis stalls: a private redis-server frozen with SIGSTOP while claims are in flight.
// Two registries (two instances) in this process, each on its own connections. A claim that times out must not
// leave two streams generating once Redis answers again, the newer request must win however the claims reach
// Redis, and the stall must be visible (redis_unavailable, barge_in_degraded) and bounded (requests after the
// first that met it do not wait for Redis at all).
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisLink } from '../src/cluster/redis-link.js';
import { RedisSessionRegistry } from '../src/sessions/redis-registry.js';
import { orFail } from './support/chat.js';
import { startRedisServer, type RedisServer } from './support/redis-server.js';
import { captureLog, FakeStream, type LogRecord } from './support/session-claims.js';

let ids = 0;
/** A stream that cleans up and releases as soon as it is cancelled, as a real one does. */
const stream = (sessionKey: string, name: string) => new FakeStream(sessionKey, `req_${name}_${++ids}`, 'cancel-previous', { autoRelease: true });

let redis: RedisServer;
let linkLogs: LogRecord[];
let links: RedisLink[];
let r1: RedisSessionRegistry;
let r2: RedisSessionRegistry;

beforeAll(async () => {
  redis = await startRedisServer();
  const { log, records } = captureLog();
  linkLogs = records;
  links = [new RedisLink({ url: redis.url, prefix: 'jf:', log }), new RedisLink({ url: redis.url, prefix: 'jf:', log })];
  await Promise.all(links.map((l) => l.connect()));
  const make = (link: RedisLink, instanceId: string) => new RedisSessionRegistry({ link, instanceId, ttlMs: 10_000, prevStreamWaitMs: 2000, log });
  [r1, r2] = [make(links[0]!, 'i1'), make(links[1]!, 'i2')];
  await Promise.all([r1.start(), r2.start()]);
});
afterAll(async () => {
  redis?.signal('SIGCONT');
  await Promise.all([r1?.close(), r2?.close()]);
  await Promise.all((links ?? []).map((l) => l.close()));
  await redis?.stop();
});

/** Both links answer Redis again (after SIGCONT). */
async function bothUp(): Promise<void> {
  await orFail(Promise.all(links.filter((l) => !l.available).map((l) => once(l, 'up'))), 'both Redis links up again');
}

/** Resolves once `s` has logged `event` (the registry logs it from a background reconcile). */
async function pollUntilLogged(s: FakeStream, event: string): Promise<void> {
  while (s.logged(event).length === 0) await new Promise((r) => setTimeout(r, 20));
}

let sessions = 0;
const session = () => `-/freeze-${++sessions}`;

describe('a Redis frozen during a claim', () => {
  it('a claim that timed out is reconciled once Redis answers: the stream it displaced is cancelled, and the stall was logged', async () => {
    const key = session();
    const a = stream(key, 'A');
    await a.acquire(r1);
    redis.signal('SIGSTOP');
    const b = stream(key, 'B');
    // B's claim reaches a frozen Redis: it waits out the command timeout, then goes on alone.
    await orFail(b.acquire(r2), 'B starting while Redis is frozen');
    expect(b.logged('barge_in_degraded')).toEqual([expect.objectContaining({ reason: 'redis_timeout' })]);
    expect(linkLogs.some((r) => r.msg === 'redis_unavailable' && r.reason === 'timeout')).toBe(true);
    // A request after that one meets the stall already known: it does not wait for Redis at all.
    const c = stream(session(), 'C');
    await orFail(c.acquire(r2), 'C starting while Redis is still frozen');
    expect(c.logged('barge_in_degraded')).toEqual([expect.objectContaining({ reason: 'redis_unavailable' })]);
    expect(a.cancelled).toEqual([]);

    redis.signal('SIGCONT');
    expect(await orFail(a.wasCancelled, 'A cancelled once Redis answers')).toBe('superseded');
    expect(b.cancelled).toEqual([]);
    await bothUp();
    expect(linkLogs.some((r) => r.msg === 'redis_recovered')).toBe(true);
    b.lease!.release();
    c.lease!.release();
  });

  it('two requests of one session on two instances during a freeze: the newer one wins, whichever claim Redis runs first', async () => {
    for (const order of ['older first', 'newer first'] as const) {
      await bothUp();
      const key = session();
      const a = stream(key, `A-${order}`);
      const b = stream(key, `B-${order}`);
      redis.signal('SIGSTOP');
      // A arrived first; whose claim is sent to Redis first is what varies.
      const claims = order === 'older first' ? [a.acquire(r1), b.acquire(r2)] : [b.acquire(r2), a.acquire(r1)];
      await orFail(Promise.all(claims), 'both starting during the freeze');
      redis.signal('SIGCONT');
      expect(await orFail(a.wasCancelled, `A cancelled (${order})`)).toBe('superseded');
      expect(b.cancelled).toEqual([]);
      await bothUp();
      b.lease!.release();
    }
  });
});

describe('Redis away during a barge-in, back with its data (a failover to a replica)', () => {
  it('a barge-in whose stream ended before Redis came back still stands: the stream it displaced is cancelled then', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'jarvis-failover-'));
    // Its data on disk, so that it comes back with it, as a promoted replica does.
    const server = await startRedisServer({ args: ['--dir', dir] });
    const { log } = captureLog();
    const two = [new RedisLink({ url: server.url, prefix: 'jfo:', log }), new RedisLink({ url: server.url, prefix: 'jfo:', log })];
    await Promise.all(two.map((l) => l.connect()));
    const make = (link: RedisLink, instanceId: string) => new RedisSessionRegistry({ link, instanceId, ttlMs: 10_000, prevStreamWaitMs: 2000, log });
    const [f1, f2] = [make(two[0]!, 'i1'), make(two[1]!, 'i2')];
    try {
      await Promise.all([f1.start(), f2.start()]);
      const key = session();
      const a = stream(key, 'A');
      await a.acquire(f1);
      const admin = new Redis(server.url);
      await admin.save();
      admin.disconnect();
      const down = Promise.all(two.map((l) => once(l, 'down')));
      await server.stop('SIGKILL');
      await orFail(down, 'both links down');
      // B's claim cannot be sent: B goes on alone. Its answer is short, and over before Redis is back.
      const b = stream(key, 'B');
      await orFail(b.acquire(f2), 'B starting while Redis is away');
      expect(b.logged('barge_in_degraded')).toEqual([expect.objectContaining({ reason: 'redis_unavailable' })]);
      b.lease!.release();
      expect(a.cancelled).toEqual([]);
      await server.start();
      // The person interrupted A all the same: once Redis answers, A is cancelled.
      expect(await orFail(a.wasCancelled, 'A cancelled once Redis is back, B over already')).toBe('superseded');
      await orFail(pollUntilLogged(b, 'barge_in_reconciled'), "B's reconcile logged");
      expect(b.logged('barge_in_reconciled')).toEqual([expect.objectContaining({ outcome: 'claimed', ended: true })]);
    } finally {
      await Promise.all([f1.close(), f2.close()]);
      await Promise.all(two.map((l) => l.close()));
      await server.stop('SIGKILL');
      await rm(dir, { recursive: true, force: true });
    }
  });
});

