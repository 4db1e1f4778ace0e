import type { SubscriberTransport } from './subscribers.js';
import type { ChatEvent, PublishedEvent } from './types.js';

/** A sentence not finished within this long goes out as it stands, so a long sentence does not hold speech up. */
export const SENTENCE_MAX_WAIT_MS = 1000;
/** ...nor one longer than this many characters (cut at a space where there is one). */
export const SENTENCE_MAX_CHARS = 300;

/**
 * A sentence ends at . ! ? … (and their CJK forms), with any closing quotes or brackets, followed by white space;
 * or at a line break. Punctuation at the very end of what has arrived may yet be "3." of "3.14": it waits.
 */
const SENTENCE_END = /(?:[.!?…。！？]+["'”’)\]]*\s+|\n+)/g;

interface Pending {
  text: string;
  tokens: number;
  /** The last event whose text is in `text`: the sentence is sent under its id (resuming from it is right). */
  last: ChatEvent;
  owner: string | null;
  timer: NodeJS.Timeout | undefined;
}

/** Where a text may be cut at most `max` characters in: the last space before it, never inside a surrogate pair. */
function cutAt(text: string, max: number): number {
  const space = text.lastIndexOf(' ', max);
  if (space > 0) return space + 1;
  const code = text.charCodeAt(max - 1);
  return code >= 0xd800 && code <= 0xdbff ? max - 1 : max;
}

/**
 * `/v1/events?batch=sentence`: a subscriber's `chat.token` events re-cut at sentence ends, for a speech engine
 * that speaks a sentence at a time. Per stream, text is held until a sentence ends, SENTENCE_MAX_WAIT_MS passes,
 * or it passes SENTENCE_MAX_CHARS; the rest goes out before the stream's `chat.end`, `chat.cancelled` or
 * `chat.error`. Timers only, one per stream with text held, all cleared when the subscriber goes. `tokens` in a
 * sentence event is the tokens whose text it completes.
 */
export class SentenceTransport implements SubscriberTransport {
  readonly #inner: SubscriberTransport;
  readonly #pending = new Map<string, Pending>();
  readonly #maxWaitMs: number;
  readonly #maxChars: number;

  constructor(inner: SubscriberTransport, opts: { maxWaitMs?: number; maxChars?: number } = {}) {
    this.#inner = inner;
    this.#maxWaitMs = opts.maxWaitMs ?? SENTENCE_MAX_WAIT_MS;
    this.#maxChars = opts.maxChars ?? SENTENCE_MAX_CHARS;
  }

  get buffered(): number {
    return this.#inner.buffered;
  }

  /** Streams with text held, and so timers: zero once every stream has ended. */
  get held(): number {
    return this.#pending.size;
  }

  send(p: PublishedEvent): void {
    const e = p.event;
    if (e.type !== 'chat.token') {
      if (e.type === 'chat.end' || e.type === 'chat.cancelled' || e.type === 'chat.error') this.#flush(e.request_id);
      return this.#inner.send(p);
    }
    const text = typeof e.data.text === 'string' ? e.data.text : '';
    const tokens = typeof e.data.tokens === 'number' ? e.data.tokens : 0;
    let pending = this.#pending.get(e.request_id);
    if (!pending) {
      pending = { text: '', tokens: 0, last: e, owner: p.owner, timer: undefined };
      this.#pending.set(e.request_id, pending);
      this.#arm(e.request_id, pending);
    }
    pending.text += text;
    pending.tokens += tokens;
    pending.last = e;
    this.#cut(e.request_id, pending);
  }

  /** Sends every complete sentence held (and what passes the length bound); keeps the unfinished rest. */
  #cut(requestId: string, pending: Pending): void {
    let end = 0;
    for (const m of pending.text.matchAll(SENTENCE_END)) end = m.index + m[0].length;
    while (pending.text.length - end > this.#maxChars) end += cutAt(pending.text.slice(end), this.#maxChars);
    if (end === 0) return;
    const out = pending.text.slice(0, end);
    const rest = pending.text.slice(end);
    // The tokens go with the text they complete: all of them when nothing is left over.
    const tokens = rest === '' ? pending.tokens : Math.floor((pending.tokens * out.length) / pending.text.length);
    this.#emit(pending, out, tokens);
    pending.text = rest;
    pending.tokens -= tokens;
    if (rest === '') this.#forget(requestId, pending);
    else this.#arm(requestId, pending);
  }

  /** The wait for the text held now: from when its oldest part arrived. */
  #arm(requestId: string, pending: Pending): void {
    clearTimeout(pending.timer);
    pending.timer = setTimeout(() => {
      pending.timer = undefined;
      this.#flush(requestId);
    }, this.#maxWaitMs);
  }

  /** Sends whatever is held for the stream, sentence or not. */
  #flush(requestId: string): void {
    const pending = this.#pending.get(requestId);
    if (!pending) return;
    this.#forget(requestId, pending);
    if (pending.text !== '') this.#emit(pending, pending.text, pending.tokens);
  }

  #forget(requestId: string, pending: Pending): void {
    clearTimeout(pending.timer);
    this.#pending.delete(requestId);
  }

  #emit(pending: Pending, text: string, tokens: number): void {
    const event: ChatEvent = { ...pending.last, data: { text, tokens } };
    this.#inner.send({ event, owner: pending.owner, json: JSON.stringify(event) });
  }

  ping(): void {
    this.#inner.ping();
  }

  close(reason: string): void {
    for (const [id, p] of this.#pending) this.#forget(id, p);
    this.#inner.close(reason);
  }
}
