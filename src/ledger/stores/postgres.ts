// The ledger in PostgreSQL: shared by every instance that points at the same database, so budgets and totals
// see all of them. Writes fail loudly (the writer keeps its batch and retries); a dropped connection never takes
// the process down.
import { userInfo } from 'node:os';
import pg from 'pg';
import type { LedgerStore, LedgerWrite, RecordsQuery, SpendRow, TotalsQuery, TotalsRow, UsageRecord } from '../types.js';
import { LedgerStoreError } from './errors.js';
import { orderTotals, splitBatch, toRecord, toSpend, toTotals, type RawRow } from './rows.js';
import * as sql from './sql.js';

export interface PostgresLedgerStoreOptions {
  /** postgres://user:password@host:port/database; the password never appears in an error or in `target`. */
  url: string;
  /** Pool size: a writer and a few readers (default 4). */
  maxConnections?: number;
  /** Give up on reaching the server after this long (default 5000), so a write to a server away fails, not hangs. */
  connectTimeoutMs?: number;
  /** Give up on a query after this long (default 30000): a frozen server rejects the write instead of holding it. */
  queryTimeoutMs?: number;
  /** Told about a connection that dropped while idle in the pool (the pool replaces it); for the log. */
  onConnectionError?: (error: Error) => void;
}

// pg_advisory_xact_lock's key for migrations: instances starting together migrate one after the other.
const MIGRATION_LOCK = '7305263917046104421';

export class PostgresLedgerStore implements LedgerStore {
  readonly kind = 'postgres' as const;
  /** The URL without its credentials: for logs and errors. */
  readonly target: string;
  private readonly options: PostgresLedgerStoreOptions;
  private pool: pg.Pool | undefined;
  private opening: Promise<void> | undefined;

  constructor(options: PostgresLedgerStoreOptions) {
    this.options = options;
    this.target = redact(options.url);
  }

  /** Connects and creates or migrates the schema; calls while one is under way share it. */
  async open(): Promise<void> {
    this.opening ??= this.start().finally(() => (this.opening = undefined));
    await this.opening;
  }

  private async start(): Promise<void> {
    if (this.pool) return;
    const pool = new pg.Pool({
      connectionString: withUser(this.options.url),
      max: this.options.maxConnections ?? 4,
      connectionTimeoutMillis: this.options.connectTimeoutMs ?? 5000,
      query_timeout: this.options.queryTimeoutMs ?? 30_000,
      idleTimeoutMillis: 30_000,
      keepAlive: true,
    });
    // Without a listener, an idle connection's error (server restart, network cut) is an uncaught exception.
    pool.on('error', (error) => this.options.onConnectionError?.(error));
    try {
      await this.transaction(pool, async (client) => {
        await client.query(sql.toPostgres('SELECT pg_advisory_xact_lock(?)'), [MIGRATION_LOCK]);
        await client.query(sql.CREATE_SCHEMA_TABLE);
        const { rows } = await client.query<RawRow>(sql.READ_SCHEMA_VERSION);
        for (const migration of sql.pendingMigrations(Number(rows[0]?.version ?? 0))) {
          for (const statement of migration.statements) await client.query(statement);
          await client.query(sql.toPostgres(sql.RECORD_SCHEMA_VERSION), [migration.version, Date.now()]);
        }
      });
    } catch (error) {
      await pool.end().catch(() => undefined);
      throw error;
    }
    this.pool = pool;
  }

  async write(batch: readonly LedgerWrite[]): Promise<void> {
    if (batch.length === 0) return;
    const { records, heard } = splitBatch(batch);
    await this.transaction(this.openPool(), async (client) => {
      for (let i = 0; i < records.length; i += sql.INSERT_CHUNK) {
        await run(client, sql.insertRecords(records.slice(i, i + sql.INSERT_CHUNK)));
      }
      for (const update of heard) await run(client, sql.heardUpdate(update));
    });
  }

  async totals(q: TotalsQuery): Promise<TotalsRow[]> {
    return orderTotals((await this.query(sql.totals(q))).map(toTotals));
  }

  async records(q: RecordsQuery): Promise<UsageRecord[]> {
    return (await this.query(sql.records(q))).map(toRecord);
  }

  async spend(sinceMs: number): Promise<SpendRow[]> {
    return (await this.query(sql.spend(sinceMs))).map(toSpend);
  }

  async close(): Promise<void> {
    await this.opening?.catch(() => undefined);
    const pool = this.pool;
    this.pool = undefined;
    await pool?.end();
  }

  private openPool(): pg.Pool {
    if (!this.pool) throw new LedgerStoreError('closed', `ledger (postgres ${this.target}) is not open`);
    return this.pool;
  }

  private async query(statement: sql.Statement): Promise<RawRow[]> {
    const pool = this.openPool();
    try {
      return (await pool.query<RawRow>(sql.toPostgres(statement.sql), [...statement.params])).rows;
    } catch (error) {
      throw this.failure(error);
    }
  }

  private async transaction(pool: pg.Pool, body: (client: pg.PoolClient) => Promise<void>): Promise<void> {
    let client: pg.PoolClient;
    try {
      client = await pool.connect();
    } catch (error) {
      throw this.failure(error);
    }
    // A checked-out client is the pool's no longer: its connection's error between two queries would be uncaught.
    // The query in flight (or the next) rejects with the same cause, so the event itself needs no handling.
    const onError = () => undefined;
    client.on('error', onError);
    try {
      await client.query('BEGIN');
      await body(client);
      await client.query('COMMIT');
      client.off('error', onError);
      client.release();
    } catch (error) {
      client.off('error', onError);
      // No ROLLBACK: the connection may be the failure (a ROLLBACK would wait out the query timeout again).
      // Destroying it ends the transaction on the server all the same, and no caller gets a broken connection.
      client.release(true);
      throw this.failure(error);
    }
  }

  private failure(error: unknown): LedgerStoreError {
    if (error instanceof LedgerStoreError) return error;
    const message = error instanceof Error ? error.message : String(error);
    return new LedgerStoreError('unavailable', `ledger (postgres ${this.target}): ${message}`, { cause: error });
  }
}

async function run(client: pg.PoolClient, statement: sql.Statement): Promise<void> {
  await client.query(sql.toPostgres(statement.sql), [...statement.params]);
}

/** postgres://host:port/database, without user or password; a URL that does not parse is a config error. */
function redact(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    // Not `cause`: Node's URL error keeps the input, password included.
    throw new LedgerStoreError('config', 'ledger: the PostgreSQL URL does not parse');
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') {
    throw new LedgerStoreError('config', `ledger: a PostgreSQL URL starts postgres:// (not ${parsed.protocol}//)`);
  }
  return `${parsed.protocol}//${parsed.host}${parsed.pathname}`;
}

/** A URL without a user means the OS user, as psql has it: pg would send none where USER is unset (a service, CI). */
function withUser(url: string): string {
  try {
    const u = new URL(url);
    if (u.username) return url;
    u.username = encodeURIComponent(userInfo().username);
    return u.href;
  } catch {
    // pg reports what it cannot parse.
    return url;
  }
}
