import type { EventBus, Subscriber } from './event-bus.js';
import { ReplayRing } from './replay-ring.js';
import { matches, type ChatEvent, type ChatEventType, type PublishedEvent, type StreamMeta } from './types.js';

/** The in-process bus: synchronous fan-out into subscribers that buffer on their own, and a replay ring. */
export class LocalEventBus implements EventBus {
  readonly #subscribers = new Set<Subscriber>();
  readonly #ring: ReplayRing;
  /** Ids start at the start time in microseconds, so a client's Last-Event-ID from before a restart stays below them. */
  #seq: number;

  constructor(opts: { replay: number; now?: () => number }) {
    this.#ring = new ReplayRing(opts.replay);
    this.#seq = (opts.now ?? Date.now)() * 1000;
  }

  get subscribers(): number {
    return this.#subscribers.size;
  }

  publish(meta: StreamMeta, type: ChatEventType, data: Record<string, unknown>): void {
    const event: ChatEvent = { id: ++this.#seq, type, request_id: meta.request_id, session_id: meta.session_id, trace: meta.trace, ts: Date.now(), data };
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
