// The ledger in a local SQLite file, for a single instance (or a few sharing one data directory). SQLite runs in
// a worker thread (embedded-worker): this side only posts requests and awaits the answers.
import { extname } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { LedgerStore, LedgerWrite, RecordsQuery, SpendRow, TotalsQuery, TotalsRow, UsageRecord } from '../types.js';
import type { LedgerFileOptions, LedgerWorkerData, Reply, Request } from './embedded-worker.js';
import { LedgerStoreError } from './errors.js';

export interface EmbeddedLedgerStoreOptions {
  /** The database file, e.g. data/ledger.sqlite; its directory is created when missing. */
  file: string;
  /** How long one operation waits for another process's lock on the file (default 2000 ms), then fails as busy. */
  busyTimeoutMs?: number;
  /** A lock left this long (default 30 s) is a crashed process's, and is removed. */
  staleLockMs?: number;
}

type Op = Request['op'];
type ArgsOf<O extends Op> = Extract<Request, { op: O }>['args'];

/**
 * The worker runs from the same place as this module: its .js beside dist/ledger/stores/embedded.js, or its .ts
 * source under vitest or tsx. Node runs a .ts worker only through tsx, and a worker's `--import tsx` does not
 * reach its own entry module (Node 20), so a small script registers tsx in the worker and then imports the source.
 */
function startWorker(ledgerFile: LedgerFileOptions): Worker {
  const workerData: LedgerWorkerData = { ledgerFile };
  const url = new URL(`./embedded-worker${extname(new URL(import.meta.url).pathname)}`, import.meta.url);
  if (!url.pathname.endsWith('.ts')) return new Worker(url, { workerData });
  const tsx = import.meta.resolve('tsx/esm/api');
  const script = `import(${JSON.stringify(tsx)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(url.href)}); });`;
  return new Worker(script, { eval: true, workerData });
}

/** One worker and the requests awaiting its answers; once it has died every request rejects at once. */
class Channel {
  private readonly pending = new Map<number, { resolve(result: unknown): void; reject(error: Error): void }>();
  private nextId = 1;
  private death: LedgerStoreError | undefined;

  constructor(readonly worker: Worker) {
    worker.on('message', (reply: Reply) => this.settle(reply));
    worker.on('error', (error) => this.die(new LedgerStoreError('closed', `ledger worker failed: ${error.message}`, { cause: error })));
    worker.on('exit', (code) => this.die(new LedgerStoreError('closed', `ledger worker exited (code ${code})`)));
    // An idle worker does not keep the process alive; one with requests in flight does (see call).
    worker.unref();
  }

  get alive(): boolean {
    return this.death === undefined;
  }

  call<O extends Op>(op: O, args: ArgsOf<O>): Promise<unknown> {
    if (this.death) return Promise.reject(this.death);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      if (this.pending.size === 0) this.worker.ref();
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, op, args });
    });
  }

  private settle(reply: Reply): void {
    const waiter = this.pending.get(reply.id);
    if (!waiter) return;
    this.pending.delete(reply.id);
    if (this.pending.size === 0) this.worker.unref();
    if ('error' in reply) waiter.reject(new LedgerStoreError(reply.error.code, reply.error.message));
    else waiter.resolve(reply.result);
  }

  private die(error: LedgerStoreError): void {
    this.death ??= error;
    for (const waiter of this.pending.values()) waiter.reject(this.death);
    this.pending.clear();
  }
}

export class EmbeddedLedgerStore implements LedgerStore {
  readonly kind = 'embedded' as const;
  private readonly options: LedgerFileOptions;
  private channel: Channel | undefined;

  constructor(options: EmbeddedLedgerStoreOptions) {
    this.options = { file: options.file, busyTimeoutMs: options.busyTimeoutMs ?? 2000, staleLockMs: options.staleLockMs ?? 30_000 };
  }

  /** Starts the worker and creates or migrates the schema. Opening again after close, or after the worker died, starts a new one. */
  async open(): Promise<void> {
    if (this.channel?.alive) return;
    const channel = new Channel(startWorker(this.options));
    this.channel = channel;
    try {
      await channel.call('open', null);
    } catch (error) {
      if (this.channel === channel) this.channel = undefined;
      await channel.worker.terminate();
      throw error;
    }
  }

  async write(batch: readonly LedgerWrite[]): Promise<void> {
    if (batch.length === 0) return;
    await this.call('write', batch);
  }

  async totals(q: TotalsQuery): Promise<TotalsRow[]> {
    return (await this.call('totals', q)) as TotalsRow[];
  }

  async records(q: RecordsQuery): Promise<UsageRecord[]> {
    return (await this.call('records', q)) as UsageRecord[];
  }

  async spend(sinceMs: number): Promise<SpendRow[]> {
    return (await this.call('spend', sinceMs)) as SpendRow[];
  }

  /** Closes the database (after the requests sent before) and ends the worker. */
  async close(): Promise<void> {
    const channel = this.channel;
    this.channel = undefined;
    if (!channel) return;
    try {
      // A worker that already died has nothing to close.
      if (channel.alive) await channel.call('close', null);
    } finally {
      await channel.worker.terminate();
    }
  }

  private call<O extends Op>(op: O, args: ArgsOf<O>): Promise<unknown> {
    if (!this.channel) return Promise.reject(new LedgerStoreError('closed', `ledger file ${this.options.file} is not open`));
    return this.channel.call(op, args);
  }
}
