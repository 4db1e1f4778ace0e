// Reads a few values from a Prometheus text endpoint (Jarvis's /metrics).
import { request } from 'undici';

/** Jarvis's metrics the bench reads. */
export const LOOP_P99 = 'nodejs_eventloop_lag_p99_seconds';
export const LOOP_MAX = 'nodejs_eventloop_lag_max_seconds';
export const EVENTS_DROPPED = 'jarvis_events_dropped_total';
export const SUBSCRIBERS_DROPPED = 'jarvis_event_subscribers_dropped_total';

/** Parses Prometheus text; a metric with several label sets gets the sum of its series. */
export function parseMetrics(text: string, names: readonly string[]): Record<string, number> {
  const wanted = new Set(names);
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const nameEnd = line.search(/[{ ]/);
    const name = nameEnd < 0 ? line : line.slice(0, nameEnd);
    if (!wanted.has(name)) continue;
    const value = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (Number.isFinite(value)) out[name] = (out[name] ?? 0) + value;
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
