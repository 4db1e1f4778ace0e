// LocalSessionRegistry with fake claims: each policy, the bounded wait, the claimant's own cancellation.
import pino from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { SessionPolicy } from '../config.js';
import { JarvisError, StreamCancelled, type CancelReason } from '../errors.js';
import { LocalSessionRegistry } from './local-registry.js';
import type { SessionLease } from './session-registry.js';

interface LogRecord {
  msg: string;
  level: string;
  trace?: string;
  prev?: string;
  waited_ms?: number;
}

function harness(prevStreamWaitMs = 2000) {
  const records: LogRecord[] = [];
  const log = pino(
    { level: 'info', base: null, formatters: { level: (label) => ({ level: label }) } },
    { write: (line: string) => void records.push(JSON.parse(line) as LogRecord) },
  );
  const registry = new LocalSessionRegistry({ prevStreamWaitMs });

  /** A stream as the registry sees it: `cancel` only records; the test decides when the stream releases. */
  function claim(requestId: string, policy: SessionPolicy, sessionKey = '-/s1') {
    const cancelled: CancelReason[] = [];
    const controller = new AbortController();
    let lease: SessionLease | undefined;
    let error: unknown;
    let settled = false;
    const acquired = registry
      .acquire({
        sessionKey,
        sessionId: sessionKey.slice(sessionKey.indexOf('/') + 1),
        requestId,
        trace: `t-${requestId}`,
        policy,
        arrivedAt: performance.timeOrigin + performance.now(),
        cancel: (reason) => void cancelled.push(reason),
        signal: controller.signal,
        log,
      })
      .then(
        (l) => {
          lease = l;
          settled = true;
          return l;
        },
        (err: unknown) => {
          error = err;
          settled = true;
          throw err;
        },
      );
    // Rejections are asserted through `error`/`acquired`; this keeps an unobserved one from being reported as unhandled.
    acquired.catch(() => {});
    return {
      requestId,
      cancelled,
      controller,
      acquired,
      get settled() {
        return settled;
      },
      get error() {
        return error;
      },
      release() {
        if (!lease) throw new Error(`${requestId} holds no lease`);
        lease.release();
      },
    };
  }

  const logged = (msg: string) => records.filter((r) => r.msg === msg);
  return { registry, claim, records, logged };
}

/** Lets every pending promise reaction run (real timers only). */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

afterEach(() => {
  vi.useRealTimers();
});

