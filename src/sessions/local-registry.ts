import { JarvisError } from '../errors.js';
import type { SessionClaim, SessionLease, SessionRegistry } from './session-registry.js';
import { waitBounded } from './wait.js';

export interface Holder {
  readonly claim: SessionClaim;
  /** Resolves when the holder's stream has cleaned up and released the session. */
  readonly released: Promise<void>;
}

interface Registered {
  lease: SessionLease;
  /** The streams this session already had when the claim arrived. */
  previous: Holder[];
}

export function sessionBusy(claim: SessionClaim): JarvisError {
  return new JarvisError('JARVIS_ERR_SESSION_BUSY', `Session ${claim.sessionId} already has a stream in flight.`, { param: 'X-Session-Id' });
}

/** Barge-in within one process. State is this object's own; tests run several registries side by side. */
export class LocalSessionRegistry implements SessionRegistry {
  readonly #sessions = new Map<string, Set<Holder>>();
  readonly #byRequest = new Map<string, Holder>();
  readonly #prevWaitMs: number;

  constructor(opts: { prevStreamWaitMs: number }) {
    this.#prevWaitMs = opts.prevStreamWaitMs;
  }

  get size(): number {
    return this.#sessions.size;
  }

  async acquire(claim: SessionClaim): Promise<SessionLease> {
    const { lease, previous } = this.register(claim);
    if (previous.length === 0 || claim.policy === 'parallel') return lease;
    try {
      await this.settle(claim, previous);
    } catch (err) {
      lease.release();
      throw err;
    }
    return lease;
  }

  /**
   * Records the stream as a holder of its session, synchronously, so that from now on it can be found and
   * cancelled. Throws session_busy for policy `reject` when the session is taken.
   */
  register(claim: SessionClaim): Registered {
    const holders = this.#sessions.get(claim.sessionKey) ?? new Set<Holder>();
    const previous = [...holders];
    if (claim.policy === 'reject' && previous.length > 0) throw sessionBusy(claim);

    let resolve!: () => void;
    const holder: Holder = { claim, released: new Promise<void>((r) => (resolve = r)) };
    holders.add(holder);
    this.#sessions.set(claim.sessionKey, holders);
    this.#byRequest.set(claim.requestId, holder);
    let released = false;
    const lease: SessionLease = {
      release: () => {
        if (released) return;
        released = true;
        holders.delete(holder);
        this.#byRequest.delete(claim.requestId);
        if (holders.size === 0 && this.#sessions.get(claim.sessionKey) === holders) this.#sessions.delete(claim.sessionKey);
        resolve();
      },
    };
    return { lease, previous };
  }

  /** Applies the policy to the previous holders: cancel them (or not) and wait for their cleanup. */
  async settle(claim: SessionClaim, previous: Holder[]): Promise<void> {
    if (previous.length === 0 || claim.policy === 'parallel') return;
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

  /** The live stream with this request id, if it runs here. */
  find(requestId: string): Holder | undefined {
    return this.#byRequest.get(requestId);
  }

  async close(): Promise<void> {}
}
