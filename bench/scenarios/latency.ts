// 2. Added latency: paced streams (one token every N ms), for the direct path, Jarvis and the peer in the same
// run; TTFT and inter-token gaps are compared with the direct path's.
import { measureTargets, withStage, type RunResults, type ScenarioContext, type TargetName } from './stage.js';

export interface LatencyResult {
  concurrency: number;
  tokens: number;
  durationMs: number;
  warmupMs: number;
  pacings: { delayMs: number; runs: RunResults[]; peerError: string | undefined }[];
}

export async function runLatency(ctx: ScenarioContext): Promise<LatencyResult> {
  const p = ctx.opts.params.latency;
  const names: TargetName[] = ['direct', 'jarvis', 'peer', 'floor'];
  const pacings: LatencyResult['pacings'] = [];
  for (const delayMs of p.pacingsMs) {
    ctx.log(` pacing ${delayMs} ms`);
    pacings.push(
      await withStage(ctx, { tokens: p.tokens, delayMs, ttftMs: 0 }, { peer: ctx.opts.peer, floor: true }, async (stage) => {
        const runs: RunResults[] = [];
        for (let run = 0; run < ctx.opts.runs; run++) {
          runs.push(
            await measureTargets(ctx, stage, names, run, (name, t) => ({
              label: `latency ${name} ${p.concurrency} streams @ ${delayMs} ms`,
              target: t.target,
              concurrency: p.concurrency,
              expectTokens: p.tokens,
              mode: 'closed',
              durationMs: p.durationMs,
              rampMs: 0,
              warmupStreams: p.concurrency,
              warmupMs: run === 0 ? p.warmupMs : 0,
              recordGaps: true,
              streamTimeoutMs: ctx.opts.params.streamTimeoutMs,
              maxStreams: 5_000_000,
              monitor: { pid: t.pid },
            })),
          );
        }
        return { delayMs, runs, peerError: stage.peerError };
      }),
    );
  }
  return { concurrency: p.concurrency, tokens: p.tokens, durationMs: p.durationMs, warmupMs: p.warmupMs, pacings };
}
