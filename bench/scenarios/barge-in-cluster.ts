// 13. The barge-in storm on a Redis Cluster against a single Redis, in one run. Scenario 3's two-instance storm
// (request k of a session to instance k mod 2, so every barge-in crosses instances through Redis), with the pair on
// (a) a single redis-server of the bench's own and (b) a six-node Redis Cluster of the bench's own (three masters,
// three replicas: test/support/redis-cluster.ts's, every node a guarded redis-server: guarded-redis.ts). Both pairs
// and both Redis run for the whole scenario; each round gives every rate one storm per configuration, the two back
// to back in an order that alternates from rate to rate and round to round, so the machine's drift falls on both
// alike. The driver (mock and client on one clock) is scenario 3's; beside its figures it reads the CPU of both
// instances of the pair and of every redis-server of the configuration over the storm.
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { stormLimitMs, type BargeInRunResult, type BargeInRunSpec } from '../barge-in-driver.js';
import { redisVersion, startGuardedCluster, startGuardedRedis } from '../guarded-redis.js';
import { fmt } from '../headline.js';
import { parseResultLine } from '../load-client.js';
import { LOOP_P99 } from '../metrics-scrape.js';
import { cpuSeconds } from '../proc-stats.js';
import { pinningActive } from '../processes.js';
import { spread, type Spread } from '../stats.js';
import { startJarvis, type RunningJarvis } from '../targets.js';
import { startDriver, stormRate } from './barge-in.js';
import type { ScenarioContext } from './stage.js';

export const REDIS_CONFIGS = ['single', 'cluster'] as const;
export type RedisConfig = (typeof REDIS_CONFIGS)[number];

export const REDIS_CONFIG_LABEL: Record<RedisConfig, string> = { single: 'single Redis', cluster: 'Redis Cluster (3 + 3)' };

export interface BargeInClusterParams {
  /** Scenario 3's storm: sessions of `requestsPerSession` requests `gapMs` apart, answers of `tokens` tokens `delayMs` apart. */
  sessions: number;
  requestsPerSession: number;
  gapMs: number;
  tokens: number;
  delayMs: number;
  /** The sessions start spread over each of these: one storm per rate per configuration per round. */
  rampsMs: number[];
  /** Rounds = roundsPerRun × --runs. */
  roundsPerRun: number;
  /** One unmeasured storm per configuration before the rounds: its sessions, started over warmupRampMs. */
  warmupSessions: number;
  warmupRampMs: number;
  /** All idle after the warm-up: each configuration's idle CPU (the pair's and Redis's) a second. */
  idleMs: number;
}

export interface ClusterStorm {
  round: number;
  rampMs: number;
  config: RedisConfig;
  /** 0: the first of its pair in the round, 1: the second. */
  position: number;
  result?: BargeInRunResult;
  error?: string;
}

export interface BargeInClusterResult extends BargeInClusterParams {
  configs: RedisConfig[];
  /** The configurations that started and were measured (one that could not is in `skipped`). */
  measured: RedisConfig[];
  skipped: Partial<Record<RedisConfig, string>>;
  redis: { version?: string | undefined; single?: { url: string }; cluster?: { nodes: string; servers: number } };
  /** Both instances of a pair pinned to the gateway CPU, the driver to the load CPU (Redis is never pinned). */
  pinned: boolean;
  /** CPU a second, all idle, in ms: the pair's (both instances) and its Redis's (every redis-server). */
  idle: Partial<Record<RedisConfig, { jarvisMsPerSec: number; redisMsPerSec: number }>>;
  storms: ClusterStorm[];
  warmupErrors: string[];
  /** Why the rounds stopped early (the driver's state is unknown after a failed storm). */
  error?: string;
  /** Each instance's Redis state (/healthz) after the rounds: `up` unless Redis was lost meanwhile. */
  redisStateAfter: Partial<Record<RedisConfig, string[]>>;
}

const message = (err: unknown) => (err instanceof Error ? err.message : String(err));
const maxOf = (xs: number[] | undefined) => (xs && xs.length > 0 ? Math.max(...xs) : NaN);

async function redisState(j: RunningJarvis): Promise<string> {
  try {
    const res = await request(`${j.origin}/healthz`, { signal: AbortSignal.timeout(2000) });
    const body = (await res.body.json()) as { redis?: { state?: string } };
    return body.redis?.state ?? 'unknown';
  } catch (err) {
    return `unreachable: ${message(err)}`;
  }
}

