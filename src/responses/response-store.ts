import type { Item } from './translate.js';

/** A stored response: the Response object, and the conversation it ends (what a chained request continues). */
export interface StoredResponse {
  id: string;
  /** The tenant (the key's name; null without keys): only it may read, chain or delete the response. */
  owner: string | null;
  /** The request that made it: its ledger line, which a truncate cuts. */
  requestId?: string | undefined;
  response: Record<string, unknown>;
  /** Every item up to and including this response's output: the input of the conversation so far. */
  conversation: Item[];
}

/**
 * Where a response is kept: under its tenant and its id. Ids are the upstream's for a native relay, and an
 * upstream that repeated one must not let one tenant replace another's response.
 */
export const storeKey = (id: string, owner: string | null) => `${owner ?? '-'}/${id}`;

export interface ResponseStore {
  get(id: string, owner: string | null): Promise<StoredResponse | undefined>;
  put(stored: StoredResponse): Promise<void>;
  /** True when there was one (of this owner) to delete. */
  delete(id: string, owner: string | null): Promise<boolean>;
  readonly size: number;
}

/**
 * Responses kept in this process: at most `maxEntries` (the oldest go first) for at most `ttlMs` each. Another
 * tenant's response is not there, as far as a caller can tell.
 */
export class MemoryResponseStore implements ResponseStore {
  readonly #entries = new Map<string, { stored: StoredResponse; until: number }>();
  readonly #ttlMs: number;
  readonly #max: number;
  readonly #now: () => number;

  constructor(opts: { ttlMs: number; maxEntries: number; now?: () => number }) {
    this.#ttlMs = opts.ttlMs;
    this.#max = opts.maxEntries;
    this.#now = opts.now ?? Date.now;
  }

  get size(): number {
    return this.#entries.size;
  }

  async get(id: string, owner: string | null): Promise<StoredResponse | undefined> {
    const key = storeKey(id, owner);
    const e = this.#entries.get(key);
    if (!e) return undefined;
    if (e.until <= this.#now()) {
      this.#entries.delete(key);
      return undefined;
    }
    return e.stored;
  }

  async put(stored: StoredResponse): Promise<void> {
    const key = storeKey(stored.id, stored.owner);
    this.#entries.delete(key);
    this.#entries.set(key, { stored, until: this.#now() + this.#ttlMs });
    // Insertion order is age order: the oldest are first, and the expired among them go too.
    for (const [id, e] of this.#entries) {
      if (this.#entries.size <= this.#max && e.until > this.#now()) break;
      this.#entries.delete(id);
    }
  }

  async delete(id: string, owner: string | null): Promise<boolean> {
    const e = await this.get(id, owner);
    if (!e) return false;
    this.#entries.delete(storeKey(id, owner));
    return true;
  }
}
