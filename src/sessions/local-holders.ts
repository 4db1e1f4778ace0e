import type { SessionLease, SessionClaim } from './session-registry.js';
import { decide, type Decision, type HolderRecord } from './session-model.js';

/** A stream of this process that holds its session, as every registry tracks it. */
export interface Holder {
  readonly claim: SessionClaim;
  readonly record: HolderRecord;
  /** Resolves when the stream has cleaned up and released the session. */
  readonly released: Promise<void>;
  /** Redis holds its record (redis-registry.ts): only such holders are put back when Redis loses them. */
  confirmed: boolean;
}

interface Session {
  holders: Set<Holder>;
  highestSeq: number | undefined;
}

/**
 * This process's holders, per session and per request, and each session's highest seq. A session whose last
 * holder left keeps its seq for `seqMemoryMs`, so a stale request that arrives after the newer one finished is
 * still refused; it no longer counts as a live session.
 */
export class LocalHolders {
  readonly #sessions = new Map<string, Session>();
  readonly #byRequest = new Map<string, Holder>();
  /** Sessions without holders, in the order they were left, with when their seq memory ends. */
  readonly #retired = new Map<string, number>();
  readonly #instance: string;
  readonly #seqMemoryMs: number;
  readonly #now: () => number;

  constructor(opts: { instance: string; seqMemoryMs: number; now?: () => number }) {
    this.#instance = opts.instance;
    this.#seqMemoryMs = opts.seqMemoryMs;
    this.#now = opts.now ?? Date.now;
  }

  /** Sessions with at least one holder here. */
  get size(): number {
    return this.#sessions.size - this.#retired.size;
  }

  /** The record a claim would hold its session under, here. */
  #recordOf(claim: SessionClaim): HolderRecord {
    return { requestId: claim.requestId, instance: this.#instance, at: claim.arrivedAt, seq: claim.seq };
  }

  #holdersOf(sessionKey: string): Holder[] {
    this.#sweep();
    return [...(this.#sessions.get(sessionKey)?.holders ?? [])];
  }

  /** The session's holders here, and the model's decision on the claim, given only what this process knows. */
  decide(claim: SessionClaim): { holders: Holder[]; decision: Decision } {
    const holders = this.#holdersOf(claim.sessionKey);
    const highest = this.#sessions.get(claim.sessionKey)?.highestSeq;
    return { holders, decision: decide(holders.map((h) => h.record), highest, { ...this.#recordOf(claim), policy: claim.policy }) };
  }

  find(requestId: string): Holder | undefined {
    return this.#byRequest.get(requestId);
  }

  /** Every session with holders here, and those holders. */
  *held(): IterableIterator<[string, Holder[]]> {
    for (const [key, s] of this.#sessions) if (s.holders.size > 0) yield [key, [...s.holders]];
  }

  /** Makes the claim a holder of its session (findable and cancellable from now on) and notes its seq. */
  add(claim: SessionClaim): { holder: Holder; lease: SessionLease } {
    this.#sweep();
    const key = claim.sessionKey;
    let session = this.#sessions.get(key);
    if (!session) {
      session = { holders: new Set(), highestSeq: undefined };
      this.#sessions.set(key, session);
    }
    this.#retired.delete(key);
    this.noteSeq(key, claim.seq);
    let resolve!: () => void;
    const holder: Holder = { claim, record: this.#recordOf(claim), released: new Promise<void>((r) => (resolve = r)), confirmed: false };
    session.holders.add(holder);
    this.#byRequest.set(claim.requestId, holder);
    const s = session;
    let released = false;
    const lease: SessionLease = {
      release: () => {
        if (released) return;
        released = true;
        s.holders.delete(holder);
        this.#byRequest.delete(claim.requestId);
        if (s.holders.size === 0 && this.#sessions.get(key) === s) {
          if (s.highestSeq === undefined) this.#sessions.delete(key);
          else this.#retired.set(key, this.#now() + this.#seqMemoryMs);
        }
        resolve();
      },
    };
    return { holder, lease };
  }

  /** A seq seen for the session (from this instance or, through Redis, from another). */
  noteSeq(sessionKey: string, seq: number | undefined): void {
    if (seq === undefined) return;
    const session = this.#sessions.get(sessionKey);
    if (session && (session.highestSeq === undefined || seq > session.highestSeq)) session.highestSeq = seq;
  }

  /** Forgets the seq of sessions left longer ago than the memory lasts: oldest first, so this is cheap. */
  #sweep(): void {
    const now = this.#now();
    for (const [key, until] of this.#retired) {
      if (until > now) break;
      this.#retired.delete(key);
      if (this.#sessions.get(key)?.holders.size === 0) this.#sessions.delete(key);
    }
  }
}