/** Until every instance says its Redis is up (at most `timeoutMs`). */
async function waitForRedisUp(pair: RunningJarvis[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const states = await Promise.all(pair.map(redisState));
    if (states.every((s) => s === 'up')) return;
    if (Date.now() > deadline) throw new Error(`Redis not up on every instance after ${timeoutMs} ms: ${states.join(', ')}`);
    await sleep(100);
  }
}


export async function runBargeInClusterScenario(ctx: ScenarioContext): Promise<BargeInClusterResult> {
  const p = ctx.opts.params.bargeInCluster;
  const configs = [...REDIS_CONFIGS];
  const out: BargeInClusterResult = { ...p, configs, measured: [], skipped: {}, redis: {}, pinned: pinningActive(), idle: {}, storms: [], warmupErrors: [], redisStateAfter: {} };
  const stops: (() => Promise<unknown>)[] = [];
  try {
    const { driver, upstreamBaseUrl } = await startDriver(p);
    stops.push(() => driver.stop(2000));

    // Redis: a single server and a cluster, both the bench's own, both killed with it.
    const redisPids: Partial<Record<RedisConfig, () => number[]>> = {};
    const envOf: Partial<Record<RedisConfig, Record<string, string>>> = {};
    const only = { REDIS_URL: '', REDIS_SENTINELS: '', REDIS_CLUSTER_NODES: '', REDIS_PASSWORD: '', OTEL_EXPORTER_OTLP_ENDPOINT: '', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: '' };
    const run = randomBytes(4).toString('hex');
    const [single, cluster] = await Promise.allSettled([startGuardedRedis(), startGuardedCluster()]);
    if (single.status === 'fulfilled') {
      stops.push(() => single.value.stop());
      out.redis.single = { url: single.value.url };
      out.redis.version = await redisVersion(single.value.url);
      redisPids.single = () => [single.value.pid ?? NaN];
      envOf.single = { ...only, REDIS_URL: single.value.url, JARVIS_REDIS_PREFIX: `bench:${run}:single:` };
    } else {
      out.skipped.single = `redis-server did not start: ${message(single.reason)}`;
    }
    if (cluster.status === 'fulfilled') {
      stops.push(() => cluster.value.close());
      out.redis.cluster = { nodes: cluster.value.nodes, servers: cluster.value.servers.length };
      redisPids.cluster = () => cluster.value.guarded.map((s) => s.pid ?? NaN);
      envOf.cluster = { ...only, REDIS_CLUSTER_NODES: cluster.value.nodes, JARVIS_REDIS_PREFIX: `bench:${run}:cluster:` };
    } else {
      out.skipped.cluster = `the cluster did not start: ${message(cluster.reason)}`;
    }
    for (const [c, why] of Object.entries(out.skipped)) ctx.log(`  barge-in-cluster: ${REDIS_CONFIG_LABEL[c as RedisConfig]} not measured: ${why}`);

    // Two instances per configuration, pinned as scenario 3's pair is, all started before anything is measured.
    const pairs: Partial<Record<RedisConfig, RunningJarvis[]>> = {};
    await Promise.all(
      configs.map(async (c) => {
        const env = envOf[c];
        if (!env) return;
        const started = await Promise.allSettled([1, 2].map(() => startJarvis({ upstreamBaseUrl, from: ctx.opts.jarvisFrom, nodeArgs: ctx.opts.jarvisNodeArgs ?? [], env })));
        for (const s of started) if (s.status === 'fulfilled') stops.push(() => s.value.stop());
        const failed = started.find((s) => s.status === 'rejected');
        if (failed) {
          out.skipped[c] = `Jarvis did not start: ${message(failed.reason)}`;
          return;
        }
        const pair = started.map((s) => (s as PromiseFulfilledResult<RunningJarvis>).value);
        try {
          await waitForRedisUp(pair, 15_000);
          pairs[c] = pair;
        } catch (err) {
          out.skipped[c] = message(err);
        }
        if (out.skipped[c]) ctx.log(`  barge-in-cluster: ${REDIS_CONFIG_LABEL[c]} not measured: ${out.skipped[c]}`);
      }),
    );
    out.measured = configs.filter((c) => pairs[c]);
    if (out.measured.length === 0) throw new Error(Object.values(out.skipped).join('; ') || 'nothing to measure');

    const jarvisPids = (c: RedisConfig) => pairs[c]!.map((j) => j.child.pid);
    const allPids = () => [process.pid, ...out.measured.flatMap((c) => [...jarvisPids(c), ...redisPids[c]!()])];
    // One storm on configuration `c`; resolves with its result, rejects when the driver failed (its state is then unknown).
    const storm = async (c: RedisConfig, rampMs: number, sessions: number): Promise<BargeInRunResult> => {
      const pair = pairs[c]!;
      const groups = { jarvis: jarvisPids(c), redis: redisPids[c]!() };
      const mine = new Set([...groups.jarvis, ...groups.redis]);
      const spec: BargeInRunSpec = {
        jarvisOrigin: pair[0]!.origin,
        jarvisOrigins: pair.map((j) => j.origin),
        sessions,
        requestsPerSession: p.requestsPerSession,
        gapMs: p.gapMs,
        tokens: p.tokens,
        rampMs,
        streamTimeoutMs: ctx.opts.params.streamTimeoutMs,
        jarvisPid: pair[0]!.child.pid,
        metricsUrl: pair[0]!.metricsUrl,
        cpuGroups: groups,
        hostPids: allPids().filter((pid) => !mine.has(pid)),
      };
      const line = driver.waitForLine(/^BENCH_RESULT .*$/, stormLimitMs(spec) + 60_000);
      driver.send(JSON.stringify({ cmd: 'run', ...spec }));
      const result = parseResultLine<BargeInRunResult>((await line)[0]);
      if (!result) throw new Error('the driver printed no result');
      return result;
    };

    // Warm-up: one smaller storm each, so no configuration's measured storms are its first (JIT, Redis's scripts).
    if (p.warmupSessions > 0) {
      for (const c of out.measured) {
        ctx.log(`  barge-in-cluster warm-up, ${REDIS_CONFIG_LABEL[c]}: ${p.warmupSessions} sessions over ${p.warmupRampMs} ms`);
        try {
          await storm(c, p.warmupRampMs, p.warmupSessions);
        } catch (err) {
          out.warmupErrors.push(`${c}: ${message(err)}`);
          throw new Error(`warm-up storm on ${REDIS_CONFIG_LABEL[c]} failed: ${message(err)}`);
        }
      }
    }

    // All idle: what each configuration costs with nothing to do (the cluster's nodes ping each other on their bus),
    // after 1.5 s for the warm-up's last ledger batch (written a second later) and collections.
    if (p.idleMs > 0) {
      await sleep(1500);
      const read = () => Object.fromEntries(out.measured.map((c) => [c, { jarvis: jarvisPids(c).reduce((s, pid) => s + cpuSeconds(pid), 0), redis: redisPids[c]!().reduce((s, pid) => s + cpuSeconds(pid), 0) }]));
      const t0 = performance.now();
      const a = read();
      await sleep(p.idleMs);
      const b = read();
      const sec = (performance.now() - t0) / 1000;
      for (const c of out.measured) out.idle[c] = { jarvisMsPerSec: ((b[c]!.jarvis - a[c]!.jarvis) * 1000) / sec, redisMsPerSec: ((b[c]!.redis - a[c]!.redis) * 1000) / sec };
    }

    const rounds = p.roundsPerRun * ctx.opts.runs;
    ctx.log(
      `  ${out.measured.map((c) => REDIS_CONFIG_LABEL[c]).join(' and ')}: ${rounds} round${rounds === 1 ? '' : 's'} of ${p.sessions} sessions x ${p.requestsPerSession} requests over ${p.rampsMs.map((r) => `${r / 1000} s`).join(' and ')}, two instances each`,
    );
    rounds: for (let round = 0; round < rounds; round++) {
      for (const [i, rampMs] of p.rampsMs.entries()) {
        const order = (round + i) % 2 === 0 ? out.measured : [...out.measured].reverse();
        for (const [position, c] of order.entries()) {
          ctx.log(`  round ${round + 1}: barge-in on a ${REDIS_CONFIG_LABEL[c]}, ${p.sessions} sessions x ${p.requestsPerSession} requests over ${rampMs} ms`);
          const entry: ClusterStorm = { round, rampMs, config: c, position };
          out.storms.push(entry);
          try {
            entry.result = await storm(c, rampMs, p.sessions);
          } catch (err) {
            entry.error = message(err);
            out.error = `round ${round + 1}, ${REDIS_CONFIG_LABEL[c]} at ${rampMs} ms: ${entry.error}`;
            ctx.log(`  ${out.error}; the rounds stop here`);
            break rounds;
          }
        }
      }
    }
    for (const c of out.measured) out.redisStateAfter[c] = await Promise.all(pairs[c]!.map(redisState));
    driver.send(JSON.stringify({ cmd: 'exit' }));
    await Promise.race([driver.exited, sleep(3000)]);
    logSummary(out, ctx.log);
    return out;
  } finally {
    // Jarvis first, then Redis, then the driver.
    for (const stop of stops.reverse()) await stop().catch(() => {});
  }
}

