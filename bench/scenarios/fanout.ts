// 5. Fan-out: /v1/events subscribers (SSE) while streams run through Jarvis; the streams' throughput is compared
// with the direct path's in the same run.
import { EVENTS_DROPPED, SUBSCRIBERS_DROPPED } from '../metrics-scrape.js';
import { measureTargets, withStage, type RunResults, type ScenarioContext } from './stage.js';

export interface FanoutResult {
  subscribers: number;
  streams: number;
  tokens: number;
  delayMs: number;
  runs: RunResults[];
}

export async function runFanout(ctx: ScenarioContext): Promise<FanoutResult> {
  const p = ctx.opts.params.fanout;
  return withStage(ctx, { tokens: p.tokens, delayMs: p.delayMs, ttftMs: 0 }, { peer: false, floor: false }, async (stage) => {
    const runs: RunResults[] = [];
    for (let run = 0; run < ctx.opts.runs; run++) {
      runs.push(
        await measureTargets(ctx, stage, ['direct', 'jarvis'], run, (name, t) => ({
          label: `fanout ${name} ${p.streams} streams${name === 'jarvis' ? ` + ${p.subscribers} subscribers` : ''}`,
          target: t.target,
          concurrency: p.streams,
          expectTokens: p.tokens,
          mode: 'once',
          durationMs: 0,
          rampMs: 0,
          warmupStreams: Math.min(p.streams, 16),
          recordGaps: false,
          streamTimeoutMs: ctx.opts.params.streamTimeoutMs,
          maxStreams: p.streams,
          monitor: { pid: t.pid, metricsUrl: t.metricsUrl, metrics: t.metricsUrl ? [EVENTS_DROPPED, SUBSCRIBERS_DROPPED] : [] },
          ...(name === 'jarvis'
            ? { subscribers: { target: { origin: t.target.origin, path: '/v1/events', headers: {} }, count: p.subscribers, settleMs: p.settleMs } }
            : {}),
        })),
      );
    }
    return { subscribers: p.subscribers, streams: p.streams, tokens: p.tokens, delayMs: p.delayMs, runs };
  });
}
