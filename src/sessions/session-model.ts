import type { SessionPolicy } from '../config.js';

/**
 * The one model of a session that the local and the Redis registry share. A session has holders: the requests
 * whose streams it has admitted and that have not released it yet (one, usually; several under `queue` and
 * `parallel`), each on some instance. It also remembers the highest `X-Session-Seq` it has seen. A new request
 * (the claimant) gets one decision, the same whether this function makes it in-process or redis-registry.ts's
 * CLAIM script makes it atomically in Redis:
 *
 * - `stale`: its seq is not above the highest seen; it is refused and cancels nothing.
 * - `busy`: policy `reject` and the session has a holder.
 * - `superseded`: policy `cancel-previous` and a holder is newer than it (it arrived later, or has a higher
 *   seq): it yields to that holder instead of cancelling it. This is what keeps arrival order when claims
 *   reach the store out of order (two instances, a stalled Redis).
 * - `claimed`: it becomes a holder. Under `cancel-previous` every holder is displaced (to be cancelled); under
 *   `queue` it waits for every holder; under `parallel` it waits for none.
 */
export interface HolderRecord {
  requestId: string;
  instance: string;
  /** When the request arrived (epoch ms): the order barge-in keeps without a seq. */
  at: number;
  seq?: number | undefined;
}

export interface Claimant extends HolderRecord {
  policy: SessionPolicy;
}

export type Decision =
  | { kind: 'stale'; highest: number }
  | { kind: 'busy' }
  | { kind: 'superseded'; by: HolderRecord }
  | { kind: 'claimed'; displaced: HolderRecord[]; waitFor: HolderRecord[] };

/**
 * Whether `a` is the newer request: by seq when both carry one (the client's own order), else by arrival time,
 * then request id, so every instance orders any two requests the same way.
 */
export function newer(a: HolderRecord, b: HolderRecord): boolean {
  if (a.seq !== undefined && b.seq !== undefined && a.seq !== b.seq) return a.seq > b.seq;
  if (a.at !== b.at) return a.at > b.at;
  return a.requestId > b.requestId;
}

export function decide(holders: readonly HolderRecord[], highestSeq: number | undefined, claimant: Claimant): Decision {
  if (claimant.seq !== undefined && highestSeq !== undefined && claimant.seq <= highestSeq) return { kind: 'stale', highest: highestSeq };
  switch (claimant.policy) {
    case 'reject':
      return holders.length > 0 ? { kind: 'busy' } : { kind: 'claimed', displaced: [], waitFor: [] };
    case 'cancel-previous': {
      const by = holders.find((h) => newer(h, claimant));
      if (by) return { kind: 'superseded', by };
      return { kind: 'claimed', displaced: [...holders], waitFor: [] };
    }
    case 'queue':
      return { kind: 'claimed', displaced: [], waitFor: [...holders] };
    case 'parallel':
      return { kind: 'claimed', displaced: [], waitFor: [] };
  }
}

/** `instance|at|seq` (seq `-` when none): a holder as the Redis record stores it. */
export function encodeHolder(h: HolderRecord): string {
  return `${h.instance}|${h.at}|${h.seq ?? '-'}`;
}

export function decodeHolder(requestId: string, value: string): HolderRecord | undefined {
  const [instance, at, seq] = value.split('|');
  if (!instance || at === undefined || seq === undefined || !Number.isFinite(Number(at))) return undefined;
  return { requestId, instance, at: Number(at), seq: seq === '-' ? undefined : Number(seq) };
}
