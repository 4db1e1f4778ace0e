// Both ledger stores against real databases: the embedded one on a temporary SQLite file (through its worker),
// PostgreSQL on a database of each test's own. The same suite runs on both, since both run the same SQL.
import { mkdirSync, mkdtempSync, rmSync, utimesSync, existsSync } from 'node:fs';
import { execFile } from 'node:child_process';
import { tmpdir } from 'node:os';
import { promisify } from 'node:util';
import { join } from 'node:path';
import pg from 'pg';
import sqlite3 from 'node-sqlite3-wasm';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { freshDatabase, startPostgresProxy, terminateOtherConnections } from '../../../test/support/postgres.js';
import { GROUP_BY, type GroupBy, type LedgerStore, type LedgerWrite, type TotalsRow, type UsageRecord } from '../types.js';
import { EmbeddedLedgerStore } from './embedded.js';
import { LedgerStoreError } from './errors.js';
import { PostgresLedgerStore } from './postgres.js';
import { pendingMigrations, SCHEMA_VERSION, toPostgres } from './sql.js';

const run = promisify(execFile);

/** A backing database: stores opened on it, and raw access to look under them. */
interface Bed {
  store(): LedgerStore;
  exec(sql: string): Promise<void>;
  versions(): Promise<number[]>;
  cleanup(): Promise<void>;
}

const backends: { name: 'embedded' | 'postgres'; setup(): Promise<Bed> }[] = [
  {
    name: 'embedded',
    async setup() {
      const dir = mkdtempSync(join(tmpdir(), 'jarvis-ledger-'));
      const file = join(dir, 'data', 'ledger.sqlite');
      const raw = <T>(body: (db: sqlite3.Database) => T): T => {
        mkdirSync(join(dir, 'data'), { recursive: true });
        const db = new sqlite3.Database(file);
        try {
          return body(db);
        } finally {
          db.close();
        }
      };
      return {
        store: () => new EmbeddedLedgerStore({ file }),
        exec: async (sql) => raw((db) => db.exec(sql)),
        versions: async () => raw((db) => db.all('SELECT version FROM ledger_schema ORDER BY version').map((r) => Number(r.version))),
        cleanup: async () => rmSync(dir, { recursive: true, force: true }),
      };
    },
  },
  {
    name: 'postgres',
    async setup() {
      const db = await freshDatabase();
      const raw = async <T>(body: (c: pg.Client) => Promise<T>): Promise<T> => {
        const client = new pg.Client({ connectionString: db.url });
        await client.connect();
        try {
          return await body(client);
        } finally {
          await client.end();
        }
      };
      return {
        store: () => new PostgresLedgerStore({ url: db.url }),
        exec: async (sql) => raw(async (c) => void (await c.query(sql))),
        versions: async () => raw(async (c) => (await c.query('SELECT version FROM ledger_schema ORDER BY version')).rows.map((r) => Number(r.version))),
        cleanup: () => db.drop(),
      };
    },
  },
];

const T0 = Date.UTC(2025, 0, 1, 12);
const DAY = 86_400_000;

/** Lines whose ids order as their creation does (as the ledger's do): created ms in hex, then a sequence. */
function lines() {
  let seq = 0;
  return (over: Partial<UsageRecord> = {}): UsageRecord => {
    const created = over.created_ms ?? T0;
    seq++;
    return {
      id: `${created.toString(16).padStart(12, '0')}${seq.toString(16).padStart(8, '0')}`,
      request_id: `req_${seq}`,
      created_ms: created,
      day: new Date(created).toISOString().slice(0, 10),
      key: 'alice',
      session: null,
      api: 'chat.completions',
      model: 'gpt-x',
      upstream: 'up1',
      served_model: 'gpt-x-2025',
      provider: 'openai',
      attempt: 1,
      answered: 1,
      outcome: 'end',
      reason: 'stop',
      input_tokens: 10,
      cached_tokens: 2,
      cache_write_tokens: 0,
      output_tokens: 20,
      reasoning_tokens: 0,
      delivered_tokens: 20,
      delivered_chars: 80,
      generated_chars: 80,
      heard_chars: 80,
      not_heard_tokens: 0,
      estimated: 0,
      ttft_ms: 120,
      duration_ms: 900,
      cost: 0.25,
      not_heard_cost: 0,
      price_output: 10,
      ...over,
    };
  };
}

const put = (...records: UsageRecord[]): LedgerWrite[] => records.map((record) => ({ kind: 'record', record }));
const heard = (request_id: string, heard_chars: number): LedgerWrite => ({ kind: 'heard', update: { request_id, heard_chars } });

