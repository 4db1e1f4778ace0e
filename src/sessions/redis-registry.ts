import type { Logger } from 'pino';
import { ControlChannel } from '../cluster/control-channel.js';
import type { RedisLink } from '../cluster/redis-link.js';
import { waitBounded } from './wait.js';
import { LocalSessionRegistry, sessionBusy } from './local-registry.js';
import type { SessionClaim, SessionLease, SessionRegistry } from './session-registry.js';

/**
 * Atomically records the new owner of a session and returns the previous one: whichever of two simultaneous
 * claims runs second sees the first, so exactly one of them ends up the winner. `nx` (policy reject) claims
 * only a free session.
 */
const CLAIM = `
local prev = redis.call('GET', KEYS[1])
if ARGV[3] == 'nx' and prev then return {0, prev} end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return {1, prev or ''}`;

/** Deletes the session record only if this stream still owns it (a newer claim may have replaced it). */
const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

/** Keeps an owned record alive; puts it back if Redis lost it (a restart), so ownership recovers by itself. */
const REFRESH = `
local cur = redis.call('GET', KEYS[1])
if cur == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if not cur then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end
return 0`;

const neverAborted = new AbortController().signal;

/**
 * Barge-in across instances. Each stream is first a local holder (so it can be found and cancelled here), then
 * the owner of `session:<key>` in Redis (instance|request, with a TTL refreshed while it runs). A claim that
 * finds another instance's stream asks that instance, over the control channel, to cancel it and waits for its
 * answer, which comes after that stream's cleanup. Without Redis it is exactly the local registry.
 */
export class RedisSessionRegistry implements SessionRegistry {
  readonly #local: LocalSessionRegistry;
  readonly #link: RedisLink;
  readonly #control: ControlChannel;
  readonly #instanceId: string;
  readonly #ttlMs: number;
  readonly #prevWaitMs: number;
  readonly #log: Logger;
  /** Redis key → owner value, for every live stream here: what the refresher keeps alive. */
  readonly #owned = new Map<string, string>();
  readonly #refresher: NodeJS.Timeout;

  constructor(opts: { link: RedisLink; instanceId: string; ttlMs: number; prevStreamWaitMs: number; log: Logger; onControlLatency?: (ms: number) => void }) {
    this.#link = opts.link;
    this.#instanceId = opts.instanceId;
    this.#ttlMs = opts.ttlMs;
    this.#prevWaitMs = opts.prevStreamWaitMs;
    this.#log = opts.log;
    this.#local = new LocalSessionRegistry({ prevStreamWaitMs: opts.prevStreamWaitMs });
    this.#control = new ControlChannel({
      link: opts.link,
      instanceId: opts.instanceId,
      log: opts.log,
      handle: (op, requestId) => this.#handleControl(op, requestId),
      ...(opts.onControlLatency ? { onLatency: opts.onControlLatency } : {}),
    });
    this.#refresher = setInterval(() => this.#refresh(), Math.max(50, Math.floor(opts.ttlMs / 3)));
    this.#refresher.unref();
  }

  async start(): Promise<void> {
    this.#beat();
    await this.#control.start();
  }

  /** This instance's liveness key: while it exists, the instance is taken to be alive (control_channel.ts). */
  #beat(): void {
    if (this.#link.available) this.#link.cmd.set(this.#link.key('instance', this.#instanceId), '1', 'PX', this.#ttlMs).catch(() => {});
  }

  get size(): number {
    return this.#local.size;
  }

  async acquire(claim: SessionClaim): Promise<SessionLease> {
    const { lease, previous } = this.#local.register(claim);
    const key = this.#link.key('session', claim.sessionKey);
    const owner = `${this.#instanceId}|${claim.requestId}`;
    this.#owned.set(key, owner);
    const release = () => {
      lease.release();
      if (this.#owned.get(key) === owner) this.#owned.delete(key);
      if (this.#link.available) this.#link.cmd.eval(RELEASE, 1, key, owner).catch(() => {});
    };
    try {
      const remote = await this.#claim(key, owner, claim);
      await this.#local.settle(claim, previous);
      if (remote && claim.policy !== 'parallel') await this.#settleRemote(claim, remote);
    } catch (err) {
      release();
      throw err;
    }
    return { release };
  }

  /** The previous owner on another instance, if any; undefined when there is none or Redis is away. */
  async #claim(key: string, owner: string, claim: SessionClaim): Promise<{ instance: string; requestId: string } | undefined> {
    if (!this.#link.available) return undefined;
    let result: [number, string];
    try {
      result = (await this.#link.cmd.eval(CLAIM, 1, key, owner, String(this.#ttlMs), claim.policy === 'reject' ? 'nx' : 'set')) as [number, string];
    } catch {
      return undefined; // degraded: the local registry alone decides
    }
    const [claimed, prev] = result;
    const sep = prev.indexOf('|');
    const previous = sep > 0 ? { instance: prev.slice(0, sep), requestId: prev.slice(sep + 1) } : undefined;
    if (!claimed) {
      if (previous?.instance === this.#instanceId && !this.#local.find(previous.requestId)) {
        // A record of ours whose stream is gone (its release was lost): take it over.
        await this.#link.cmd.set(key, owner, 'PX', this.#ttlMs).catch(() => {});
        return undefined;
      }
      throw sessionBusy(claim);
    }
    return previous && previous.instance !== this.#instanceId ? previous : undefined;
  }

  async #settleRemote(claim: SessionClaim, prev: { instance: string; requestId: string }): Promise<void> {
    const started = performance.now();
    let clean: boolean;
    if (claim.policy === 'queue') {
      // Ask again every TTL: an instance that died stops answering, and then no longer has subscribers.
      do clean = await this.#control.request(prev.instance, 'await', prev.requestId, this.#ttlMs, claim.signal);
      while (!clean && this.#link.available);
    } else {
      clean = await this.#control.request(prev.instance, 'cancel', prev.requestId, this.#prevWaitMs, claim.signal);
    }
    const fields = { trace: claim.trace, prev: prev.requestId, prev_instance: prev.instance, waited_ms: Math.round(performance.now() - started) };
    if (clean) claim.log.info(fields, 'prev_stream_finished_cleanly');
    else claim.log.warn(fields, 'prev_stream_wait_timeout');
  }

  /** Another instance wants one of our streams cancelled (or just to know when it ends). */
  async #handleControl(op: 'cancel' | 'await', requestId: string): Promise<boolean> {
    const holder = this.#local.find(requestId);
    if (!holder) return true;
    if (op === 'cancel') holder.claim.cancel('superseded');
    return waitBounded(holder.released, op === 'cancel' ? this.#prevWaitMs : this.#ttlMs, neverAborted);
  }

  #refresh(): void {
    this.#beat();
    if (!this.#link.available || this.#owned.size === 0) return;
    const pipeline = this.#link.cmd.pipeline();
    for (const [key, owner] of this.#owned) pipeline.eval(REFRESH, 1, key, owner, String(this.#ttlMs));
    pipeline.exec().catch((err: unknown) => this.#log.debug({ err }, 'session_refresh_failed'));
  }

  async close(): Promise<void> {
    clearInterval(this.#refresher);
    if (this.#link.available) await this.#link.cmd.del(this.#link.key('instance', this.#instanceId)).catch(() => {});
  }
}
