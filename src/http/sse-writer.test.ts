import type { ServerResponse } from 'node:http';
import { describe, expect, it } from 'vitest';
import { Heartbeat } from './heartbeat.js';
import { SseWriter } from './sse-writer.js';

/** A response whose client reads nothing: every byte written stays in its buffer. */
function stalledResponse() {
  let buffered = 0;
  const res = {
    destroyed: false,
    writableEnded: false,
    get writableLength() {
      return buffered;
    },
    writeHead() {},
    cork() {},
    uncork() {},
    write(frame: string) {
      buffered += Buffer.byteLength(frame);
      return false;
    },
    end() {},
  };
  return res as unknown as ServerResponse;
}

describe('SseWriter', () => {
  const heartbeat = new Heartbeat(60_000);

  it('calls onOverflow once a client that reads nothing holds more than the bound', () => {
    let overflows = 0;
    const w = new SseWriter(stalledResponse(), { heartbeat, maxBufferedBytes: 1024, onOverflow: () => overflows++, openForPing: () => {} });
    for (let i = 0; i < 9; i++) w.write('x'.repeat(100));
    expect(overflows).toBe(0);
    for (let i = 0; i < 20; i++) w.write('x'.repeat(100));
    expect(overflows).toBeGreaterThan(0);
    w.end();
  });

  it('does not take one frame larger than the bound for a client falling behind', () => {
    let overflows = 0;
    const w = new SseWriter(stalledResponse(), { heartbeat, maxBufferedBytes: 1024, onOverflow: () => overflows++, openForPing: () => {} });
    w.write('z'.repeat(64 * 1024));
    expect(overflows).toBe(0);
    // ...but a reader that then takes none of what follows still overflows.
    for (let i = 0; i < 200 * 1024; i += 1024) w.write('x'.repeat(1024));
    expect(overflows).toBeGreaterThan(0);
    w.end();
    heartbeat.close();
  });
});
