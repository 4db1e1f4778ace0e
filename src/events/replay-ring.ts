import type { PublishedEvent } from './types.js';

/** The last `capacity` events, oldest first, for Last-Event-ID replay. Fixed memory; no per-event allocation. */
export class ReplayRing {
  readonly #slots: (PublishedEvent | undefined)[];
  #next = 0;
  #size = 0;

  constructor(readonly capacity: number) {
    this.#slots = new Array<PublishedEvent | undefined>(capacity);
  }

  push(event: PublishedEvent): void {
    if (this.capacity === 0) return;
    this.#slots[this.#next] = event;
    this.#next = (this.#next + 1) % this.capacity;
    if (this.#size < this.capacity) this.#size++;
  }

  #at(i: number): PublishedEvent {
    return this.#slots[(this.#next - this.#size + i + this.capacity) % this.capacity]!;
  }

  /** Retained events with an id greater than `afterId`, oldest first. Ids are increasing, so binary search. */
  *after(afterId: number): Generator<PublishedEvent> {
    let lo = 0;
    let hi = this.#size;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#at(mid).event.id <= afterId) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo; i < this.#size; i++) yield this.#at(i);
  }
}
