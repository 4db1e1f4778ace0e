import type { RedisLink } from '../cluster/redis-link.js';
import { LocalQuotaStore } from './local-store.js';
import type { Admission, QuotaLimits, QuotaStore } from './quota-store.js';

/**
 * Checks and counts both quotas in one atomic step, on Redis's clock (instances' clocks may disagree).
 * KEYS[1]: the key's GCRA arrival time (ms, see gcra() in quota-store.ts); KEYS[2]: its streams, a sorted set of
 * stream ids scored by expiry. Expired ids are dropped before counting: a slot whose instance died (and so
 * stopped refreshing it) frees itself within the TTL.
 * ARGV: rpm, maxStreams, stream id, TTL ms. Returns {1} or {0, quota, retry-after ms}.
 */
const ADMIT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rpm = tonumber(ARGV[1])
local max = tonumber(ARGV[2])
local ttl = tonumber(ARGV[4])
if max > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
  if redis.call('ZCARD', KEYS[2]) >= max then return {0, 'streams', 0} end
end
if rpm > 0 then
  local tat = tonumber(redis.call('GET', KEYS[1])) or 0
  if tat < now then tat = now end
  local nxt = tat + 60000 / rpm
  if nxt - now > 60000 then return {0, 'rpm', math.ceil(nxt - now - 60000)} end
  redis.call('SET', KEYS[1], tostring(nxt), 'PX', math.ceil(nxt - now))
end
if max > 0 then
  redis.call('ZADD', KEYS[2], now + ttl, ARGV[3])
  redis.call('PEXPIRE', KEYS[2], ttl)
end
return {1}`;

/** Keeps a running stream's slot alive, and puts it back if Redis lost it (a restart). ARGV: stream id, TTL ms. */
const REFRESH = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
redis.call('PEXPIRE', KEYS[1], ttl)
return 1`;

/**
 * Quotas shared by every instance on one Redis. Each running stream's slot is refreshed every third of the TTL
 * (the session TTL), so a live stream keeps its slot however long it runs and a dead instance's slots expire.
 * While Redis is away, admission falls back to this instance's own counts (a LocalQuotaStore): a request is
 * never refused because Redis is, at the cost of limits applying per instance until it is back.
 */
export class RedisQuotaStore implements QuotaStore {
  readonly #link: RedisLink;
  readonly #ttlMs: number;
  readonly #local = new LocalQuotaStore();
  /** Stream id → its sorted set, for every slot this instance holds in Redis: what the refresher keeps alive. */
  readonly #slots = new Map<string, string>();
  readonly #refresher: NodeJS.Timeout;

  constructor(opts: { link: RedisLink; ttlMs: number }) {
    this.#link = opts.link;
    this.#ttlMs = opts.ttlMs;
    this.#refresher = setInterval(() => this.#refresh(), Math.max(50, Math.floor(opts.ttlMs / 3)));
    this.#refresher.unref();
  }

  async admit(owner: string, limits: QuotaLimits, streamId: string): Promise<Admission> {
    if (!this.#link.available) return this.#local.admitNow(owner, limits);
    // A hash tag keeps one key's two records in one slot of a Redis Cluster, as one script needs.
    const streamsKey = this.#link.key('quota', `{${owner}}`, 'streams');
    let result: [number, string?, number?];
    try {
      result = (await this.#link.within(this.#link.cmd.eval(ADMIT, 2, this.#link.key('quota', `{${owner}}`, 'rpm'), streamsKey, limits.rpm, limits.maxStreams, streamId, this.#ttlMs))) as [number, string?, number?];
    } catch (err) {
      this.#link.noteFailure(err);
      return this.#local.admitNow(owner, limits); // degraded: this instance's own counts decide
    }
    if (result[0] !== 1) {
      return result[1] === 'rpm' ? { ok: false, quota: 'rpm', retryAfterMs: Number(result[2]) } : { ok: false, quota: 'streams', retryAfterMs: undefined };
    }
    if (limits.maxStreams === 0) return { ok: true, release: () => {} };
    this.#slots.set(streamId, streamsKey);
    return {
      ok: true,
      release: () => {
        if (this.#slots.get(streamId) !== streamsKey) return;
        this.#slots.delete(streamId);
        // Lost while Redis is away: the slot then expires by itself within the TTL.
        if (this.#link.available) this.#link.cmd.zrem(streamsKey, streamId).catch(() => {});
      },
    };
  }

  /** Slots this instance holds in Redis (the local fallback's are counted by the caller). */
  get size(): number {
    return this.#slots.size;
  }

  #refresh(): void {
    if (!this.#link.available || this.#slots.size === 0) return;
    // Auto-pipelined: one write per server, where one pipeline could not span a cluster's shards. A failure is
    // retried on the next tick; the TTL covers two missed refreshes.
    for (const [streamId, key] of this.#slots) this.#link.cmd.eval(REFRESH, 1, key, streamId, this.#ttlMs).catch(() => {});
  }

  async close(): Promise<void> {
    clearInterval(this.#refresher);
  }
}
