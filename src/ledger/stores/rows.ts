// Rows as the drivers hand them back, read into the ledger's types. PostgreSQL's driver gives BIGINT, COUNT and
// SUM of integers as strings (they may exceed 2^53), SQLite's a bigint past 2^53: both become numbers here, since
// token counts and epoch ms stay far below that.
import type { HeardUpdate, LedgerWrite, SpendRow, TotalsRow, UsageRecord } from '../types.js';
import { COLUMNS } from './sql.js';

export type RawRow = Record<string, unknown>;

function num(value: unknown, column: string): number {
  const n = typeof value === 'number' ? value : typeof value === 'string' || typeof value === 'bigint' ? Number(value) : NaN;
  if (!Number.isFinite(n)) throw new TypeError(`ledger column ${column}: not a number`);
  return n;
}

const numOrNull = (value: unknown, column: string): number | null => (value === null || value === undefined ? null : num(value, column));

function textOrNull(value: unknown, column: string): string | null {
  if (value === null || value === undefined) return null;
  if (typeof value !== 'string') throw new TypeError(`ledger column ${column}: not text`);
  return value;
}

export function toRecord(row: RawRow): UsageRecord {
  const out: Record<string, string | number | null> = {};
  for (const [name, kind] of COLUMNS) {
    const value = row[name];
    out[name] = kind === 'text' ? textOrNull(value, name) : numOrNull(value, name);
  }
  return out as unknown as UsageRecord;
}

export function toTotals(row: RawRow): TotalsRow {
  return {
    group: textOrNull(row.group, 'group'),
    requests: num(row.requests, 'requests'),
    input_tokens: num(row.input_tokens, 'input_tokens'),
    cached_tokens: num(row.cached_tokens, 'cached_tokens'),
    output_tokens: num(row.output_tokens, 'output_tokens'),
    reasoning_tokens: num(row.reasoning_tokens, 'reasoning_tokens'),
    delivered_tokens: num(row.delivered_tokens, 'delivered_tokens'),
    delivered_chars: num(row.delivered_chars, 'delivered_chars'),
    heard_chars: num(row.heard_chars, 'heard_chars'),
    not_heard_tokens: num(row.not_heard_tokens, 'not_heard_tokens'),
    cost: numOrNull(row.cost, 'cost'),
    not_heard_cost: numOrNull(row.not_heard_cost, 'not_heard_cost'),
  };
}

/**
 * Cost descending with unpriced groups last, then the group by code unit (null last). Sorted here rather than in
 * SQL: a PostgreSQL database's collation may order text differently from SQLite's byte order.
 */
export function orderTotals(rows: TotalsRow[]): TotalsRow[] {
  return rows.sort((a, b) => {
    if (a.cost !== b.cost) {
      if (a.cost === null) return 1;
      if (b.cost === null) return -1;
      return b.cost - a.cost;
    }
    if (a.group === b.group) return 0;
    if (a.group === null) return 1;
    if (b.group === null) return -1;
    return a.group < b.group ? -1 : 1;
  });
}

export function toSpend(row: RawRow): SpendRow {
  const key = textOrNull(row.key, 'key');
  if (key === null) throw new TypeError('ledger spend: a row without a key');
  return { key, cost: num(row.cost, 'cost'), tokens: num(row.tokens, 'tokens') };
}

/** A batch as both stores write it: its new lines first, then the heard updates (which may cut those very lines). */
export function splitBatch(batch: readonly LedgerWrite[]): { records: UsageRecord[]; heard: HeardUpdate[] } {
  const records: UsageRecord[] = [];
  const heard: HeardUpdate[] = [];
  for (const w of batch) {
    if (w.kind === 'record') records.push(w.record);
    else heard.push(w.update);
  }
  return { records, heard };
}
