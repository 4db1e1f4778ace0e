// RedisSessionRegistry against the real Redis on 127.0.0.1:6379: two registries with different instance ids
// share one key prefix (two instances in one process), each on its own RedisLink. Claims are fakes
// (test/support/session-claims.ts).
import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { captureLog, FakeStream } from '../../test/support/session-claims.js';
import { RedisLink } from '../cluster/redis-link.js';
import { JarvisError, StreamCancelled, type CancelReason } from '../errors.js';
import { RedisSessionRegistry } from './redis-registry.js';

const REDIS_URL = 'redis://127.0.0.1:6379';
const uid = () => randomBytes(5).toString('hex');

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

/** The holders in a session's record, as `instance|request` (sorted): who Redis says holds the session. */
async function holders(p: Pair, key: string): Promise<string[]> {
  const fields = await p.links[0].cmd.hgetall(`${p.prefix}session:{${key}}`);
  return Object.entries(fields)
    .filter(([f]) => f.startsWith('h:'))
    .map(([f, v]) => `${v.split('|')[0]}|${f.slice(2)}`)
    .sort();
}

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
    expect(await holders(pair, key)).toEqual(['r1|reqA']);

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
    expect(await holders(pair, key)).toEqual(['r2|reqB']);

    b.lease!.release();
    await settle(pair);
    expect(await pair.links[0].cmd.exists(`${pair.prefix}session:{${key}}`)).toBe(0);
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
    const key1 = `${fast.prefix}session:{${key}}`;
    expect(await holders(fast, key)).toEqual(['r2|reqB']);
    a.lease!.release();
    await settle(fast);
    expect(await holders(fast, key)).toEqual(['r2|reqB']);
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
    expect(await holders(pair, key)).toEqual(['r1|reqA']);

    a.lease!.release();
    await settle(pair);
    const b2 = new FakeStream(key, 'reqB2', 'reject');
    await b2.acquire(pair.r2);
    expect(await holders(pair, key)).toEqual(['r2|reqB2']);
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

  it('two simultaneous acquires on two instances: the newer always wins, whichever claim reaches Redis first', async () => {
    for (let round = 0; round < 20; round++) {
      const key = sessionKey();
      const x = new FakeStream(key, `reqX${round}`, 'cancel-previous', { autoRelease: true });
      const y = new FakeStream(key, `reqY${round}`, 'cancel-previous', { autoRelease: true });
      // Y arrived after X. Both claims go out in the same tick; which one is sent first alternates.
      const [rx, ry] = await Promise.allSettled(round % 2 ? [x.acquire(pair.r1), y.acquire(pair.r2)].reverse() : [x.acquire(pair.r1), y.acquire(pair.r2)]);
      const [xResult, yResult] = round % 2 ? [ry, rx] : [rx, ry];
      expect(yResult!.status, `round ${round}`).toBe('fulfilled');
      expect(y.cancelled).toEqual([]);
      // X lost: displaced by Y's claim (cancelled, and Y waited for its cleanup), or, had Y's claim run first,
      // refused on arrival as the older of the two.
      expect(x.cancelled).toEqual(['superseded']);
      if (xResult!.status === 'fulfilled') {
        expect(y.logged('prev_stream_finished_cleanly')).toEqual([expect.objectContaining({ prev: x.requestId, prev_instance: 'r1' })]);
      } else {
        expect(x.logged('arrived_after_newer')).toEqual([expect.objectContaining({ by: y.requestId, by_instance: 'r2' })]);
      }
      expect(await holders(pair, key)).toEqual([`r2|${y.requestId}`]);
      y.lease!.release();
    }
    await settle(pair);
    expect(pair.r1.size + pair.r2.size).toBe(0);
  });

  // PUBLISH reaching 0 receivers does not by itself mean the owner is dead: an owner whose subscriber connection
  // alone is reconnecting (after a Redis restart, an idle-timeout middlebox, the pubsub output-buffer limit) is
  // alive, and the cancel is sent again until it is heard (r1 resubscribes about 100 ms later) or the wait ends.
  it('an owner whose control subscription is momentarily down is still asked to cancel (not taken for dead)', async () => {
    fast = await startPair({ prevStreamWaitMs: 2000 });
    const key = sessionKey();
    const a = new FakeStream(key, 'reqA', 'cancel-previous', { autoRelease: true });
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
      // It did not finish cleanly: it died with its instance, and the log says so.
      expect(b.logged('prev_stream_owner_gone')[0]).toMatchObject({ prev: 'reqA', prev_instance: 'r1' });
      expect(b.logged('prev_stream_finished_cleanly')).toEqual([]);
      expect(b.logged('prev_stream_wait_timeout')).toEqual([]);
    } finally {
      b.lease?.release();
      a.lease!.release();
    }
  });

  it('same instance: the local registry supersedes, and the record in Redis follows the newest stream', async () => {
    const key = sessionKey();
    const a = new FakeStream(key, 'reqA', 'cancel-previous', { autoRelease: true });
    await a.acquire(pair.r1);
    const b = new FakeStream(key, 'reqB', 'cancel-previous');
    await b.acquire(pair.r1);
    expect(a.cancelled).toEqual(['superseded']);
    expect(b.logged('prev_stream_finished_cleanly')[0]).toMatchObject({ prev: 'reqA' });
    await settle(pair);
    expect(await holders(pair, key)).toEqual(['r1|reqB']);
    b.lease!.release();
    await settle(pair);
    expect(await pair.links[0].cmd.exists(`${pair.prefix}session:{${key}}`)).toBe(0);
  });
});

