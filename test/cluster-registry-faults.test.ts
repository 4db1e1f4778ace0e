// The session registry when Redis stalls: a private redis-server frozen with SIGSTOP while claims are in flight.
// Two registries (two instances) in this process, each on its own connections. A claim that times out must not
// leave two streams generating once Redis answers again, the newer request must win however the claims reach
// Redis, and the stall must be visible (redis_unavailable, barge_in_degraded) and bounded (requests after the
// first that met it do not wait for Redis at all).
import { once } from 'node:events';
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
