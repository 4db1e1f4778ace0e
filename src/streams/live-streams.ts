import type { CancelReason } from '../errors.js';

export interface Cancellable {
  readonly requestId: string;
  cancel(reason: CancelReason): void;
}

/** Every stream between its stream_start and stream_end: what shutdown cancels and /healthz counts. */
export class LiveStreams {
  readonly #streams = new Set<Cancellable>();
  #idle: (() => void)[] = [];

  get size(): number {
    return this.#streams.size;
  }

  add(stream: Cancellable): void {
    this.#streams.add(stream);
  }

  delete(stream: Cancellable): void {
    this.#streams.delete(stream);
    if (this.#streams.size === 0) for (const resolve of this.#idle.splice(0)) resolve();
  }

  cancelAll(reason: CancelReason): void {
    for (const s of [...this.#streams]) s.cancel(reason);
  }

  /** Resolves once no stream is live. */
  idle(): Promise<void> {
    return this.#streams.size === 0 ? Promise.resolve() : new Promise((resolve) => this.#idle.push(resolve));
  }
}
