// The embedded ledger's SQLite, in a worker thread of its own: node-sqlite3-wasm answers synchronously, and a
// wait for the file's lock blocks this thread, never the gateway's. One request at a time, in the order sent.
import { existsSync, mkdirSync, rmdirSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import sqlite3 from 'node-sqlite3-wasm';
import type { LedgerWrite, RecordsQuery, SpendRow, TotalsQuery, TotalsRow, UsageRecord } from '../types.js';
import { LedgerStoreError, type LedgerStoreErrorCode } from './errors.js';
import { orderTotals, splitBatch, toRecord, toSpend, toTotals, type RawRow } from './rows.js';
import * as sql from './sql.js';

export interface LedgerFileOptions {
  file: string;
  /** How long one operation keeps retrying while another connection holds the file's lock. */
  busyTimeoutMs: number;
  /** A lock directory older than this was left by a process that died holding it. */
  staleLockMs: number;
}

export type Request =
  | { id: number; op: 'open'; args: null }
  | { id: number; op: 'write'; args: readonly LedgerWrite[] }
  | { id: number; op: 'totals'; args: TotalsQuery }
  | { id: number; op: 'records'; args: RecordsQuery }
  | { id: number; op: 'spend'; args: number }
  | { id: number; op: 'close'; args: null };

export type Reply = { id: number; result: unknown } | { id: number; error: { code: LedgerStoreErrorCode; message: string } };

// node-sqlite3-wasm's errors carry SQLite's message only: SQLITE_BUSY reads "database is locked".
const isBusy = (error: unknown): boolean => error instanceof Error && /database is locked/.test(error.message);

/** One connection to the ledger file. */
class LedgerFile {
  private readonly db: sqlite3.Database;
  private readonly lockDir: string;
  private readonly sleeper = new Int32Array(new SharedArrayBuffer(4));

  constructor(private readonly options: LedgerFileOptions) {
    mkdirSync(dirname(resolve(options.file)), { recursive: true });
    // The VFS locks the file by creating this directory (mkdir is atomic), for readers and writers alike.
    this.lockDir = `${resolve(options.file)}.lock`;
    this.db = new sqlite3.Database(options.file);
  }

  open(): void {
    // No shared memory in this VFS, so no WAL: a rollback journal, truncated rather than deleted after each
    // commit (cheaper than creating the file again). NORMAL syncs at the journal's critical moments only.
    this.retrying(() => this.db.exec('PRAGMA journal_mode=TRUNCATE'));
    this.db.exec('PRAGMA synchronous=NORMAL');
    this.transaction(() => {
      this.db.exec(sql.CREATE_SCHEMA_TABLE);
      const version = Number(this.db.get(sql.READ_SCHEMA_VERSION)?.version ?? 0);
      for (const migration of sql.pendingMigrations(version)) {
        for (const statement of migration.statements) this.db.exec(statement);
        this.db.run(sql.RECORD_SCHEMA_VERSION, [migration.version, Date.now()]);
      }
    });
  }

  write(batch: readonly LedgerWrite[]): void {
    if (batch.length === 0) return;
    const { records, heard } = splitBatch(batch);
    this.transaction(() => {
      for (let i = 0; i < records.length; i += sql.INSERT_CHUNK) this.run(sql.insertRecords(records.slice(i, i + sql.INSERT_CHUNK)));
      for (const update of heard) this.run(sql.heardUpdate(update));
    });
  }

  totals(q: TotalsQuery): TotalsRow[] {
    return orderTotals(this.all(sql.totals(q)).map(toTotals));
  }

  records(q: RecordsQuery): UsageRecord[] {
    return this.all(sql.records(q)).map(toRecord);
  }

  spend(sinceMs: number): SpendRow[] {
    return this.all(sql.spend(sinceMs)).map(toSpend);
  }

  close(): void {
    if (this.db.isOpen) this.db.close();
  }

  private run(statement: sql.Statement): void {
    this.db.run(statement.sql, [...statement.params]);
  }

  private all(statement: sql.Statement): RawRow[] {
    return this.retrying(() => this.db.all(statement.sql, [...statement.params]));
  }

  // IMMEDIATE takes the lock up front: a busy file fails the BEGIN, before anything was done, and is retried whole.
  private transaction(body: () => void): void {
    this.retrying(() => {
      this.db.exec('BEGIN IMMEDIATE');
      try {
        body();
        this.db.exec('COMMIT');
      } catch (error) {
        if (this.db.inTransaction) this.db.exec('ROLLBACK');
        throw error;
      }
    });
  }

  /** Runs `body` again while the file is locked by another connection, with a growing pause, up to busyTimeoutMs. */
  private retrying<T>(body: () => T): T {
    const deadline = Date.now() + this.options.busyTimeoutMs;
    for (let pause = 2; ; pause = Math.min(pause * 2, 100)) {
      try {
        return body();
      } catch (error) {
        if (!isBusy(error)) throw error;
        const cleared = this.removeStaleLock();
        const left = deadline - Date.now();
        if (cleared && left > 0) continue;
        if (left <= 0) throw new LedgerStoreError('busy', `ledger file ${this.options.file} stayed locked for ${this.options.busyTimeoutMs} ms`);
        // Jitter: two connections that collided do not retry in step.
        Atomics.wait(this.sleeper, 0, 0, Math.min(left, pause / 2 + Math.random() * pause));
      }
    }
  }

  /** A lock directory past staleLockMs belongs to a process that died holding it: nothing will ever remove it. */
  private removeStaleLock(): boolean {
    try {
      if (Date.now() - statSync(this.lockDir).mtimeMs < this.options.staleLockMs) return false;
      rmdirSync(this.lockDir);
      return true;
    } catch {
      // Gone in between (released, or another connection removed it first): worth a retry all the same.
      return !existsSync(this.lockDir);
    }
  }
}

function handle(file: LedgerFile, request: Request): unknown {
  switch (request.op) {
    case 'open':
      return file.open();
    case 'write':
      return file.write(request.args);
    case 'totals':
      return file.totals(request.args);
    case 'records':
      return file.records(request.args);
    case 'spend':
      return file.spend(request.args);
    case 'close':
      return file.close();
  }
}

function reply(id: number, error: unknown): Reply {
  if (error instanceof LedgerStoreError) return { id, error: { code: error.code, message: error.message } };
  return { id, error: { code: 'unavailable', message: error instanceof Error ? error.message : String(error) } };
}

/** What EmbeddedLedgerStore hands its worker; the key tells this module's worker from any other thread importing it. */
export interface LedgerWorkerData {
  ledgerFile: LedgerFileOptions;
}

const options = (workerData as Partial<LedgerWorkerData> | null)?.ledgerFile;
if (parentPort && options) {
  const port = parentPort;
  let file: LedgerFile | undefined;
  port.on('message', (request: Request) => {
    try {
      file ??= new LedgerFile(options);
      port.postMessage({ id: request.id, result: handle(file, request) ?? null } satisfies Reply);
    } catch (error) {
      port.postMessage(reply(request.id, error));
    }
  });
}
