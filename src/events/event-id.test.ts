// Event ids: Redis stream ids as numbers ((ms - 2026-01-01) × 4096 + seq). Round trips, ordering, the clamp for a busy
// millisecond, local ids after stream ids, and the encoding checked against ids a real Redis assigns.
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { idFromStreamId, nextLocalId, streamIdFromId } from './event-id.js';

const SEQ = 4096;
const EPOCH = Date.UTC(2026, 0, 1);
const T = 1795550000000; // a millisecond in 2026-11

describe('event ids', () => {
  it('encodes ms-seq as (ms - 2026-01-01) × 4096 + seq', () => {
    expect(idFromStreamId(`${EPOCH}-0`)).toBe(0);
    expect(idFromStreamId(`${EPOCH}-1`)).toBe(1);
    expect(idFromStreamId(`${EPOCH + 1}-0`)).toBe(SEQ);
    expect(idFromStreamId(`${T}-7`)).toBe((T - EPOCH) * SEQ + 7);
  });

  it('round-trips: streamIdFromId(idFromStreamId(s)) === s for every sequence below 4096', () => {
    const samples = [`${EPOCH}-0`, `${EPOCH}-4095`, `${EPOCH + 1}-0`, `${T}-0`, `${T + 123}-42`, `${T + 123}-4095`, `${Date.now()}-17`];
    for (const s of samples) expect(streamIdFromId(idFromStreamId(s))).toBe(s);
    for (let id = (T - EPOCH) * SEQ; id < (T - EPOCH) * SEQ + 3 * SEQ; id += 97) expect(idFromStreamId(streamIdFromId(id))).toBe(id);
  });

  it('orders like stream ids (ms first, then seq), strictly while seq < 4096', () => {
    const streamIds = [`${T}-0`, `${T}-1`, `${T}-4095`, `${T + 1}-0`, `${T + 1}-3`, `${T + 5}-0`, `${T + 99999}-0`, `${T + 99999}-1`, `${T + 100000}-0`];
    const ids = streamIds.map(idFromStreamId);
    for (let i = 1; i < ids.length; i++) expect(ids[i]!, `${streamIds[i]} after ${streamIds[i - 1]}`).toBeGreaterThan(ids[i - 1]!);
  });

  it('a millisecond with 4096+ entries shares its last id, never reaching into the next millisecond', () => {
    expect(idFromStreamId(`${T}-4096`)).toBe(idFromStreamId(`${T}-4095`));
    expect(idFromStreamId(`${T}-99999`)).toBe((T - EPOCH) * SEQ + SEQ - 1);
    expect(idFromStreamId(`${T}-99999`)).toBeLessThan(idFromStreamId(`${T + 1}-0`));
  });

  it('stays an exact integer for today’s clock and decades ahead', () => {
    expect(Number.isSafeInteger(idFromStreamId(`${Date.now()}-${SEQ - 1}`))).toBe(true);
    expect(Number.isSafeInteger(idFromStreamId(`${Date.UTC(2095, 0, 1)}-${SEQ - 1}`))).toBe(true);
  });

  it('nextLocalId: after the last id (stream or local), and no earlier than now', () => {
    const now = T;
    expect(nextLocalId(0, now)).toBe((now - EPOCH) * SEQ);
    // After an id from the stream in this very millisecond: one more, still below the next millisecond.
    const fromStream = idFromStreamId(`${now}-5`);
    expect(nextLocalId(fromStream, now)).toBe(fromStream + 1);
    // A clock that went backwards never makes ids go backwards.
    expect(nextLocalId(fromStream, now - 1000)).toBe(fromStream + 1);
    let last = 0;
    for (let i = 0; i < 10_000; i++) {
      const next = nextLocalId(last, now + Math.floor(i / 5000));
      expect(next).toBeGreaterThan(last);
      last = next;
    }
    // A Last-Event-ID from before a restart (fewer than 4096 ids in its last millisecond) stays below the ids
    // a fresh process issues from the next millisecond on.
    let before = 0;
    for (let i = 0; i < 100; i++) before = nextLocalId(before, now);
    expect(nextLocalId(0, now + 1)).toBeGreaterThan(before);
  });
});

describe('event ids against a real Redis stream', () => {
  const redis = new Redis('redis://127.0.0.1:6379', { lazyConnect: true });
  const key = `jt:${randomBytes(5).toString('hex')}:events`;

  beforeAll(async () => {
    await redis.connect();
  });
  afterAll(async () => {
    await redis.del(key);
    redis.disconnect();
  });

  it('ids of XADDed entries increase strictly, and an exclusive XRANGE from streamIdFromId(id) returns exactly the later entries', async () => {
    const pipeline = redis.pipeline();
    for (let i = 0; i < 500; i++) pipeline.xadd(key, '*', 'n', String(i));
    const added = (await pipeline.exec())!.map(([err, id]) => {
      expect(err).toBeNull();
      return id as string;
    });
    const ids = added.map(idFromStreamId);
    for (let i = 1; i < ids.length; i++) expect(ids[i]!).toBeGreaterThan(ids[i - 1]!);
    expect(added.map((s) => streamIdFromId(idFromStreamId(s)))).toEqual(added);

    for (const at of [0, 1, 250, 498, 499]) {
      const after = (await redis.xrange(key, `(${streamIdFromId(ids[at]!)}`, '+')).map(([id]) => id);
      expect(after).toEqual(added.slice(at + 1));
    }
  });
});
