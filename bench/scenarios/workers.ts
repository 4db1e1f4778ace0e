// 12. Every core: Jarvis started with JARVIS_WORKERS=N (a node:cluster primary and N workers on one port) against
// Jarvis as one process, in one run, in front of one mock upstream and one Redis (a redis-server of the bench's own on
// a free loopback port; both Jarvis use it, each under a prefix of its own). Neither Jarvis is pinned (the workers
// inherit the primary's CPUs, and pinning them to one core would measure nothing but the cluster's overhead); the
// mock and the driver stay on the load CPU as in every scenario, Redis is not pinned. The load is
// bench/workers-driver.ts, one process on the load CPU: closed-loop floods of unpaced streams at each concurrency
// level of a ladder, a slice per Jarvis per level per round, the pair's order alternating round by round, so the
// machine's drift falls on both alike. A slice's CPU is the sum over every process of that Jarvis (the primary and
// each worker, all threads).
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { fmt } from '../headline.js';
import { parseResultLine } from '../load-client.js';
import { processTree } from '../proc-stats.js';
import { REPO_DIR } from '../preloads.js';
import { pinningActive, spawnChild } from '../processes.js';
import { spread, type Spread } from '../stats.js';
import { LOAD_CPU, startJarvis, startMock, type RunningJarvis } from '../targets.js';
import { workersDriverLimitMs, type WorkersDriverResult, type WorkersDriverSpec, type WorkersSlice } from '../workers-driver.js';
import { redisVersion, startGuardedRedis } from '../guarded-redis.js';
import { redisReachable } from './barge-in.js';
import type { ScenarioContext } from './stage.js';

export const WORKERS_CONFIGS = ['one', 'workers'] as const;
export type WorkersConfig = (typeof WORKERS_CONFIGS)[number];

export interface WorkersParams {
  /** JARVIS_WORKERS of the `workers` configuration. */
  workers: number;
  /** Concurrent closed-loop streams of a slice, one slice per level per configuration per round. */
  levels: number[];
  /** Every answer is `tokens` tokens, unpaced (the relay scenario's flood). */
  tokens: number;
  /** Each configuration's closed loop at the largest level before anything is measured, in alternating slices. */
  warmupMs: number;
  /** All idle after the warm-up: each configuration's idle CPU a second. */
  idleMs: number;
  /** Rounds = roundsPerRun × --runs. */
  roundsPerRun: number;
  sliceMs: number;
  /** Quiet time after each slice, inside its CPU window (less the idle rate). */
  settleMs: number;
  /** The usage ledger as operators run it (embedded), or off (JARVIS_LEDGER=0): its batches are written off the request path a second later, into the next slice. */
  ledger: boolean;
}

export interface WorkersResult extends WorkersParams {
  configs: WorkersConfig[];
  /** The configurations that started (one that could not is in `skipped`). */
  measured: WorkersConfig[];
  skipped: Partial<Record<WorkersConfig, string>>;
  /** The Redis both use: a redis-server of the bench's own (`private`), else REDIS_URL. */
  redis?: { url: string; private: boolean; version?: string | undefined };
  /** The driver and the mock pinned to the load CPU (Jarvis and Redis are never pinned here). */
  loadPinned: boolean;
  driver?: WorkersDriverResult;
  driverError?: string;
}

const message = (err: unknown) => (err instanceof Error ? err.message : String(err));

export function configLabel(c: WorkersConfig, workers: number): string {
  return c === 'one' ? 'one process' : `JARVIS_WORKERS=${workers}`;
}

/** Until the log file says every worker listens and the primary has that many children (at most `timeoutMs`). */
async function waitForWorkers(jarvis: RunningJarvis, workers: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let listening = 0;
    try {
      listening = readFileSync(jarvis.logFile, 'utf8').split('jarvis_listening').length - 1;
    } catch {
      // not written yet
    }
    const children = processTree(jarvis.child.pid).length - 1;
    if (listening >= workers && children >= workers) return;
    if (Date.now() > deadline) throw new Error(`${listening} of ${workers} workers listening, ${children} worker processes, after ${timeoutMs} ms`);
    await sleep(100);
  }
}

