import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { JarvisError } from '../errors.js';
import type { RandomIds } from '../ids.js';
import { linesOf, type BilledTurn } from './record.js';
import { LedgerStoreError } from './stores/errors.js';
import type { LedgerStore, LedgerWrite, RecordsQuery, TotalsQuery, TotalsRow, UsageRecord } from './types.js';

/** The hooks /metrics implements. */
export interface LedgerObserver {
  written(lines: number): void;
  failed(): void;
  dropped(lines: number): void;
  queueDepth(read: () => number): void;
  storeUp(read: () => boolean): void;
}

export interface LedgerOptions {
  store: LedgerStore;
  prices: Config['prices'];
  flushMs: number;
  maxQueued: number;
  log: Logger;
  ids: RandomIds;
  observer?: LedgerObserver | undefined;
  /** Told of each line's spend as it is made (budgets count it before it is written). */
  onSpend?: ((key: string, cost: number, tokens: number, atMs: number) => void) | undefined;
  /** Told once the store is open (budgets read what was spent before this start). */
  onOpen?: ((store: LedgerStore) => Promise<void>) | undefined;
}

/** Lines written in one transaction, at most. */
const BATCH = 1000;
/** How long a read of the ledger waits for this instance's queued lines to be written first. */
const READ_FLUSH_MS = 10_000;
/** How long shutdown waits for the last lines. */
const CLOSE_FLUSH_MS = 5000;

/**
 * The usage ledger: each turn's lines (record.ts) queued in memory and written in batches every `flushMs`, off the
 * request path. A store that is down fails nothing: lines wait (at most `maxQueued`, the oldest dropped past it),
 * a log line and the metrics say so, and they are written once it is back.
 */
export class Ledger {
  readonly #o: LedgerOptions;
  #queue: LedgerWrite[] = [];
  readonly #timer: NodeJS.Timeout;
  #open = false;
  #down = false;
  #closed = false;
  #writing: Promise<void> | undefined;

  constructor(opts: LedgerOptions) {
    this.#o = opts;
    this.#timer = setInterval(() => void this.#tick(), opts.flushMs).unref();
    opts.observer?.queueDepth(() => this.#queue.length);
    opts.observer?.storeUp(() => this.#open && !this.#down);
    void this.#tick();
  }

  get store(): LedgerStore['kind'] {
    return this.#o.store.kind;
  }

  /** `opening` until the store first answers, then `up` or `down`. */
  get state(): 'opening' | 'up' | 'down' {
    return this.#down ? 'down' : this.#open ? 'up' : 'opening';
  }

  get queued(): number {
    return this.#queue.length;
  }

  /** Bills one turn: its lines join the queue. Synchronous and cheap: it runs as a stream ends. */
  turn(turn: BilledTurn): void {
    if (this.#closed) return;
    const now = Date.now();
    const lines = linesOf(turn, this.#o.prices, now, () => this.#o.ids.hex(4));
    for (const record of lines) {
      this.#queue.push({ kind: 'record', record });
      if (record.key !== null) this.#o.onSpend?.(record.key, record.cost ?? 0, record.input_tokens + record.output_tokens, now);
    }
    this.#bound();
  }

  /** What the person heard of an answer (a truncate): its line is cut there, wherever and whenever it was written. */
  heard(requestId: string, heardChars: number): void {
    if (this.#closed) return;
    this.#queue.push({ kind: 'heard', update: { request_id: requestId, heard_chars: heardChars } });
    this.#bound();
  }

  async totals(q: TotalsQuery): Promise<TotalsRow[]> {
    await this.#readable();
    return this.#o.store.totals(q);
  }

  async records(q: RecordsQuery): Promise<UsageRecord[]> {
    await this.#readable();
    return this.#o.store.records(q);
  }

  /** Writes everything queued so far (or gives up after `ms`): a read then sees this instance's own lines. */
  async flush(ms = READ_FLUSH_MS): Promise<void> {
    const deadline = performance.now() + ms;
    while (this.#queue.length > 0 || this.#writing) {
      if (performance.now() > deadline) return;
      await (this.#writing ?? this.#tick());
      if (this.#down) return;
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    clearInterval(this.#timer);
    await this.flush(CLOSE_FLUSH_MS);
    this.#closed = true;
    if (this.#queue.length > 0) this.#o.log.warn({ lines: this.#queue.length }, 'ledger_lines_lost');
    this.#queue = [];
    await this.#o.store.close().catch(() => {});
  }

  async #readable(): Promise<void> {
    await this.flush();
    if (!this.#open || this.#down) throw new JarvisError('JARVIS_ERR_LEDGER_UNAVAILABLE', 'The usage ledger cannot be read right now; retry shortly.', { headers: { 'retry-after': '1' } });
  }

  /** Past maxQueued the oldest lines go: memory stays bounded however long the store is down. */
  #bound(): void {
    const excess = this.#queue.length - this.#o.maxQueued;
    if (excess <= 0) return;
    this.#queue.splice(0, excess);
    this.#o.observer?.dropped(excess);
    this.#o.log.warn({ lines: excess, max_queued: this.#o.maxQueued }, 'ledger_lines_dropped');
  }

  #tick(): Promise<void> {
    if (this.#writing || this.#closed) return this.#writing ?? Promise.resolve();
    if (this.#open && this.#queue.length === 0) return Promise.resolve();
    this.#writing = this.#write().finally(() => (this.#writing = undefined));
    return this.#writing;
  }

  async #write(): Promise<void> {
    const { store, log, observer } = this.#o;
    try {
      if (!this.#open) {
        await store.open();
        this.#open = true;
        await this.#o.onOpen?.(store);
        log.info({ store: store.kind }, 'ledger_open');
      }
      while (this.#queue.length > 0) {
        const batch = this.#queue.splice(0, BATCH);
        try {
          await store.write(batch);
        } catch (err) {
          // Back at the head, in order; lines queued meanwhile stay after it.
          this.#queue.unshift(...batch);
          this.#bound();
          throw err;
        }
        observer?.written(batch.length);
      }
      if (this.#down) {
        this.#down = false;
        log.info({ store: store.kind }, 'ledger_store_up');
      }
    } catch (err) {
      observer?.failed();
      // A store that closed (its worker died) is opened again on the next try.
      if (err instanceof LedgerStoreError && err.code === 'closed') this.#open = false;
      if (!this.#down) {
        this.#down = true;
        log.warn({ store: store.kind, queued: this.#queue.length, error: errorText(err) }, 'ledger_store_down');
      }
    }
  }
}

/** An error's message, never its connection string: a PostgreSQL URL may carry a password. */
function errorText(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return text.replace(/\b(postgres(?:ql)?:\/\/)[^@\s]*@/gi, '$1***@').slice(0, 200);
}
