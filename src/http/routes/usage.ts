import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { JarvisContext } from '../../context.js';
import { JarvisError } from '../../errors.js';
import { GROUP_BY, type GroupBy, type TotalsRow, type UsageRecord } from '../../ledger/types.js';

/** The record fields GET /v1/usage/records names, in order: the CSV's header row. */
export const RECORD_FIELDS = [
  'id',
  'request_id',
  'created',
  'key',
  'session',
  'api',
  'model',
  'upstream',
  'provider',
  'outcome',
  'reason',
  'input_tokens',
  'cached_tokens',
  'output_tokens',
  'reasoning_tokens',
  'delivered_tokens',
  'delivered_chars',
  'heard_chars',
  'estimated',
  'ttft_ms',
  'duration_ms',
  'cost',
  'attempt',
] as const;

const DAY_MS = 86_400_000;
const MAX_LIMIT = 1000;
const ID = /^[0-9a-f]{8,64}$/;

type Query = Record<string, string | undefined>;

/** Dollars to the nanodollar: sums of float prices print as 0.0012, not 0.0012000000000000001. */
const dollars = (n: number | null) => (n === null ? null : Math.round(n * 1e9) / 1e9);

/** A time as the API takes it: ISO 8601, or epoch seconds. */
function timeOf(q: Query, name: 'start' | 'end'): number | undefined {
  const v = q[name];
  if (v === undefined || v === '') return undefined;
  const ms = /^\d{1,12}(\.\d+)?$/.test(v) ? Math.round(Number(v) * 1000) : /^\d{4}-\d{2}-\d{2}/.test(v) ? Date.parse(v) : NaN;
  if (Number.isNaN(ms)) throw new JarvisError('JARVIS_ERR_INVALID_REQUEST', `${name} must be an ISO 8601 time or epoch seconds.`, { param: name });
  // An end names its whole unit: `end=<this second>` (or a date, a minute) counts what happened in it. Lines are
  // kept to the millisecond, and the stores' end bound is exclusive.
  return name === 'end' ? ms + unitOf(v) : ms;
}

/** The unit a time is given to: a day (a date), a minute, a second, or none finer (a fraction of a second). */
function unitOf(v: string): number {
  if (/^\d+$/.test(v) || /T\d{2}:\d{2}:\d{2}(?![.,]\d)/.test(v)) return 1000;
  if (/T\d{2}:\d{2}(?![:.,\d])/.test(v)) return 60_000;
  if (/^\d{4}-\d{2}-\d{2}$/.test(v)) return DAY_MS;
  return 0;
}

function windowOf(q: Query): { startMs: number; endMs: number } {
  const end = timeOf(q, 'end') ?? Date.now();
  const start = timeOf(q, 'start') ?? end - DAY_MS;
  if (start > end) throw new JarvisError('JARVIS_ERR_INVALID_REQUEST', 'start must not be after end.', { param: 'start' });
  return { startMs: start, endMs: end };
}

/**
 * Whose lines a request may read: an admin key (or Jarvis without keys) everyone's, or one key's when it asks;
 * any other key only its own.
 */
function scopeOf(request: FastifyRequest, q: Query): string | undefined {
  const identity = request.apiKey;
  if (!identity || identity.scopes.has('admin')) return q.key || undefined;
  if (q.key !== undefined && q.key !== identity.id) {
    throw new JarvisError('JARVIS_ERR_FORBIDDEN', "This API key may read only its own usage: the 'admin' scope reads another key's.", { param: 'key' });
  }
  return identity.id;
}

function check(q: Query, allowed: readonly string[]): void {
  for (const name of Object.keys(q)) {
    if (!allowed.includes(name)) throw new JarvisError('JARVIS_ERR_INVALID_REQUEST', `Unknown parameter: ${name}. Known: ${allowed.join(', ')}.`, { param: name });
  }
}

function totalsOut(groupBy: GroupBy, r: TotalsRow): Record<string, unknown> {
  return {
    [groupBy]: r.group,
    requests: r.requests,
    input_tokens: r.input_tokens,
    cached_tokens: r.cached_tokens,
    output_tokens: r.output_tokens,
    reasoning_tokens: r.reasoning_tokens,
    delivered_tokens: r.delivered_tokens,
    delivered_chars: r.delivered_chars,
    heard_chars: r.heard_chars,
    not_heard_tokens: r.not_heard_tokens,
    cost: dollars(r.cost),
    ...(r.not_heard_cost === null ? {} : { not_heard_cost: dollars(r.not_heard_cost) }),
  };
}

