// The bench's PostgreSQL: a database of its own on the machine's server (JARVIS_BENCH_POSTGRES_URL, else trust auth
// on 127.0.0.1:5432 as the tests use it), created empty and dropped after; and the CPU of the server processes that
// serve one database (its backends), read from /proc like the gateway's.
import pg from 'pg';
import { cpuSeconds } from './proc-stats.js';
import { adminUrl, freshDatabase, type FreshDatabase } from '../test/support/postgres.js';

export type BenchDatabase = FreshDatabase;

/** A database of the bench's own, as the tests make theirs. */
export const createBenchDatabase = (): Promise<BenchDatabase> => freshDatabase('jarvis_bench');

/**
 * Watches the backends (server processes) of one database: `pids()` lists them (from pg_stat_activity, over a
 * connection of the watcher's own, to the maintenance database so it is not one of them), `cpu()` sums the CPU
 * seconds of the listed ones. The server's shared processes (WAL writer, checkpointer) are not counted.
 */
export class BackendWatch {
  readonly #client: pg.Client;
  readonly #database: string;

  private constructor(client: pg.Client, database: string) {
    this.#client = client;
    this.#database = database;
  }

  static async open(database: string): Promise<BackendWatch> {
    const client = new pg.Client({ connectionString: adminUrl(), connectionTimeoutMillis: 5000 });
    await client.connect();
    return new BackendWatch(client, database);
  }

  async pids(): Promise<number[]> {
    const { rows } = await this.#client.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [this.#database]);
    return rows.map((r) => r.pid);
  }

  /** CPU seconds so far of each backend, by pid (a backend gone since it was listed is left out). */
  static cpu(pids: readonly number[]): Map<number, number> {
    const out = new Map<number, number>();
    for (const pid of pids) {
      const s = cpuSeconds(pid);
      if (Number.isFinite(s)) out.set(pid, s);
    }
    return out;
  }

  /** CPU seconds the backends listed in `after` used since `before` (a backend that started since counts whole). */
  static used(before: Map<number, number>, after: Map<number, number>): number {
    let sum = 0;
    for (const [pid, s] of after) sum += s - (before.get(pid) ?? 0);
    return sum;
  }

  async close(): Promise<void> {
    await this.#client.end().catch(() => {});
  }
}