/** The driver as its own process on the load CPU; its result line. */
async function runDriver(spec: WorkersDriverSpec): Promise<WorkersDriverResult> {
  const child = spawnChild('workers-driver', process.execPath, ['--import', 'tsx', 'bench/workers-driver.ts', JSON.stringify(spec), '--watch-stdin'], { cpu: LOAD_CPU, cwd: REPO_DIR, stdout: 'lines' });
  let result: WorkersDriverResult | undefined;
  child.onLine((line) => {
    result = parseResultLine<WorkersDriverResult>(line) ?? result;
  });
  // The driver bounds itself; this is the backstop if it hangs anyway.
  const timer = setTimeout(() => void child.stop(1000), workersDriverLimitMs(spec) + 30_000);
  const code = await child.exited;
  clearTimeout(timer);
  if (!result) throw new Error(`workers driver failed (exit ${code}): ${child.stderrTail().slice(-1200).trim()}`);
  return result;
}

export async function runWorkersScenario(ctx: ScenarioContext): Promise<WorkersResult> {
  const p = ctx.opts.params.workers;
  const configs = [...WORKERS_CONFIGS];
  const out: WorkersResult = { ...p, configs, measured: [], skipped: {}, loadPinned: pinningActive() };
  const stops: (() => Promise<unknown>)[] = [];
  try {
    let redisPid: number | undefined;
    let redisUrl: string;
    try {
      const redis = await startGuardedRedis();
      stops.push(() => redis.stop());
      redisUrl = redis.url;
      redisPid = redis.pid;
      out.redis = { url: redis.url, private: true, version: await redisVersion(redis.url) };
    } catch (err) {
      // No redis-server on this machine: REDIS_URL, as the barge-in scenario's pair uses it.
      const fallback = process.env.REDIS_URL;
      if (!fallback || !(await redisReachable(fallback))) throw new Error(`no Redis: a private redis-server did not start (${message(err)}), and REDIS_URL ${fallback ? `(${fallback}) does not answer` : 'is not set'}`);
      ctx.log(`  workers: a private redis-server did not start (${message(err)}); using REDIS_URL ${fallback}`);
      redisUrl = fallback;
      out.redis = { url: fallback, private: false };
    }
    const mock = await startMock({ tokens: p.tokens, delayMs: 0, ttftMs: 0 });
    stops.push(() => mock.child.stop());
    const run = randomBytes(4).toString('hex');
    const envOf = (c: WorkersConfig): Record<string, string> => ({
      REDIS_URL: redisUrl,
      JARVIS_REDIS_PREFIX: `bench:${run}:${c}:`,
      // Only REDIS_URL: nothing of the bench's own environment may point either Jarvis elsewhere.
      REDIS_SENTINELS: '',
      REDIS_CLUSTER_NODES: '',
      REDIS_PASSWORD: '',
      OTEL_EXPORTER_OTLP_ENDPOINT: '',
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: '',
      ...(p.ledger ? {} : { JARVIS_LEDGER: '0' }),
      ...(c === 'workers' ? { JARVIS_WORKERS: String(p.workers) } : {}),
    });
    const jarvis = new Map<WorkersConfig, RunningJarvis>();
    const started = await Promise.all(
      configs.map(async (c) => {
        try {
          const j = await startJarvis({ upstreamBaseUrl: mock.baseUrl, from: ctx.opts.jarvisFrom, env: envOf(c), nodeArgs: ctx.opts.jarvisNodeArgs ?? [], cpu: null });
          stops.push(() => j.stop());
          if (c === 'workers') await waitForWorkers(j, p.workers, 30_000);
          return [c, j] as const;
        } catch (err) {
          out.skipped[c] = message(err);
          ctx.log(`  workers: ${configLabel(c, p.workers)} did not start: ${out.skipped[c]}`);
          return undefined;
        }
      }),
    );
    for (const x of started) {
      if (!x) continue;
      jarvis.set(x[0], x[1]);
      out.measured.push(x[0]);
    }
    const rounds = p.roundsPerRun * ctx.opts.runs;
    ctx.log(
      `  ${out.measured.map((c) => configLabel(c, p.workers)).join(' and ')}: ${p.warmupMs / 1000} s of warm-up each, then ${rounds} round${rounds === 1 ? '' : 's'} of ${p.sliceMs} ms slices at ${p.levels.join(', ')} streams of ${p.tokens} tokens`,
    );
    if (out.measured.length > 0) {
      try {
        out.driver = await runDriver({
          targets: out.measured.map((c) => ({ name: c, origin: jarvis.get(c)!.origin, pid: jarvis.get(c)!.child.pid })),
          levels: p.levels,
          tokens: p.tokens,
          warmupMs: p.warmupMs,
          idleMs: p.idleMs,
          rounds,
          sliceMs: p.sliceMs,
          settleMs: p.settleMs,
          streamTimeoutMs: ctx.opts.params.streamTimeoutMs,
          mockPid: mock.child.pid,
          redisPid,
          benchPids: [process.pid],
        });
        for (const e of out.driver.warmupErrors) ctx.log(`  warm-up: ${e}`);
      } catch (err) {
        out.driverError = message(err);
        ctx.log(`  ${out.driverError}`);
      }
    }
    logSummary(out, ctx.log);
    return out;
  } finally {
    // Jarvis first, then the mock, then Redis.
    for (const stop of stops.reverse()) await stop().catch(() => {});
  }
}