// ---- Figures ----

/** One storm's figures. */
export interface ClusterStormFigures {
  /** New request's headers written → old upstream connection closed at the mock. */
  closeP50: number;
  closeP99: number;
  /** Old upstream closed → new request at the mock (may be slightly negative). */
  handoffP50: number;
  handoffP99: number;
  /** TTFT of every superseding request, and of each session's last. */
  newTtftP50: number;
  newTtftP99: number;
  finalTtftP50: number;
  finalTtftP99: number;
  /** Requests over the storm's wall time (first request sent → last stream ended): open loop, so the schedule's rate unless the gateway fell behind. */
  requestsPerSec: number;
  /** Both instances' CPU over the storm per request, and as cores. */
  jarvisUsPerRequest: number;
  jarvisCores: number;
  /** Every redis-server of the configuration (one, or six), likewise. */
  redisUsPerRequest: number;
  redisCores: number;
  /** Instance 1's event loop: the worst 500 ms scrape's p99. */
  loopP99Ms: number;
  /** Old streams that ended `cancelled`, of those measured (1 when all did). */
  cancelledShare: number;
  /** Other processes than the bench's, in cores, and what the hypervisor stole. */
  otherCores: number;
  stealCores: number;
}

export const CLUSTER_FIGURES: (keyof ClusterStormFigures)[] = [
  'closeP50',
  'closeP99',
  'handoffP50',
  'handoffP99',
  'newTtftP50',
  'newTtftP99',
  'finalTtftP50',
  'finalTtftP99',
  'requestsPerSec',
  'jarvisUsPerRequest',
  'jarvisCores',
  'redisUsPerRequest',
  'redisCores',
  'loopP99Ms',
  'cancelledShare',
  'otherCores',
  'stealCores',
];

