// TokenBatcher on fake timers: what is published, when, and what is logged, for every way a batch leaves.
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { TokenBatcher } from './token-batcher.js';
import type { StreamMeta } from './types.js';

interface LogRecord {
  msg: string;
  level: string;
  request_id?: string;
  size?: number;
  tokens_sent?: number;
}

/** One timeline for everything observable, so relative order (log vs publish vs caller) can be asserted. */
type Entry = { kind: 'log'; rec: LogRecord } | { kind: 'publish'; meta: StreamMeta; text: string; tokens: number } | { kind: 'caller'; what: string };

const meta = (id: string): StreamMeta => ({ request_id: id, session_id: `s-${id}`, trace: `t-${id}`, owner: null });

function setup(opts: { flushMs?: number; flushBytes?: number } = {}) {
  const timeline: Entry[] = [];
  const flushes: [string, number][] = [];
  const log = pino(
    { level: 'info', base: null, formatters: { level: (label) => ({ level: label }) } },
    { write: (line: string) => void timeline.push({ kind: 'log', rec: JSON.parse(line) as LogRecord }) },
  );
  const batcher = new TokenBatcher({
    flushMs: opts.flushMs ?? 75,
    flushBytes: opts.flushBytes ?? 1024,
    log,
    publish: (m, text, tokens) => void timeline.push({ kind: 'publish', meta: m, text, tokens }),
    onFlush: (kind, tokens) => void flushes.push([kind, tokens]),
  });
  const published = (id?: string) =>
    timeline.flatMap((e) => (e.kind === 'publish' && (id === undefined || e.meta.request_id === id) ? [{ text: e.text, tokens: e.tokens }] : []));
  const logs = (id?: string) => timeline.flatMap((e) => (e.kind === 'log' && (id === undefined || e.rec.request_id === id) ? [e.rec] : []));
  const msgs = (id?: string) => logs(id).map((r) => r.msg);
  return { batcher, timeline, flushes, published, logs, msgs };
}

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('the flush window', () => {
  it('publishes nothing before flushMs and one batch at flushMs', () => {
    const { batcher, published, msgs, logs } = setup();
    batcher.add(meta('r1'), 'Hello');
    expect(batcher.timers).toBe(1);
    expect(batcher.buffers).toBe(1);
    expect(msgs('r1')).toEqual(['flush_scheduled']);

    vi.advanceTimersByTime(74);
    expect(published()).toEqual([]);

    vi.advanceTimersByTime(1);
    expect(published()).toEqual([{ text: 'Hello', tokens: 1 }]);
    expect(msgs('r1')).toEqual(['flush_scheduled', 'flush_start', 'flush_done']);
    expect(logs('r1').find((r) => r.msg === 'flush_start')?.size).toBe(5);
    expect(logs('r1').find((r) => r.msg === 'flush_done')?.tokens_sent).toBe(1);
    expect(batcher.timers).toBe(0);
  });

  it("schedules each of a slow stream's batches flushMs after its own first token", () => {
    const { batcher, published } = setup();
    for (const [i, word] of ['one', 'two', 'three'].entries()) {
      vi.advanceTimersByTime(200);
      batcher.add(meta('r1'), word);
      expect(batcher.timers).toBe(1);
      vi.advanceTimersByTime(74);
      expect(published()).toHaveLength(i);
      vi.advanceTimersByTime(1);
      expect(published()).toHaveLength(i + 1);
      expect(batcher.timers).toBe(0);
    }
    // After a batch that went at once (past flushBytes), the next is scheduled as usual.
    batcher.add(meta('r1'), 'x'.repeat(2000));
    batcher.add(meta('r1'), 'four');
    vi.advanceTimersByTime(75);
    expect(published().map((p) => p.text)).toEqual(['one', 'two', 'three', 'x'.repeat(2000), 'four']);
  });

  it('joins tokens added during the window into the same batch, in order, with one timer', () => {
    const { batcher, published, msgs, flushes } = setup();
    batcher.add(meta('r1'), 'The');
    vi.advanceTimersByTime(30);
    batcher.add(meta('r1'), ' quick');
    vi.advanceTimersByTime(30);
    batcher.add(meta('r1'), ' fox');
    expect(batcher.timers).toBe(1);

    // The window runs from the first token, not the last.
    vi.advanceTimersByTime(14);
    expect(published()).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(published()).toEqual([{ text: 'The quick fox', tokens: 3 }]);
    expect(msgs('r1').filter((m) => m === 'flush_scheduled')).toHaveLength(1);
    expect(flushes).toEqual([['scheduled', 3]]);

    // A token after the flush opens a new window of its own.
    batcher.add(meta('r1'), ' jumps');
    vi.advanceTimersByTime(74);
    expect(published()).toHaveLength(1);
    vi.advanceTimersByTime(1);
    expect(published()).toEqual([
      { text: 'The quick fox', tokens: 3 },
      { text: ' jumps', tokens: 1 },
    ]);
    expect(msgs('r1').filter((m) => m === 'flush_scheduled')).toHaveLength(2);
  });

  it('publishes with the meta of the stream that produced the tokens, and keeps streams apart', () => {
    const { batcher, timeline } = setup();
    batcher.add(meta('a'), 'a1');
    vi.advanceTimersByTime(40);
    batcher.add(meta('b'), 'b1');
    batcher.add(meta('a'), 'a2');
    expect(batcher.buffers).toBe(2);
    expect(batcher.timers).toBe(2);

    vi.advanceTimersByTime(35);
    const pubs = () => timeline.flatMap((e) => (e.kind === 'publish' ? [{ id: e.meta.request_id, trace: e.meta.trace, text: e.text }] : []));
    expect(pubs()).toEqual([{ id: 'a', trace: 't-a', text: 'a1a2' }]);
    vi.advanceTimersByTime(40);
    expect(pubs()).toEqual([
      { id: 'a', trace: 't-a', text: 'a1a2' },
      { id: 'b', trace: 't-b', text: 'b1' },
    ]);
  });
});

