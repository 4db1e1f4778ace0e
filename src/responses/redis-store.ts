import type { RedisLink } from '../cluster/redis-link.js';
import { MemoryResponseStore, storeKey, type ResponseStore, type StoredResponse } from './response-store.js';

const TAG = '{responses}';

/**
 * Stores one response and keeps the index to at most `max` responses, dropping the oldest and the expired.
 * KEYS: the response, the index. ARGV: the JSON, TTL ms, now (ms), max, the key prefix of responses, `<owner>/<id>`.
 */
const PUT = `
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[6])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', tonumber(ARGV[3]) - tonumber(ARGV[2]))
local over = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[4])
if over > 0 then
  local popped = redis.call('ZPOPMIN', KEYS[2], over)
  for i = 1, #popped, 2 do redis.call('DEL', ARGV[5] .. popped[i]) end
end
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return 1`;

/**
 * Responses in Redis, so any instance can read or continue any chain (`<prefix>{responses}:<owner>/<id>`, with its
 * TTL, and `<prefix>{responses}:index`, the index that bounds how many are kept). One hash tag for all of them: the
 * script that stores one drops the oldest, so on a Redis Cluster they share a shard (they are few and bounded,
 * JARVIS_RESPONSES_MAX). While Redis is away, this instance keeps what
 * it stores in its own memory and reads from there too: a chain continues on the instance that holds it.
 */
export class RedisResponseStore implements ResponseStore {
  readonly #link: RedisLink;
  readonly #ttlMs: number;
  readonly #max: number;
  readonly #local: MemoryResponseStore;

  constructor(opts: { link: RedisLink; ttlMs: number; maxEntries: number }) {
    this.#link = opts.link;
    this.#ttlMs = opts.ttlMs;
    this.#max = opts.maxEntries;
    this.#local = new MemoryResponseStore({ ttlMs: opts.ttlMs, maxEntries: opts.maxEntries });
  }

  get size(): number {
    return this.#local.size;
  }

  #key(id: string, owner: string | null): string {
    return this.#link.key(TAG, storeKey(id, owner));
  }

  get #index(): string {
    return this.#link.key(TAG, 'index');
  }

  async get(id: string, owner: string | null): Promise<StoredResponse | undefined> {
    const local = await this.#local.get(id, owner);
    if (local || !this.#link.available) return local;
    let text: string | null;
    try {
      text = await this.#link.within(this.#link.cmd.get(this.#key(id, owner)));
    } catch (err) {
      this.#link.noteFailure(err);
      return undefined;
    }
    if (text === null) return undefined;
    return JSON.parse(text) as StoredResponse;
  }

  async put(stored: StoredResponse): Promise<void> {
    if (this.#link.available) {
      try {
        await this.#link.within(this.#link.cmd.eval(PUT, 2, this.#key(stored.id, stored.owner), this.#index, JSON.stringify(stored), String(this.#ttlMs), String(Date.now()), String(this.#max), this.#link.key(TAG, ''), storeKey(stored.id, stored.owner)));
        // A copy here too would go stale when another instance truncates or deletes it.
        await this.#local.delete(stored.id, stored.owner);
        return;
      } catch (err) {
        this.#link.noteFailure(err);
      }
    }
    await this.#local.put(stored);
  }

  async delete(id: string, owner: string | null): Promise<boolean> {
    if (await this.#local.delete(id, owner)) return true;
    const found = await this.get(id, owner);
    if (!found) return false;
    try {
      await this.#link.cmd.multi().del(this.#key(id, owner)).zrem(this.#index, storeKey(id, owner)).exec();
      return true;
    } catch (err) {
      this.#link.noteFailure(err);
      return false;
    }
  }
}