/** The figures whose cluster ÷ single ratio is taken per round (the hand-over can be negative: a difference would be needed). */
export const CLUSTER_RATIOS: (keyof ClusterStormFigures)[] = ['closeP50', 'closeP99', 'newTtftP50', 'newTtftP99', 'finalTtftP50', 'finalTtftP99', 'requestsPerSec', 'jarvisUsPerRequest', 'redisUsPerRequest'];

export function stormFigures(r: BargeInRunResult): ClusterStormFigures {
  const sec = r.wallMs / 1000;
  const jarvis = r.groupCpuSec?.jarvis ?? NaN;
  const redis = r.groupCpuSec?.redis ?? NaN;
  const cpuSec = r.host?.wallSec ?? sec;
  return {
    closeP50: r.oldClosedAfterNewSent.p50,
    closeP99: r.oldClosedAfterNewSent.p99,
    handoffP50: r.handoff.p50,
    handoffP99: r.handoff.p99,
    newTtftP50: r.newTtft.p50,
    newTtftP99: r.newTtft.p99,
    finalTtftP50: r.finalTtft.p50,
    finalTtftP99: r.finalTtft.p99,
    requestsPerSec: r.requests / sec,
    jarvisUsPerRequest: (jarvis * 1e6) / r.requests,
    jarvisCores: jarvis / cpuSec,
    redisUsPerRequest: (redis * 1e6) / r.requests,
    redisCores: redis / cpuSec,
    loopP99Ms: maxOf(r.gateway?.metricSamples[LOOP_P99]) * 1000,
    cancelledShare: r.oldStreams > 0 ? r.oldCancelled / r.oldStreams : NaN,
    otherCores: r.host?.otherCores ?? NaN,
    stealCores: r.host?.stealCores ?? NaN,
  };
}

/** A ratio of the cluster's figure to the single Redis's, taken within each round, then summarised across rounds. */
export interface ClusterRatio {
  spread: Spread;
  /** Rounds where it was above 1, and rounds with both measured. */
  above: number;
  rounds: number;
}

export interface ClusterCounts {
  storms: number;
  requests: number;
  oldStreams: number;
  oldCancelled: number;
  finalStreams: number;
  finalComplete: number;
  /** Sessions (written in order) where an older request's answer ran to the end, and sessions evaluated. */
  olderWon: number;
  evaluated: number;
  /** Sessions the client itself wrote out of order (left out of every figure). */
  reordered: number;
  unclosed: number;
  oldOther: Record<string, number>;
  finalOther: Record<string, number>;
}

export interface ClusterRateFigures {
  rampMs: number;
  per: Partial<Record<RedisConfig, { figures: Record<keyof ClusterStormFigures, Spread>; counts: ClusterCounts }>>;
  /** cluster ÷ single, per round. */
  ratios: Partial<Record<keyof ClusterStormFigures, ClusterRatio>>;
}

