import type { EventBus, Subscriber } from './event-bus.js';
import { nextLocalId } from './event-id.js';
import { ReplayRing } from './replay-ring.js';
import { matches, type ChatEvent, type ChatEventType, type PublishedEvent, type StreamMeta } from './types.js';

/** The in-process bus: synchronous fan-out into subscribers that buffer on their own, and a replay ring. */
export class LocalEventBus implements EventBus {
  readonly #subscribers = new Set<Subscriber>();
  readonly #ring: ReplayRing;
  /** Ids are anchored to the clock (see event-id.ts), so a Last-Event-ID from before a restart stays below them. */
  #lastId = 0;
  readonly #now: () => number;

  constructor(opts: { replay: number; now?: () => number }) {
    this.#ring = new ReplayRing(opts.replay);
    this.#now = opts.now ?? Date.now;
  }

  get subscribers(): number {
    return this.#subscribers.size;
  }

  publish(meta: StreamMeta, type: ChatEventType, data: Record<string, unknown>): void {
    const ts = this.#now();
    this.#lastId = nextLocalId(this.#lastId, ts);
    const event: ChatEvent = { id: this.#lastId, type, request_id: meta.request_id, session_id: meta.session_id, trace: meta.trace, ts, data };
    const published: PublishedEvent = { event, owner: meta.owner, json: JSON.stringify(event) };
    this.#ring.push(published);
    for (const sub of this.#subscribers) if (matches(sub.filter, published)) sub.deliver(published);
  }

  subscribe(subscriber: Subscriber, afterId?: number): () => void {
    // Replay and registration happen in one synchronous step: no event can fall between them.
    if (afterId !== undefined) for (const p of this.#ring.after(afterId)) if (matches(subscriber.filter, p)) subscriber.deliver(p);
    this.#subscribers.add(subscriber);
    return () => this.#subscribers.delete(subscriber);
  }

  async close(): Promise<void> {
    this.#subscribers.clear();
  }
}
