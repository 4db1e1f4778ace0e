// RedisSessionRegistry against the real Redis on 127.0.0.1:6379: two registries with different instance ids
// share one key prefix (two instances in one process), each on its own RedisLink. Claims are fakes: cancel()
// records the reason, and the test decides when a stream releases its lease.
import { randomBytes } from 'node:crypto';
import pino, { type Logger } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RedisLink } from '../cluster/redis-link.js';
import type { SessionPolicy } from '../config.js';
import { JarvisError, type CancelReason } from '../errors.js';
import { RedisSessionRegistry } from './redis-registry.js';
import type { SessionClaim, SessionLease } from './session-registry.js';

const REDIS_URL = 'redis://127.0.0.1:6379';
const uid = () => randomBytes(5).toString('hex');

type LogRecord = Record<string, unknown> & { msg: string };

/** A pino logger writing parsed records into an array, synchronously. */
function captureLog(): { log: Logger; records: LogRecord[] } {
  const records: LogRecord[] = [];
  const log = pino({ level: 'debug', base: null }, { write: (line: string) => void records.push(JSON.parse(line) as LogRecord) });
  return { log, records };
}

/** A stream as the registry sees it. */
class FakeStream {
  readonly cancelled: CancelReason[] = [];
  readonly controller = new AbortController();
  readonly claim: SessionClaim;
  readonly records: LogRecord[];
  readonly wasCancelled: Promise<CancelReason>;
  lease: SessionLease | undefined;
  #onCancel!: (r: CancelReason) => void;