function countsOf(results: BargeInRunResult[]): ClusterCounts {
  const sum = (f: (r: BargeInRunResult) => number) => results.reduce((a, r) => a + f(r), 0);
  const merge = (f: (r: BargeInRunResult) => Record<string, number>) => {
    const o: Record<string, number> = {};
    for (const r of results) for (const [k, v] of Object.entries(f(r))) o[k] = (o[k] ?? 0) + v;
    return o;
  };
  return {
    storms: results.length,
    requests: sum((r) => r.requests),
    oldStreams: sum((r) => r.oldStreams),
    oldCancelled: sum((r) => r.oldCancelled),
    finalStreams: sum((r) => r.finalStreams),
    finalComplete: sum((r) => r.finalComplete),
    olderWon: sum((r) => r.olderWonSessions),
    evaluated: sum((r) => r.finalStreams),
    reordered: sum((r) => r.clientReorderedSessions),
    unclosed: sum((r) => r.unclosedUpstream),
    oldOther: merge((r) => r.oldOtherEndings),
    finalOther: merge((r) => r.finalOtherEndings),
  };
}

export function clusterFigures(r: BargeInClusterResult): ClusterRateFigures[] {
  return r.rampsMs.map((rampMs) => {
    const at = r.storms.filter((s) => s.rampMs === rampMs && s.result);
    const per: ClusterRateFigures['per'] = {};
    for (const c of r.measured) {
      const results = at.filter((s) => s.config === c).map((s) => s.result!);
      if (results.length === 0) continue;
      const figs = results.map(stormFigures);
      per[c] = { figures: Object.fromEntries(CLUSTER_FIGURES.map((n) => [n, spread(figs.map((f) => f[n]))])) as Record<keyof ClusterStormFigures, Spread>, counts: countsOf(results) };
    }
    const ratios: ClusterRateFigures['ratios'] = {};
    const pairs: [ClusterStormFigures, ClusterStormFigures][] = [];
    for (const round of new Set(at.map((s) => s.round))) {
      const cl = at.find((s) => s.round === round && s.config === 'cluster');
      const si = at.find((s) => s.round === round && s.config === 'single');
      if (cl && si) pairs.push([stormFigures(cl.result!), stormFigures(si.result!)]);
    }
    if (pairs.length > 0) {
      for (const n of CLUSTER_RATIOS) {
        const values = pairs.map(([cl, si]) => cl[n] / si[n]).filter(Number.isFinite);
        ratios[n] = { spread: spread(values), above: values.filter((v) => v > 1).length, rounds: values.length };
      }
    }
    return { rampMs, per, ratios };
  });
}

/** "1,000 requests/s (1000 sessions × 5 over 5 s)" */
export function clusterRateLabel(r: Pick<BargeInClusterResult, 'sessions' | 'requestsPerSession'>, rampMs: number): string {
  return `${Math.round(stormRate(r, rampMs)).toLocaleString('en-US')} requests/s (${r.sessions} sessions × ${r.requestsPerSession} over ${fmt(rampMs / 1000)} s)`;
}

function logSummary(r: BargeInClusterResult, log: (msg: string) => void): void {
  const n = (s: Spread | undefined) => (s ? fmt(s.median) : '–');
  for (const f of clusterFigures(r)) {
    for (const c of r.measured) {
      const x = f.per[c];
      if (!x) continue;
      const g = x.figures;
      log(
        `  ${clusterRateLabel(r, f.rampMs)}, ${REDIS_CONFIG_LABEL[c]}: old upstream closed p50 ${n(g.closeP50)} / p99 ${n(g.closeP99)} ms, new TTFT p50 ${n(g.newTtftP50)} / p99 ${n(g.newTtftP99)} ms, ${n(g.requestsPerSec)} requests/s, Jarvis ${n(g.jarvisUsPerRequest)} µs and Redis ${n(g.redisUsPerRequest)} µs CPU a request; ${x.counts.oldCancelled}/${x.counts.oldStreams} old streams cancelled, older won ${x.counts.olderWon}/${x.counts.evaluated}`,
      );
    }
    const q = f.ratios;
    if (q.closeP99) log(`  ${clusterRateLabel(r, f.rampMs)}, cluster ÷ single: close p50 ${n(q.closeP50?.spread)}×, p99 ${n(q.closeP99.spread)}× (${q.closeP99.above}/${q.closeP99.rounds} rounds above 1), Jarvis CPU a request ${n(q.jarvisUsPerRequest?.spread)}×, Redis CPU a request ${n(q.redisUsPerRequest?.spread)}×`);
  }
}
