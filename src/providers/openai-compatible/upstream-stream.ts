import type { Dispatcher } from 'undici';
import type { JarvisError } from '../../errors.js';
import type { Delta } from '../provider.js';
import { DeltaReader, type EventDecoder } from './sse-deltas.js';
import { MAX_ERROR_BODY, statusErrorOf, upstreamFailure } from './upstream-errors.js';

/** An error status's JarvisError, from the status, headers and (the first MAX_ERROR_BODY characters of) the body. */
export type StatusErrorOf = (status: number, headers: Record<string, string | string[] | undefined>, text: string, name: string) => JarvisError;

/** Data held for a consumer that is behind before the upstream socket is paused (what request()'s body held). */
const HIGH_WATER_CHARS = 64 * 1024;
/** What an upstream may still send after its stream's end event before Jarvis stops reading and closes it. */
const MAX_AFTER_END = 128 * 1024;

/** The reason an upstream request is aborted when nothing failed (the consumer left): made once, as a stack costs. */
const CLOSED = Object.freeze(new Error('upstream request closed by Jarvis'));

export interface UpstreamStreamOptions {
  dispatcher: Dispatcher;
  origin: string;
  path: string;
  headers: Record<string, string>;
  body: string;
  /** How the stream's events are read (a new decoder per stream). */
  decoder: EventDecoder;
  /** How an error status is read; OpenAI's error shape by default. */
  statusError?: StatusErrorOf | undefined;
  /** The upstream's name, for errors. */
  name: string;
  signal: AbortSignal;
}

/**
 * One streamed upstream request as the provider's async iterable of delta batches. undici's parser callbacks
 * feed the SSE reader directly and the consumer is woken once per read: request()'s body Readable, its async
 * iterator and two generators in between made a promise, a tick and a dozen objects per read, a quarter of
 * what a paced chunk allocated. Deltas that arrive while the consumer is busy join one batch; past
 * HIGH_WATER_CHARS the socket is paused until it takes them, so a slow client holds the upstream back.
 *
 * Leaving early (`return()`, an abort of `signal`, a failure) closes the upstream request so it stops
 * generating; after the end event the rest of the body is read so the connection goes back to the pool.
 */
export class UpstreamStream implements AsyncIterableIterator<Delta[]>, Dispatcher.DispatchHandler {
  readonly #reader: DeltaReader;
  readonly #signal: AbortSignal;
  readonly #name: string;
  readonly #statusError: StatusErrorOf;
  #controller: Dispatcher.DispatchController | undefined;
  /** The request is over at undici (ended, failed or aborted): nothing more will be called. */
  #settled = false;
  #queued: Delta[] = [];
  #queuedChars = 0;
  /** Set once no more deltas will come: `true` for a normal end, else what to throw once `#queued` is taken. */
  #end: true | { error: unknown } | undefined;
  #resolve: ((r: IteratorResult<Delta[]>) => void) | undefined;
  #reject: ((e: unknown) => void) | undefined;
  #status = 0;
  #headers: Record<string, string | string[] | undefined> = {};
  /** A status of 400 or more: its body, read for the error it carries. */
  #errorBody = '';
  #afterEnd = 0;

