// 6. A first-token tail: one upstream where every twentieth request waits seconds for its first token, and a
// healthy one. Client TTFT through Jarvis with no route (the tail upstream alone), with a route that fails over on
// a first-token deadline, and with one that hedges; and how many upstream requests each client request cost.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import type { LoadResult } from '../load-client.js';
import { runLoadClient } from '../load-runner.js';
import { parseMetrics } from '../metrics-scrape.js';
import { jarvisTarget, startJarvis, startMock } from '../targets.js';
import type { ScenarioContext } from './stage.js';

export type TailVariant = 'none' | 'failover' | 'hedge';
export const TAIL_VARIANTS: TailVariant[] = ['none', 'failover', 'hedge'];

export interface TailRun {
  variant: TailVariant;
  result: LoadResult | undefined;
  error: string | undefined;
  /** Upstream requests per client request (attempts, hedges and retries included); 1 without a route. */
  upstreamPerRequest: number;
}

export interface TailResult {
  concurrency: number;
  tokens: number;
  tailEvery: number;
  tailTtftMs: number;
  firstTokenTimeoutMs: number;
  hedgeAfterMs: number;
  runs: TailRun[][];
}

const ATTEMPTS = 'jarvis_upstream_attempts_total';

async function attempts(metricsUrl: string): Promise<number> {
  const res = await request(metricsUrl);
  return parseMetrics(await res.body.text(), [ATTEMPTS])[ATTEMPTS] ?? 0;
}

export async function runTail(ctx: ScenarioContext): Promise<TailResult> {
  const p = ctx.opts.params.tail;
  const tail = await startMock({ tokens: p.tokens, delayMs: p.delayMs, tailEvery: p.tailEvery, tailTtftMs: p.tailTtftMs });
  const healthy = await startMock({ tokens: p.tokens, delayMs: p.delayMs });
  const dir = mkdtempSync(join(tmpdir(), 'jarvis-bench-tail-'));
  const config = join(dir, 'routes.json');
  const targets = [
    { upstream: 'tail', model: 'mock-model' },
    { upstream: 'healthy', model: 'mock-model', priority: 1 },
  ];
  writeFileSync(
    config,
    JSON.stringify({
      upstreams: [
        { name: 'tail', baseUrl: tail.baseUrl },
        { name: 'healthy', baseUrl: healthy.baseUrl },
      ],
      routes: [
        { model: 'failover', targets, firstTokenTimeoutMs: p.firstTokenTimeoutMs },
        { model: 'hedge', targets, hedgeAfterMs: p.hedgeAfterMs },
      ],
    }),
  );
  // No route: the default upstream is the tail one.
  const jarvis = await startJarvis({ upstreamBaseUrl: tail.baseUrl, from: ctx.opts.jarvisFrom, env: { JARVIS_CONFIG: config }, nodeArgs: ctx.opts.jarvisNodeArgs ?? [] });
  const runs: TailRun[][] = [];
  try {
    for (let run = 0; run < ctx.opts.runs; run++) {
      const row: TailRun[] = [];
      // The order rotates per run, so that no variant always goes first on a machine whose noise drifts.
      const order = TAIL_VARIANTS.map((_, i) => TAIL_VARIANTS[(i + run) % TAIL_VARIANTS.length]!);
      for (const variant of order) {
        const label = `tail ${variant}, ${p.concurrency} streams`;
        ctx.log(`  run ${run + 1}: ${label}`);
        const before = await attempts(jarvis.metricsUrl);
        try {
          const result = await runLoadClient({
            label,
            target: jarvisTarget(jarvis.origin),
            concurrency: p.concurrency,
            expectTokens: p.tokens,
            mode: 'closed',
            durationMs: p.durationMs,
            rampMs: 0,
            warmupStreams: 0,
            recordGaps: false,
            streamTimeoutMs: ctx.opts.params.streamTimeoutMs,
            maxStreams: 5_000_000,
            body: { model: variant === 'none' ? 'mock-model' : variant },
            monitor: { pid: jarvis.child.pid },
          });
          const used = (await attempts(jarvis.metricsUrl)) - before;
          row.push({ variant, result, error: undefined, upstreamPerRequest: variant === 'none' ? 1 : used / Math.max(1, result.streams.started) });
        } catch (err) {
          row.push({ variant, result: undefined, error: err instanceof Error ? err.message : String(err), upstreamPerRequest: NaN });
        }
      }
      runs.push(row);
    }
  } finally {
    await jarvis.stop();
    await tail.child.stop();
    await healthy.child.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  return { concurrency: p.concurrency, tokens: p.tokens, tailEvery: p.tailEvery, tailTtftMs: p.tailTtftMs, firstTokenTimeoutMs: p.firstTokenTimeoutMs, hedgeAfterMs: p.hedgeAfterMs, runs };
}
