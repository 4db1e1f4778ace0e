import type { Logger } from 'pino';
import type { RedisLink } from '../cluster/redis-link.js';
import { idFromStreamId, nextLocalId, streamIdFromId } from './event-id.js';
import type { EventBus, Subscriber } from './event-bus.js';
import { ReplayRing } from './replay-ring.js';
import { matches, type ChatEvent, type ChatEventType, type PublishedEvent, type StreamMeta } from './types.js';

interface Entry {
  subscriber: Subscriber;
  /** Highest id delivered: replay and live delivery never repeat or skip around it. */
  cursor: number;
  /** Live events held back while the replay is read. */
  held: PublishedEvent[] | undefined;
}

const REPLAY_PAGE = 1000;
/** Live events one subscriber may have held back during its replay before it is treated as too slow. */
const MAX_HELD = 10_000;

/**
 * Events through a Redis Stream (XADD, trimmed to about `replay` entries), read back by every instance with one
 * blocking XREAD loop, so a subscriber anywhere sees every instance's events and `Last-Event-ID` replays from
 * the stream. While Redis is away, events are delivered locally (and kept in a local ring) instead.
 */
export class RedisEventBus implements EventBus {
  readonly #link: RedisLink;
  readonly #key: string;
  readonly #maxLen: number;
  readonly #log: Logger;
  readonly #entries = new Set<Entry>();
  readonly #ring: ReplayRing;
  #lastStreamId = '$';
  #lastId = 0;
  #closed = false;
  #started = false;
  readonly #wake = new AbortController();

  constructor(opts: { link: RedisLink; replay: number; log: Logger }) {
    this.#link = opts.link;
    this.#key = opts.link.key('events');
    this.#maxLen = Math.max(1, opts.replay);
    this.#log = opts.log;
    this.#ring = new ReplayRing(opts.replay);
  }

  get subscribers(): number {
    return this.#entries.size;
  }

  start(): void {
    if (this.#started) return;
    this.#started = true;
    void this.#readLoop();
  }

  publish(meta: StreamMeta, type: ChatEventType, data: Record<string, unknown>): void {
    const ts = Date.now();
    const body = { type, request_id: meta.request_id, session_id: meta.session_id, trace: meta.trace, ts, data };
    if (!this.#link.available) return this.#dispatchLocal(body, meta.owner);
    const payload = JSON.stringify(body);
    this.#link.cmd
      .xadd(this.#key, 'MAXLEN', '~', this.#maxLen, '*', 'e', payload, 'o', meta.owner ?? '')
      // Redis went away between the check and the write: local subscribers still get the event.
      .catch(() => this.#dispatchLocal(body, meta.owner));
  }

  #dispatchLocal(body: Omit<ChatEvent, 'id'>, owner: string | null): void {
    this.#lastId = nextLocalId(this.#lastId, body.ts);
    const event: ChatEvent = { id: this.#lastId, ...body };
    this.#dispatch({ event, owner, json: JSON.stringify(event) });
  }

  #dispatch(published: PublishedEvent): void {
    this.#ring.push(published);
    for (const entry of this.#entries) {
      if (!matches(entry.subscriber.filter, published)) continue;
      if (entry.held) {
        if (entry.held.length < MAX_HELD) entry.held.push(published);
        continue;
      }
      if (published.event.id <= entry.cursor) continue;
      entry.cursor = published.event.id;
      entry.subscriber.deliver(published);
    }
  }

  async #readLoop(): Promise<void> {
    while (!this.#closed) {
      try {
        const res = (await this.#link.reader.xread('COUNT', 1000, 'BLOCK', 1000, 'STREAMS', this.#key, this.#lastStreamId)) as [string, [string, string[]][]][] | null;
        if (!res) continue;
        for (const [, entries] of res) {
          for (const [streamId, fields] of entries) {
            this.#lastStreamId = streamId;
            const published = this.#fromStream(streamId, fields);
            if (published) {
              this.#lastId = Math.max(this.#lastId, published.event.id);
              this.#dispatch(published);
            }
          }
        }
      } catch {
        if (this.#closed) return;
        // Redis is away; the link logs it. Retry without spinning.
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, 250);
          this.#wake.signal.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
        });
      }
    }
  }

  #fromStream(streamId: string, fields: string[]): PublishedEvent | undefined {
    let payload: string | undefined;
    let owner: string | null = null;
    for (let i = 0; i + 1 < fields.length; i += 2) {
      if (fields[i] === 'e') payload = fields[i + 1];
      else if (fields[i] === 'o') owner = fields[i + 1] || null;
    }
    if (!payload) return undefined;
    try {
      const id = idFromStreamId(streamId);
      const event = { id, ...(JSON.parse(payload) as Omit<ChatEvent, 'id'>) };
      return { event, owner, json: `{"id":${id},${payload.slice(1)}` };
    } catch {
      this.#log.warn({ stream_id: streamId }, 'event_unreadable');
      return undefined;
    }
  }

  subscribe(subscriber: Subscriber, afterId?: number): () => void {
    const entry: Entry = { subscriber, cursor: afterId ?? this.#lastId, held: afterId === undefined ? undefined : [] };
    this.#entries.add(entry);
    if (afterId !== undefined) void this.#replay(entry, afterId);
    return () => this.#entries.delete(entry);
  }

  async #replay(entry: Entry, afterId: number): Promise<void> {
    const deliver = (p: PublishedEvent) => {
      if (p.event.id <= entry.cursor || !matches(entry.subscriber.filter, p)) return;
      entry.cursor = p.event.id;
      entry.subscriber.deliver(p);
    };
    try {
      if (!this.#link.available) throw new Error('redis unavailable');
      let start = `(${streamIdFromId(afterId)}`;
      for (;;) {
        const page = (await this.#link.cmd.xrange(this.#key, start, '+', 'COUNT', REPLAY_PAGE)) as [string, string[]][];
        for (const [streamId, fields] of page) {
          const p = this.#fromStream(streamId, fields);
          if (p) deliver(p);
          start = `(${streamId}`;
        }
        if (page.length < REPLAY_PAGE || !this.#entries.has(entry)) break;
      }
    } catch {
      // Without Redis, replay what this instance saw.
      for (const p of this.#ring.after(afterId)) deliver(p);
    } finally {
      const held = entry.held ?? [];
      entry.held = undefined;
      for (const p of held) deliver(p);
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#wake.abort();
    this.#entries.clear();
    // The blocking XREAD returns within its 1 s block; the link's close() ends it at once (it disconnects the reader).
  }
}
