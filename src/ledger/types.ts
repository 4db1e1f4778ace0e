/**
 * The usage ledger's records and the store they are written to. One line per upstream attempt that was paid for:
 * a plain request is one line, a route's request one line per attempt (failed, lost hedge, winner), all under the
 * same `request_id`. Names are the columns' and the API's (GET /v1/usage/records).
 */
export interface UsageRecord {
  /** Time-ordered: 12 hex digits of the epoch ms, then random hex, so `id` orders records as `created` does. */
  id: string;
  request_id: string;
  /** Epoch ms (the API shows `created` in epoch seconds). */
  created_ms: number;
  /** The UTC day of `created_ms`, `YYYY-MM-DD`: what group_by=day and the daily budgets read. */
  day: string;
  /** The key's name (its tenant); null when Jarvis runs without keys. */
  key: string | null;
  session: string | null;
  /** chat.completions, responses, messages, completions, embeddings, realtime. */
  api: string;
  /** The model the client asked for. */
  model: string;
  /** The upstream that served this line, and its model (a route's target, or the model as resolved). */
  upstream: string | null;
  served_model: string | null;
  /** openai, anthropic, gemini, simulator. */
  provider: string | null;
  /** 1, 2, ... in the order a route started its attempts; 1 for a request without a route. */
  attempt: number;
  /** 1 for the line whose answer the client got (the winner), 0 for a route's other attempts. */
  answered: number;
  outcome: 'end' | 'cancelled' | 'error';
  /** The finish reason (end), the cancel reason (cancelled: superseded, client_disconnected, hedge_lost...), the error code (error). */
  reason: string | null;
  input_tokens: number;
  cached_tokens: number;
  cache_write_tokens: number;
  output_tokens: number;
  reasoning_tokens: number;
  delivered_tokens: number;
  delivered_chars: number;
  /** Characters of answer text the upstream generated (what heard_chars is a share of). */
  generated_chars: number;
  heard_chars: number;
  /** Output tokens generated but not heard: what an interruption cost. */
  not_heard_tokens: number;
  /** 1 when the counts were estimated by Jarvis (the upstream reported none), 0 when reported. */
  estimated: number;
  ttft_ms: number | null;
  duration_ms: number;
  /** US dollars; null for a model without a price. */
  cost: number | null;
  not_heard_cost: number | null;
  /** The output price (USD per million tokens) the line was priced at: a later truncate prices what was not heard. */
  price_output: number | null;
}

/** A later change to a written line: what the person heard of an answer (a truncate), never more than before. */
export interface HeardUpdate {
  request_id: string;
  heard_chars: number;
}

export type LedgerWrite = { kind: 'record'; record: UsageRecord } | { kind: 'heard'; update: HeardUpdate };

export const GROUP_BY = ['key', 'model', 'upstream', 'session', 'day'] as const;
export type GroupBy = (typeof GROUP_BY)[number];

export interface TotalsQuery {
  startMs: number;
  endMs: number;
  groupBy: GroupBy;
  /** Only this key's lines (a tenant's own view). */
  key?: string | undefined;
}

export interface TotalsRow {
  /** The group's value (the key, model, upstream, session or day); null for lines without one. */
  group: string | null;
  /** Distinct request ids. */
  requests: number;
  input_tokens: number;
  cached_tokens: number;
  output_tokens: number;
  reasoning_tokens: number;
  delivered_tokens: number;
  delivered_chars: number;
  heard_chars: number;
  not_heard_tokens: number;
  /** Sums of the priced lines; null when none was priced. */
  cost: number | null;
  not_heard_cost: number | null;
}

export interface RecordsQuery {
  /** At most this many rows, newest first (by id). */
  limit: number;
  /** Only rows older than this id (the previous page's last id). */
  after?: string | undefined;
  key?: string | undefined;
  session?: string | undefined;
  requestId?: string | undefined;
  startMs?: number | undefined;
  endMs?: number | undefined;
}

/** A key's spend since a moment: what its budgets are checked against. */
export interface SpendRow {
  key: string;
  cost: number;
  tokens: number;
}

/**
 * Where the ledger's lines go: the embedded file (SQLite in a worker thread) or PostgreSQL. Both create and migrate
 * their schema in `open`, write a batch in one transaction, and answer the same queries.
 */
export interface LedgerStore {
  readonly kind: 'embedded' | 'postgres';
  open(): Promise<void>;
  /** Records inserted (an id written twice is written once), then heard updates applied, in one transaction. */
  write(batch: readonly LedgerWrite[]): Promise<void>;
  totals(q: TotalsQuery): Promise<TotalsRow[]>;
  records(q: RecordsQuery): Promise<UsageRecord[]>;
  /** Per key, cost and tokens (input + output) of the lines created at or after `sinceMs`. */
  spend(sinceMs: number): Promise<SpendRow[]>;
  close(): Promise<void>;
}