// ---- Figures ----

/** One configuration's figures in one slice. */
export interface WorkersSliceFigures {
  streamsPerSec: number;
  chunksPerSec: number;
  /** Every process of the configuration (primary and workers, all threads) per chunk the client received. */
  cpuUsPerChunk: number;
  /** The primary's own part of it (NaN for one process). */
  primaryUsPerChunk: number;
  /** That CPU over the slice's wall time: the cores the configuration used. */
  gatewayCores: number;
  /** The driver's CPU and the mock's over the slice's wall time: near 1 (they share the load CPU), the load side was the limit. */
  loadCores: number;
  redisUsPerChunk: number;
  ttftP50: number;
  ttftP99: number;
  /** The busiest worker's share of the workers' CPU (0.5 with two workers: even; NaN for one process). */
  busiestWorkerShare: number;
  /** Other processes than the bench's, in cores, and what the hypervisor stole. */
  otherCores: number;
  stealCores: number;
}

const FIGURES: (keyof WorkersSliceFigures)[] = ['streamsPerSec', 'chunksPerSec', 'cpuUsPerChunk', 'primaryUsPerChunk', 'gatewayCores', 'loadCores', 'redisUsPerChunk', 'ttftP50', 'ttftP99', 'busiestWorkerShare', 'otherCores', 'stealCores'];

export function sliceFigures(s: WorkersSlice): WorkersSliceFigures {
  const sec = s.wallMs / 1000;
  const workers = s.processes.length > 1 ? s.processes.slice(1) : [];
  const workerCpu = workers.reduce((sum, w) => sum + w.cpuSec, 0);
  return {
    streamsPerSec: s.ok / sec,
    chunksPerSec: s.tokens / sec,
    cpuUsPerChunk: s.treeChanged || s.tokens === 0 ? NaN : (s.cpuSec * 1e6) / s.tokens,
    primaryUsPerChunk: workers.length > 0 && s.tokens > 0 ? (s.processes[0]!.cpuSec * 1e6) / s.tokens : NaN,
    gatewayCores: s.treeChanged ? NaN : s.cpuSec / sec,
    loadCores: (s.driverCpuSec + s.mockCpuSec) / sec,
    redisUsPerChunk: s.tokens > 0 ? (s.redisCpuSec * 1e6) / s.tokens : NaN,
    ttftP50: s.ttft.p50,
    ttftP99: s.ttft.p99,
    busiestWorkerShare: workers.length > 0 && workerCpu > 0 ? Math.max(...workers.map((w) => w.cpuSec)) / workerCpu : NaN,
    otherCores: s.host.otherCores,
    stealCores: s.host.stealCores,
  };
}

/** A ratio of the workers' figure to one process's, taken within each round, then summarised across rounds. */
export interface WorkersRatio {
  spread: Spread;
  /** Rounds where it was above 1, and rounds with both measured. */
  above: number;
  rounds: number;
}

export interface WorkersLevelFigures {
  level: number;
  per: Partial<Record<WorkersConfig, { figures: Record<keyof WorkersSliceFigures, Spread>; requests: number; bad: number; errors: string[]; changed: number; connections: number[] }>>;
  /** workers / one, per round. */
  chunksPerSec?: WorkersRatio;
  streamsPerSec?: WorkersRatio;
  cpuUsPerChunk?: WorkersRatio;
  ttftP50?: WorkersRatio;
}