/** What totals should answer, computed over the lines in JS. */
function expectedTotals(all: UsageRecord[], startMs: number, endMs: number, groupBy: GroupBy, key?: string) {
  const groups = new Map<string | null, UsageRecord[]>();
  for (const r of all) {
    if (r.created_ms < startMs || r.created_ms >= endMs || (key !== undefined && r.key !== key)) continue;
    const g = r[groupBy];
    groups.set(g, [...(groups.get(g) ?? []), r]);
  }
  const sum = (rs: UsageRecord[], f: (r: UsageRecord) => number) => rs.reduce((s, r) => s + f(r), 0);
  const costSum = (rs: UsageRecord[], f: (r: UsageRecord) => number | null) => (rs.every((r) => f(r) === null) ? null : sum(rs, (r) => f(r) ?? 0));
  return [...groups].map(([group, rs]) => ({
    group,
    requests: new Set(rs.map((r) => r.request_id)).size,
    input_tokens: sum(rs, (r) => r.input_tokens),
    cached_tokens: sum(rs, (r) => r.cached_tokens),
    output_tokens: sum(rs, (r) => r.output_tokens),
    reasoning_tokens: sum(rs, (r) => r.reasoning_tokens),
    delivered_tokens: sum(rs, (r) => r.delivered_tokens),
    delivered_chars: sum(rs, (r) => r.delivered_chars),
    heard_chars: sum(rs, (r) => r.heard_chars),
    not_heard_tokens: sum(rs, (r) => r.not_heard_tokens),
    cost: costSum(rs, (r) => r.cost),
    not_heard_cost: costSum(rs, (r) => r.not_heard_cost),
  }));
}

function expectTotalsEqual(actual: TotalsRow[], expected: ReturnType<typeof expectedTotals>) {
  expect(actual.map((r) => r.group).sort()).toEqual(expected.map((r) => r.group).sort());
  for (const e of expected) {
    const a = actual.find((r) => r.group === e.group)!;
    const { cost, not_heard_cost, ...counts } = e;
    expect({ ...a, cost: undefined, not_heard_cost: undefined }).toEqual({ ...counts, cost: undefined, not_heard_cost: undefined });
    for (const [got, want] of [[a.cost, cost], [a.not_heard_cost, not_heard_cost]] as const) {
      if (want === null) expect(got).toBeNull();
      else expect(got).toBeCloseTo(want, 9);
    }
  }
}

describe('ledger SQL', () => {
  it('numbers each ? as its own PostgreSQL parameter', () => {
    expect(toPostgres('a = ? AND (b < ? OR b = ?)')).toBe('a = $1 AND (b < $2 OR b = $3)');
  });

  it('runs the migrations past the database version, in order', () => {
    expect(pendingMigrations(0).map((m) => m.version)).toEqual([1]);
    expect(pendingMigrations(SCHEMA_VERSION)).toEqual([]);
    const later = [{ version: 3, statements: [] }, { version: 1, statements: [] }, { version: 2, statements: [] }];
    expect(pendingMigrations(1, later).map((m) => m.version)).toEqual([2, 3]);
  });
});

