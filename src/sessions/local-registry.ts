import { JarvisError } from '../errors.js';
import type { SessionClaim, SessionLease, SessionRegistry } from './session-registry.js';
import { waitBounded } from './wait.js';

interface Holder {
  claim: SessionClaim;
  released: Promise<void>;
  release: () => void;
}

/** Barge-in within one process. State is this object's own; tests run several registries side by side. */
export class LocalSessionRegistry implements SessionRegistry {
  readonly #sessions = new Map<string, Set<Holder>>();
  readonly #prevWaitMs: number;

  constructor(opts: { prevStreamWaitMs: number }) {
    this.#prevWaitMs = opts.prevStreamWaitMs;
  }

  get size(): number {
    return this.#sessions.size;
  }

  async acquire(claim: SessionClaim): Promise<SessionLease> {
    const holders = this.#sessions.get(claim.sessionKey) ?? new Set<Holder>();
    const previous = [...holders];
    if (claim.policy === 'reject' && previous.length > 0) {
      throw new JarvisError('JARVIS_ERR_SESSION_BUSY', `session ${claim.sessionKey.slice(claim.sessionKey.indexOf('/') + 1)} already has a stream in flight`, { param: 'X-Session-Id' });
    }

    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const holder: Holder = { claim, released, release };
    holders.add(holder);
    this.#sessions.set(claim.sessionKey, holders);
    const lease: SessionLease = {
      release: () => {
        holders.delete(holder);
        if (holders.size === 0 && this.#sessions.get(claim.sessionKey) === holders) this.#sessions.delete(claim.sessionKey);
        release();
      },
    };

    if (previous.length === 0 || claim.policy === 'parallel') return lease;
    try {
      await this.#waitFor(claim, previous);
    } catch (err) {
      lease.release();
      throw err;
    }
    return lease;
  }

  async #waitFor(claim: SessionClaim, previous: Holder[]): Promise<void> {
    const { log, trace } = claim;
    const prev = previous.map((h) => h.claim.requestId).join(',');
    const started = performance.now();
    if (claim.policy === 'cancel-previous') {
      for (const h of previous) h.claim.cancel('superseded');
    }
    const bound = claim.policy === 'queue' ? Infinity : this.#prevWaitMs;
    const clean = await waitBounded(Promise.all(previous.map((h) => h.released)), bound, claim.signal);
    const waited_ms = Math.round(performance.now() - started);
    if (clean) log.info({ trace, prev, waited_ms }, 'prev_stream_finished_cleanly');
    else log.warn({ trace, prev, waited_ms }, 'prev_stream_wait_timeout');
  }

  async close(): Promise<void> {}
}
