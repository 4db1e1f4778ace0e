import { JarvisError, type JarvisErrorCode } from '../errors.js';

/** A subscriber may try again after this long: subscribers are long-lived, so a place frees up slowly. */
const RETRY_AFTER_S = '5';

export interface SubscriberSlot {
  /** Gives the place back; once, however many times it is called. */
  release(): void;
}

/**
 * Places for events subscribers (SSE and WebSocket alike): at most `max` in this process, and at most `perKey`
 * for one API key. Without keys there is no per-key count; the global bound still holds. A place is taken
 * before a subscriber is admitted (for a WebSocket, before the upgrade) and given back when it closes.
 */
export class SubscriberSlots {
  readonly #max: number;
  readonly #perKey: number;
  readonly #byKey = new Map<string, number>();
  readonly #what: string;
  readonly #perKeyCode: JarvisErrorCode;
  #total = 0;

  /** `what` the places are for, in messages; the same counting serves other long-lived connections (WebSockets). */
  constructor(opts: { max: number; perKey: number; what?: string; perKeyCode?: JarvisErrorCode }) {
    this.#max = opts.max;
    this.#perKey = opts.perKey;
    this.#what = opts.what ?? 'events subscribers';
    this.#perKeyCode = opts.perKeyCode ?? 'JARVIS_ERR_TOO_MANY_SUBSCRIBERS';
  }

  /** Takes a place for a subscriber of `owner` (the key's name; null without keys), or throws 429 / 503. */
  take(owner: string | null): SubscriberSlot {
    const mine = owner === null ? 0 : (this.#byKey.get(owner) ?? 0);
    if (owner !== null && mine >= this.#perKey) {
      throw new JarvisError(this.#perKeyCode, `This API key already has ${this.#perKey} ${this.#what} open, its limit. Close one, or retry later.`, {
        headers: { 'retry-after': RETRY_AFTER_S },
      });
    }
    if (this.#total >= this.#max) {
      throw new JarvisError('JARVIS_ERR_OVERLOADED', `Jarvis is serving its maximum of ${this.#max} ${this.#what}; retry shortly or on another instance.`, {
        headers: { 'retry-after': RETRY_AFTER_S },
      });
    }
    this.#total++;
    if (owner !== null) this.#byKey.set(owner, mine + 1);
    let held = true;
    return {
      release: () => {
        if (!held) return;
        held = false;
        this.#total--;
        if (owner === null) return;
        const left = (this.#byKey.get(owner) ?? 1) - 1;
        if (left === 0) this.#byKey.delete(owner);
        else this.#byKey.set(owner, left);
      },
    };
  }
}
