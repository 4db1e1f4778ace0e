// The session registry when Redis stalls: a private redis-server frozen with SIGSTOP while claims are in flight.
// Two registries (two instances) in this process, each on its own connections. A claim that times out must not
// leave two streams generating once Redis answers again, the newer request must win however the claims reach
// Redis, and the stall must be visible (redis_unavailable, barge_in_degraded) and bounded (requests after the
// first that met it do not wait for Redis at all).
import pino, { type Logger } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisLink } from '../src/cluster/redis-link.js';
import type { SessionPolicy } from '../src/config.js';
import { StreamCancelled, type CancelReason } from '../src/errors.js';
import { RedisSessionRegistry } from '../src/sessions/redis-registry.js';
import type { SessionClaim, SessionLease } from '../src/sessions/session-registry.js';
import { orFail } from './support/chat.js';
import { startRedisServer, type RedisServer } from './support/redis-server.js';

type LogRecord = Record<string, unknown> & { msg: string };

function captureLog(): { log: Logger; records: LogRecord[] } {
  const records: LogRecord[] = [];
  const log = pino({ level: 'debug', base: null }, { write: (line: string) => void records.push(JSON.parse(line) as LogRecord) });
  return { log, records };
}

let ids = 0;
class Stream {
  readonly cancelled: CancelReason[] = [];
  readonly controller = new AbortController();
  readonly claim: SessionClaim;
  readonly records: LogRecord[];
  readonly wasCancelled: Promise<CancelReason>;
  lease: SessionLease | undefined;
  #onCancel!: (r: CancelReason) => void;

  constructor(sessionKey: string, readonly name: string, policy: SessionPolicy = 'cancel-previous') {
    const { log, records } = captureLog();
    this.records = records;
    this.wasCancelled = new Promise((resolve) => (this.#onCancel = resolve));
    const requestId = `req_${name}_${++ids}`;
    this.claim = {
      sessionKey,
      sessionId: sessionKey,
      requestId,
      trace: `t-${name}`,
      policy,
      arrivedAt: performance.timeOrigin + performance.now(),
      cancel: (reason) => {
        if (this.controller.signal.aborted) return;
        this.cancelled.push(reason);
        this.#onCancel(reason);
        this.controller.abort(new StreamCancelled(reason));
        // A real stream cleans up and releases once cancelled.
        queueMicrotask(() => this.lease?.release());
      },
      signal: this.controller.signal,
      log,
    };
  }

  async acquire(registry: RedisSessionRegistry): Promise<SessionLease> {
    this.lease = await registry.acquire(this.claim);
    if (this.controller.signal.aborted) this.lease.release();
    return this.lease;
  }

  logged(msg: string): LogRecord[] {
    return this.records.filter((r) => r.msg === msg);
  }
}

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

/** Both links answer Redis again (after SIGCONT): a barrier on the links' own state, not a sleep. */
async function bothUp(): Promise<void> {
  await orFail(
    (async () => {
      while (!links.every((l) => l.available)) await new Promise((r) => setTimeout(r, 20));
    })(),
    'both Redis links up again',
  );
}

let sessions = 0;
const session = () => `-/freeze-${++sessions}`;

describe('a Redis frozen during a claim', () => {
  it('a claim that timed out is reconciled once Redis answers: the stream it displaced is cancelled, and the stall was logged', async () => {
    const key = session();
    const a = new Stream(key, 'A');
    await a.acquire(r1);
    redis.signal('SIGSTOP');
    const b = new Stream(key, 'B');
    // B's claim reaches a frozen Redis: it waits out the command timeout, then goes on alone.
    await orFail(b.acquire(r2), 'B starting while Redis is frozen');
    expect(b.logged('barge_in_degraded')).toEqual([expect.objectContaining({ reason: 'redis_timeout' })]);
    expect(linkLogs.some((r) => r.msg === 'redis_unavailable' && r.reason === 'timeout')).toBe(true);
    // A request after that one meets the stall already known: it does not wait for Redis at all.
    const c = new Stream(session(), 'C');
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
      const a = new Stream(key, `A-${order}`);
      const b = new Stream(key, `B-${order}`);
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
