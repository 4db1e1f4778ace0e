import type { Logger } from 'pino';
import type { RedisLink } from '../cluster/redis-link.js';
import { idFromStreamId, nextLocalId, streamIdFromId } from './event-id.js';
import type { EventBus, Subscriber } from './event-bus.js';
import { ReplayRing } from './replay-ring.js';
import { matches, type ChatEvent, type ChatEventType, type PublishedEvent, type StreamMeta } from './types.js';

interface Entry {
  subscriber: Subscriber;
  /**
   * Highest id of an event from the Redis stream delivered: replay and live delivery never repeat or skip around
   * it. Events delivered locally while Redis was away do not move it (their ids are this instance's alone).
   */
  cursor: number;
  /** Live events held back while the replay is read. */
  held: PublishedEvent[] | undefined;
}

const REPLAY_PAGE = 1000;
/** Live events one subscriber may have held back during its replay before it is treated as too slow. */
const MAX_HELD = 10_000;
/** Events this instance delivered locally because their XADD failed, remembered so a late write is not delivered twice. */
const MAX_LOCAL_KEYS = 10_000;
/** At most one `event_read_failed` line per this long; the count of failures is in /metrics. */
const READ_FAILURE_LOG_MS = 10_000;

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
  /** Highest id read from the Redis stream: where a new subscriber's cursor starts. */
  #lastId = 0;
  /** Highest id given to an event delivered locally (Redis away): never a Redis cursor. */
  #lastLocalId = 0;
  /** Each event's key (`instance:n`), written with it: a write that timed out and ran later is recognised. */
  readonly #keyPrefix: string;
  #published = 0;
  readonly #deliveredLocally = new Set<string>();
  /** Events delivered locally: never compared with or moving a Redis cursor (replayed from the ring, held). */
  readonly #local = new WeakSet<PublishedEvent>();
  #closed = false;
  #started = false;
  readonly #wake = new AbortController();
  readonly #onReadFailure: (() => void) | undefined;
  #readFailures = 0;
  #readFailureLoggedAt = -Infinity;

  constructor(opts: { link: RedisLink; replay: number; log: Logger; instanceId?: string; onReadFailure?: () => void }) {
    this.#link = opts.link;
    this.#key = opts.link.key('events');
    this.#maxLen = Math.max(1, opts.replay);
    this.#log = opts.log;
    this.#ring = new ReplayRing(opts.replay);
    this.#keyPrefix = `${opts.instanceId ?? 'bus'}:${Date.now().toString(36)}:`;
    this.#onReadFailure = opts.onReadFailure;
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
    if (!this.#link.available) return this.#dispatchLocal(body, meta.owner, undefined);
    const payload = JSON.stringify(body);
    const k = this.#keyPrefix + (++this.#published).toString(36);
    this.#link.cmd
      .xadd(this.#key, 'MAXLEN', '~', this.#maxLen, '*', 'e', payload, 'o', meta.owner ?? '', 'k', k)
      // Redis went away between the check and the write: local subscribers still get the event.
      .catch((err: unknown) => {
        this.#link.noteFailure(err);
        this.#dispatchLocal(body, meta.owner, k);
      });
  }

  /** An event delivered here alone, while Redis is away: to live subscribers, without moving their Redis cursors. */
  #dispatchLocal(body: Omit<ChatEvent, 'id'>, owner: string | null, k: string | undefined): void {
    if (k !== undefined) {
      // Its XADD may have timed out and yet run: remembered, so the read loop does not deliver it a second time.
      this.#deliveredLocally.add(k);
      if (this.#deliveredLocally.size > MAX_LOCAL_KEYS) this.#deliveredLocally.delete(this.#deliveredLocally.values().next().value!);
    }
    this.#lastLocalId = nextLocalId(Math.max(this.#lastLocalId, this.#lastId), body.ts);
    const event: ChatEvent = { id: this.#lastLocalId, ...body };
    const published: PublishedEvent = { event, owner, json: JSON.stringify(event) };
    this.#local.add(published);
    this.#ring.push(published);
    for (const entry of this.#entries) {
      if (!matches(entry.subscriber.filter, published)) continue;
      if (entry.held) {
        if (entry.held.length < MAX_HELD) entry.held.push(published);
      } else {
        entry.subscriber.deliver(published);
      }
    }
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
            const published = this.#fromStream(streamId, fields, true);
            if (published) {
              this.#lastId = Math.max(this.#lastId, published.event.id);
              this.#dispatch(published);
            }
          }
        }
      } catch (err) {
        if (this.#closed) return;
        this.#readFailed(err);
        // Retry without spinning; a close() ends the wait at once.
        await new Promise<void>((resolve) => {
          const wake = () => {
            clearTimeout(t);
            resolve();
          };
          const t = setTimeout(() => {
            this.#wake.signal.removeEventListener('abort', wake);
            resolve();
          }, 250);
          this.#wake.signal.addEventListener('abort', wake, { once: true });
        });
      }
    }
  }

  /** A failed read, counted each time and logged at most every READ_FAILURE_LOG_MS (it repeats every 250 ms). */
  #readFailed(err: unknown): void {
    this.#readFailures++;
    this.#onReadFailure?.();
    const now = performance.now();
    if (now - this.#readFailureLoggedAt < READ_FAILURE_LOG_MS) return;
    this.#readFailureLoggedAt = now;
    this.#log.warn({ failures: this.#readFailures, err: (err as Error)?.message ?? String(err) }, 'event_read_failed');
  }

  /** An entry of the stream as an event; undefined for one this instance already delivered locally (`live`: forget it then). */
  #fromStream(streamId: string, fields: string[], live: boolean): PublishedEvent | undefined {
    let payload: string | undefined;
    let owner: string | null = null;
    for (let i = 0; i + 1 < fields.length; i += 2) {
      if (fields[i] === 'e') payload = fields[i + 1];
      else if (fields[i] === 'o') owner = fields[i + 1] || null;
      else if (fields[i] === 'k' && this.#deliveredLocally.has(fields[i + 1]!)) {
        if (live) this.#deliveredLocally.delete(fields[i + 1]!);
        return undefined;
      }
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
      if (!matches(entry.subscriber.filter, p)) return;
      if (this.#local.has(p)) return entry.subscriber.deliver(p);
      if (p.event.id <= entry.cursor) return;
      entry.cursor = p.event.id;
      entry.subscriber.deliver(p);
    };
    try {
      if (!this.#link.available) throw new Error('redis unavailable');
      // A Last-Event-ID beyond the stream's last entry (an id from the future, another deployment's, a local one)
      // would drop every live event up to it: it counts as "now", as on the local bus.
      const last = (await this.#link.cmd.xrevrange(this.#key, '+', '-', 'COUNT', 1)) as [string, string[]][];
      const tail = last[0] ? idFromStreamId(last[0][0]) : 0;
      if (entry.cursor > tail) entry.cursor = tail;
      let start = `(${streamIdFromId(Math.min(afterId, tail))}`;
      for (;;) {
        const page = (await this.#link.cmd.xrange(this.#key, start, '+', 'COUNT', REPLAY_PAGE)) as [string, string[]][];
        for (const [streamId, fields] of page) {
          const p = this.#fromStream(streamId, fields, false);
          if (p) deliver(p);
          start = `(${streamId}`;
        }
        if (page.length < REPLAY_PAGE || !this.#entries.has(entry)) break;
      }
    } catch {
      // Without Redis, replay what this instance saw, and count an id beyond it as "now".
      for (const p of this.#ring.after(afterId)) deliver(p);
      if (entry.cursor > this.#lastId) entry.cursor = this.#lastId;
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
