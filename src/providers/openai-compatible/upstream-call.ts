import type { Dispatcher } from 'undici';

type Controller = Parameters<NonNullable<Dispatcher.DispatchHandler['onRequestStart']>>[0];

/** Chunks held for a consumer that has not asked for them yet; past this the socket is paused. */
const HIGH_WATER_CHUNKS = 16;

/**
 * One upstream request through undici's dispatch API, its body handed over chunk by chunk as an async iterable.
 * A stream's body is read once, straight through, by one consumer: undici's `request()` would wrap it in a
 * Readable and its async iterator, which cost a tenth of a paced stream's CPU and a few KiB per open stream.
 *
 * Aborting `signal` (or `abort()`) closes the connection; `discard()` reads the rest of a finished body so the
 * connection goes back to the pool.
 */
export class UpstreamCall implements AsyncIterable<Buffer> {
  /** Resolves with the final status and headers; rejects with undici's error or the abort reason. */
  readonly response: Promise<{ statusCode: number; headers: Record<string, string | string[] | undefined> }>;
  #controller: Controller | undefined;
  #settleResponse!: { resolve: (r: { statusCode: number; headers: Record<string, string | string[] | undefined> }) => void; reject: (e: unknown) => void };
  readonly #chunks: Buffer[] = [];
  #ended = false;
  #error: unknown;
  #discarding = false;
  #wake: (() => void) | undefined;
  readonly #signal: AbortSignal;
  readonly #onAbort = () => this.abort(this.#signal.reason);

  constructor(dispatcher: Dispatcher, opts: Dispatcher.DispatchOptions, signal: AbortSignal) {
    this.#signal = signal;
    this.response = new Promise((resolve, reject) => {
      this.#settleResponse = { resolve, reject };
    });
    // Settled responses nobody awaits (an abort before the caller got there) must not become unhandled rejections.
    this.response.catch(() => {});
    if (signal.aborted) {
      this.#fail(signal.reason);
      return;
    }
    signal.addEventListener('abort', this.#onAbort, { once: true });
    dispatcher.dispatch(opts, {
      onRequestStart: (controller) => {
        this.#controller = controller;
        if (this.#error !== undefined) controller.abort(this.#error as Error);
      },
      onResponseStart: (_controller, statusCode, headers) => {
        // 1xx informational responses come before the real one.
        if (statusCode >= 200) this.#settleResponse.resolve({ statusCode, headers });
      },
      onResponseData: (controller, chunk) => {
        if (this.#discarding) return;
        this.#chunks.push(chunk);
        if (this.#chunks.length >= HIGH_WATER_CHUNKS) controller.pause();
        this.#wakeUp();
      },
      onResponseEnd: () => {
        this.#ended = true;
        this.#release();
        this.#wakeUp();
      },
      onResponseError: (_controller, error) => this.#fail(error),
    });
  }

  /** Closes the upstream connection (the request stops generating). Idempotent. */
  abort(reason: unknown): void {
    if (this.#ended || this.#error !== undefined) return;
    this.#fail(reason);
    this.#controller?.abort(reason as Error);
  }

  /** Reads and drops the rest of the body, so a keep-alive connection returns to the pool. */
  discard(): void {
    this.#discarding = true;
    this.#chunks.length = 0;
    if (this.#controller?.paused) this.#controller.resume();
  }

  [Symbol.asyncIterator](): AsyncIterator<Buffer> {
    return {
      next: async () => {
        for (;;) {
          const chunk = this.#chunks.shift();
          if (chunk) {
            if (this.#controller?.paused && this.#chunks.length < HIGH_WATER_CHUNKS / 2) this.#controller.resume();
            return { value: chunk, done: false };
          }
          if (this.#error !== undefined) throw this.#error;
          if (this.#ended) return { value: undefined, done: true };
          await new Promise<void>((resolve) => {
            this.#wake = resolve;
          });
        }
      },
      // A consumer leaving early (an error downstream, a break) leaves nobody to read: close the connection.
      return: async () => {
        this.abort(new Error('upstream body no longer read'));
        return { value: undefined, done: true };
      },
    };
  }

  #fail(error: unknown): void {
    if (this.#error !== undefined || this.#ended) return;
    this.#error = error;
    this.#settleResponse.reject(error);
    this.#release();
    this.#wakeUp();
  }

  #release(): void {
    this.#signal.removeEventListener('abort', this.#onAbort);
  }

  #wakeUp(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }
}