describe('the size trigger', () => {
  it('publishes at once past flushBytes and cancels the pending flush', () => {
    const { batcher, published, msgs, logs, flushes } = setup({ flushBytes: 10 });
    batcher.add(meta('r1'), 'aaaa');
    batcher.add(meta('r1'), 'bbbb');
    expect(published()).toEqual([]);
    expect(batcher.timers).toBe(1);

    batcher.add(meta('r1'), 'ccc'); // 11 bytes > 10
    expect(published()).toEqual([{ text: 'aaaabbbbccc', tokens: 3 }]);
    expect(msgs('r1')).toEqual(['flush_scheduled', 'flush_cancelled', 'flush_immediate', 'flush_done']);
    expect(logs('r1').find((r) => r.msg === 'flush_immediate')?.size).toBe(11);
    expect(batcher.timers).toBe(0);
    expect(flushes).toEqual([['immediate', 3]]);

    // The cancelled flush never fires, even long after its time.
    vi.advanceTimersByTime(10_000);
    expect(published()).toHaveLength(1);
    expect(msgs('r1')).not.toContain('flush_start');
  });

  it('counts bytes, not characters', () => {
    const { batcher, published } = setup({ flushBytes: 4 });
    batcher.add(meta('r1'), 'éé'); // 2 characters, 4 bytes: not over
    expect(published()).toEqual([]);
    batcher.add(meta('r1'), 'é'); // 6 bytes
    expect(published()).toEqual([{ text: 'ééé', tokens: 2 }]);
  });

  it('a single oversized token goes at once without ever scheduling a timer', () => {
    const { batcher, published, msgs } = setup({ flushBytes: 4 });
    batcher.add(meta('r1'), 'oversized');
    expect(published()).toEqual([{ text: 'oversized', tokens: 1 }]);
    expect(msgs('r1')).toEqual(['flush_immediate', 'flush_done']);
    expect(batcher.timers).toBe(0);
  });
});

describe('end()', () => {
  it('publishes the remainder synchronously, before whatever the caller publishes next', () => {
    const { batcher, timeline, msgs, flushes } = setup();
    batcher.add(meta('r1'), 'last');
    batcher.add(meta('r1'), ' words');
    batcher.end('r1');
    timeline.push({ kind: 'caller', what: 'chat.end' });

    const observable = timeline.filter((e) => e.kind !== 'log');
    expect(observable).toEqual([
      { kind: 'publish', meta: meta('r1'), text: 'last words', tokens: 2 },
      { kind: 'caller', what: 'chat.end' },
    ]);
    expect(msgs('r1')).toEqual(['flush_scheduled', 'flush_cancelled', 'flush_on_end']);
    expect(flushes).toEqual([['on_end', 2]]);
    expect(batcher.buffers).toBe(0);
    expect(batcher.timers).toBe(0);

    vi.advanceTimersByTime(10_000);
    expect(timeline.filter((e) => e.kind === 'publish')).toHaveLength(1);
  });

  it('publishes nothing when the last scheduled flush already took everything', () => {
    const { batcher, published, msgs } = setup();
    batcher.add(meta('r1'), 'x');
    vi.advanceTimersByTime(75);
    batcher.end('r1');
    expect(published()).toEqual([{ text: 'x', tokens: 1 }]);
    expect(msgs('r1')).toEqual(['flush_scheduled', 'flush_start', 'flush_done']);
    expect(batcher.buffers).toBe(0);
  });

  it('is a no-op for an unknown stream, and cleanup after end is a no-op too', () => {
    const { batcher, timeline } = setup();
    batcher.end('nobody');
    batcher.add(meta('r1'), 'x');
    batcher.end('r1');
    const before = timeline.length;
    batcher.cleanupRequestBuffers('r1');
    expect(timeline).toHaveLength(before);
  });
});