describe.each(backends)('$name ledger store', (backend) => {
  let bed: Bed;
  const opened: LedgerStore[] = [];
  const open = async (store = bed.store()) => {
    opened.push(store);
    await store.open();
    return store;
  };

  beforeEach(async () => {
    bed = await backend.setup();
  });
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((s) => s.close()));
    await bed.cleanup();
  });

  it('creates the schema at version 1 once, however often and however concurrently it is opened', async () => {
    await Promise.all([open(), open()]);
    await open();
    expect(await bed.versions()).toEqual([1]);
  });

  it('runs no migration on a database whose version table says it is current', async () => {
    await bed.exec('CREATE TABLE ledger_schema (version INTEGER PRIMARY KEY, applied_ms BIGINT NOT NULL)');
    await bed.exec('INSERT INTO ledger_schema (version, applied_ms) VALUES (1, 0)');
    const store = await open();
    // Version 1's table was never created: open trusted the version table.
    await expect(store.records({ limit: 1 })).rejects.toThrow(/usage_records/);
    expect(await bed.versions()).toEqual([1]);
  });

  it('inserts records and ignores an id written before or twice in one batch', async () => {
    const line = lines();
    const store = await open();
    const [a, b, c] = [line(), line({ created_ms: T0 + 1 }), line({ created_ms: T0 + 2 })];
    await store.write(put(a, b, b));
    await store.write(put({ ...a, model: 'changed', cost: 99 }, c));
    const rows = await store.records({ limit: 10 });
    expect(rows).toEqual([c, b, a]);
    for (const row of rows) for (const value of Object.values(row)) expect(['string', 'number', 'object']).toContain(typeof value);
    expect(typeof rows[0]!.created_ms).toBe('number');
  });

  it('totals every group_by over a time range, for one key or all', async () => {
    const line = lines();
    const all = [
      line({ key: 'alice', model: 'gpt-x', upstream: 'up1', session: 's1', cost: 0.5, input_tokens: 100 }),
      line({ key: 'alice', model: 'gpt-x', upstream: 'up2', session: 's1', request_id: 'shared', cost: 0.125, not_heard_tokens: 4, not_heard_cost: 0.01 }),
      line({ key: 'alice', model: 'gpt-x', upstream: 'up1', session: 's1', request_id: 'shared', attempt: 2, answered: 0, cost: 0.0625 }),
      line({ key: 'bob', model: 'claude', upstream: 'up3', session: null, cost: 1.5, output_tokens: 300, created_ms: T0 + DAY }),
      line({ key: 'bob', model: 'local', upstream: null, session: 's2', cost: null, not_heard_cost: null, price_output: null, created_ms: T0 + DAY + 5 }),
      line({ key: null, model: 'gpt-x', upstream: 'up1', session: null, cost: 0.1, created_ms: T0 + 2 * DAY }),
      // Outside every range below.
      line({ key: 'alice', model: 'gpt-x', cost: 7, created_ms: T0 - DAY }),
      line({ key: 'alice', model: 'gpt-x', cost: 7, created_ms: T0 + 3 * DAY }),
    ];
    const store = await open();
    await store.write(put(...all));
    const [start, end] = [T0, T0 + 3 * DAY];
    for (const groupBy of GROUP_BY) {
      expectTotalsEqual(await store.totals({ startMs: start, endMs: end, groupBy }), expectedTotals(all, start, end, groupBy));
      expectTotalsEqual(await store.totals({ startMs: start, endMs: end, groupBy, key: 'alice' }), expectedTotals(all, start, end, groupBy, 'alice'));
    }
    const byKey = await store.totals({ startMs: start, endMs: end, groupBy: 'key' });
    expect(byKey.map((r) => [r.group, r.requests])).toEqual([['bob', 2], ['alice', 2], [null, 1]]);
    expect(byKey[1]!.cost).toBeCloseTo(0.6875, 12);
    // The end is exclusive, the start inclusive.
    const day = await store.totals({ startMs: T0 + DAY, endMs: T0 + DAY + 5, groupBy: 'day' });
    expect(day).toEqual([expect.objectContaining({ group: '2025-01-02', requests: 1, cost: 1.5, output_tokens: 300 })]);
    expect(await store.totals({ startMs: start, endMs: end, groupBy: 'key', key: 'nobody' })).toEqual([]);
  });

  it('totals a cost of null for a group without a priced line, and orders it last', async () => {
    const line = lines();
    const store = await open();
    await store.write(
      put(
        line({ model: 'free', cost: null, not_heard_cost: null, price_output: null }),
        line({ model: 'free', cost: null, not_heard_cost: null, price_output: null }),
        line({ model: 'mixed', cost: null, not_heard_cost: null, price_output: null }),
        line({ model: 'mixed', cost: 0.25, not_heard_cost: 0.125 }),
        line({ model: 'dear', cost: 2 }),
        line({ model: 'cheap', cost: 0.25, not_heard_cost: null }),
      ),
    );
    const rows = await store.totals({ startMs: T0, endMs: T0 + 1, groupBy: 'model' });
    expect(rows.map((r) => [r.group, r.cost, r.not_heard_cost])).toEqual([
      ['dear', 2, 0],
      ['cheap', 0.25, null],
      ['mixed', 0.25, 0.125],
      ['free', null, null],
    ]);
  });

  it('pages records newest first and filters them', async () => {
    const line = lines();
    const store = await open();
    const all = Array.from({ length: 7 }, (_, i) => line({ created_ms: T0 + i * 1000, session: i % 2 ? 'odd' : 'even', key: i < 5 ? 'alice' : 'bob' }));
    await store.write(put(...all));
    const ids = (rows: UsageRecord[]) => rows.map((r) => r.id);
    const newest = [...all].reverse();
    const first = await store.records({ limit: 3 });
    expect(ids(first)).toEqual(ids(newest.slice(0, 3)));
    const second = await store.records({ limit: 3, after: first.at(-1)!.id });
    expect(ids(second)).toEqual(ids(newest.slice(3, 6)));
    expect(ids(await store.records({ limit: 3, after: second.at(-1)!.id }))).toEqual(ids(newest.slice(6)));
    expect(ids(await store.records({ limit: 10, key: 'bob' }))).toEqual(ids(newest.slice(0, 2)));
    expect(ids(await store.records({ limit: 10, session: 'odd' }))).toEqual(ids(newest.filter((r) => r.session === 'odd')));
    expect(ids(await store.records({ limit: 10, requestId: all[3]!.request_id }))).toEqual([all[3]!.id]);
    expect(ids(await store.records({ limit: 10, startMs: T0 + 2000, endMs: T0 + 4000 }))).toEqual([all[3]!.id, all[2]!.id]);
    expect(ids(await store.records({ limit: 10, key: 'alice', session: 'even', startMs: T0 + 1 }))).toEqual([all[4]!.id, all[2]!.id]);
    expect(await store.records({ limit: 0 })).toEqual([]);
  });

  it('applies a heard update to the answered line only, lowering what was heard and pricing what was not', async () => {
    const line = lines();
    const writer = await open();
    const lost = line({ request_id: 'r', attempt: 1, answered: 0, output_tokens: 50, generated_chars: 100, heard_chars: 100 });
    const won = line({ request_id: 'r', attempt: 2, output_tokens: 40, generated_chars: 200, heard_chars: 200, price_output: 10 });
    const half = line({ request_id: 'half', output_tokens: 3, generated_chars: 2, heard_chars: 2, price_output: null, not_heard_cost: null });
    const over = line({ request_id: 'over', output_tokens: 9, generated_chars: 200, heard_chars: 500, not_heard_tokens: 1 });
    const silent = line({ request_id: 'silent', output_tokens: 7, generated_chars: 0, heard_chars: 10, not_heard_tokens: 7, price_output: 2 });
    await writer.write(put(lost, won, half, over, silent));
    // Another instance, which never saw these lines, applies the updates.
    const other = await open();
    const line1 = async (id: string) => (await other.records({ limit: 1, requestId: id }))[0]!;
    const answered = async () => (await other.records({ limit: 5, requestId: 'r' })).find((r) => r.answered === 1)!;

    await other.write([heard('r', 50)]);
    expect(await answered()).toMatchObject({ heard_chars: 50, not_heard_tokens: 30 });
    expect((await answered()).not_heard_cost).toBeCloseTo(0.0003, 12);
    await other.write([heard('r', 150)]);
    expect(await answered()).toMatchObject({ heard_chars: 50, not_heard_tokens: 30 });
    await other.write([heard('r', 25), heard('r', 40)]);
    expect(await answered()).toMatchObject({ heard_chars: 25, not_heard_tokens: 35 });
    expect((await answered()).not_heard_cost).toBeCloseTo(0.00035, 12);
    expect((await other.records({ limit: 5, requestId: 'r' })).find((r) => r.answered === 0)).toEqual(lost);

    // 3 tokens, 1 of 2 characters heard: round(1.5) is 2 on both (half away from zero), so 1 not heard; unpriced.
    await other.write([heard('half', 1)]);
    expect(await line1('half')).toMatchObject({ heard_chars: 1, not_heard_tokens: 1, not_heard_cost: null });
    // Heard more than was generated: the share is capped at all of it.
    await other.write([heard('over', 300)]);
    expect(await line1('over')).toMatchObject({ heard_chars: 300, not_heard_tokens: 0, not_heard_cost: 0 });
    // Nothing generated: the tokens stay as written, and are priced.
    await other.write([heard('silent', 5)]);
    expect(await line1('silent')).toMatchObject({ heard_chars: 5, not_heard_tokens: 7 });
    expect((await line1('silent')).not_heard_cost).toBeCloseTo(0.000014, 12);
    // An update for a request nobody wrote changes nothing and fails nothing.
    await other.write([heard('unknown', 1)]);
  });

  it('applies the records of a batch before its heard updates', async () => {
    const line = lines();
    const store = await open();
    const r = line({ request_id: 'same-batch', output_tokens: 10, generated_chars: 100, heard_chars: 100 });
    await store.write([heard('same-batch', 10), ...put(r)]);
    expect((await store.records({ limit: 1 }))[0]).toMatchObject({ heard_chars: 10, not_heard_tokens: 9 });
  });

  it('sums spend per key since a moment', async () => {
    const line = lines();
    const store = await open();
    await store.write(
      put(
        line({ key: 'alice', cost: 0.5, input_tokens: 10, output_tokens: 5, created_ms: T0 - 1 }),
        line({ key: 'alice', cost: 0.25, input_tokens: 1, output_tokens: 2 }),
        line({ key: 'alice', cost: null, input_tokens: 3, output_tokens: 4, created_ms: T0 + 9 }),
        line({ key: 'bob', cost: null, input_tokens: 100, output_tokens: 0 }),
        line({ key: null, cost: 5, input_tokens: 1, output_tokens: 1 }),
      ),
    );
    const rows = (await store.spend(T0)).sort((a, b) => a.key.localeCompare(b.key));
    expect(rows).toEqual([
      { key: 'alice', cost: 0.25, tokens: 10 },
      { key: 'bob', cost: 0, tokens: 100 },
    ]);
    expect(await store.spend(T0 + 10)).toEqual([]);
  });

  it('writes a batch of 1000 records in one call', async () => {
    const line = lines();
    const store = await open();
    const batch = Array.from({ length: 1000 }, (_, i) => line({ created_ms: T0 + i, key: i % 2 ? 'alice' : 'bob' }));
    await store.write([...put(...batch), heard(batch[999]!.request_id, 40)]);
    const totals = await store.totals({ startMs: T0, endMs: T0 + 1000, groupBy: 'key' });
    expect(totals.map((r) => [r.group, r.requests, r.output_tokens])).toEqual([
      ['alice', 500, 10_000],
      ['bob', 500, 10_000],
    ]);
    const rows = await store.records({ limit: 1000 });
    expect(rows).toHaveLength(1000);
    expect(rows[0]).toMatchObject({ id: batch[999]!.id, heard_chars: 40, not_heard_tokens: 10 });
  });

  it('rejects a write once closed, and works again after open', async () => {
    const line = lines();
    const store = await open();
    await store.close();
    await expect(store.write(put(line()))).rejects.toMatchObject({ name: 'LedgerStoreError', code: 'closed' });
    await store.open();
    await store.write(put(line()));
    expect(await store.records({ limit: 5 })).toHaveLength(1);
  });
});

