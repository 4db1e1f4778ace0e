// The ledger's schema and queries, written once for both stores: SQLite (embedded) and PostgreSQL run the same
// text. Placeholders are `?` (SQLite's); the PostgreSQL store numbers them with `toPostgres`. Where the two
// dialects differ (LEAST/MIN, NULL ordering, integer division) the text uses what both read the same way.
import type { GroupBy, HeardUpdate, RecordsQuery, TotalsQuery, UsageRecord } from '../types.js';

export type SqlValue = string | number | null;

export interface Statement {
  readonly sql: string;
  readonly params: readonly SqlValue[];
}

type ColumnKind = 'text' | 'integer' | 'real';

/** UsageRecord's fields in column order: the name is the column's, the kind how it is stored and read back. */
export const COLUMNS = [
  ['id', 'text', 'TEXT PRIMARY KEY'],
  ['request_id', 'text', 'TEXT NOT NULL'],
  ['created_ms', 'integer', 'BIGINT NOT NULL'],
  ['day', 'text', 'TEXT NOT NULL'],
  ['key', 'text', 'TEXT'],
  ['session', 'text', 'TEXT'],
  ['api', 'text', 'TEXT NOT NULL'],
  ['model', 'text', 'TEXT NOT NULL'],
  ['upstream', 'text', 'TEXT'],
  ['served_model', 'text', 'TEXT'],
  ['provider', 'text', 'TEXT'],
  ['attempt', 'integer', 'INTEGER NOT NULL'],
  ['answered', 'integer', 'INTEGER NOT NULL'],
  ['outcome', 'text', 'TEXT NOT NULL'],
  ['reason', 'text', 'TEXT'],
  ['input_tokens', 'integer', 'BIGINT NOT NULL'],
  ['cached_tokens', 'integer', 'BIGINT NOT NULL'],
  ['cache_write_tokens', 'integer', 'BIGINT NOT NULL'],
  ['output_tokens', 'integer', 'BIGINT NOT NULL'],
  ['reasoning_tokens', 'integer', 'BIGINT NOT NULL'],
  ['delivered_tokens', 'integer', 'BIGINT NOT NULL'],
  ['delivered_chars', 'integer', 'BIGINT NOT NULL'],
  ['generated_chars', 'integer', 'BIGINT NOT NULL'],
  ['heard_chars', 'integer', 'BIGINT NOT NULL'],
  ['not_heard_tokens', 'integer', 'BIGINT NOT NULL'],
  ['estimated', 'integer', 'INTEGER NOT NULL'],
  ['ttft_ms', 'integer', 'BIGINT'],
  ['duration_ms', 'integer', 'BIGINT NOT NULL'],
  ['cost', 'real', 'DOUBLE PRECISION'],
  ['not_heard_cost', 'real', 'DOUBLE PRECISION'],
  ['price_output', 'real', 'DOUBLE PRECISION'],
] as const satisfies readonly (readonly [keyof UsageRecord, ColumnKind, string])[];

type ColumnName = (typeof COLUMNS)[number][0];
// Fails to compile when UsageRecord gains a field that has no column.
const everyFieldHasAColumn: Record<Exclude<keyof UsageRecord, ColumnName>, never> = {};
void everyFieldHasAColumn;

// Every identifier is quoted: `key`, `session` and `day` are keywords in one dialect or the other.
const q = (name: string): string => `"${name}"`;
const COLUMN_LIST = COLUMNS.map(([name]) => q(name)).join(', ');
const ROW_PLACEHOLDERS = `(${COLUMNS.map(() => '?').join(', ')})`;

/** Rows per INSERT: 500 x 31 parameters stays under SQLite's and PostgreSQL's limits (32766 and 65535). */
export const INSERT_CHUNK = 500;

/** The schema version this code writes and reads. */
export const SCHEMA_VERSION = 1;

/** One row per version applied: the schema's version is the highest. */
export const CREATE_SCHEMA_TABLE = `CREATE TABLE IF NOT EXISTS ledger_schema (version INTEGER PRIMARY KEY, applied_ms BIGINT NOT NULL)`;
export const READ_SCHEMA_VERSION = `SELECT MAX(version) AS version FROM ledger_schema`;
export const RECORD_SCHEMA_VERSION = `INSERT INTO ledger_schema (version, applied_ms) VALUES (?, ?)`;

/**
 * Migrations by the version they bring the schema to, in order. A new version appends an entry here and raises
 * SCHEMA_VERSION; an entry is never edited once released (a database that ran it will not run it again).
 */
export const MIGRATIONS: readonly { readonly version: number; readonly statements: readonly string[] }[] = [
  {
    version: 1,
    statements: [
      `CREATE TABLE IF NOT EXISTS usage_records (${COLUMNS.map(([name, , type]) => `${q(name)} ${type}`).join(', ')})`,
      `CREATE INDEX IF NOT EXISTS usage_records_created ON usage_records (created_ms)`,
      `CREATE INDEX IF NOT EXISTS usage_records_key_created ON usage_records ("key", created_ms)`,
      `CREATE INDEX IF NOT EXISTS usage_records_request ON usage_records (request_id)`,
    ],
  },
];

/** The migrations a database at `version` (0 when new) still needs, in order. */
export function pendingMigrations(version: number, migrations = MIGRATIONS): typeof MIGRATIONS {
  return migrations.filter((m) => m.version > version).toSorted((a, b) => a.version - b.version);
}

