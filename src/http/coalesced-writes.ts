import type { ServerResponse } from 'node:http';

/**
 * A response's writes gathered and sent as one socket write when `defer` runs: a chunked write (and its syscall)
 * per frame costs far more than one for many. SseWriter defers to the next tick, for the frames of one upstream
 * read; an events subscriber to the loop's check phase, for the batches of every stream that fell due in one turn
 * (written one by one, those cost a gateway carrying a thousand voice sessions to ten subscribers a third of its CPU).
 */
export class CoalescedWrites {
  readonly #res: ServerResponse;
  readonly #defer: (flush: () => void) => void;
  #pending = '';
  readonly #flush = () => {
    if (this.#pending === '') return;
    const out = this.#pending;
    this.#pending = '';
    if (!this.#res.writableEnded && !this.#res.destroyed) this.#res.write(out);
  };

  constructor(res: ServerResponse, defer: (flush: () => void) => void) {
    this.#res = res;
    this.#defer = defer;
  }

  write(text: string): void {
    if (this.#pending === '') this.#defer(this.#flush);
    this.#pending += text;
  }

  /** Characters written but not yet offered to the socket. */
  get pending(): number {
    return this.#pending.length;
  }

  /** Ends the response with what is pending and `text`; the deferred flush then finds nothing to send. */
  end(text = ''): void {
    const out = this.#pending + text;
    this.#pending = '';
    if (!this.#res.writableEnded) this.#res.end(out);
  }

  /** Forgets what is pending (the response is answered some other way, or is gone). */
  discard(): void {
    this.#pending = '';
  }
}
