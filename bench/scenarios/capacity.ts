// 4. Capacity: many slow streams at once through Jarvis, and through the floor relay for comparison. A fresh
// stage per run, so "idle" RSS really is idle.
import type { LoadResult, LoadSpec } from '../load-client.js';
import { runLoadClient } from '../load-runner.js';
import { LOOP_DELAY_BUCKET, LOOP_MAX, LOOP_P99 } from '../metrics-scrape.js';
import { childFileLimit } from '../processes.js';
import { withStage, type ScenarioContext, type StageTarget } from './stage.js';

export interface CapacityResult {
  streams: number;
  /** Set when the open-files limit forced fewer streams than asked for. */
  clampedFrom: number | undefined;
  fileLimit: number;
  tokens: number;
  delayMs: number;
  rampMs: number;
  scrapeEveryMs: number;
  runs: LoadResult[];
  /** The same load through bench/bare-relay.ts, one per run. */
  floorRuns: LoadResult[];
  errors: string[];
}

/** Jarvis holds two sockets per stream (client and upstream) plus a few dozen other descriptors. */
const FDS_PER_STREAM = 2;
const FD_MARGIN = 128;

export async function runCapacity(ctx: ScenarioContext): Promise<CapacityResult> {
  const p = ctx.opts.params.capacity;
  const fileLimit = childFileLimit();
  const fit = Math.floor((fileLimit - FD_MARGIN) / FDS_PER_STREAM);
  const streams = Math.min(p.streams, fit);
  const clampedFrom = streams < p.streams ? p.streams : undefined;
  if (clampedFrom) ctx.log(`  open-files limit ${fileLimit}: capacity runs ${streams} streams instead of ${p.streams}`);
  const out: CapacityResult = { streams, clampedFrom, fileLimit, tokens: p.tokens, delayMs: p.delayMs, rampMs: p.rampMs, scrapeEveryMs: p.scrapeEveryMs, runs: [], floorRuns: [], errors: [] };
  const spec = (label: string, t: StageTarget): LoadSpec => ({
    label,
    target: t.target,
    concurrency: streams,
    expectTokens: p.tokens,
    mode: 'once',
    durationMs: 0,
    rampMs: p.rampMs,
    // Enough to compile the request path (a cold JIT would show as event-loop lag), few enough that the
    // "idle" RSS read after them is still about idle.
    warmupStreams: 32,
    recordGaps: false,
    streamTimeoutMs: ctx.opts.params.streamTimeoutMs + p.tokens * p.delayMs,
    maxStreams: streams,
    monitor: { pid: t.pid, metricsUrl: t.metricsUrl, metrics: t.metricsUrl ? [LOOP_P99, LOOP_MAX, LOOP_DELAY_BUCKET] : undefined, scrapeEveryMs: p.scrapeEveryMs, rssEveryMs: 250 },
  });
  for (let run = 0; run < ctx.opts.runs; run++) {
    try {
      await withStage(ctx, { tokens: p.tokens, delayMs: p.delayMs, ttftMs: 0 }, { peer: false, floor: true }, async (stage) => {
        ctx.log(`  run ${run + 1}: capacity ${streams} streams`);
        out.runs.push(await runLoadClient(spec(`capacity jarvis ${streams} streams`, stage.targets.jarvis!)));
        ctx.log(`  run ${run + 1}: capacity ${streams} streams through the floor relay`);
        out.floorRuns.push(await runLoadClient(spec(`capacity floor ${streams} streams`, stage.targets.floor!)));
      });
    } catch (err) {
      out.errors.push(err instanceof Error ? err.message : String(err));
    }
  }
  return out;
}
