import { JarvisError, StreamCancelled } from '../errors.js';
import { LocalHolders, type Holder } from './local-holders.js';
import type { Decision } from './session-model.js';
import type { SessionClaim, SessionLease, SessionRegistry } from './session-registry.js';
import { waitBounded } from './wait.js';

export function sessionBusy(claim: SessionClaim): JarvisError {
  return new JarvisError('JARVIS_ERR_SESSION_BUSY', `Session ${claim.sessionId} already has a stream in flight.`, { param: 'X-Session-Id' });
}

export function staleRequest(claim: SessionClaim, highest: number): JarvisError {
  return new JarvisError('JARVIS_ERR_STALE_REQUEST', `X-Session-Seq ${claim.seq} is not above ${highest}, the highest session ${claim.sessionId} has seen: a newer request superseded this one.`, {
    param: 'X-Session-Seq',
  });
}

/**
 * What a claim that is refused or yields throws: session_busy, stale_request, or (superseded by a newer holder)
 * the claim's own cancellation, after logging which request it yielded to.
 */
export function refuse(claim: SessionClaim, decision: Exclude<Decision, { kind: 'claimed' }>): Error {
  switch (decision.kind) {
    case 'stale':
      return staleRequest(claim, decision.highest);
    case 'busy':
      return sessionBusy(claim);
    case 'superseded':
      claim.log.info({ trace: claim.trace, by: decision.by.requestId, by_instance: decision.by.instance }, 'arrived_after_newer');
      claim.cancel('superseded');
      return claim.signal.aborted ? (claim.signal.reason as Error) : new StreamCancelled('superseded');
  }
}

/**
 * Cancels this process's displaced holders (`cancel-previous`) and waits for them, at most `prevWaitMs`, or, for
 * a `queue` claim, waits for its holders however long they take, logging how each previous stream ended. The
 * claimant's own cancellation ends the wait.
 */
export async function settleLocal(claim: SessionClaim, prev: Holder[], prevWaitMs: number, cancel = claim.policy === 'cancel-previous'): Promise<void> {
  if (prev.length === 0) return;
  if (cancel) for (const h of prev) h.claim.cancel('superseded');
  const bound = claim.policy === 'queue' ? Infinity : prevWaitMs;
  const started = performance.now();
  const clean = await waitBounded(Promise.all(prev.map((h) => h.released)), bound, claim.signal);
  const fields = { trace: claim.trace, prev: prev.map((h) => h.claim.requestId).join(','), waited_ms: Math.round(performance.now() - started) };
  if (clean) claim.log.info(fields, 'prev_stream_finished_cleanly');
  else claim.log.warn(fields, 'prev_stream_wait_timeout');
}

/** Barge-in within one process. State is this object's own; tests run several registries side by side. */
export class LocalSessionRegistry implements SessionRegistry {
  readonly #holders: LocalHolders;
  readonly #prevWaitMs: number;

  constructor(opts: { prevStreamWaitMs: number; seqMemoryMs?: number; instance?: string }) {
    this.#prevWaitMs = opts.prevStreamWaitMs;
    this.#holders = new LocalHolders({ instance: opts.instance ?? 'local', seqMemoryMs: opts.seqMemoryMs ?? 10_000 });
  }

  get size(): number {
    return this.#holders.size;
  }

  async acquire(claim: SessionClaim): Promise<SessionLease> {
    const { holders, decision } = this.#holders.decide(claim);
    if (decision.kind !== 'claimed') throw refuse(claim, decision);
    const { lease } = this.#holders.add(claim);
    const ids = new Set([...decision.displaced, ...decision.waitFor].map((r) => r.requestId));
    try {
      await settleLocal(claim, holders.filter((h) => ids.has(h.claim.requestId)), this.#prevWaitMs);
    } catch (err) {
      lease.release();
      throw err;
    }
    return lease;
  }

  async close(): Promise<void> {}
}
