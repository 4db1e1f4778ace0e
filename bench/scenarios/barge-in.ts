// 3. Barge-in storm (Jarvis only: the peer has no sessions). A dedicated driver process hosts the mock upstream
// and the client, so the mock's connection times and the client's send times share one clock.
import type { BargeInRunResult } from '../barge-in-driver.js';
import { parseResultLine } from '../load-client.js';
import { REPO_DIR, parentWatchPreload } from '../preloads.js';
import { spawnChild } from '../processes.js';
import { LOAD_CPU, startJarvis } from '../targets.js';
import type { ScenarioContext } from './stage.js';

export interface BargeInResult {
  sessions: number;
  requestsPerSession: number;
  gapMs: number;
  rampMs: number;
  tokens: number;
  delayMs: number;
  runs: BargeInRunResult[];
  errors: string[];
}

export async function runBargeInScenario(ctx: ScenarioContext): Promise<BargeInResult> {
  const p = ctx.opts.params.bargeIn;
  const out: BargeInResult = { ...p, runs: [], errors: [] };
  const driver = spawnChild(
    'barge-in-driver',
    process.execPath,
    ['--import', 'tsx', '--import', parentWatchPreload(), 'bench/barge-in-driver.ts', `--tokens=${p.tokens}`, `--delay-ms=${p.delayMs}`, '--watch-stdin'],
    { cpu: LOAD_CPU, cwd: REPO_DIR, stdout: 'lines' },
  );
  try {
    const ready = await driver.waitForLine(/^BENCH_READY (http:\/\/127\.0\.0\.1:\d+\/v1)$/, 30_000);
    const jarvis = await startJarvis({ upstreamBaseUrl: ready[1]!, from: ctx.opts.jarvisFrom, nodeArgs: ctx.opts.jarvisNodeArgs ?? [] });
    try {
      for (let run = 0; run < ctx.opts.runs; run++) {
        ctx.log(`  run ${run + 1}: barge-in ${p.sessions} sessions x ${p.requestsPerSession} requests`);
        const limitMs = p.rampMs + p.gapMs * p.requestsPerSession + ctx.opts.params.streamTimeoutMs * 2 + 60_000;
        const line = driver.waitForLine(/^BENCH_RESULT .*$/, limitMs);
        driver.send(
          JSON.stringify({ cmd: 'run', jarvisOrigin: jarvis.origin, ...p, streamTimeoutMs: ctx.opts.params.streamTimeoutMs, jarvisPid: jarvis.child.pid, metricsUrl: jarvis.metricsUrl }),
        );
        try {
          const result = parseResultLine<BargeInRunResult>((await line)[0]);
          if (result) out.runs.push(result);
        } catch (err) {
          out.errors.push(err instanceof Error ? err.message : String(err));
          break;
        }
      }
    } finally {
      await jarvis.stop();
    }
    driver.send(JSON.stringify({ cmd: 'exit' }));
    await Promise.race([driver.exited, new Promise((r) => setTimeout(r, 3000))]);
  } finally {
    await driver.stop(2000);
  }
  return out;
}
