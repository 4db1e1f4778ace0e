import type { Logger } from 'pino';
import { ControlChannel, type ControlResult } from '../cluster/control-channel.js';
import type { RedisLink } from '../cluster/redis-link.js';
import { LocalHolders, type Holder } from './local-holders.js';
import { refuse, settleLocal } from './local-registry.js';
import { CLAIM, REFRESH, RELEASE, RESOLVE } from './redis-scripts.js';
import { decodeHolder, encodeHolder, type Decision, type HolderRecord } from './session-model.js';
import type { SessionClaim, SessionLease, SessionRegistry } from './session-registry.js';
import { waitBounded } from './wait.js';

/** Why a barge-in was decided by this instance alone: Redis was away, or did not answer the claim in time. */
export type DegradedReason = 'redis_unavailable' | 'redis_timeout';

const RECONCILE_RETRY_MS = 250;
const neverAborted = new AbortController().signal;

/** Where a claim's result is kept: beside its session's record, under the same hash tag. */
function claimKey(sessionRecord: string, requestId: string): string {
  return `${sessionRecord}:claim:${requestId}`;
}

function records(list: string): HolderRecord[] {
  const out: HolderRecord[] = [];
  for (const item of list.split(';')) {
    const eq = item.indexOf('=');
    const r = eq > 0 ? decodeHolder(item.slice(0, eq), item.slice(eq + 1)) : undefined;
    if (r) out.push(r);
  }
  return out;
}

/** The CLAIM script's answer as a decision, and the holders it found dead. */
function parseClaim([kind, detail]: [string, string]): { decision: Decision; gone: HolderRecord[] } {
  switch (kind) {
    case 'stale':
      return { decision: { kind: 'stale', highest: Number(detail) }, gone: [] };
    case 'busy':
      return { decision: { kind: 'busy' }, gone: [] };
    case 'superseded': {
      const by = records(detail)[0] ?? { requestId: '?', instance: '?', at: 0 };
      return { decision: { kind: 'superseded', by }, gone: [] };
    }
    default: {
      const [listed = '', gone = ''] = detail.split('#');
      // The script lists the displaced holders for cancel-previous and the ones to wait for under queue.
      const holders = records(listed);
      return { decision: { kind: 'claimed', displaced: holders, waitFor: holders }, gone: records(gone) };
    }
  }
}

/** A claim's answer; `sent` tells, when there is none, whether it may yet have run in Redis (a timeout). */
type ClaimAnswer = { decision: Decision; gone: HolderRecord[] } | { decision: undefined; sent: boolean };

/**
 * Barge-in across instances, on the same model as the local registry (session-model.ts): a session's holders
 * are this process's (LocalHolders, so they can be found and cancelled here) and, for every instance, those in
 * the session's record in Redis, which the CLAIM script decides on atomically. A claim's displaced holders are
 * cancelled as soon as it returns, whatever becomes of the claimant: this instance's at once, others' over the
 * control channel, all waited for together. Same-instance holders and stale seqs are decided before Redis is
 * asked, so they need no round trip.
 *
 * Without an answer from Redis (away, or a claim that timed out and may yet run), the claim is decided here
 * alone, logged `barge_in_degraded`, and reconciled: the same claim is sent again until Redis answers it (a
 * claim is idempotent), and then whoever it displaced is cancelled, or the claimant itself if a newer request
 * got there first. Two streams of one session generate together at most until then.
 */
export class RedisSessionRegistry implements SessionRegistry {
  readonly #holders: LocalHolders;
  readonly #link: RedisLink;
  readonly #control: ControlChannel;
  readonly #instanceId: string;
  readonly #ttlMs: number;
  readonly #prevWaitMs: number;
  readonly #log: Logger;
  readonly #onDegraded: ((reason: DegradedReason) => void) | undefined;
  readonly #refresher: NodeJS.Timeout;
  /** Holders being claimed again after Redis lost their record, so a refresh does not send a second claim. */
  readonly #reclaiming = new Set<Holder>();
  #closed = false;

