// ReplayRing: bounded retention, oldest first, and `after(id)` by binary search across wrap-around.
import { describe, expect, it } from 'vitest';
import { ReplayRing } from './replay-ring.js';
import type { PublishedEvent } from './types.js';

function ev(id: number): PublishedEvent {
  const event = { id, type: 'chat.token' as const, request_id: 'r', session_id: 's', trace: 't', ts: 0, data: { text: String(id), tokens: 1 } };
  return { event, owner: null, json: JSON.stringify(event) };
}

const ids = (it: Iterable<PublishedEvent>) => [...it].map((p) => p.event.id);

function ringWith(capacity: number, eventIds: number[]): ReplayRing {
  const ring = new ReplayRing(capacity);
  for (const id of eventIds) ring.push(ev(id));
  return ring;
}

describe('ReplayRing', () => {
  it('is empty at first', () => {
    expect(ids(new ReplayRing(4).after(0))).toEqual([]);
  });

  it('returns everything after an id, oldest first, while under capacity', () => {
    const ring = ringWith(5, [1, 2, 3]);
    expect(ids(ring.after(0))).toEqual([1, 2, 3]);
    expect(ids(ring.after(1))).toEqual([2, 3]);
    expect(ids(ring.after(3))).toEqual([]);
    expect(ids(ring.after(99))).toEqual([]);
  });

  it('keeps only the last `capacity` events', () => {
    const ring = ringWith(3, [1, 2, 3, 4, 5]);
    expect(ids(ring.after(0))).toEqual([3, 4, 5]);
    // An id older than anything retained replays all that is left.
    expect(ids(ring.after(1))).toEqual([3, 4, 5]);
    expect(ids(ring.after(3))).toEqual([4, 5]);
    expect(ids(ring.after(4))).toEqual([5]);
    expect(ids(ring.after(5))).toEqual([]);
  });

  it('finds the position for ids that are not contiguous or not present', () => {
    const ring = ringWith(4, [10, 20, 30, 40, 50, 60]);
    expect(ids(ring.after(25))).toEqual([30, 40, 50, 60]);
    expect(ids(ring.after(30))).toEqual([40, 50, 60]);
    expect(ids(ring.after(55))).toEqual([60]);
  });

  it('stays correct at every wrap position', () => {
    for (let n = 1; n <= 20; n++) {
      const all = Array.from({ length: n }, (_, i) => 1000 + i);
      const ring = ringWith(7, all);
      const kept = all.slice(-7);
      for (let after = 999; after <= 1000 + n; after++) {
        expect(ids(ring.after(after)), `n=${n} after=${after}`).toEqual(kept.filter((id) => id > after));
      }
    }
  });

  it('capacity 0 retains nothing', () => {
    const ring = ringWith(0, [1, 2, 3]);
    expect(ids(ring.after(0))).toEqual([]);
  });

  it('capacity 1 retains the newest', () => {
    const ring = ringWith(1, [1, 2, 3]);
    expect(ids(ring.after(0))).toEqual([3]);
    expect(ids(ring.after(3))).toEqual([]);
  });

  it('returns the same objects it was given', () => {
    const ring = new ReplayRing(2);
    const p = ev(7);
    ring.push(p);
    expect([...ring.after(0)][0]).toBe(p);
  });
});
