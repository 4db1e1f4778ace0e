// 11. What the usage ledger and OpenTelemetry traces cost a request (issue 29): the same streaming load through
// Jarvis in several configurations, all in one run, interleaved:
//   (a) ledger off, tracing off (JARVIS_LEDGER=0): the baseline;
//   (b) ledger embedded (SQLite in a worker thread, a file under JARVIS_DATA_DIR), tracing off: the default;
//   (c) ledger on PostgreSQL (JARVIS_DATABASE_URL, a database of the bench's own), tracing off;
//   (d) ledger embedded, tracing on: OTLP/HTTP JSON to bench/otlp-receiver.ts, which counts the spans it gets;
//   (a') a second Jarvis like (a): what two identical processes differ by here, the noise band;
//   (e) with --ledger-before REF, the build of REF (the commit before the change) with no settings: today's figures.
// Every configuration is its own Jarvis, all started at once and pinned to the gateway CPU (the ones not asked
// idle); one mock upstream and the receiver on the load CPU. The load is bench/ledger-driver.ts, one process on the
// load CPU for the whole run: it warms each Jarvis, then runs rounds of cycles, a short slice of closed-loop streams
// for each configuration in turn (short unpaced answers: the request path at its busiest, so a per-request cost
// shows), in the orders of a Williams design (each configuration comes right after every other equally often), so
// the machine's other load, and what one configuration leaves behind for the next slice, falls on all alike. A Jarvis's
// CPU over a round, less its idle over the time it was not asked, is what its requests cost it, the ledger's batch
// writes and the exporter's POSTs (off the request path) included wherever in the round they fell.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { ledgerDriverLimitMs, williamsDesign, type DriverRound, type LedgerDriverResult, type LedgerDriverSpec } from '../ledger-driver.js';
import type { StoreCostResult, StoreCostSpec } from '../ledger-store-cost.js';
import { parseResultLine } from '../load-client.js';
import { scrapeMetrics } from '../metrics-scrape.js';
import type { ReceiverCounts } from '../otlp-receiver.js';
import { BackendWatch, createBenchDatabase, type BenchDatabase } from '../postgres.js';
import { REPO_DIR, parentWatchPreload } from '../preloads.js';
import { runToCompletion, spawnChild } from '../processes.js';
import { spread, type Spread } from '../stats.js';
import { GATEWAY_CPU, LOAD_CPU, startJarvis, startMock, type JarvisFrom, type Running, type RunningJarvis } from '../targets.js';
import type { ScenarioContext } from './stage.js';

export const LEDGER_CONFIGS = ['off', 'embedded', 'postgres', 'traced', 'again', 'before'] as const;
export type LedgerConfig = (typeof LEDGER_CONFIGS)[number];

export const LEDGER_CONFIG_INFO: Record<LedgerConfig, { tag: string; label: string }> = {
  off: { tag: '(a)', label: 'ledger off, tracing off (`JARVIS_LEDGER=0`)' },
  embedded: { tag: '(b)', label: 'ledger embedded, tracing off (the default)' },
  postgres: { tag: '(c)', label: 'ledger on PostgreSQL, tracing off' },
  traced: { tag: '(d)', label: 'ledger embedded, tracing on (OTLP/HTTP)' },
  again: { tag: "(a')", label: 'a second Jarvis like (a): the noise band' },
  before: { tag: '(e)', label: 'the build before the change' },
};

export interface LedgerParams {
  /** The configurations measured (`before` joins them with --ledger-before). */
  configs: LedgerConfig[];
  /** Closed-loop streams of every slice (one connection each), answers of `tokens` tokens `delayMs` apart. */
  streams: number;
  tokens: number;
  delayMs: number;
  /** Each configuration's closed loop before anything is measured. */
  warmupMs: number;
  /** All idle after the warm-up: each Jarvis's idle CPU a second. */
  idleMs: number;
  /**
   * Rounds = roundsPerRun × --runs. A round is one Williams design of cycles (as many cycles as configurations, twice
   * as many for an odd number), a cycle a `sliceMs` slice per configuration.
   */
  roundsPerRun: number;
  sliceMs: number;
  /** JARVIS_LEDGER_FLUSH_MS for every Jarvis (null: Jarvis's default, 1000 ms); the traced one's OTEL_BSP_SCHEDULE_DELAY as long. */
  flushMs: number | null;
  /** After the warm-up, and at the end of the last round: longer than a flush interval, so the last batch is in it. */
  settleMs: number;
  /** Lines written straight to each store at the end (bench/ledger-store-cost.ts); 0: not measured. */
  storeLines: number;
}