  constructor(opts: {
    link: RedisLink;
    instanceId: string;
    ttlMs: number;
    prevStreamWaitMs: number;
    log: Logger;
    onControlLatency?: (ms: number) => void;
    onDegraded?: (reason: DegradedReason) => void;
  }) {
    this.#link = opts.link;
    this.#instanceId = opts.instanceId;
    this.#ttlMs = opts.ttlMs;
    this.#prevWaitMs = opts.prevStreamWaitMs;
    this.#log = opts.log;
    this.#onDegraded = opts.onDegraded;
    this.#holders = new LocalHolders({ instance: opts.instanceId, seqMemoryMs: opts.ttlMs });
    this.#control = new ControlChannel({
      link: opts.link,
      instanceId: opts.instanceId,
      log: opts.log,
      handle: (op, requestId) => this.#handleControl(op, requestId),
      ...(opts.onControlLatency ? { onLatency: opts.onControlLatency } : {}),
    });
    this.#refresher = setInterval(() => this.#refresh(), Math.max(50, Math.floor(opts.ttlMs / 3)));
    this.#refresher.unref();
    // Redis back (a restart loses every key): this instance's liveness key and its holders go back at once, before
    // another instance's claim can take its streams for a dead instance's.
    this.#onUp = () => this.#refresh();
    opts.link.on('up', this.#onUp);
  }

  readonly #onUp: () => void;

  async start(): Promise<void> {
    this.#beat();
    await this.#control.start();
  }

  /** A session's record: its hash tag (the session) keeps its claims' results in the same cluster slot. */
  #sessionKey(sessionKey: string): string {
    return this.#link.key('session', `{${sessionKey}}`);
  }

  /** This instance's liveness key: while it exists, the instance is taken to be alive (control-channel.ts). */
  #beat(): void {
    if (this.#link.available) this.#link.cmd.set(this.#link.key('instance', this.#instanceId), '1', 'PX', this.#ttlMs).catch((err: unknown) => this.#link.noteFailure(err));
  }

  get size(): number {
    return this.#holders.size;
  }

  async acquire(claim: SessionClaim): Promise<SessionLease> {
    const { holders: local, decision: here } = this.#holders.decide(claim);
    if (here.kind !== 'claimed') throw refuse(claim, here);
    const { holder, lease } = this.#holders.add(claim);
    const key = this.#sessionKey(claim.sessionKey);
    const release = () => {
      lease.release();
      if (this.#link.available) this.#link.cmd.eval(RELEASE, 1, key, claim.requestId, String(this.#ttlMs)).catch((err: unknown) => this.#link.noteFailure(err));
    };
    const ids = new Set([...here.displaced, ...here.waitFor].map((r) => r.requestId));
    const localPrev = local.filter((h) => ids.has(h.claim.requestId));
    // This instance's older streams are cancelled now, before the Redis round trip: they are older whatever
    // Redis says, and a barge-in within one instance needs nothing from it. Not for a claim with a seq, which
    // Redis may yet find stale: a stale request cancels nothing.
    const cancelledEarly = claim.policy === 'cancel-previous' && claim.seq === undefined;
    if (cancelledEarly) for (const h of localPrev) h.claim.cancel('superseded');
    const cancelLate = claim.policy === 'cancel-previous' && !cancelledEarly;
    try {
      const wasAvailable = this.#link.available;
      const answer = await this.#claim(key, holder);
      if (!answer.decision) {
        this.#degraded(claim, wasAvailable ? 'redis_timeout' : 'redis_unavailable');
        // Started before the wait, so it runs whatever becomes of this claimant.
        void this.#reconcile(holder, key, answer.sent);
        await settleLocal(claim, localPrev, this.#prevWaitMs, cancelLate);
        return { release };
      }
      const { decision, gone } = answer;
      for (const g of gone) claim.log.warn({ trace: claim.trace, prev: g.requestId, prev_instance: g.instance }, 'prev_stream_owner_gone');
      if (decision.kind !== 'claimed') throw refuse(claim, decision);
      holder.confirmed = true;
      this.#holders.noteSeq(claim.sessionKey, claim.seq);
      await this.#settle(claim, localPrev, claim.policy === 'cancel-previous' ? decision.displaced : claim.policy === 'queue' ? decision.waitFor : [], cancelLate);
    } catch (err) {
      release();
      throw err;
    }
    return { release };
  }

  #degraded(claim: SessionClaim, reason: DegradedReason): void {
    claim.log.warn({ trace: claim.trace, session: claim.sessionId, reason }, 'barge_in_degraded');
    this.#onDegraded?.(reason);
  }

  /** The CLAIM script's answer, or none when Redis gave none (away, a timeout, an error). */
  async #claim(key: string, holder: Holder): Promise<ClaimAnswer> {
    if (!this.#link.available) return { decision: undefined, sent: false };
    const { claim, record } = holder;
    try {
      const result = (await this.#link.within(this.#link.cmd.eval(
        CLAIM,
        2,
        key,
        claimKey(key, claim.requestId),
        claim.requestId,
        encodeHolder(record),
        String(record.at),
        record.seq === undefined ? '' : String(record.seq),
        claim.policy,
        String(this.#ttlMs),
      ))) as [string, string];
      if (result[0] === 'void') return { decision: undefined, sent: false };
      return parseClaim(result);
    } catch (err) {
      this.#link.noteFailure(err);
      return { decision: undefined, sent: true };
    }
  }

  /**
   * Cancels (cancel-previous) or awaits (queue) the previous holders: this instance's own, and other instances'
   * through the control channel, every message sent before anything is waited for. One log line per previous
   * stream says how it ended.
   */
  async #settle(claim: SessionClaim, localPrev: Holder[], listed: HolderRecord[], cancelLocal: boolean): Promise<void> {
    const remote = listed.filter((r) => r.instance !== this.#instanceId);
    // Holders of ours that Redis listed and this instance's own decision did not (there should be none).
    const extra: Holder[] = [];
    for (const r of listed) {
      if (r.instance !== this.#instanceId || localPrev.some((h) => h.claim.requestId === r.requestId)) continue;
      const h = this.#holders.find(r.requestId);
      if (h) extra.push(h);
    }
    if (claim.policy === 'cancel-previous') for (const h of extra) h.claim.cancel('superseded');
    const started = performance.now();
    const op = claim.policy === 'queue' ? 'await' : 'cancel';
    // Sent now, on their own: a claimant cancelled while it waits has still asked for its predecessors' end.
    const asked = remote.map((r) => ({ r, result: this.#ask(r, op) }));
    const waits: Promise<unknown>[] = [
      settleLocal(claim, localPrev, this.#prevWaitMs, cancelLocal),
      settleLocal(claim, extra, this.#prevWaitMs, false),
    ];
    for (const { r, result } of asked) {
      waits.push(
        waitBounded(result, Infinity, claim.signal).then(async () => {
          const outcome = await result;
          const fields = { trace: claim.trace, prev: r.requestId, prev_instance: r.instance, waited_ms: Math.round(performance.now() - started) };
          if (outcome === 'done') claim.log.info(fields, 'prev_stream_finished_cleanly');
          else if (outcome === 'gone') claim.log.warn(fields, 'prev_stream_owner_gone');
          else claim.log.warn(fields, 'prev_stream_wait_timeout');
        }),
      );
    }
    await Promise.all(waits);
  }

  /** One request to another instance about its stream, not tied to any claimant's fate. */
  async #ask(r: HolderRecord, op: 'cancel' | 'await'): Promise<ControlResult> {
    if (op === 'cancel') return this.#control.request(r.instance, 'cancel', r.requestId, this.#prevWaitMs, neverAborted);
    // Asked again every TTL: an instance that died stops answering, and then its liveness key expires.
    for (;;) {
      const result = await this.#control.request(r.instance, 'await', r.requestId, this.#ttlMs, neverAborted);
      if (result !== 'timeout' || !this.#link.available || this.#closed) return result;
    }
  }

  /**
   * After a degraded claim, the barge-in it should have been, once Redis answers. While the stream lives, the
   * same claim is sent again (it is idempotent): then whoever it displaced is cancelled, or, if a newer request
   * holds the session, the stream itself. Once the stream is gone, a claim that was sent and never answered is
   * resolved instead: if it ran, its displaced holders are cancelled and its record released; if not, it never
   * will.
   */
  async #reconcile(holder: Holder, key: string, sent: boolean): Promise<void> {
    let alive = true;
    void holder.released.then(() => (alive = false));
    const { claim } = holder;
    const retry = () => new Promise((r) => setTimeout(r, RECONCILE_RETRY_MS).unref());
    while (!this.#closed) {
      if (!this.#link.available) {
        await retry();
        continue;
      }
      if (!alive && claim.policy === 'cancel-previous') {
        // Its stream is over, but the barge-in it made stands: the streams it displaces are cancelled still (a
        // voice would otherwise go on speaking the answer the person interrupted, once Redis is back with it, as
        // after a failover). Then it leaves, and a late run of its first claim finds the claim settled (void).
        const answer = await this.#claim(key, holder);
        if (!answer.decision) {
          await retry();
          continue;
        }
        if (answer.decision.kind === 'claimed') this.#cancelAll(answer.decision.displaced);
        this.#link.cmd.eval(RELEASE, 1, key, claim.requestId, String(this.#ttlMs)).catch((err: unknown) => this.#link.noteFailure(err));
        this.#link.cmd.set(claimKey(key, claim.requestId), 'void', 'PX', this.#ttlMs).catch((err: unknown) => this.#link.noteFailure(err));
        claim.log.info({ trace: claim.trace, outcome: answer.decision.kind, ended: true }, 'barge_in_reconciled');
        return;
      }
      if (!alive) {
        if (!sent) return;
        let ran: [string, string];
        try {
          ran = (await this.#link.within(this.#link.cmd.eval(RESOLVE, 1, claimKey(key, claim.requestId), String(this.#ttlMs)))) as [string, string];
        } catch (err) {
          this.#link.noteFailure(err);
          await retry();
          continue;
        }
        if (ran[0] === 'ran') {
          const { decision } = parseClaim(['claimed', ran[1]]);
          if (decision.kind === 'claimed' && claim.policy === 'cancel-previous') this.#cancelAll(decision.displaced);
          this.#link.cmd.eval(RELEASE, 1, key, claim.requestId, String(this.#ttlMs)).catch((err: unknown) => this.#link.noteFailure(err));
        }
        claim.log.info({ trace: claim.trace, outcome: ran[0] === 'ran' ? 'ran' : 'void' }, 'barge_in_reconciled');
        return;
      }
      const answer = await this.#claim(key, holder);
      sent ||= answer.decision !== undefined || answer.sent;
      if (!answer.decision) {
        await retry();
        continue;
      }
      claim.log.info({ trace: claim.trace, outcome: answer.decision.kind }, 'barge_in_reconciled');
      this.#settleLate(holder, answer.decision);
      return;
    }
  }

  /**
   * A claim Redis answered after its stream had started: whoever it displaced is cancelled now, or, when the
   * session has a newer holder (or refuses it), the stream itself.
   */
  #settleLate(holder: Holder, decision: Decision): void {
    const { claim } = holder;
    if (decision.kind === 'claimed') {
      holder.confirmed = true;
      this.#holders.noteSeq(claim.sessionKey, claim.seq);
      if (claim.policy === 'cancel-previous') this.#cancelAll(decision.displaced);
      return;
    }
    if (decision.kind === 'superseded') claim.log.info({ trace: claim.trace, by: decision.by.requestId, by_instance: decision.by.instance }, 'arrived_after_newer');
    claim.cancel('superseded');
  }

  /**
   * A holder whose record Redis lost is claimed again, as if it arrived now with its own arrival time and seq,
   * so it and any request that claimed the session meanwhile are ordered like any two claims.
   */
  async #reclaim(holder: Holder, key: string): Promise<void> {
    if (this.#reclaiming.has(holder)) return;
    this.#reclaiming.add(holder);
    try {
      const answer = await this.#claim(key, holder);
      // No answer: the next refresh finds it missing again.
      if (!answer.decision || holder.claim.signal.aborted) return;
      holder.claim.log.warn({ trace: holder.claim.trace, session: holder.claim.sessionId, outcome: answer.decision.kind }, 'session_record_lost');
      this.#settleLate(holder, answer.decision);
    } finally {
      this.#reclaiming.delete(holder);
    }
  }

  /** Cancels these holders wherever they run, without waiting. */
  #cancelAll(displaced: HolderRecord[]): void {
    for (const r of displaced) {
      if (r.instance === this.#instanceId) this.#holders.find(r.requestId)?.claim.cancel('superseded');
      else void this.#ask(r, 'cancel');
    }
  }

  /** Another instance wants one of our streams cancelled (or just to know when it ends). */
  async #handleControl(op: 'cancel' | 'await', requestId: string): Promise<boolean> {
    const holder = this.#holders.find(requestId);
    if (!holder) return true;
    if (op === 'cancel') holder.claim.cancel('superseded');
    return waitBounded(holder.released, op === 'cancel' ? this.#prevWaitMs : this.#ttlMs, neverAborted);
  }

  #refresh(): void {
    this.#beat();
    if (!this.#link.available) return;
    // One command per session, which auto-pipelining sends in one write per server (a cluster's sessions are on
    // several shards, which one pipeline could not span).
    for (const [sessionKey, holders] of this.#holders.held()) {
      const confirmed = holders.filter((h) => h.confirmed);
      if (confirmed.length === 0) continue;
      const key = this.#sessionKey(sessionKey);
      this.#link.cmd.eval(REFRESH, 1, key, String(this.#ttlMs), ...confirmed.map((h) => h.record.requestId)).then(
        (missing) => {
          if (!Array.isArray(missing) || missing.length === 0) return;
          for (const h of confirmed) if (missing.includes(h.record.requestId)) void this.#reclaim(h, key);
        },
        (err: unknown) => this.#log.debug({ err, session: sessionKey }, 'session_refresh_failed'),
      );
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#refresher);
    this.#link.off('up', this.#onUp);
    this.#control.close();
    if (this.#link.available) await this.#link.cmd.del(this.#link.key('instance', this.#instanceId)).catch(() => {});
  }
}
