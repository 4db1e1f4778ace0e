import type { Logger } from 'pino';
import type { EventBus, Subscriber } from './event-bus.js';
import type { EventFilter, PublishedEvent } from './types.js';

/** What a transport (SSE response, WebSocket) offers a subscriber: a non-blocking send and a way out. */
export interface SubscriberTransport {
  send(event: PublishedEvent): void;
  /** Bytes accepted but not yet written to the peer: the subscriber's queue. */
  readonly buffered: number;
  ping(): void;
  close(reason: string): void;
}

export type DropReason = 'slow_consumer';

/**
 * One events subscriber. Delivery is a write into the transport's own buffer, so publishing never waits on it;
 * a subscriber whose unread bytes pass the bound is disconnected instead of slowing streams or growing memory.
 */
export class BoundedSubscriber implements Subscriber {
  active = true;
  #closed = false;
  #unsubscribe: (() => void) | undefined;

  constructor(
    readonly filter: EventFilter,
    readonly transport: SubscriberTransport,
    readonly opts: { maxBufferedBytes: number; log: Logger; onDrop?: (reason: DropReason) => void; onClose: () => void },
  ) {}

  get closed(): boolean {
    return this.#closed;
  }

  attach(bus: EventBus, afterId: number | undefined): void {
    const unsubscribe = bus.subscribe(this, afterId);
    // Replay may already have overflowed and closed it.
    if (this.#closed) unsubscribe();
    else this.#unsubscribe = unsubscribe;
  }

  deliver(event: PublishedEvent): void {
    if (this.#closed) return;
    this.active = true;
    this.transport.send(event);
    if (this.transport.buffered > this.opts.maxBufferedBytes) this.drop('slow_consumer', event.event.id);
  }

  ping(): void {
    if (!this.#closed) this.transport.ping();
  }

  drop(reason: DropReason, lastEventId: number): void {
    if (this.#closed) return;
    this.opts.log.warn({ reason, last_event_id: lastEventId, buffered: this.transport.buffered, session: this.filter.sessionId ?? '*' }, 'subscriber_dropped');
    this.opts.onDrop?.(reason);
    this.close(reason);
  }

  /** Idempotent; every path out (peer gone, dropped, shutdown) comes through here. */
  close(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#unsubscribe?.();
    this.opts.onClose();
    this.transport.close(reason);
  }
}