/** Resolves once `stream` has been cancelled, or rejects with `what` after `ms` (a guard against a hang). */
function cancelledWithin(stream: FakeStream, what: string, ms = 10_000): Promise<CancelReason> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
    void stream.wasCancelled.then((r) => {
      clearTimeout(t);
      resolve(r);
    });
  });
}

describe('one generating stream per session, in the interleavings that broke it (issue 13)', () => {
  it('a parallel holder releasing does not erase the record of the stream still running: a later barge-in still cancels it', async () => {
    for (const policy of ['parallel', 'queue'] as const) {
      const key = sessionKey();
      const a = new FakeStream(key, `A-${policy}`, 'cancel-previous', { autoRelease: true });
      await a.acquire(pair.r1);
      const b = new FakeStream(key, `B-${policy}`, policy);
      const acquiringB = tracked(b.acquire(pair.r1));
      if (policy === 'parallel') await acquiringB.promise;
      // B ends (or, queued, is abandoned) while A still runs.
      if (policy === 'queue') b.controller.abort(new StreamCancelled('client_disconnected'));
      await acquiringB.promise.catch(() => {});
      b.lease?.release();
      await settle(pair);
      expect(await holders(pair, key)).toEqual([`r1|${a.requestId}`]);
      const c = new FakeStream(key, `C-${policy}`, 'cancel-previous');
      await c.acquire(pair.r2);
      expect(a.cancelled).toEqual(['superseded']);
      c.lease!.release();
    }
  });

  it('a barge-in that is itself cancelled during its claim still cancels the stream it displaced on another instance', async () => {
    for (let round = 0; round < 10; round++) {
      const key = sessionKey();
      const a = new FakeStream(key, `A${round}`, 'cancel-previous', { autoRelease: true });
      await a.acquire(pair.r1);
      const b = new FakeStream(key, `B${round}`, 'cancel-previous', { autoRelease: true });
      const c = new FakeStream(key, `C${round}`, 'cancel-previous', { autoRelease: true });
      // B and C arrive together on r2: C cancels B (same instance) before B's claim has come back.
      const [rb] = await Promise.allSettled([b.acquire(pair.r2), c.acquire(pair.r2)]);
      void rb;
      expect(await cancelledWithin(a, `A${round} cancelled`)).toBe('superseded');
      expect(b.cancelled).toEqual(['superseded']);
      expect(c.cancelled).toEqual([]);
      await settle(pair);
      expect(await holders(pair, key)).toEqual([`r2|C${round}`]);
      c.lease!.release();
    }
  });

  it('a record Redis lost while its stream ran (a restart, an eviction): once the instance puts it back, the older of the two streams is cancelled', async () => {
    fast = await startPair({ prevStreamWaitMs: 2000, ttlMs: 600 });
    for (const order of ['older-put-back', 'newer-put-back'] as const) {
      const key = sessionKey();
      const first = new FakeStream(key, `A-${order}`, 'cancel-previous', { autoRelease: true });
      await first.acquire(fast.r1);
      // Redis loses the record (here: deleted; a restart without persistence loses every key).
      await fast.links[0].cmd.del(`${fast.prefix}session:{${key}}`);
      if (order === 'older-put-back') {
        // B claims the session in the gap, before r1 has put A back: it finds no one to cancel.
        const b = new FakeStream(key, `B-${order}`, 'cancel-previous', { autoRelease: true });
        await b.acquire(fast.r2);
        // r1's next refresh finds A's record gone: A is older than the session's holder, so A goes.
        expect(await cancelledWithin(first, 'A (older) cancelled once r1 found its record gone', 5000)).toBe('superseded');
        expect(b.cancelled).toEqual([]);
        await settle(fast);
        expect(await holders(fast, key)).toEqual([`r2|${b.requestId}`]);
        b.lease!.release();
      } else {
        // An older request reaches Redis in the gap (its instance decided alone while Redis was away, and
        // reconciles now): the newer A, put back, displaces it.
        const older = new FakeStream(key, `O-${order}`, 'cancel-previous', { autoRelease: true });
        older.claim.arrivedAt = first.claim.arrivedAt - 50;
        const acquiring = tracked(older.acquire(fast.r2));
        expect(await cancelledWithin(older, 'the older one cancelled', 5000)).toBe('superseded');
        await acquiring.promise.catch(() => {});
        expect(first.cancelled).toEqual([]);
        first.lease!.release();
      }
    }
  });

  it('X-Session-Seq: a request whose seq is not above the highest seen is refused (stale_request) and cancels nothing, on any instance', async () => {
    const key = sessionKey();
    const a = new FakeStream(key, 'A', 'cancel-previous', { seq: 5 });
    await a.acquire(pair.r1);
    for (const [registry, seq] of [[pair.r2, 4], [pair.r2, 5], [pair.r1, 3]] as const) {
      const late = new FakeStream(key, `late-${seq}`, 'cancel-previous', { seq: seq });
      const err = await late.acquire(registry).then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(JarvisError);
      expect(err).toMatchObject({ code: 'stale_request', status: 409 });
    }
    expect(a.cancelled).toEqual([]);
    // The newer one wins, however late it is; and the seq is remembered after everyone has left.
    const b = new FakeStream(key, 'B', 'cancel-previous', { autoRelease: true, seq: 6 });
    const acquiring = b.acquire(pair.r2);
    expect(await cancelledWithin(a, 'A cancelled by seq 6')).toBe('superseded');
    a.lease!.release();
    await acquiring;
    b.lease!.release();
    await settle(pair);
    const stale = new FakeStream(key, 'stale-after', 'cancel-previous', { seq: 6 });
    await expect(stale.acquire(pair.r1)).rejects.toMatchObject({ code: 'stale_request' });
    expect(pair.r1.size + pair.r2.size).toBe(0);
  });
});
