// 1. Relay throughput: closed-loop floods (no pacing) at several concurrency levels, for the direct path,
// Jarvis and the peer in the same run.
import { measureTargets, withStage, type RunResults, type ScenarioContext, type TargetName } from './stage.js';

export interface RelayResult {
  tokens: number;
  durationMs: number;
  warmupMs: number;
  levels: { concurrency: number; runs: RunResults[] }[];
  peerError: string | undefined;
}

export async function runRelay(ctx: ScenarioContext): Promise<RelayResult> {
  const p = ctx.opts.params.relay;
  const names: TargetName[] = ['direct', 'jarvis', 'peer', 'floor'];
  return withStage(ctx, { tokens: p.tokens, delayMs: 0, ttftMs: 0 }, { peer: ctx.opts.peer, floor: true }, async (stage) => {
    const levels = p.levels.map((concurrency) => ({ concurrency, runs: [] as RunResults[] }));
    for (let run = 0; run < ctx.opts.runs; run++) {
      for (const level of levels) {
        const c = level.concurrency;
        level.runs.push(
          await measureTargets(ctx, stage, names, run, (name, t) => ({
            label: `relay ${name} ${c} streams`,
            target: t.target,
            concurrency: c,
            expectTokens: p.tokens,
            mode: 'closed',
            durationMs: p.durationMs,
            rampMs: 0,
            warmupStreams: c,
            warmupMs: run === 0 && c === p.levels[0] ? p.warmupMs : 0,
            recordGaps: false,
            streamTimeoutMs: ctx.opts.params.streamTimeoutMs,
            maxStreams: 5_000_000,
            monitor: { pid: t.pid },
          })),
        );
      }
    }
    return { tokens: p.tokens, durationMs: p.durationMs, warmupMs: p.warmupMs, levels, peerError: stage.peerError };
  });
}
