// What a closed loop of streams came to over one slice, for the drivers that count streams as they end.
import { setTimeout as sleep } from 'node:timers/promises';
import { Samples } from './stats.js';
import type { StreamRecord } from './stream-client.js';

export interface StreamTally {
  requests: number;
  /** Ended with every token asked for. */
  ok: number;
  /** Ended without error, with fewer tokens. */
  short: number;
  failed: number;
  /** The first ten distinct errors (their first 100 characters), with how often each came. */
  errors: Record<string, number>;
  tokens: number;
  ttft: Samples;
}

export const newStreamTally = (): StreamTally => ({ requests: 0, ok: 0, short: 0, failed: 0, errors: {}, tokens: 0, ttft: new Samples(4096, 1_000_000) });

/** Counts one ended stream of an answer of `tokens` tokens. A failure resolves 20 ms later: a failing target answers at once, and a closed loop must not spin on it. */
export async function countStream(tally: StreamTally, r: StreamRecord, tokens: number): Promise<void> {
  tally.requests++;
  tally.tokens += r.tokens;
  if (Number.isFinite(r.ttftMs)) tally.ttft.push(r.ttftMs);
  if (r.error) {
    tally.failed++;
    const key = r.error.slice(0, 100);
    if (key in tally.errors || Object.keys(tally.errors).length < 10) tally.errors[key] = (tally.errors[key] ?? 0) + 1;
    await sleep(20);
  } else if (r.tokens !== tokens) tally.short++;
  else tally.ok++;
}

/** What each target's warm-up came to: its requests, and a line for each target whose warm-up had failures. */
export function warmupSummary(warm: ReadonlyMap<string, StreamTally>): { warmupRequests: Record<string, number>; warmupErrors: string[] } {
  const warmupErrors: string[] = [];
  const warmupRequests: Record<string, number> = {};
  for (const [name, tally] of warm) {
    warmupRequests[name] = tally.requests;
    if (tally.failed > 0) warmupErrors.push(`${name}: ${tally.failed} of ${tally.requests} failed: ${Object.keys(tally.errors).join('; ')}`);
  }
  return { warmupRequests, warmupErrors };
}