/** `?` placeholders to PostgreSQL's `$1, $2...`: each `?` is its own parameter. The texts here quote no `?`. */
export function toPostgres(sql: string): string {
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
}

/** One INSERT for up to INSERT_CHUNK records; an id already there (or twice in the batch) is kept as it was. */
export function insertRecords(records: readonly UsageRecord[]): Statement {
  if (records.length === 0 || records.length > INSERT_CHUNK) throw new RangeError(`insertRecords takes 1..${INSERT_CHUNK} records`);
  const params: SqlValue[] = [];
  for (const record of records) for (const [name] of COLUMNS) params.push(record[name]);
  const rows = records.map(() => ROW_PLACEHOLDERS).join(', ');
  return { sql: `INSERT INTO usage_records (${COLUMN_LIST}) VALUES ${rows} ON CONFLICT (id) DO NOTHING`, params };
}

/**
 * What was heard of an answer: only the answered line, only when lower than before (a truncate never lengthens
 * what was heard). Not-heard tokens are the output's unheard share, rounded; their cost is at the line's output
 * price. Computed in SQL from the row itself, so any instance can apply it to a line another instance wrote.
 * `* 1.0` keeps the share from integer division (SQLite's REAL, PostgreSQL's numeric, whose ROUND is half away
 * from zero as SQLite's is). SET reads the row's old values, so not_heard_cost repeats the token expression.
 */
export function heardUpdate(update: HeardUpdate): Statement {
  const h = update.heard_chars;
  const notHeard =
    `CASE WHEN generated_chars > 0 THEN output_tokens - ROUND(output_tokens * 1.0 * ` +
    `(CASE WHEN ? < generated_chars THEN ? ELSE generated_chars END) / generated_chars) ELSE not_heard_tokens END`;
  return {
    sql:
      `UPDATE usage_records SET heard_chars = ?, not_heard_tokens = ${notHeard}, ` +
      `not_heard_cost = CASE WHEN price_output IS NULL THEN NULL ELSE (${notHeard}) * price_output / 1000000.0 END ` +
      `WHERE request_id = ? AND answered = 1 AND heard_chars > ?`,
    params: [h, h, h, h, h, update.request_id, h],
  };
}

const SUMMED = ['input_tokens', 'cached_tokens', 'output_tokens', 'reasoning_tokens', 'delivered_tokens', 'delivered_chars', 'heard_chars', 'not_heard_tokens'] as const;

/**
 * Totals per group over [startMs, endMs). SUM of cost is NULL when every line's is (no priced line). Rows come
 * unordered: `orderTotals` sorts them the same way for both stores (string collations differ between them).
 */
export function totals(query: TotalsQuery): Statement {
  const group = q(groupColumn(query.groupBy));
  const params: SqlValue[] = [query.startMs, query.endMs];
  let where = `created_ms >= ? AND created_ms < ?`;
  if (query.key !== undefined) {
    where += ` AND "key" = ?`;
    params.push(query.key);
  }
  const sums = SUMMED.map((c) => `SUM(${c}) AS ${c}`).join(', ');
  return {
    sql:
      `SELECT ${group} AS "group", COUNT(DISTINCT request_id) AS requests, ${sums}, ` +
      `SUM(cost) AS cost, SUM(not_heard_cost) AS not_heard_cost FROM usage_records WHERE ${where} GROUP BY ${group}`,
    params,
  };
}

// Only a name from GROUP_BY reaches the SQL text; anything else is refused rather than quoted in.
function groupColumn(groupBy: GroupBy): GroupBy {
  if (groupBy === 'key' || groupBy === 'model' || groupBy === 'upstream' || groupBy === 'session' || groupBy === 'day') return groupBy;
  throw new RangeError(`unknown group_by: ${String(groupBy)}`);
}

/** Newest first by id; `after` pages on from the previous page's last id. */
export function records(query: RecordsQuery): Statement {
  const conditions: string[] = [];
  const params: SqlValue[] = [];
  const add = (condition: string, value: SqlValue) => {
    conditions.push(condition);
    params.push(value);
  };
  if (query.after !== undefined) add(`id < ?`, query.after);
  if (query.key !== undefined) add(`"key" = ?`, query.key);
  if (query.session !== undefined) add(`"session" = ?`, query.session);
  if (query.requestId !== undefined) add(`request_id = ?`, query.requestId);
  if (query.startMs !== undefined) add(`created_ms >= ?`, query.startMs);
  if (query.endMs !== undefined) add(`created_ms < ?`, query.endMs);
  const where = conditions.length > 0 ? ` WHERE ${conditions.join(' AND ')}` : '';
  params.push(Math.max(0, Math.floor(query.limit)));
  return { sql: `SELECT ${COLUMN_LIST} FROM usage_records${where} ORDER BY id DESC LIMIT ?`, params };
}

/** Per key, cost (0 when no line was priced) and input + output tokens since `sinceMs`. */
export function spend(sinceMs: number): Statement {
  return {
    sql:
      `SELECT "key", COALESCE(SUM(cost), 0) AS cost, COALESCE(SUM(input_tokens + output_tokens), 0) AS tokens ` +
      `FROM usage_records WHERE created_ms >= ? AND "key" IS NOT NULL GROUP BY "key"`,
    params: [sinceMs],
  };
}