describe('cleanupRequestBuffers()', () => {
  it('cancels the pending flush, publishes the remainder, clears state, and logs it in that order', () => {
    const { batcher, published, msgs, logs, flushes } = setup();
    batcher.add(meta('r1'), 'said');
    batcher.add(meta('r1'), ' so');
    batcher.add(meta('r1'), ' far');
    batcher.cleanupRequestBuffers('r1');

    expect(published()).toEqual([{ text: 'said so far', tokens: 3 }]);
    expect(msgs('r1')).toEqual(['flush_scheduled', 'cleanup_flush_task', 'flush_on_cleanup', 'cleanup_buffer']);
    expect(logs('r1').find((r) => r.msg === 'flush_on_cleanup')?.size).toBe(11);
    expect(flushes).toEqual([['on_cleanup', 3]]);
    expect(batcher.buffers).toBe(0);
    expect(batcher.timers).toBe(0);
  });

  it('publishes before it logs cleanup_buffer', () => {
    const { batcher, timeline } = setup();
    batcher.add(meta('r1'), 'x');
    batcher.cleanupRequestBuffers('r1');
    const order = timeline.map((e) => (e.kind === 'log' ? e.rec.msg : e.kind));
    expect(order).toEqual(['flush_scheduled', 'cleanup_flush_task', 'flush_on_cleanup', 'publish', 'cleanup_buffer']);
  });

  it('with nothing buffered and no flush pending, only clears the buffer', () => {
    const { batcher, published, msgs } = setup();
    batcher.add(meta('r1'), 'x');
    vi.advanceTimersByTime(75);
    batcher.cleanupRequestBuffers('r1');
    expect(published()).toEqual([{ text: 'x', tokens: 1 }]);
    expect(msgs('r1')).toEqual(['flush_scheduled', 'flush_start', 'flush_done', 'cleanup_buffer']);
    expect(batcher.buffers).toBe(0);
  });

  it('a second cleanup is a no-op: nothing published, nothing logged', () => {
    const { batcher, timeline } = setup();
    batcher.add(meta('r1'), 'x');
    batcher.cleanupRequestBuffers('r1');
    const before = [...timeline];
    batcher.cleanupRequestBuffers('r1');
    batcher.cleanupRequestBuffers('never-seen');
    expect(timeline).toEqual(before);
    expect(batcher.buffers).toBe(0);
    expect(batcher.timers).toBe(0);
  });

  it('no flush ever fires after cleanup', () => {
    const { batcher, published, msgs } = setup();
    batcher.add(meta('r1'), 'a');
    vi.advanceTimersByTime(50);
    batcher.add(meta('r1'), 'b');
    batcher.cleanupRequestBuffers('r1');
    expect(vi.getTimerCount()).toBe(0);
    vi.advanceTimersByTime(60 * 60 * 1000);
    vi.runAllTimers();
    expect(published()).toEqual([{ text: 'ab', tokens: 2 }]);
    expect(msgs('r1')).not.toContain('flush_start');
    expect(msgs('r1').at(-1)).toBe('cleanup_buffer');
  });

  it('cleaning one stream leaves the others alone', () => {
    const { batcher, published } = setup();
    batcher.add(meta('a'), 'a');
    batcher.add(meta('b'), 'b');
    batcher.cleanupRequestBuffers('a');
    expect(batcher.buffers).toBe(1);
    expect(batcher.timers).toBe(1);
    vi.advanceTimersByTime(75);
    expect(published('b')).toEqual([{ text: 'b', tokens: 1 }]);
    batcher.cleanupRequestBuffers('b');
    expect(batcher.buffers).toBe(0);
    expect(batcher.timers).toBe(0);
  });
});

describe('counts', () => {
  it('buffers and timers return to 0 after a mix of every path', () => {
    const { batcher } = setup({ flushBytes: 8 });
    const ids = ['w', 'x', 'y', 'z'];
    for (const id of ids) batcher.add(meta(id), 'tok ');
    batcher.add(meta('x'), 'tok tok '); // immediate for x
    vi.advanceTimersByTime(75); // scheduled for w, y, z
    for (const id of ids) batcher.add(meta(id), 'more');
    expect(batcher.buffers).toBe(4);
    expect(batcher.timers).toBe(4);
    batcher.end('w');
    batcher.cleanupRequestBuffers('w');
    batcher.cleanupRequestBuffers('x');
    batcher.end('y');
    batcher.cleanupRequestBuffers('z');
    batcher.cleanupRequestBuffers('z');
    expect(batcher.buffers).toBe(0);
    expect(batcher.timers).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });
});