describe('embedded ledger store', () => {
  let dir: string;
  let file: string;
  const opened: EmbeddedLedgerStore[] = [];
  const open = async (options: { busyTimeoutMs?: number } = {}) => {
    const store = new EmbeddedLedgerStore({ file, ...options });
    opened.push(store);
    await store.open();
    return store;
  };
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'jarvis-ledger-'));
    file = join(dir, 'nested', 'ledger.sqlite');
  });
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((s) => s.close()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps its lines in the file across a close and a new store', async () => {
    const line = lines();
    const first = await open();
    const written = [line(), line({ created_ms: T0 + 1 })];
    await first.write(put(...written));
    await first.close();
    const second = await open();
    expect(await second.records({ limit: 10 })).toEqual([...written].reverse());
  });

  it('lands the writes of two stores on one file writing at the same time', async () => {
    const line = lines();
    const [a, b] = await Promise.all([open(), open()]);
    const batches = (n: number) => Array.from({ length: 20 }, (_, i) => put(...Array.from({ length: n }, () => line({ created_ms: T0 + i }))));
    await Promise.all([...batches(50).map((batch) => a.write(batch)), ...batches(50).map((batch) => b.write(batch))]);
    const [total] = await a.totals({ startMs: T0, endMs: T0 + DAY, groupBy: 'key' });
    expect(total!.requests).toBe(2000);
    expect(existsSync(`${file}.lock`)).toBe(false);
  });

  it('removes a lock left by a process that died holding it, and waits out a live one only so long', async () => {
    const line = lines();
    const store = await open({ busyTimeoutMs: 300 });
    const lock = `${file}.lock`;
    mkdirSync(lock);
    const started = Date.now();
    await expect(store.write(put(line()))).rejects.toMatchObject({ code: 'busy' });
    expect(Date.now() - started).toBeLessThan(2000);
    const longAgo = new Date(Date.now() - 60_000);
    utimesSync(lock, longAgo, longAgo);
    await store.write(put(line()));
    expect(existsSync(lock)).toBe(false);
    expect(await store.records({ limit: 5 })).toHaveLength(1);
  });

  it('rejects requests once its worker died, and opens a new one', async () => {
    const line = lines();
    const store = await open();
    await store.write(put(line()));
    // No API kills the worker: reach it as a crash would.
    const { worker } = (store as unknown as { channel: { worker: { terminate(): Promise<number> } } }).channel;
    await worker.terminate();
    await expect(store.records({ limit: 1 })).rejects.toBeInstanceOf(LedgerStoreError);
    await store.open();
    expect(await store.records({ limit: 5 })).toHaveLength(1);
  });
});