  constructor(
    sessionKey: string,
    readonly requestId: string,
    policy: SessionPolicy,
    /** Release as soon as cancelled (once acquired), as a real stream's cleanup does. */
    readonly autoRelease = false,
  ) {
    const { log, records } = captureLog();
    this.records = records;
    this.wasCancelled = new Promise((resolve) => (this.#onCancel = resolve));
    this.claim = {
      sessionKey,
      sessionId: sessionKey.split('/')[1] ?? sessionKey,
      requestId,
      trace: `t-${requestId}`,
      policy,
      cancel: (reason) => {
        this.cancelled.push(reason);
        this.#onCancel(reason);
      },
      signal: this.controller.signal,
      log,
    };
  }

  async acquire(registry: RedisSessionRegistry): Promise<SessionLease> {
    this.lease = await registry.acquire(this.claim);
    if (this.autoRelease) void this.wasCancelled.then(() => this.lease!.release());
    return this.lease;
  }

  logged(msg: string): LogRecord[] {
    return this.records.filter((r) => r.msg === msg);
  }
}

interface Pair {
  prefix: string;
  links: [RedisLink, RedisLink];
  r1: RedisSessionRegistry;
  r2: RedisSessionRegistry;
  close(): Promise<void>;
}

/** Two instances ('r1', 'r2') on one prefix, each with its own connections, subscribed to its control channel. */
async function startPair(opts: { prevStreamWaitMs: number; ttlMs?: number }): Promise<Pair> {
  const prefix = `jt:${uid()}:`;
  const { log } = captureLog();
  const links = [new RedisLink({ url: REDIS_URL, prefix, log }), new RedisLink({ url: REDIS_URL, prefix, log })] as [RedisLink, RedisLink];
  await Promise.all(links.map((l) => l.connect()));
  const make = (link: RedisLink, instanceId: string) => new RedisSessionRegistry({ link, instanceId, ttlMs: opts.ttlMs ?? 10_000, prevStreamWaitMs: opts.prevStreamWaitMs, log });
  const r1 = make(links[0], 'r1');
  const r2 = make(links[1], 'r2');
  await Promise.all([r1.start(), r2.start()]);
  return {
    prefix,
    links,
    r1,
    r2,
    async close() {
      await Promise.all([r1.close(), r2.close()]);
      let cursor = '0';
      do {
        const [next, keys] = await links[0].cmd.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
        cursor = next;
        if (keys.length) await links[0].cmd.del(...keys);
      } while (cursor !== '0');
      await Promise.all(links.map((l) => l.close()));
    },
  };
}

/**
 * One round trip on each connection: every command sent before it (a control message, a RELEASE) has been
 * processed by Redis, and the replies and messages it caused have been read. A barrier, not a sleep.
 */
async function settle(pair: Pair): Promise<void> {
  for (const l of pair.links) await l.cmd.ping();
  for (const l of pair.links) await l.cmd.ping();
}

function tracked<T>(p: Promise<T>): { promise: Promise<T>; done: () => boolean } {
  let done = false;
  const promise = p.finally(() => (done = true));
  promise.catch(() => {});
  return { promise, done: () => done };
}

const sessionKey = () => `-/s-${uid()}`;

let pair: Pair;
let fast: Pair | undefined;

beforeAll(async () => {
  pair = await startPair({ prevStreamWaitMs: 10_000 });
});
afterAll(async () => {
  await pair?.close();
});
afterEach(async () => {
  await fast?.close();
  fast = undefined;
});

describe('RedisSessionRegistry across two instances', () => {
  it('cancel-previous: B on r2 cancels A on r1 and waits for A to release, then logs prev_stream_finished_cleanly', async () => {
    const key = sessionKey();
    const a = new FakeStream(key, 'reqA', 'cancel-previous');
    await a.acquire(pair.r1);
    expect(await pair.links[0].cmd.get(`${pair.prefix}session:${key}`)).toBe('r1|reqA');

    const b = new FakeStream(key, 'reqB', 'cancel-previous');
    const acquiringB = tracked(b.acquire(pair.r2));
    expect(await a.wasCancelled).toBe('superseded');
    await settle(pair);
    // A was told, but has not cleaned up: B still waits.
    expect(acquiringB.done()).toBe(false);
    expect(b.logged('prev_stream_finished_cleanly')).toEqual([]);

    a.lease!.release();
    await acquiringB.promise;
    expect(a.cancelled).toEqual(['superseded']);
    expect(b.cancelled).toEqual([]);
    const [clean] = b.logged('prev_stream_finished_cleanly');
    expect(clean).toMatchObject({ trace: 't-reqB', prev: 'reqA', prev_instance: 'r1' });
    expect(b.logged('prev_stream_wait_timeout')).toEqual([]);
    expect(await pair.links[0].cmd.get(`${pair.prefix}session:${key}`)).toBe('r2|reqB');

    b.lease!.release();
    await settle(pair);
    expect(await pair.links[0].cmd.exists(`${pair.prefix}session:${key}`)).toBe(0);
    expect(pair.r1.size + pair.r2.size).toBe(0);
  });

  it('cancel-previous: an owner that does not finish within prevStreamWaitMs is logged as prev_stream_wait_timeout, and B starts', async () => {
    fast = await startPair({ prevStreamWaitMs: 150 });
    const key = sessionKey();
    const a = new FakeStream(key, 'reqA', 'cancel-previous');
    await a.acquire(fast.r1);
    const b = new FakeStream(key, 'reqB', 'cancel-previous');
    await b.acquire(fast.r2); // A is never released while B waits
    expect(a.cancelled).toEqual(['superseded']);
    const [timeout] = b.logged('prev_stream_wait_timeout');
    expect(timeout).toMatchObject({ trace: 't-reqB', prev: 'reqA', prev_instance: 'r1' });
    expect(b.logged('prev_stream_finished_cleanly')).toEqual([]);

    // A ends late: its release must not delete the record B now owns.
    const key1 = `${fast.prefix}session:${key}`;
    expect(await fast.links[0].cmd.get(key1)).toBe('r2|reqB');
    a.lease!.release();
    await settle(fast);
    expect(await fast.links[0].cmd.get(key1)).toBe('r2|reqB');
    b.lease!.release();
    await settle(fast);
    expect(await fast.links[0].cmd.exists(key1)).toBe(0);
  });

  it('reject: B on r2 gets session_busy while A holds the session on r1, and claims it once A is gone', async () => {
    const key = sessionKey();
    const a = new FakeStream(key, 'reqA', 'cancel-previous');
    await a.acquire(pair.r1);
    const b = new FakeStream(key, 'reqB', 'reject');
    const err = await b.acquire(pair.r2).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(JarvisError);
    expect((err as JarvisError).code).toBe('session_busy');
    expect(a.cancelled).toEqual([]);
    // The rejected claim left nothing behind, here or in Redis.
    expect(pair.r2.size).toBe(0);
    expect(await pair.links[0].cmd.get(`${pair.prefix}session:${key}`)).toBe('r1|reqA');

    a.lease!.release();
    await settle(pair);
    const b2 = new FakeStream(key, 'reqB2', 'reject');
    await b2.acquire(pair.r2);
    expect(await pair.links[0].cmd.get(`${pair.prefix}session:${key}`)).toBe('r2|reqB2');
    b2.lease!.release();
    await settle(pair);
  });

  it('queue: B on r2 waits for A on r1 to end by itself, without cancelling it', async () => {
    const key = sessionKey();
    const a = new FakeStream(key, 'reqA', 'cancel-previous');
    await a.acquire(pair.r1);
    const b = new FakeStream(key, 'reqB', 'queue');
    const acquiringB = tracked(b.acquire(pair.r2));
    await settle(pair);
    await settle(pair);
    expect(acquiringB.done()).toBe(false);
    expect(a.cancelled).toEqual([]);

    a.lease!.release();
    await acquiringB.promise;
    expect(a.cancelled).toEqual([]);
    expect(b.logged('prev_stream_finished_cleanly')[0]).toMatchObject({ prev: 'reqA', prev_instance: 'r1' });
    b.lease!.release();
    await settle(pair);
  });

  it('parallel: B neither cancels nor waits for A', async () => {
    const key = sessionKey();
    const a = new FakeStream(key, 'reqA', 'cancel-previous');
    await a.acquire(pair.r1);
    const b = new FakeStream(key, 'reqB', 'parallel');
    await b.acquire(pair.r2);
    expect(a.cancelled).toEqual([]);
    expect(b.records.filter((r) => r.msg.startsWith('prev_stream_'))).toEqual([]);
    a.lease!.release();
    b.lease!.release();
    await settle(pair);
  });

  it('two simultaneous acquires on two instances: exactly one is cancelled, and the other starts after its release', async () => {
    for (let round = 0; round < 20; round++) {
      const key = sessionKey();
      const x = new FakeStream(key, `reqX${round}`, 'cancel-previous', true);
      const y = new FakeStream(key, `reqY${round}`, 'cancel-previous', true);
      // Both claims in the same tick; which one is sent first alternates.
      await Promise.all(round % 2 ? [y.acquire(pair.r2), x.acquire(pair.r1)] : [x.acquire(pair.r1), y.acquire(pair.r2)]);

      const losers = [x, y].filter((s) => s.cancelled.length > 0);
      expect(losers, `round ${round}`).toHaveLength(1);
      const loser = losers[0]!;
      const winner = loser === x ? y : x;
      expect(loser.cancelled).toEqual(['superseded']);
      expect(winner.logged('prev_stream_finished_cleanly')).toEqual([expect.objectContaining({ prev: loser.requestId, prev_instance: loser === x ? 'r1' : 'r2' })]);
      expect(loser.logged('prev_stream_finished_cleanly')).toEqual([]);
      expect(await pair.links[0].cmd.get(`${pair.prefix}session:${key}`)).toBe(`${winner === x ? 'r1' : 'r2'}|${winner.requestId}`);
      winner.lease!.release();
    }
    await settle(pair);
    expect(pair.r1.size + pair.r2.size).toBe(0);
  });

  // KNOWN GAP, pinned (remove `.fails` once fixed): ControlChannel.request takes "PUBLISH reached 0 receivers" to
  // mean "that instance is dead". An owner that is alive but whose subscriber connection alone is reconnecting
  // (after a Redis restart, an idle-timeout middlebox, Redis's pubsub output-buffer limit) is taken for dead:
  // B starts at once and logs prev_stream_finished_cleanly while A is never cancelled, so two streams generate
  // for one session. The expected behaviour below holds if the cancel is re-published until it reaches a
  // subscriber (r1's resubscribes about 100 ms later) or the bounded wait ends.
  it('an owner whose control subscription is momentarily down is still asked to cancel (not taken for dead)', async () => {
    fast = await startPair({ prevStreamWaitMs: 2000 });
    const key = sessionKey();
    const a = new FakeStream(key, 'reqA', 'cancel-previous', true);
    await a.acquire(fast.r1);
    // r1 lives on (its command connection is up, its stream runs); only its subscriber connection drops and reconnects.
    fast.links[0].sub.disconnect(true);
    expect(fast.links[0].available).toBe(true);
    const b = new FakeStream(key, 'reqB', 'cancel-previous');
    try {
      await b.acquire(fast.r2);
      expect(a.cancelled).toEqual(['superseded']);
    } finally {
      b.lease?.release();
      if (a.cancelled.length === 0) a.lease!.release();
    }
  });

  it('an owner that is gone (no subscriber, liveness key expired) is not waited for', async () => {
    fast = await startPair({ prevStreamWaitMs: 5000 });
    const key = sessionKey();
    const a = new FakeStream(key, 'reqA', 'cancel-previous');
    await a.acquire(fast.r1);
    // What a SIGKILL leaves once the TTL has run: no one on r1's control channel, no liveness key.
    fast.links[0].sub.disconnect(false);
    await fast.links[1].cmd.del(`${fast.prefix}instance:r1`);
    const b = new FakeStream(key, 'reqB', 'cancel-previous');
    try {
      await b.acquire(fast.r2);
      expect(b.logged('prev_stream_finished_cleanly')[0]).toMatchObject({ prev: 'reqA', prev_instance: 'r1' });
      expect(Number(b.logged('prev_stream_finished_cleanly')[0]!.waited_ms)).toBeLessThan(5000);
      expect(b.logged('prev_stream_wait_timeout')).toEqual([]);
    } finally {
      b.lease?.release();
      a.lease!.release();
    }
  });

  it('same instance: the local registry supersedes, and the record in Redis follows the newest stream', async () => {
    const key = sessionKey();
    const a = new FakeStream(key, 'reqA', 'cancel-previous', true);
    await a.acquire(pair.r1);
    const b = new FakeStream(key, 'reqB', 'cancel-previous');
    await b.acquire(pair.r1);
    expect(a.cancelled).toEqual(['superseded']);
    expect(b.logged('prev_stream_finished_cleanly')[0]).toMatchObject({ prev: 'reqA' });
    await settle(pair);
    expect(await pair.links[0].cmd.get(`${pair.prefix}session:${key}`)).toBe('r1|reqB');
    b.lease!.release();
    await settle(pair);
    expect(await pair.links[0].cmd.exists(`${pair.prefix}session:${key}`)).toBe(0);
  });
});
