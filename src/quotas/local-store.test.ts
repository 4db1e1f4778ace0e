import { describe, expect, it } from 'vitest';
import { LocalQuotaStore } from './local-store.js';
import { gcra } from './quota-store.js';

describe('gcra', () => {
  it('admits rpm requests at once, then one every 60/rpm s, and says exactly when the next fits', () => {
    let tat = 0;
    for (let i = 0; i < 3; i++) {
      const r = gcra(tat, 1000, 3);
      if (!r.ok) throw new Error(`request ${i} refused`);
      tat = r.tat;
    }
    expect(gcra(tat, 1000, 3)).toEqual({ ok: false, retryAfterMs: 20_000 });
    expect(gcra(tat, 1000 + 19_999, 3).ok).toBe(false);
    expect(gcra(tat, 1000 + 20_000, 3).ok).toBe(true);
  });
});

describe('LocalQuotaStore', () => {
  it('counts rpm per key on its clock', async () => {
    let now = 0;
    const store = new LocalQuotaStore({ now: () => now });
    const limits = { rpm: 2, maxStreams: 0 };
    expect((await store.admit('a', limits)).ok).toBe(true);
    expect((await store.admit('a', limits)).ok).toBe(true);
    expect(await store.admit('a', limits)).toEqual({ ok: false, quota: 'rpm', retryAfterMs: 30_000 });
    expect((await store.admit('b', limits)).ok, 'another key has its own count').toBe(true);
    now = 30_000;
    expect((await store.admit('a', limits)).ok).toBe(true);
  });

  it('holds maxStreams slots until released; release is idempotent; a refused stream uses no rpm', async () => {
    const store = new LocalQuotaStore({ now: () => 0 });
    const limits = { rpm: 3, maxStreams: 1 };
    const first = await store.admit('a', limits);
    if (!first.ok) throw new Error('refused');
    expect(await store.admit('a', limits)).toEqual({ ok: false, quota: 'streams', retryAfterMs: undefined });
    first.release();
    first.release();
    expect(store.held('a')).toBe(0);
    const second = await store.admit('a', limits);
    expect(second.ok).toBe(true);
    if (second.ok) second.release();
    // Two admitted so far (the refused one did not count): one more fits within the minute.
    expect((await store.admit('a', limits)).ok).toBe(true);
    expect((await store.admit('a', { rpm: 3, maxStreams: 0 })).ok).toBe(false);
  });
});