  constructor(opts: UpstreamStreamOptions) {
    this.#reader = new DeltaReader(opts.decoder);
    this.#statusError = opts.statusError ?? statusErrorOf;
    this.#signal = opts.signal;
    this.#name = opts.name;
    if (opts.signal.aborted) {
      this.#end = { error: opts.signal.reason };
      this.#settled = true;
      return;
    }
    opts.signal.addEventListener('abort', this.#onAbort);
    opts.dispatcher.dispatch({ origin: opts.origin, path: opts.path, method: 'POST', headers: opts.headers, body: opts.body }, this);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<Delta[]>> {
    if (this.#queued.length > 0) return Promise.resolve({ value: this.#take(), done: false });
    if (this.#end !== undefined) return this.#finish();
    return new Promise((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
  }

  /**
   * The consumer stopped: whatever was queued is dropped, and the upstream request closed unless its stream had
   * ended (then the rest of its body is read, as after any end, so the connection goes back to the pool: a route
   * returns its winner's iterator once it has read it to the end).
   */
  return(): Promise<IteratorResult<Delta[]>> {
    this.#queued = [];
    const ended = this.#reader.done && this.#end === true;
    if (this.#end === undefined) this.#end = true;
    if (!ended) this.#close(undefined);
    this.#wake();
    return Promise.resolve({ value: undefined, done: true });
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    // Closed while the request waited for a connection.
    if (this.#settled) controller.abort(CLOSED);
  }

  onResponseStart(_controller: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[] | undefined>): void {
    this.#status = statusCode;
    this.#headers = headers;
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.#status >= 400) {
      if (this.#errorBody.length <= MAX_ERROR_BODY) this.#errorBody += chunk;
      else this.#fail(this.#statusError(this.#status, this.#headers, this.#errorBody, this.#name));
      return;
    }
    if (this.#end !== undefined) {
      // The end event came: the rest is read so the connection is reused, but not without limit.
      this.#afterEnd += chunk.length;
      if (this.#afterEnd > MAX_AFTER_END) this.#close(undefined);
      return;
    }
    const batch = this.#reader.feed(chunk);
    if (batch) {
      if (this.#queued.length === 0) this.#queued = batch;
      else for (const d of batch) this.#queued.push(d);
      for (const d of batch) this.#queuedChars += d.data.length;
    }
    if (this.#reader.failure) return this.#fail(this.#reader.failure);
    if (this.#reader.done) this.#end = true;
    if (this.#resolve) this.#wake();
    else if (this.#queuedChars > HIGH_WATER_CHARS) controller.pause();
  }

  onResponseEnd(): void {
    this.#settle();
    if (this.#end !== undefined) return;
    if (this.#status >= 400) return this.#fail(this.#statusError(this.#status, this.#headers, this.#errorBody, this.#name));
    this.#reader.end();
    if (this.#reader.failure) return this.#fail(this.#reader.failure);
    // A wire with no end event (Gemini's): the body's end is the stream's.
    this.#end = true;
    this.#wake();
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    this.#settle();
    if (this.#end !== undefined) return;
    this.#fail(this.#signal.aborted ? this.#signal.reason : upstreamFailure(err, this.#name, this.#status !== 0));
  }

  #onAbort = (): void => {
    this.#queued = [];
    this.#fail(this.#signal.reason);
  };

  /** No more deltas: `error` is thrown once what is queued has been taken, and the upstream request is closed. */
  #fail(error: unknown): void {
    if (this.#end === undefined) this.#end = { error };
    this.#close(error);
    this.#wake();
  }

  #close(reason: unknown): void {
    if (this.#settled) return;
    this.#settle();
    // Before onRequestStart there is nothing to abort yet; onRequestStart aborts it then.
    this.#controller?.abort(reason instanceof Error ? reason : CLOSED);
  }

  #settle(): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#signal.removeEventListener('abort', this.#onAbort);
  }

  #take(): Delta[] {
    const value = this.#queued;
    this.#queued = [];
    this.#queuedChars = 0;
    if (this.#controller?.paused) this.#controller.resume();
    return value;
  }

  #finish(): Promise<IteratorResult<Delta[]>> {
    const end = this.#end!;
    if (end === true) return Promise.resolve({ value: undefined, done: true });
    // Thrown once; the iterator is done after that.
    this.#end = true;
    return Promise.reject(end.error);
  }

  /** Hands the waiting consumer its batch, or the end. */
  #wake(): void {
    const resolve = this.#resolve;
    const reject = this.#reject;
    if (!resolve || !reject) return;
    if (this.#queued.length === 0 && this.#end === undefined) return;
    this.#resolve = undefined;
    this.#reject = undefined;
    if (this.#queued.length > 0) return resolve({ value: this.#take(), done: false });
    this.#finish().then(resolve, reject);
  }
}