export interface LedgerResult extends LedgerParams {
  /** The configurations that ran (a configuration that could not start is in `skipped`). */
  measured: LedgerConfig[];
  skipped: Partial<Record<LedgerConfig, string>>;
  /** The build measured as `before`: the ref asked for and its commit. */
  before?: { ref: string; commit: string };
  /** Cycles a round: the length of the measured configurations' Williams design. */
  cyclesPerRound?: number;
  driver?: LedgerDriverResult;
  driverError?: string;
  /** Ledger lines each configuration wrote over the whole run (jarvis_ledger_lines_written_total), warm-up included. */
  linesWritten: Partial<Record<LedgerConfig, number>>;
  /** The traced Jarvis over the whole run, counted after its shutdown exported the last spans. */
  traces?: { spans: number; posts: number; bytes: number; byKind: Record<string, number>; refused: number };
  store?: StoreCostResult;
  storeError?: string;
}

export interface LedgerOptions {
  runs: number;
  jarvisFrom: JarvisFrom;
  jarvisNodeArgs: string[];
  streamTimeoutMs: number;
  /** A git ref whose build is measured as `before`. */
  before?: string | undefined;
  log(msg: string): void;
}

const LINES_WRITTEN = 'jarvis_ledger_lines_written_total';
const STORE_UP = 'jarvis_ledger_store_up';

const message = (err: unknown) => (err instanceof Error ? err.message : String(err));

export function runLedgerScenario(ctx: ScenarioContext): Promise<LedgerResult> {
  const o = ctx.opts;
  return measureLedger(o.params.ledger, {
    runs: o.runs,
    jarvisFrom: o.jarvisFrom,
    jarvisNodeArgs: o.jarvisNodeArgs ?? [],
    streamTimeoutMs: o.params.streamTimeoutMs,
    before: o.ledgerBefore,
    log: ctx.log,
  });
}

/** The trace receiver as its own process on the load CPU. */
async function startReceiver(): Promise<Running & { counts(): Promise<ReceiverCounts> }> {
  const child = spawnChild('otlp-receiver', process.execPath, ['--import', 'tsx', '--import', parentWatchPreload(), 'bench/otlp-receiver.ts'], { cpu: LOAD_CPU, cwd: REPO_DIR, stdout: 'lines' });
  const m = await child.waitForLine(/^OTLP_RECEIVER_READY (http:\/\/127\.0\.0\.1:(\d+))$/, 30_000);
  const origin = m[1]!;
  return {
    child,
    origin,
    port: Number(m[2]),
    async counts() {
      const res = await request(`${origin}/bench/spans`, { signal: AbortSignal.timeout(5000) });
      return (await res.body.json()) as ReceiverCounts;
    },
  };
}

/**
 * The build of `ref` in a directory of its own: `git archive` of the commit (the checkout is not touched), this
 * checkout's node_modules linked in, `tsc -p tsconfig.build.json`.
 */
