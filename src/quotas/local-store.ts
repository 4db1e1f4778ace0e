import { gcra, type Admission, type QuotaLimits, type QuotaStore } from './quota-store.js';

/**
 * Quotas of this process alone: per key, a GCRA arrival time for rpm and a count of streams in flight. Maps
 * are keyed by configured keys only, so they stay as small as the keys list.
 */
export class LocalQuotaStore implements QuotaStore {
  readonly #tat = new Map<string, number>();
  readonly #streams = new Map<string, number>();
  readonly #now: () => number;

  /** `now` in milliseconds, monotonic; tests pass their own clock. */
  constructor(opts: { now?: () => number } = {}) {
    this.#now = opts.now ?? (() => performance.now());
  }

  /** Synchronous: nothing can run between the checks and the counting. */
  admitNow(owner: string, limits: QuotaLimits): Admission {
    const held = this.#streams.get(owner) ?? 0;
    if (limits.maxStreams > 0 && held >= limits.maxStreams) return { ok: false, quota: 'streams', retryAfterMs: undefined };
    if (limits.rpm > 0) {
      const r = gcra(this.#tat.get(owner) ?? 0, this.#now(), limits.rpm);
      if (!r.ok) return { ok: false, quota: 'rpm', retryAfterMs: r.retryAfterMs };
      this.#tat.set(owner, r.tat);
    }
    if (limits.maxStreams === 0) return { ok: true, release: () => {} };
    this.#streams.set(owner, held + 1);
    let released = false;
    return {
      ok: true,
      release: () => {
        if (released) return;
        released = true;
        const n = (this.#streams.get(owner) ?? 1) - 1;
        if (n > 0) this.#streams.set(owner, n);
        else this.#streams.delete(owner);
      },
    };
  }

  admit(owner: string, limits: QuotaLimits): Promise<Admission> {
    return Promise.resolve(this.admitNow(owner, limits));
  }

  /** Streams held by `owner` here (tests, and the Redis store's fallback). */
  held(owner: string): number {
    return this.#streams.get(owner) ?? 0;
  }

  async close(): Promise<void> {}
}
