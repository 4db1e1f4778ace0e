export interface HeartbeatTarget {
  /** Set by the target on every write; the heartbeat clears it each tick. */
  active: boolean;
  ping(): void;
}

/**
 * One timer for every open SSE response instead of one per stream. A response idle for a whole interval gets
 * `: ping`, so proxies and load balancers keep the connection open.
 */
export class Heartbeat {
  readonly #targets = new Set<HeartbeatTarget>();
  readonly #timer: NodeJS.Timeout;

  constructor(intervalMs: number) {
    this.#timer = setInterval(() => this.#tick(), intervalMs);
    this.#timer.unref();
  }

  add(target: HeartbeatTarget): void {
    this.#targets.add(target);
  }

  delete(target: HeartbeatTarget): void {
    this.#targets.delete(target);
  }

  #tick(): void {
    for (const t of this.#targets) {
      if (t.active) t.active = false;
      else t.ping();
    }
  }

  close(): void {
    clearInterval(this.#timer);
    this.#targets.clear();
  }
}