describe('cancel-previous', () => {
  it('cancels the holder with superseded and resolves only after it releases', async () => {
    const { registry, claim, logged } = harness();
    const a = claim('A', 'cancel-previous');
    await a.acquired;
    expect(a.cancelled).toEqual([]);
    expect(registry.size).toBe(1);

    const b = claim('B', 'cancel-previous');
    expect(a.cancelled).toEqual(['superseded']);
    await settle();
    expect(b.settled).toBe(false);
    expect(logged('prev_stream_finished_cleanly')).toEqual([]);

    a.release();
    await b.acquired;
    expect(logged('prev_stream_finished_cleanly')).toMatchObject([{ trace: 't-B', prev: 'A', level: 'info' }]);
    expect(logged('prev_stream_wait_timeout')).toEqual([]);
    expect(b.cancelled).toEqual([]);
    expect(registry.size).toBe(1);

    b.release();
    expect(registry.size).toBe(0);
  });

  it('a holder that never releases: resolves after prevStreamWaitMs and logs prev_stream_wait_timeout', async () => {
    vi.useFakeTimers();
    const { registry, claim, logged } = harness(2000);
    const a = claim('A', 'cancel-previous');
    await a.acquired;
    const b = claim('B', 'cancel-previous');
    expect(a.cancelled).toEqual(['superseded']);

    await vi.advanceTimersByTimeAsync(1999);
    expect(b.settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(b.settled).toBe(true);
    await b.acquired;
    expect(logged('prev_stream_wait_timeout')).toMatchObject([{ trace: 't-B', prev: 'A', level: 'warn' }]);
    expect(logged('prev_stream_finished_cleanly')).toEqual([]);
    expect(vi.getTimerCount()).toBe(0);

    // Both still hold the session until each releases.
    expect(registry.size).toBe(1);
    b.release();
    expect(registry.size).toBe(1);
    a.release();
    expect(registry.size).toBe(0);
  });

  it('a release just in time counts as clean and leaves no timer behind', async () => {
    vi.useFakeTimers();
    const { claim, logged } = harness(2000);
    const a = claim('A', 'cancel-previous');
    await a.acquired;
    const b = claim('B', 'cancel-previous');
    await vi.advanceTimersByTimeAsync(1999);
    a.release();
    await b.acquired;
    expect(logged('prev_stream_finished_cleanly')).toHaveLength(1);
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(logged('prev_stream_wait_timeout')).toEqual([]);
    b.release();
  });

  it('cancels and waits for every holder when several run in parallel', async () => {
    const { registry, claim, logged } = harness();
    const a = claim('A', 'parallel');
    const b = claim('B', 'parallel');
    await Promise.all([a.acquired, b.acquired]);
    const c = claim('C', 'cancel-previous');
    expect(a.cancelled).toEqual(['superseded']);
    expect(b.cancelled).toEqual(['superseded']);
    a.release();
    await settle();
    expect(c.settled).toBe(false);
    b.release();
    await c.acquired;
    expect(logged('prev_stream_finished_cleanly')).toMatchObject([{ trace: 't-C', prev: 'A,B' }]);
    c.release();
    expect(registry.size).toBe(0);
  });

  it('does not touch other sessions', async () => {
    const { registry, claim } = harness();
    const a = claim('A', 'cancel-previous', '-/one');
    await a.acquired;
    const b = claim('B', 'cancel-previous', '-/two');
    await b.acquired;
    expect(a.cancelled).toEqual([]);
    expect(registry.size).toBe(2);
    a.release();
    b.release();
    expect(registry.size).toBe(0);
  });

  it('an empty session is acquired at once, with nothing logged', async () => {
    const { claim, records } = harness();
    const a = claim('A', 'cancel-previous');
    await a.acquired;
    expect(records).toEqual([]);
    a.release();
  });
  it('a second release is a no-op, even after the session was taken again', async () => {
    const { registry, claim } = harness();
    const a = claim('A', 'cancel-previous');
    await a.acquired;
    a.release();
    expect(registry.size).toBe(0);
    const b = claim('B', 'reject');
    await b.acquired;
    a.release();
    expect(registry.size).toBe(1);
    const c = claim('C', 'reject');
    await expect(c.acquired).rejects.toMatchObject({ code: 'session_busy' });
    b.release();
    expect(registry.size).toBe(0);
  });
});

describe('queue', () => {
  it('waits without cancelling, first come first served for three', async () => {
    const { registry, claim, logged } = harness();
    const a = claim('A', 'queue');
    await a.acquired;
    const b = claim('B', 'queue');
    const c = claim('C', 'queue');
    const order: string[] = [];
    void b.acquired.then(() => order.push('B'));
    void c.acquired.then(() => order.push('C'));
    await settle();
    expect(a.cancelled).toEqual([]);
    expect(b.cancelled).toEqual([]);
    expect([b.settled, c.settled]).toEqual([false, false]);

    a.release();
    await b.acquired;
    await settle();
    expect(order).toEqual(['B']);
    expect(c.settled).toBe(false);

    b.release();
    await c.acquired;
    expect(order).toEqual(['B', 'C']);
    expect(logged('prev_stream_finished_cleanly').map((r) => [r.trace, r.prev])).toEqual([
      ['t-B', 'A'],
      ['t-C', 'A,B'],
    ]);
    c.release();
    expect(registry.size).toBe(0);
  });

  it('is not bounded by prevStreamWaitMs', async () => {
    vi.useFakeTimers();
    const { claim, logged } = harness(2000);
    const a = claim('A', 'queue');
    await a.acquired;
    const b = claim('B', 'queue');
    await vi.advanceTimersByTimeAsync(60_000);
    expect(b.settled).toBe(false);
    expect(logged('prev_stream_wait_timeout')).toEqual([]);
    a.release();
    await b.acquired;
    expect(logged('prev_stream_finished_cleanly')).toHaveLength(1);
    b.release();
  });
});

describe('reject', () => {
  it('throws a 409 session_busy JarvisError while the session is held, and cancels nobody', async () => {
    const { registry, claim } = harness();
    const a = claim('A', 'cancel-previous');
    await a.acquired;
    const b = claim('B', 'reject');
    await expect(b.acquired).rejects.toBeInstanceOf(JarvisError);
    const err = b.error as JarvisError;
    expect(err.status).toBe(409);
    expect(err.code).toBe('session_busy');
    expect(err.param).toBe('X-Session-Id');
    // The message names the client's session id, not the registry key with its owner prefix.
    expect(err.message).toContain('s1');
    expect(err.message).not.toContain('-/s1');
    expect(a.cancelled).toEqual([]);
    expect(registry.size).toBe(1);
    a.release();
    expect(registry.size).toBe(0);
  });

  it('acquires an idle session', async () => {
    const { registry, claim } = harness();
    const a = claim('A', 'reject');
    await a.acquired;
    expect(registry.size).toBe(1);
    a.release();
    expect(registry.size).toBe(0);
  });
});

describe('parallel', () => {
  it('does not wait and cancels nobody', async () => {
    const { registry, claim, records } = harness();
    const a = claim('A', 'cancel-previous');
    await a.acquired;
    const b = claim('B', 'parallel');
    await b.acquired;
    expect(a.cancelled).toEqual([]);
    expect(records).toEqual([]);
    expect(registry.size).toBe(1);
    a.release();
    expect(registry.size).toBe(1);
    b.release();
    expect(registry.size).toBe(0);
  });
});

describe('the claimant cancelled while waiting', () => {
  it.each(['cancel-previous', 'queue'] as const)('%s: rejects with the claimant signal reason and gives its place up', async (policy) => {
    const { registry, claim, logged } = harness();
    const a = claim('A', 'cancel-previous');
    await a.acquired;
    const b = claim('B', policy);
    await settle();
    const reason = new StreamCancelled('client_disconnected');
    b.controller.abort(reason);
    await expect(b.acquired).rejects.toBe(reason);
    expect(logged('prev_stream_finished_cleanly')).toEqual([]);
    expect(logged('prev_stream_wait_timeout')).toEqual([]);

    // B left no holder behind: a later claim waits for A alone.
    const c = claim('C', 'queue');
    a.release();
    await c.acquired;
    expect(logged('prev_stream_finished_cleanly')).toMatchObject([{ trace: 't-C', prev: 'A' }]);
    c.release();
    expect(registry.size).toBe(0);
  });

  it('the bounded wait leaves no timer behind when the claimant is cancelled', async () => {
    vi.useFakeTimers();
    const { registry, claim } = harness(2000);
    const a = claim('A', 'cancel-previous');
    await a.acquired;
    const b = claim('B', 'cancel-previous');
    await vi.advanceTimersByTimeAsync(10);
    b.controller.abort(new StreamCancelled('shutdown'));
    await expect(b.acquired).rejects.toBeInstanceOf(StreamCancelled);
    expect(vi.getTimerCount()).toBe(0);
    a.release();
    expect(registry.size).toBe(0);
  });

  it('a claimant already cancelled does not wait at all', async () => {
    const { registry, claim } = harness();
    const a = claim('A', 'cancel-previous');
    await a.acquired;
    const reason = new StreamCancelled('client_disconnected');
    // Abort before acquire: the claim's signal is aborted from the start.
    const records: unknown[] = [];
    const log = pino({ level: 'info' }, { write: (l: string) => void records.push(l) });
    const controller = new AbortController();
    controller.abort(reason);
    await expect(
      registry.acquire({ sessionKey: '-/s1', sessionId: 's1', requestId: 'B', trace: 't-B', policy: 'queue', arrivedAt: performance.timeOrigin + performance.now(), cancel: () => {}, signal: controller.signal, log }),
    ).rejects.toBe(reason);
    expect(registry.size).toBe(1);
    a.release();
    expect(registry.size).toBe(0);
  });
});
