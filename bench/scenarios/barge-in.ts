// 3. Barge-in storm, at several arrival rates, through Jarvis, the floor relay and two Jarvis instances on one
// Redis (the peer has no sessions). A dedicated driver process hosts the mock upstream and the client, so the
// mock's connection times and the client's send times share one clock.
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { stormLimitMs, type BargeInRunResult, type BargeInRunSpec } from '../barge-in-driver.js';
import { parseResultLine } from '../load-client.js';
import { REPO_DIR, parentWatchPreload } from '../preloads.js';
import { spawnChild, type Child } from '../processes.js';
import { LOAD_CPU, startFloor, startJarvis } from '../targets.js';
import type { ScenarioContext } from './stage.js';

/** One target's storms at one rate: a result per run, or the error that ended the runs. */
export interface StormRuns {
  runs: BargeInRunResult[];
  errors: string[];
  /** Why this target was not measured (the cross-instance pair without Redis). */
  skipped?: string;
}

/** The same storm at one arrival rate: its sessions start spread over `rampMs`. */
export interface StormRate {
  rampMs: number;
  jarvis: StormRuns;
  /** The floor relay (bench/bare-relay.ts), which only destroys the old upstream request: what the host allows. */
  floor: StormRuns;
  /** Two instances on one Redis; a session's requests alternate between them. */
  cross: StormRuns;
}

export interface BargeInResult {
  sessions: number;
  requestsPerSession: number;
  gapMs: number;
  tokens: number;
  delayMs: number;
  rates: StormRate[];
}

/** Requests a second while a storm's sessions start (each session's requests come within 80 ms of its start). */
export function stormRate(b: Pick<BargeInResult, 'sessions' | 'requestsPerSession'>, rampMs: number): number {
  return (b.sessions * b.requestsPerSession) / (rampMs / 1000);
}

export async function runBargeInScenario(ctx: ScenarioContext): Promise<BargeInResult> {
  const { rampsMs, ...p } = ctx.opts.params.bargeIn;
  const empty = (): StormRuns => ({ runs: [], errors: [] });
  const out: BargeInResult = { ...p, rates: rampsMs.map((rampMs) => ({ rampMs, jarvis: empty(), floor: empty(), cross: empty() })) };
  const { driver, upstreamBaseUrl } = await startDriver(p);
  try {
    // Every rate, `runs` times, against one running target. A failed run ends that target's storms: the driver may
    // still be inside it, and the next result line could be that run's.
    const storms = async (label: string, target: 'jarvis' | 'floor' | 'cross', origins: string[], pid: number | undefined, metricsUrl: string | undefined) => {
      for (const rate of out.rates) {
        const into = rate[target];
        for (let run = 0; run < ctx.opts.runs; run++) {
          ctx.log(`  run ${run + 1}: barge-in ${label}, ${p.sessions} sessions x ${p.requestsPerSession} requests over ${rate.rampMs} ms`);
          const spec: BargeInRunSpec = { jarvisOrigin: origins[0]!, jarvisOrigins: origins, ...p, rampMs: rate.rampMs, streamTimeoutMs: ctx.opts.params.streamTimeoutMs, jarvisPid: pid, metricsUrl };
          const line = driver.waitForLine(/^BENCH_RESULT .*$/, stormLimitMs(spec) + 60_000);
          driver.send(JSON.stringify({ cmd: 'run', ...spec }));
          try {
            const result = parseResultLine<BargeInRunResult>((await line)[0]);
            if (result) into.runs.push(result);
          } catch (err) {
            into.errors.push(err instanceof Error ? err.message : String(err));
            return;
          }
        }
      }
    };

    const jarvis = await startJarvis({ upstreamBaseUrl, from: ctx.opts.jarvisFrom, nodeArgs: ctx.opts.jarvisNodeArgs ?? [] });
    try {
      await storms('jarvis', 'jarvis', [jarvis.origin], jarvis.child.pid, jarvis.metricsUrl);
    } finally {
      await jarvis.stop();
    }
    const floor = await startFloor(new URL(upstreamBaseUrl).origin);
    try {
      await storms('floor relay', 'floor', [floor.origin], floor.child.pid, floor.metricsUrl);
    } finally {
      await floor.stop();
    }
    const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
    if (!(await redisReachable(redisUrl))) {
      for (const rate of out.rates) rate.cross.skipped = `no Redis at ${redisUrl} (set REDIS_URL)`;
    } else {
      const env = { REDIS_URL: redisUrl, JARVIS_REDIS_PREFIX: `bench:${randomBytes(4).toString('hex')}:` };
      const pair = await Promise.all([1, 2].map(() => startJarvis({ upstreamBaseUrl, from: ctx.opts.jarvisFrom, nodeArgs: ctx.opts.jarvisNodeArgs ?? [], env })));
      try {
        await storms('cross-instance', 'cross', pair.map((j) => j.origin), pair[0]!.child.pid, pair[0]!.metricsUrl);
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

/** The driver process (mock upstream and client on one clock) with the mock's default answer. */
export async function startDriver(defaults: { tokens: number; delayMs: number }): Promise<{ driver: Child; upstreamBaseUrl: string }> {
  const driver = spawnChild(
    'barge-in-driver',
    process.execPath,
    ['--import', 'tsx', '--import', parentWatchPreload(), 'bench/barge-in-driver.ts', `--tokens=${defaults.tokens}`, `--delay-ms=${defaults.delayMs}`, '--watch-stdin'],
    { cpu: LOAD_CPU, cwd: REPO_DIR, stdout: 'lines' },
  );
  try {
    const ready = await driver.waitForLine(/^BENCH_READY (http:\/\/127\.0\.0\.1:\d+\/v1)$/, 30_000);
    return { driver, upstreamBaseUrl: ready[1]! };
  } catch (err) {
    await driver.stop(2000);
    throw err;
  }
}

export async function redisReachable(url: string): Promise<boolean> {
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