export interface WorkersFigures {
  levels: WorkersLevelFigures[];
  /** Each configuration's CPU a second while idle (ms), and its processes. */
  idleCpuMsPerSec: Partial<Record<WorkersConfig, number>>;
  processes: Partial<Record<WorkersConfig, number>>;
}

function ratioOf(pairs: [WorkersSliceFigures, WorkersSliceFigures][], f: (x: WorkersSliceFigures) => number): WorkersRatio {
  const values = pairs.map(([w, o]) => f(w) / f(o)).filter(Number.isFinite);
  return { spread: spread(values), above: values.filter((v) => v > 1).length, rounds: values.length };
}

export function workersFigures(r: WorkersResult): WorkersFigures {
  const slices = r.driver?.slices ?? [];
  const levels = r.levels.map((level): WorkersLevelFigures => {
    const at = slices.filter((s) => s.level === level);
    const per: WorkersLevelFigures['per'] = {};
    for (const c of r.measured) {
      const mine = at.filter((s) => s.target === c);
      const figs = mine.map(sliceFigures);
      const opened = r.driver?.opened[c]?.[level];
      per[c] = {
        figures: Object.fromEntries(FIGURES.map((n) => [n, spread(figs.map((f) => f[n]))])) as Record<keyof WorkersSliceFigures, Spread>,
        requests: mine.reduce((s, x) => s + x.requests, 0),
        bad: mine.reduce((s, x) => s + x.failed + x.short, 0),
        errors: [...new Set(mine.flatMap((x) => Object.keys(x.errors)))],
        changed: mine.filter((x) => x.treeChanged).length,
        // How this level's pool was split between the workers when it was opened (all on the one process, for one process).
        connections: opened ? (opened.length > 1 ? opened.slice(1) : opened) : [],
      };
    }
    const out: WorkersLevelFigures = { level, per };
    if (per.one && per.workers) {
      const pairs: [WorkersSliceFigures, WorkersSliceFigures][] = [];
      for (const round of new Set(at.map((s) => s.round))) {
        const w = at.find((s) => s.round === round && s.target === 'workers');
        const o = at.find((s) => s.round === round && s.target === 'one');
        if (w && o) pairs.push([sliceFigures(w), sliceFigures(o)]);
      }
      out.chunksPerSec = ratioOf(pairs, (x) => x.chunksPerSec);
      out.streamsPerSec = ratioOf(pairs, (x) => x.streamsPerSec);
      out.cpuUsPerChunk = ratioOf(pairs, (x) => x.cpuUsPerChunk);
      out.ttftP50 = ratioOf(pairs, (x) => x.ttftP50);
    }
    return out;
  });
  const idleCpuMsPerSec: WorkersFigures['idleCpuMsPerSec'] = {};
  const processes: WorkersFigures['processes'] = {};
  for (const c of r.measured) {
    idleCpuMsPerSec[c] = (r.driver?.idle[c] ?? NaN) * 1000;
    processes[c] = r.driver?.pids[c]?.length ?? NaN;
  }
  return { levels, idleCpuMsPerSec, processes };
}

function logSummary(r: WorkersResult, log: (msg: string) => void): void {
  const f = workersFigures(r);
  const n = (s: Spread | undefined) => (s ? fmt(s.median) : '–');
  for (const l of f.levels) {
    for (const c of r.measured) {
      const x = l.per[c]!;
      const g = x.figures;
      log(
        `  ${l.level} streams, ${configLabel(c, r.workers)}: ${n(g.streamsPerSec)} streams/s, ${n(g.chunksPerSec)} chunks/s, ${n(g.cpuUsPerChunk)} µs CPU a chunk, ${n(g.gatewayCores)} cores (load side ${n(g.loadCores)}), TTFT p50 ${n(g.ttftP50)} ms` +
          (x.bad > 0 ? `, ${x.bad} of ${x.requests} streams bad` : ''),
      );
    }
    if (l.chunksPerSec && l.cpuUsPerChunk) log(`  ${l.level} streams, workers / one: chunks/s ${n(l.chunksPerSec.spread)}× (${l.chunksPerSec.above}/${l.chunksPerSec.rounds} rounds above 1), CPU a chunk ${n(l.cpuUsPerChunk.spread)}×`);
  }
}
