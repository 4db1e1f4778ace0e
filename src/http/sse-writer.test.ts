import { EventEmitter } from 'node:events';
import type { ServerResponse } from 'node:http';
import { describe, expect, it, vi } from 'vitest';
import { Heartbeat } from './heartbeat.js';
import { SseWriter } from './sse-writer.js';

/** A response whose socket takes nothing until the test says so: `take(n)` is the client reading n bytes. */
function response() {
  const res = Object.assign(new EventEmitter(), {
    destroyed: false,
    writableEnded: false,
    writableLength: 0,
    writeHead() {},
    write(frame: string) {
      res.writableLength += Buffer.byteLength(frame);
      return false;
    },
    end() {},
    take(n: number) {
      res.writableLength = Math.max(0, res.writableLength - n);
      if (res.writableLength === 0) res.emit('drain');
    },
  });
  return res;
}

describe('SseWriter', () => {
  const heartbeat = new Heartbeat(60_000);
  const writerFor = (res: ReturnType<typeof response>) => new SseWriter(res as unknown as ServerResponse, { heartbeat, openForPing: () => {} });

  it('counts as unsent only what the socket was offered, never frames of the current tick', async () => {
    const res = response();
    const w = writerFor(res);
    w.write('x'.repeat(100_000));
    expect(w.unsent).toBe(0);
    await new Promise((r) => process.nextTick(r));
    expect(w.unsent).toBe(100_000);
    w.end();
  });

  it('drained() resolves once the client reads down to the limit, however long it takes', async () => {
    const res = response();
    const w = writerFor(res);
    res.writableLength = 10_000;
    let stalls = 0;
    // Fake timers: the reader's pace against the stall check is the test's to set, not the machine's (a busy
    // machine ran a real 2 ms reader late past a 5 ms check, and the test saw a stall that was not there).
    vi.useFakeTimers();
    try {
      const drained = w.drained(1000, 5, () => stalls++, new AbortController().signal);
      // A slow reader: a little at a time, always something within each interval.
      const reading = setInterval(() => res.take(500), 2);
      await vi.advanceTimersByTimeAsync(100);
      await drained;
      clearInterval(reading);
    } finally {
      vi.useRealTimers();
    }
    expect(stalls).toBe(0);
    expect(res.listenerCount('drain')).toBe(0);
    w.end();
  });

  it('drained() calls onStall when the client takes nothing for a whole interval, and rejects once aborted', async () => {
    const res = response();
    const w = writerFor(res);
    res.writableLength = 10_000;
    const ac = new AbortController();
    const drained = w.drained(1000, 5, () => ac.abort(new Error('stalled')), ac.signal);
    await expect(drained).rejects.toThrow('stalled');
    expect(res.listenerCount('drain')).toBe(0);
    w.end();
    heartbeat.close();
  });
});
