// 3. Barge-in storm (Jarvis only: the peer has no sessions). A dedicated driver process hosts the mock upstream
// and the client, so the mock's connection times and the client's send times share one clock.
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import type { BargeInRunResult } from '../barge-in-driver.js';
import { parseResultLine } from '../load-client.js';
import { REPO_DIR, parentWatchPreload } from '../preloads.js';
import { spawnChild } from '../processes.js';
import { LOAD_CPU, startJarvis } from '../targets.js';
import type { ScenarioContext } from './stage.js';

export interface BargeInResult {
  /** The same storm across two instances on one Redis (a session's requests alternate between them). */
  cross?: { runs: BargeInRunResult[]; errors: string[]; skipped?: string };
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
    const storm = async (label: string, origins: string[], pid: number | undefined, metricsUrl: string, into: { runs: BargeInRunResult[]; errors: string[] }) => {
      for (let run = 0; run < ctx.opts.runs; run++) {
        ctx.log(`  run ${run + 1}: barge-in ${label} ${p.sessions} sessions x ${p.requestsPerSession} requests`);
        const limitMs = p.rampMs + p.gapMs * p.requestsPerSession + ctx.opts.params.streamTimeoutMs * 2 + 60_000;
        const line = driver.waitForLine(/^BENCH_RESULT .*$/, limitMs);
        driver.send(
          JSON.stringify({ cmd: 'run', jarvisOrigin: origins[0], jarvisOrigins: origins, ...p, streamTimeoutMs: ctx.opts.params.streamTimeoutMs, jarvisPid: pid, metricsUrl }),
        );
        try {
          const result = parseResultLine<BargeInRunResult>((await line)[0]);
          if (result) into.runs.push(result);
        } catch (err) {
          into.errors.push(err instanceof Error ? err.message : String(err));
          break;
        }
      }
    };
    try {
      await storm('single', [jarvis.origin], jarvis.child.pid, jarvis.metricsUrl, out);
    } finally {
      await jarvis.stop();
    }
    out.cross = { runs: [], errors: [] };
    const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
    if (!(await redisReachable(redisUrl))) {
      out.cross.skipped = `no Redis at ${redisUrl} (set REDIS_URL)`;
    } else {
      const env = { REDIS_URL: redisUrl, JARVIS_REDIS_PREFIX: `bench:${randomBytes(4).toString('hex')}:` };
      const pair = await Promise.all([1, 2].map(() => startJarvis({ upstreamBaseUrl: ready[1]!, from: ctx.opts.jarvisFrom, nodeArgs: ctx.opts.jarvisNodeArgs ?? [], env })));
      try {
        await storm('cross-instance', pair.map((j) => j.origin), pair[0]!.child.pid, pair[0]!.metricsUrl, out.cross);
      } finally {
        await Promise.all(pair.map((j) => j.stop()));
      }
    }
    driver.send(JSON.stringify({ cmd: 'exit' }));
    await Promise.race([driver.exited, new Promise((r) => setTimeout(r, 3000))]);
  } finally {
    await driver.stop(2000);
  }
  return out;
}

async function redisReachable(url: string): Promise<boolean> {
  const redis = new Redis(url, { lazyConnect: true, connectTimeout: 1000, maxRetriesPerRequest: 0, retryStrategy: () => null });
  redis.on('error', () => {});
  try {
    await redis.connect();
    return (await redis.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    redis.disconnect();
  }
}