describe('postgres ledger store', () => {
  it('rejects a write to a server that is not there, without hanging and without the password', async () => {
    const store = new PostgresLedgerStore({ url: 'postgres://jarvis:s3cret-pw@127.0.0.1:1/ledger', connectTimeoutMs: 1000 });
    expect(store.target).toBe('postgres://127.0.0.1:1/ledger');
    const error = await store.open().then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(LedgerStoreError);
    expect(JSON.stringify(error, Object.getOwnPropertyNames(error))).not.toContain('s3cret-pw');
    expect(String((error as Error).message)).not.toContain('s3cret-pw');
    await expect(store.write(put(lines()()))).rejects.toMatchObject({ code: 'closed' });
  });

  it('connects as the OS user when the URL names none, even where USER is unset (a service, CI)', async () => {
    const db = await freshDatabase();
    try {
      const url = new URL(db.url);
      url.username = '';
      const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'USER' && k !== 'PGUSER' && k !== 'LOGNAME'));
      const script = `import { PostgresLedgerStore } from ${JSON.stringify(new URL('./postgres.ts', import.meta.url).pathname)};
        const s = new PostgresLedgerStore({ url: ${JSON.stringify(url.href)} });
        await s.open(); await s.close(); console.log('opened');`;
      const { stdout } = await run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { env });
      expect(stdout.trim()).toBe('opened');
    } finally {
      await db.drop();
    }
  }, 30_000);

  it('refuses a URL that does not parse without quoting it', () => {
    const attempt = () => new PostgresLedgerStore({ url: 'postgres://u:s3cret pw@[bad/x' });
    expect(attempt).toThrow(LedgerStoreError);
    try {
      attempt();
    } catch (error) {
      expect(JSON.stringify(error, Object.getOwnPropertyNames(error))).not.toContain('s3cret');
    }
  });

  it('rejects a write, not hangs, when the server goes away or stops answering, and leaves nothing half-written', async () => {
    const db = await freshDatabase();
    const line = lines();
    const stores: PostgresLedgerStore[] = [];
    try {
      const away = await startPostgresProxy(db.url);
      const store = new PostgresLedgerStore({ url: away.url, connectTimeoutMs: 500, queryTimeoutMs: 500 });
      stores.push(store);
      await store.open();
      await store.write(put(line()));
      await away.cut();
      await expect(store.write(put(line()))).rejects.toMatchObject({ code: 'unavailable' });

      const hung = await startPostgresProxy(db.url);
      const frozen = new PostgresLedgerStore({ url: hung.url, connectTimeoutMs: 500, queryTimeoutMs: 500 });
      stores.push(frozen);
      await frozen.open();
      hung.freeze();
      const started = Date.now();
      await expect(frozen.write(put(line()))).rejects.toMatchObject({ code: 'unavailable' });
      expect(Date.now() - started).toBeLessThan(3000);
      await hung.cut();

      // The failed batches left nothing half-written; the writer's retry on a reachable server lands them.
      const direct = new PostgresLedgerStore({ url: db.url });
      stores.push(direct);
      await direct.open();
      expect(await direct.records({ limit: 10 })).toHaveLength(1);
    } finally {
      await Promise.all(stores.map((s) => s.close()));
      await db.drop();
    }
  });

  it('survives its connections dropping: the next write reconnects, a write on a dropped one rejects', async () => {
    const db = await freshDatabase();
    const dropped: Error[] = [];
    const store = new PostgresLedgerStore({ url: db.url, onConnectionError: (e) => dropped.push(e) });
    try {
      await store.open();
      const line = lines();
      await store.write(put(line()));
      expect(await terminateOtherConnections(db.url)).toBeGreaterThan(0);
      for (let i = 0; i < 100 && dropped.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
      expect(dropped.length).toBeGreaterThan(0);
      await store.write(put(line()));
      expect(await store.records({ limit: 5 })).toHaveLength(2);
    } finally {
      await store.close();
      await db.drop();
    }
  });
});
