import type { ChatEventType, EventFilter, PublishedEvent, StreamMeta } from './types.js';

/** Receives events; must never block. Returning normally is all the bus waits for. */
export interface Subscriber {
  readonly filter: EventFilter;
  deliver(event: PublishedEvent): void;
}

export interface EventBus {
  publish(meta: StreamMeta, type: ChatEventType, data: Record<string, unknown>): void;
  /**
   * Replays retained events after `afterId` (when given) and then delivers live ones, with no gap and no
   * duplicate between the two. Returns the unsubscribe function.
   */
  subscribe(subscriber: Subscriber, afterId?: number): () => void;
  readonly subscribers: number;
  close(): Promise<void>;
}
