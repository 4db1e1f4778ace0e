import type { Logger } from 'pino';

export type CircuitState = 'closed' | 'open' | 'half_open';

/**
 * One upstream's circuit breaker: after `failures` consecutive failed attempts it opens and the upstream is
 * skipped for `cooldownMs`; then one attempt (the probe) is let through, and its outcome closes or reopens it.
 * Each instance keeps its own: no coordination is needed for an upstream to be skipped a little later elsewhere.
 */
export class Circuit {
  #state: CircuitState = 'closed';
  #failures = 0;
  #openedAt = 0;
  #probing = false;

  constructor(
    readonly upstream: string,
    readonly opts: { failures: number; cooldownMs: number; log: Logger; now?: () => number; onChange?: (state: CircuitState) => void },
  ) {}

  get state(): CircuitState {
    if (this.#state === 'open' && this.#now() - this.#openedAt >= this.opts.cooldownMs) return 'half_open';
    return this.#state;
  }

  #now(): number {
    return this.opts.now ? this.opts.now() : performance.now();
  }

  /** Whether an attempt may go to this upstream now; in half-open, only the one probe. */
  allow(): boolean {
    const state = this.state;
    if (state === 'closed') return true;
    if (state === 'open' || this.#probing) return false;
    this.#state = 'half_open';
    this.#probing = true;
    return true;
  }

  succeeded(): void {
    this.#failures = 0;
    this.#probing = false;
    if (this.#state !== 'closed') {
      this.#state = 'closed';
      this.opts.log.info({ upstream: this.upstream }, 'circuit_closed');
      this.opts.onChange?.('closed');
    }
  }

  failed(): void {
    this.#failures++;
    const probe = this.#probing;
    this.#probing = false;
    if (probe || (this.#state === 'closed' && this.#failures >= this.opts.failures)) {
      this.#state = 'open';
      this.#openedAt = this.#now();
      this.opts.log.warn({ upstream: this.upstream, failures: this.#failures, cooldown_ms: this.opts.cooldownMs }, 'circuit_open');
      this.opts.onChange?.('open');
    }
  }
}
