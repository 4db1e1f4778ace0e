import type { Logger } from 'pino';

/**
 * Notices a blocked event loop as it happens: a timer that fires late by more than `thresholdMs` logs
 * `event_loop_blocked delay_ms=`. Also tells load shedding whether the loop is saturated right now, and hands
 * every tick's lateness to `onDelay` (the metrics' cumulative histogram).
 */
export class EventLoopWatchdog {
  #timer: NodeJS.Timeout | undefined;
  #expected = 0;
  #lastDelay = 0;

  constructor(
    readonly opts: { thresholdMs: number; intervalMs?: number; log: Logger; onBlocked?: (delayMs: number) => void; onDelay?: (delayMs: number) => void },
  ) {}

  /** Starts watching; from the moment the server serves, not while it loads (that is not a blocked loop). */
  start(): void {
    if (this.#timer) return;
    const { opts } = this;
    // prom-client samples the loop at 10 ms for nodejs_eventloop_lag_*; the same rate makes the two histograms agree.
    const interval = opts.intervalMs ?? 10;
    this.#expected = performance.now() + interval;
    this.#timer = setInterval(() => {
      const now = performance.now();
      const delay = Math.max(0, now - this.#expected);
      this.#expected = now + interval;
      this.#lastDelay = delay;
      opts.onDelay?.(delay);
      if (delay > opts.thresholdMs) {
        opts.log.warn({ delay_ms: Math.round(delay) }, 'event_loop_blocked');
        opts.onBlocked?.(delay);
      }
    }, interval);
    this.#timer.unref();
  }

  /** The lateness of the most recent tick, in ms. */
  get lastDelayMs(): number {
    return this.#lastDelay;
  }

  close(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