export function recordOut(r: UsageRecord): Record<string, unknown> {
  return {
    object: 'usage.record',
    id: r.id,
    request_id: r.request_id,
    created: Math.floor(r.created_ms / 1000),
    key: r.key,
    session: r.session,
    api: r.api,
    model: r.model,
    served_model: r.served_model,
    upstream: r.upstream,
    provider: r.provider,
    attempt: r.attempt,
    answered: r.answered === 1,
    outcome: r.outcome,
    reason: r.reason,
    input_tokens: r.input_tokens,
    cached_tokens: r.cached_tokens,
    cache_write_tokens: r.cache_write_tokens,
    output_tokens: r.output_tokens,
    reasoning_tokens: r.reasoning_tokens,
    delivered_tokens: r.delivered_tokens,
    delivered_chars: r.delivered_chars,
    heard_chars: r.heard_chars,
    not_heard_tokens: r.not_heard_tokens,
    estimated: r.estimated === 1,
    ttft_ms: r.ttft_ms,
    duration_ms: r.duration_ms,
    cost: dollars(r.cost),
    not_heard_cost: dollars(r.not_heard_cost),
  };
}

/** One CSV field (RFC 4180): quoted when it holds a comma, a quote or a line break; a formula's lead neutralised. */
function csvField(v: unknown): string {
  if (v === null || v === undefined) return '';
  let s = String(v);
  // A spreadsheet runs a cell that starts with = + - @ as a formula; a session id is the client's text.
  if (typeof v === 'string' && /^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

function wantsCsv(request: FastifyRequest, q: Query): boolean {
  return q.format === 'csv' || /\btext\/csv\b/i.test(request.headers.accept ?? '');
}

/**
 * GET /v1/usage: totals over a window, grouped; GET /v1/usage/records: the lines, newest first, paged. Read from
 * the ledger's store after this instance's queued lines are written, so a client reads its own requests.
 */
export function usageRoutes(app: FastifyInstance, ctx: JarvisContext): void {
  const ledger = () => {
    if (!ctx.ledger) throw new JarvisError('JARVIS_ERR_ROUTE_NOT_FOUND', 'The usage ledger is turned off on this instance (JARVIS_LEDGER=0).');
    return ctx.ledger;
  };

  app.get('/v1/usage', async (request: FastifyRequest<{ Querystring: Query }>) => {
    const q = request.query;
    check(q, ['start', 'end', 'group_by', 'key']);
    const groupBy = (q.group_by ?? 'key') as GroupBy;
    if (!GROUP_BY.includes(groupBy)) throw new JarvisError('JARVIS_ERR_INVALID_REQUEST', `group_by must be one of ${GROUP_BY.join(', ')}.`, { param: 'group_by' });
    const { startMs, endMs } = windowOf(q);
    const rows = await ledger().totals({ startMs, endMs, groupBy, key: scopeOf(request, q) });
    return { object: 'list', group_by: groupBy, start: Math.floor(startMs / 1000), end: Math.floor(endMs / 1000), data: rows.map((r) => totalsOut(groupBy, r)) };
  });

  app.get('/v1/usage/records', async (request: FastifyRequest<{ Querystring: Query }>, reply: FastifyReply) => {
    const q = request.query;
    check(q, ['limit', 'after', 'start', 'end', 'key', 'session', 'request_id', 'format']);
    const limit = q.limit === undefined ? 100 : /^\d{1,4}$/.test(q.limit) ? Number(q.limit) : NaN;
    if (!(limit >= 1 && limit <= MAX_LIMIT)) throw new JarvisError('JARVIS_ERR_INVALID_REQUEST', `limit must be an integer from 1 to ${MAX_LIMIT}.`, { param: 'limit' });
    if (q.after !== undefined && !ID.test(q.after)) throw new JarvisError('JARVIS_ERR_INVALID_REQUEST', 'after must be a record id (the previous page\'s last_id).', { param: 'after' });
    if (q.format !== undefined && q.format !== 'csv' && q.format !== 'json') throw new JarvisError('JARVIS_ERR_INVALID_REQUEST', 'format must be json or csv.', { param: 'format' });
    const rows = await ledger().records({
      limit: limit + 1,
      after: q.after,
      key: scopeOf(request, q),
      session: q.session,
      requestId: q.request_id,
      startMs: timeOf(q, 'start'),
      endMs: timeOf(q, 'end'),
    });
    const page = rows.slice(0, limit);
    const hasMore = rows.length > limit;
    const lastId = page.at(-1)?.id ?? null;
    if (wantsCsv(request, q) && q.format !== 'json') {
      const lines = [RECORD_FIELDS.join(',')];
      for (const r of page) {
        const out = recordOut(r);
        lines.push(RECORD_FIELDS.map((f) => csvField(out[f])).join(','));
      }
      reply.header('x-has-more', String(hasMore));
      if (lastId) reply.header('x-last-id', lastId);
      return reply.type('text/csv; charset=utf-8').send(`${lines.join('\r\n')}\r\n`);
    }
    return { object: 'list', data: page.map(recordOut), has_more: hasMore, first_id: page[0]?.id ?? null, last_id: lastId };
  });
}
