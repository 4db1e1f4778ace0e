import type { Logger } from 'pino';

/**
 * Notices a blocked event loop as it happens: a timer that fires late by more than `thresholdMs` logs
 * `event_loop_blocked delay_ms=`. Also tells load shedding whether the loop is saturated right now, and hands
 * every tick's lateness to `onDelay` (the metrics' cumulative histogram).
 */
export class EventLoopWatchdog {
  #timer: NodeJS.Timeout | undefined;
  #expected = 0;
  #peak = 0;
  #peakAt = 0;

  constructor(
    readonly opts: { thresholdMs: number; intervalMs?: number; windowMs?: number; log: Logger; onBlocked?: (delayMs: number) => void; onDelay?: (delayMs: number) => void },
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
      // A stall shows in one tick only; the ticks after it are on time again. Load shedding must still see it
      // while the backlog it left is served, so the watchdog keeps the worst lateness of the last window.
      if (delay >= this.#peak || now - this.#peakAt > this.#window) {
        this.#peak = delay;
        this.#peakAt = now;
      }
      opts.onDelay?.(delay);
      if (delay > opts.thresholdMs) {
        opts.log.warn({ delay_ms: Math.round(delay) }, 'event_loop_blocked');
        opts.onBlocked?.(delay);
      }
    }, interval);
    this.#timer.unref();
  }

  /**
   * The worst lateness of a tick in about the last `windowMs` (default 1 s, what `Retry-After: 1` promises), in ms:
   * whether the loop is saturated now, and not only at the very last tick.
   */
  get recentDelayMs(): number {
    return performance.now() - this.#peakAt > this.#window ? 0 : this.#peak;
  }

  get #window(): number {
    return this.opts.windowMs ?? 1000;
  }

  close(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