async function buildRef(ref: string, log: (msg: string) => void): Promise<{ dir: string; commit: string }> {
  const commit = execFileSync('git', ['rev-parse', '--short', `${ref}^{commit}`], { cwd: REPO_DIR, encoding: 'utf8' }).trim();
  const dir = mkdtempSync(join(tmpdir(), `jarvis-bench-before-${commit}-`));
  try {
    log(`  building ${ref} (${commit}) in ${dir}`);
    const unpacked = await runToCompletion('sh', ['-c', 'git archive "$1" | tar -x -C "$2"', 'sh', commit, dir], { cwd: REPO_DIR, timeoutMs: 60_000 });
    if (unpacked.code !== 0) throw new Error(`git archive ${commit} failed (${unpacked.code}): ${unpacked.output.slice(-500)}`);
    symlinkSync(join(REPO_DIR, 'node_modules'), join(dir, 'node_modules'));
    const built = await runToCompletion(process.execPath, [join(REPO_DIR, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'], { cwd: dir, timeoutMs: 180_000 });
    if (built.code !== 0) throw new Error(`building ${commit} failed (${built.code}): ${built.output.slice(-1500)}`);
    return { dir, commit };
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

/** Polls /metrics until the ledger's store takes writes (it opens in the background). */
async function waitForStore(jarvis: RunningJarvis, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const m = await scrapeMetrics(jarvis.metricsUrl, [STORE_UP]);
    if (m[STORE_UP] === 1) return;
    await sleep(100);
  }
  throw new Error(`the ledger's store did not open within ${timeoutMs} ms`);
}

/** The driver as its own process on the load CPU; its result line. */
async function runDriver(spec: LedgerDriverSpec): Promise<LedgerDriverResult> {
  const child = spawnChild('ledger-driver', process.execPath, ['--import', 'tsx', 'bench/ledger-driver.ts', JSON.stringify(spec), '--watch-stdin'], { cpu: LOAD_CPU, cwd: REPO_DIR, stdout: 'lines' });
  let result: LedgerDriverResult | undefined;
  child.onLine((line) => {
    result = parseResultLine<LedgerDriverResult>(line) ?? result;
  });
  // The driver bounds itself; this is the backstop if it hangs anyway.
  const timer = setTimeout(() => void child.stop(1000), ledgerDriverLimitMs(spec) + 30_000);
  const code = await child.exited;
  clearTimeout(timer);
  if (!result) throw new Error(`ledger driver failed (exit ${code}): ${child.stderrTail().slice(-1200).trim()}`);
  return result;
}

/** The store write cost (bench/ledger-store-cost.ts) as its own process, pinned as Jarvis is. */
async function runStoreCost(spec: StoreCostSpec): Promise<StoreCostResult> {
  const child = spawnChild('ledger-store-cost', process.execPath, ['--import', 'tsx', 'bench/ledger-store-cost.ts', JSON.stringify(spec), '--watch-stdin'], { cpu: GATEWAY_CPU, cwd: REPO_DIR, stdout: 'lines' });
  let result: StoreCostResult | undefined;
  child.onLine((line) => {
    result = parseResultLine<StoreCostResult>(line) ?? result;
  });
  const timer = setTimeout(() => void child.stop(1000), 150_000);
  const code = await child.exited;
  clearTimeout(timer);
  if (!result) throw new Error(`ledger-store-cost failed (exit ${code}): ${child.stderrTail().slice(-1200).trim()}`);
  return result;
}

/** Starts the mock, the receiver, the database and one Jarvis per configuration; measures; stops them all. */
export async function measureLedger(p: LedgerParams, o: LedgerOptions): Promise<LedgerResult> {
  const configs = [...p.configs.filter((c) => c !== 'before'), ...(o.before ? (['before'] as const) : [])];
  const dir = mkdtempSync(join(tmpdir(), 'jarvis-bench-ledger-'));
  const stops: (() => Promise<unknown>)[] = [];
  const out: LedgerResult = { ...p, configs, measured: [], skipped: {}, linesWritten: {} };
  let db: BenchDatabase | undefined;
  let watch: BackendWatch | undefined;
  try {
    const mock = await startMock({ tokens: p.tokens, delayMs: p.delayMs, ttftMs: 0 });
    stops.push(() => mock.child.stop());
    const receiver = configs.includes('traced') ? await startReceiver() : undefined;
    if (receiver) stops.push(() => receiver.child.stop());
    if (configs.includes('postgres')) {
      try {
        db = await createBenchDatabase();
        watch = await BackendWatch.open(db.name);
      } catch (err) {
        out.skipped.postgres = `no PostgreSQL: ${message(err)}`;
        o.log(`  ledger: ${out.skipped.postgres}`);
      }
    }
    let beforeDir: string | undefined;
    if (o.before) {
      try {
        const built = await buildRef(o.before, o.log);
        beforeDir = built.dir;
        out.before = { ref: o.before, commit: built.commit };
        stops.push(async () => rmSync(built.dir, { recursive: true, force: true }));
      } catch (err) {
        out.skipped.before = message(err);
        o.log(`  ledger: the build before could not be made: ${out.skipped.before}`);
      }
    }
    // Every Jarvis gets blank OTEL_* endpoints unless traced (the bench's own environment must not turn tracing on).
    const flush: Record<string, string> = p.flushMs === null ? {} : { JARVIS_LEDGER_FLUSH_MS: String(p.flushMs) };
    const noTracing = { OTEL_EXPORTER_OTLP_ENDPOINT: '', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: '' };
    const envOf = (c: LedgerConfig): Record<string, string> | undefined => {
      const data = join(dir, c);
      switch (c) {
        case 'off':
        case 'again':
          return { ...noTracing, JARVIS_LEDGER: '0', JARVIS_DATA_DIR: data };
        case 'embedded':
          return { ...noTracing, ...flush, JARVIS_DATA_DIR: data };
        case 'postgres':
          return db ? { ...noTracing, ...flush, JARVIS_DATA_DIR: data, JARVIS_DATABASE_URL: db.url } : undefined;
        case 'traced':
          return {
            ...flush,
            JARVIS_DATA_DIR: data,
            OTEL_EXPORTER_OTLP_ENDPOINT: receiver!.origin,
            OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: '',
            OTEL_SERVICE_NAME: 'jarvis-bench',
            // What the receiver reads, every span sampled, whatever the bench's own environment says.
            OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/json',
            OTEL_TRACES_SAMPLER: 'parentbased_always_on',
            OTEL_TRACES_EXPORTER: 'otlp',
            OTEL_SDK_DISABLED: '',
            // The exporter's timer as long as the ledger's, so the last round's last spans leave within its settle.
            OTEL_BSP_SCHEDULE_DELAY: String(p.flushMs ?? 1000),
          };
        case 'before':
          // The old build knows none of the new settings; its environment is what it always was.
          return beforeDir ? { ...noTracing } : undefined;
      }
    };
    // All started together (each on the gateway CPU), each configuration's ledger store open before any load.
    const jarvis = new Map<LedgerConfig, RunningJarvis>();
    const started = await Promise.all(
      configs.map(async (c) => {
        if (out.skipped[c]) return undefined;
        const env = envOf(c);
        if (!env) return undefined;
        mkdirSync(join(dir, c), { recursive: true });
        try {
          const j = await startJarvis({
            upstreamBaseUrl: mock.baseUrl,
            from: c === 'before' ? 'dist' : o.jarvisFrom,
            env,
            nodeArgs: o.jarvisNodeArgs,
            ...(c === 'before' ? { cwd: beforeDir } : {}),
          });
          stops.push(() => j.stop());
          if (c === 'embedded' || c === 'postgres' || c === 'traced') await waitForStore(j, 15_000);
          return [c, j] as const;
        } catch (err) {
          out.skipped[c] = message(err);
          o.log(`  ledger: ${LEDGER_CONFIG_INFO[c].tag} did not start: ${out.skipped[c]}`);
          return undefined;
        }
      }),
    );
    for (const x of started) {
      if (!x) continue;
      jarvis.set(x[0], x[1]);
      out.measured.push(x[0]);
    }
    const measured = out.measured;
    const ledgerOn = (c: LedgerConfig) => c === 'embedded' || c === 'postgres' || c === 'traced';
    const lines0 = new Map<LedgerConfig, number>();
    for (const c of measured) if (ledgerOn(c)) lines0.set(c, (await scrapeMetrics(jarvis.get(c)!.metricsUrl, [LINES_WRITTEN]))[LINES_WRITTEN] ?? NaN);
    const rounds = p.roundsPerRun * o.runs;
    const cyclesPerRound = williamsDesign(measured.length).length;
    out.cyclesPerRound = cyclesPerRound;
    o.log(`  ${measured.map((c) => LEDGER_CONFIG_INFO[c].tag).join(', ')}: ${p.warmupMs / 1000} s of warm-up each, then ${rounds} rounds of ${cyclesPerRound} cycles of ${p.sliceMs} ms slices, ${p.streams} streams of ${p.tokens} tokens`);
    try {
      out.driver = await runDriver({
        targets: measured.map((c) => ({ name: c, origin: jarvis.get(c)!.origin, pid: jarvis.get(c)!.child.pid })),
        streams: p.streams,
        tokens: p.tokens,
        warmupMs: p.warmupMs,
        idleMs: p.idleMs,
        rounds,
        cyclesPerRound,
        sliceMs: p.sliceMs,
        settleMs: p.settleMs,
        streamTimeoutMs: o.streamTimeoutMs,
        benchPids: [process.pid, mock.child.pid, ...(receiver ? [receiver.child.pid] : [])],
        serverPids: watch ? await watch.pids() : [],
      });
      for (const e of out.driver.warmupErrors) o.log(`  warm-up: ${e}`);
    } catch (err) {
      out.driverError = message(err);
      o.log(`  ${out.driverError}`);
    }
    for (const c of measured) {
      if (!ledgerOn(c)) continue;
      // Once every request's line is written (the settle is meant to see to that; a slow machine gets 5 s more).
      const served = out.driver?.totalRequests[c] ?? 0;
      let m = await scrapeMetrics(jarvis.get(c)!.metricsUrl, [LINES_WRITTEN]);
      for (const deadline = Date.now() + 5000; !((m[LINES_WRITTEN] ?? NaN) - lines0.get(c)! >= served) && Date.now() < deadline; ) {
        await sleep(100);
        m = await scrapeMetrics(jarvis.get(c)!.metricsUrl, [LINES_WRITTEN]);
      }
      out.linesWritten[c] = (m[LINES_WRITTEN] ?? NaN) - lines0.get(c)!;
    }
    // The traced Jarvis's shutdown exports what it still holds: then the receiver has every span it sent.
    const traced = jarvis.get('traced');
    if (traced && receiver) {
      await traced.stop();
      const counts = await receiver.counts();
      out.traces = { spans: counts.spans, posts: counts.posts, bytes: counts.bytes, byKind: counts.byKind, refused: counts.refused };
    }
    // Every Jarvis stopped (idle ones would share the CPU), then each store alone.
    for (const j of jarvis.values()) await j.stop();
    if (p.storeLines > 0) {
      o.log(`  store write cost: ${p.storeLines} lines to each store in batches of 1000`);
      try {
        out.store = await runStoreCost({ lines: p.storeLines, batch: 1000, from: o.jarvisFrom, postgres: db ? { url: db.url, database: db.name } : undefined });
        for (const e of out.store.errors) o.log(`  store write cost: ${e}`);
      } catch (err) {
        out.storeError = message(err);
        o.log(`  store write cost failed: ${out.storeError}`);
      }
    }
    logSummary(out, o.log);
    return out;
  } finally {
    // Jarvis first, then the receiver and the mock, then the database.
    for (const stop of stops.reverse()) await stop().catch(() => {});
    await watch?.close();
    await db?.drop().catch((err: unknown) => o.log(`  could not drop ${db!.name}: ${message(err)}`));
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---- Figures ----

/** One configuration's figures in one round. */
export interface RoundFigures {
  requestsPerSec: number;
  tokensPerSec: number;
  /** Jarvis's CPU over the round less its idle outside its slices, per request and per token the client received. */
  cpuUsPerRequest: number;
  cpuUsPerToken: number;
  /** That CPU over the configuration's slices' wall time: near 1, its core was the limit while it was asked. */
  busy: number;
  ttftP50: number;
  ttftP99: number;
  /** The PostgreSQL backends' CPU over the round per request of (c). */
  serverCpuUsPerRequest: number;
}

export function roundFigures(round: DriverRound, c: LedgerConfig): RoundFigures | undefined {
  const x = round.targets[c];
  if (!x || x.requests === 0) return undefined;
  return {
    requestsPerSec: x.requests / (x.sliceMs / 1000),
    tokensPerSec: x.tokens / (x.sliceMs / 1000),
    cpuUsPerRequest: (x.netCpuSec * 1e6) / x.requests,
    cpuUsPerToken: (x.netCpuSec * 1e6) / x.tokens,
    busy: x.netCpuSec / (x.sliceMs / 1000),
    ttftP50: x.ttft.p50,
    ttftP99: x.ttft.p99,
    serverCpuUsPerRequest: c === 'postgres' ? (round.serverCpuSec * 1e6) / x.requests : NaN,
  };
}

export type FigureName = keyof RoundFigures;
const FIGURES: FigureName[] = ['requestsPerSec', 'tokensPerSec', 'cpuUsPerRequest', 'cpuUsPerToken', 'busy', 'ttftP50', 'ttftP99', 'serverCpuUsPerRequest'];

/** A difference between two configurations, taken within each round, then summarised across rounds. */
export interface Difference {
  spread: Spread;
  /** Rounds where the difference was above 0 (above 1 for a ratio), and rounds with both measured. */
  above: number;
  rounds: number;
}

export interface Differences {
  cpuUsPerRequest: Difference;
  cpuUsPerToken: Difference;
  ttftP50: Difference;
  /** Requests a second, as a ratio. */
  throughput: Difference;
}

export interface ConfigFigures {
  figures: Record<FigureName, Spread>;
  requests: number;
  failed: number;
  short: number;
  errors: string[];
  idleCpuMsPerSec: number;
  /** Over the whole run, warm-up included: ledger lines written and spans received per request served. */
  linesPerRequest: number;
  spansPerRequest: number;
}

export interface LedgerFigures {
  per: Partial<Record<LedgerConfig, ConfigFigures>>;
  /** Each configuration against (a), per round. */
  vsOff: Partial<Record<LedgerConfig, Differences>>;
  /** (d) against (b): what turning tracing on adds to the default, per round. */
  tracingOn?: Differences | undefined;
  /** (a) against (e): the change with both off, against the build before it (when measured). */
  beforeVsOff?: Differences | undefined;
  /** The machine over every round: cores busy, of them with other processes' work, and stolen by the hypervisor. */
  host: { otherCores: Spread; stealCores: Spread; busyCores: Spread };
}

function difference(rounds: DriverRound[], a: LedgerConfig, b: LedgerConfig, f: (x: RoundFigures, y: RoundFigures) => number, zero = 0): Difference {
  const values: number[] = [];
  for (const round of rounds) {
    const fx = roundFigures(round, a);
    const fy = roundFigures(round, b);
    if (fx && fy) values.push(f(fx, fy));
  }
  const ok = values.filter(Number.isFinite);
  return { spread: spread(ok), above: ok.filter((v) => v > zero).length, rounds: ok.length };
}

function differences(rounds: DriverRound[], a: LedgerConfig, b: LedgerConfig): Differences {
  return {
    cpuUsPerRequest: difference(rounds, a, b, (x, y) => x.cpuUsPerRequest - y.cpuUsPerRequest),
    cpuUsPerToken: difference(rounds, a, b, (x, y) => x.cpuUsPerToken - y.cpuUsPerToken),
    ttftP50: difference(rounds, a, b, (x, y) => x.ttftP50 - y.ttftP50),
    throughput: difference(rounds, a, b, (x, y) => x.requestsPerSec / y.requestsPerSec, 1),
  };
}

export function ledgerFigures(r: LedgerResult): LedgerFigures {
  const rounds = r.driver?.rounds ?? [];
  const per: LedgerFigures['per'] = {};
  for (const c of r.measured) {
    const figs = rounds.map((round) => roundFigures(round, c)).filter((f): f is RoundFigures => f !== undefined);
    const xs = rounds.flatMap((round) => (round.targets[c] ? [round.targets[c]] : []));
    const served = r.driver?.totalRequests[c] ?? NaN;
    per[c] = {
      figures: Object.fromEntries(FIGURES.map((n) => [n, spread(figs.map((f) => f[n]))])) as Record<FigureName, Spread>,
      requests: xs.reduce((s, x) => s + x.requests, 0),
      failed: xs.reduce((s, x) => s + x.failed, 0),
      short: xs.reduce((s, x) => s + x.short, 0),
      errors: [...new Set(xs.flatMap((x) => Object.keys(x.errors)))],
      idleCpuMsPerSec: (r.driver?.idle[c] ?? NaN) * 1000,
      linesPerRequest: (r.linesWritten[c] ?? NaN) / served,
      spansPerRequest: c === 'traced' && r.traces ? r.traces.spans / served : NaN,
    };
  }
  const vsOff: LedgerFigures['vsOff'] = {};
  if (r.measured.includes('off')) for (const c of r.measured) if (c !== 'off') vsOff[c] = differences(rounds, c, 'off');
  const tracingOn = r.measured.includes('traced') && r.measured.includes('embedded') ? differences(rounds, 'traced', 'embedded') : undefined;
  const beforeVsOff = r.measured.includes('before') && r.measured.includes('off') ? differences(rounds, 'off', 'before') : undefined;
  const hosts = rounds.map((round) => round.host);
  const host = { otherCores: spread(hosts.map((h) => h.otherCores)), stealCores: spread(hosts.map((h) => h.stealCores)), busyCores: spread(hosts.map((h) => h.busyCores)) };
  return { per, vsOff, tracingOn, beforeVsOff, host };
}

/**
 * Whether a difference shows: every round on the same side of 0 (a sign test: with 6 rounds, by chance in 2 runs of
 * 64), and, when the noise band was measured ((a') − (a): two identical processes), its median further from 0 than
 * any round of the band (either way: which of two identical processes comes out cheaper is chance).
 */
export function measurable(d: Difference, band?: Difference): boolean {
  if (d.rounds < 3) return false;
  if (d.above !== d.rounds && d.above !== 0) return false;
  if (!band || band.rounds === 0) return true;
  return Math.abs(d.spread.median) > noiseBand(band);
}

/** The noise band's half-width: the largest difference, either way, between two identical processes in a round. */
export function noiseBand(band: Difference): number {
  return Math.max(Math.abs(band.spread.min), Math.abs(band.spread.max));
}

function logSummary(r: LedgerResult, log: (msg: string) => void): void {
  const f = ledgerFigures(r);
  const n = (s: Spread | undefined, digits = 1) => (s && Number.isFinite(s.median) ? s.median.toFixed(digits) : '–');
  for (const c of r.measured) {
    const x = f.per[c]!.figures;
    const d = f.vsOff[c];
    log(
      `  ${LEDGER_CONFIG_INFO[c].tag} ${c}: ${n(x.requestsPerSec, 0)} requests/s, ${n(x.cpuUsPerRequest)} µs CPU a request, ${n(x.cpuUsPerToken, 2)} µs a token, TTFT p50 ${n(x.ttftP50, 2)} ms` +
        (d ? `; vs (a): ${d.cpuUsPerRequest.spread.median >= 0 ? '+' : ''}${n(d.cpuUsPerRequest.spread)} µs a request (${d.cpuUsPerRequest.above}/${d.cpuUsPerRequest.rounds} rounds above)` : ''),
    );
  }
  if (r.traces) log(`  traces: ${r.traces.spans} spans in ${r.traces.posts} exports for ${r.driver?.totalRequests.traced ?? '?'} requests to the traced Jarvis`);
  for (const s of r.store?.stores ?? []) log(`  store ${s.store}: ${Math.round(s.linesPerSec)} lines/s, ${s.cpuUsPerLine.toFixed(1)} µs CPU a line${Number.isFinite(s.serverCpuUsPerLine) ? ` + ${s.serverCpuUsPerLine.toFixed(1)} µs in the server` : ''}`);
}
