import type { Logger } from 'pino';
import type { StreamMeta } from './types.js';

export interface TokenBatcherOptions {
  flushMs: number;
  flushBytes: number;
  publish(meta: StreamMeta, text: string, tokens: number): void;
  log: Logger;
  /** Counts flushes by kind; the metrics module passes one in. */
  onFlush?(kind: 'scheduled' | 'immediate' | 'on_end' | 'on_cleanup', tokens: number): void;
}

interface Batch {
  meta: StreamMeta;
  text: string;
  bytes: number;
  tokens: number;
  /**
   * The stream's one flush timer, re-armed with refresh() for each batch: a slow stream's every token is a batch
   * of its own, and a new Timeout and closure for each lived long enough (flushMs) to be promoted and collected
   * by a full GC. Undefined once cleared; `armed` says whether it is pending.
   */
  timer: NodeJS.Timeout | undefined;
  armed: boolean;
}

/**
 * Batches a stream's tokens for event subscribers: the first token into an empty batch schedules a flush
 * `flushMs` later, a batch past `flushBytes` goes at once. Timers only: nothing here waits, locks or sleeps,
 * which is the whole point (the system Jarvis replaces slept under a lock here and froze the server).
 */
export class TokenBatcher {
  readonly #batches = new Map<string, Batch>();
  readonly #opts: TokenBatcherOptions;
  #timers = 0;

  constructor(opts: TokenBatcherOptions) {
    this.#opts = opts;
  }

  get buffers(): number {
    return this.#batches.size;
  }

  get timers(): number {
    return this.#timers;
  }

  add(meta: StreamMeta, text: string): void {
    let batch = this.#batches.get(meta.request_id);
    if (!batch) {
      batch = { meta, text: '', bytes: 0, tokens: 0, timer: undefined, armed: false };
      this.#batches.set(meta.request_id, batch);
    }
    batch.text += text;
    batch.bytes += Buffer.byteLength(text);
    batch.tokens++;
    const { log } = this.#opts;
    const request_id = meta.request_id;
    if (batch.bytes > this.#opts.flushBytes) {
      if (this.#clearTimer(batch)) log.info({ request_id }, 'flush_cancelled');
      log.info({ request_id, size: batch.bytes }, 'flush_immediate');
      this.#publish(batch, 'immediate');
    } else if (!batch.armed) {
      if (batch.timer) batch.timer.refresh();
      else batch.timer = setTimeout(() => this.#onTimer(request_id), this.#opts.flushMs);
      batch.armed = true;
      this.#timers++;
      log.info({ request_id }, 'flush_scheduled');
    }
  }

  /** The stream ended (normally or with an error): publish the remainder before chat.end / chat.error. */
  end(requestId: string): void {
    const batch = this.#batches.get(requestId);
    if (!batch) return;
    const { log } = this.#opts;
    if (this.#clearTimer(batch)) log.info({ request_id: requestId }, 'flush_cancelled');
    if (batch.tokens > 0) {
      log.info({ request_id: requestId, size: batch.bytes }, 'flush_on_end');
      this.#publish(batch, 'on_end');
    }
    this.#batches.delete(requestId);
  }

  /**
   * Cancels the pending flush, publishes what is left and forgets the stream. Idempotent: it runs in every
   * stream's `finally`, after `end` on a normal exit, and does nothing the second time.
   */
  cleanupRequestBuffers(requestId: string): void {
    const batch = this.#batches.get(requestId);
    if (!batch) return;
    const { log } = this.#opts;
    if (this.#clearTimer(batch)) log.info({ request_id: requestId }, 'cleanup_flush_task');
    if (batch.tokens > 0) {
      log.info({ request_id: requestId, size: batch.bytes }, 'flush_on_cleanup');
      this.#publish(batch, 'on_cleanup');
    }
    this.#batches.delete(requestId);
    log.info({ request_id: requestId }, 'cleanup_buffer');
  }

  #onTimer(requestId: string): void {
    const batch = this.#batches.get(requestId);
    if (!batch) return;
    batch.armed = false;
    this.#timers--;
    if (batch.tokens === 0) return;
    this.#opts.log.info({ request_id: requestId, size: batch.bytes }, 'flush_start');
    this.#publish(batch, 'scheduled');
  }

  #publish(batch: Batch, kind: 'scheduled' | 'immediate' | 'on_end' | 'on_cleanup'): void {
    const { text, tokens } = batch;
    batch.text = '';
    batch.bytes = 0;
    batch.tokens = 0;
    this.#opts.publish(batch.meta, text, tokens);
    this.#opts.onFlush?.(kind, tokens);
    if (kind === 'scheduled' || kind === 'immediate') this.#opts.log.info({ request_id: batch.meta.request_id, tokens_sent: tokens }, 'flush_done');
  }

  #clearTimer(batch: Batch): boolean {
    if (!batch.armed) return false;
    clearTimeout(batch.timer);
    batch.timer = undefined;
    batch.armed = false;
    this.#timers--;
    return true;
  }
}
