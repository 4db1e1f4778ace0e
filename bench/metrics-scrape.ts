// Reads a few values from a Prometheus text endpoint (Jarvis's /metrics).
import { request } from 'undici';

/** Jarvis's metrics the bench reads. */
export const LOOP_P99 = 'nodejs_eventloop_lag_p99_seconds';
export const LOOP_MAX = 'nodejs_eventloop_lag_max_seconds';
export const EVENTS_DROPPED = 'jarvis_events_dropped_total';
export const SUBSCRIBERS_DROPPED = 'jarvis_event_subscribers_dropped_total';
/** Jarvis's cumulative event-loop delay histogram (the floor relay serves the same). */
export const LOOP_DELAY_BUCKET = 'jarvis_event_loop_delay_seconds_bucket';

/**
 * The p-quantile of a Prometheus histogram's observations between two readings of its cumulative buckets
 * (`{ 'name{le="0.05"}': count }`), interpolated within a bucket as PromQL's histogram_quantile does. NaN when
 * nothing was observed in between; above the largest finite bound, that bound.
 */
export function histogramQuantile(p: number, from: Record<string, number>, to: Record<string, number>): number {
  const buckets: { le: number; count: number }[] = [];
  for (const [key, count] of Object.entries(to)) {
    const le = /\{le="([^"]+)"\}$/.exec(key)?.[1];
    if (le !== undefined) buckets.push({ le: le === '+Inf' ? Infinity : Number(le), count: count - (from[key] ?? 0) });
  }
  buckets.sort((a, b) => a.le - b.le);
  const total = buckets.at(-1)?.count ?? 0;
  if (!(total > 0)) return NaN;
  const rank = p * total;
  let below = 0;
  let lower = 0;
  for (const b of buckets) {
    if (b.count >= rank) {
      if (b.le === Infinity) return lower;
      return lower + ((b.le - lower) * (rank - below)) / (b.count - below || 1);
    }
    below = b.count;
    lower = b.le;
  }
  return lower;
}

/** Parses Prometheus text; a metric with several label sets gets the sum of its series, except a histogram's
 * buckets (`..._bucket`), which are kept apart under their full series name (`name{le="0.05"}`). */
export function parseMetrics(text: string, names: readonly string[]): Record<string, number> {
  const wanted = new Set(names);
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const nameEnd = line.search(/[{ ]/);
    const name = nameEnd < 0 ? line : line.slice(0, nameEnd);
    if (!wanted.has(name)) continue;
    const space = line.lastIndexOf(' ');
    const value = Number(line.slice(space + 1));
    if (!Number.isFinite(value)) continue;
    const key = name.endsWith('_bucket') ? line.slice(0, space) : name;
    out[key] = (out[key] ?? 0) + value;
  }
  return out;
}

/** One scrape, bounded in time; resolves to {} when the endpoint is unreachable or slow. */
export async function scrapeMetrics(url: string, names: readonly string[], timeoutMs = 2000): Promise<Record<string, number>> {
  try {
    const res = await request(url, { method: 'GET', signal: AbortSignal.timeout(timeoutMs) });
    const text = await res.body.text();
    return res.statusCode === 200 ? parseMetrics(text, names) : {};
  } catch {
    return {};
  }
}
