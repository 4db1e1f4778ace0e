// Scenario 11's load, run as its own process on the load CPU:
//   node --import tsx bench/ledger-driver.ts '<LedgerDriverSpec JSON>' [--watch-stdin]
// One pool of `streams` connections to each Jarvis under test, kept open for the whole run. It warms the Jarvis in
// cycles of slices, lets them all idle for `idleMs` (each one's idle CPU a second), then runs rounds of cycles: in a
// cycle each Jarvis gets a slice of `sliceMs` of `streams` closed-loop streams, one after the other, in an order that
// changes from cycle to cycle (a Williams design: each target follows every other equally often), so whatever else
// the machine does in a second, and whatever a target leaves behind for the next slice, falls on every configuration
// alike. Every Jarvis's CPU (all threads, /proc schedstat) is read at each round's boundaries: a Jarvis's CPU over
// the round, less its idle rate over the time it was not being asked, is what its slices' requests cost it, including
// the work it does for them afterwards, off the request path (the ledger's batch every flush interval, the span
// exporter's POSTs), wherever in the round that fell. The last round ends `settleMs` after its last slice. Prints one
// line `BENCH_RESULT <LedgerDriverResult JSON>`.
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Pool } from 'undici';
import { hostLoad, hostSample, type HostLoad } from './host-load.js';
import { driverMain } from './load-client.js';
import { cpuSeconds } from './proc-stats.js';
import type { Dist } from './stats.js';
import { chatBody, closedLoop, runChatStream, streamPool, type HttpTarget } from './stream-client.js';
import { countStream, newStreamTally, warmupSummary, type StreamTally } from './stream-tally.js';

export interface DriverTarget {
  name: string;
  origin: string;
  /** The Jarvis process, for its CPU. */
  pid: number;
}

export interface LedgerDriverSpec {
  targets: DriverTarget[];
  /** Concurrent streams of a slice (one connection each); every answer is `tokens` tokens. */
  streams: number;
  tokens: number;
  /** Each target's closed loop before anything is measured, in cycles of slices as the rounds are. */
  warmupMs: number;
  /** All idle, after the warm-up's settle: each target's idle CPU a second. */
  idleMs: number;
  rounds: number;
  cyclesPerRound: number;
  sliceMs: number;
  /** After the warm-up, and after the last round's last slice (inside that round). */
  settleMs: number;
  streamTimeoutMs: number;
  /** Other processes of the bench (the upstream, the receiver, the bench itself): not "other load". */
  benchPids: number[];
  /** PostgreSQL backends serving the ledger's database: their CPU per round. */
  serverPids: number[];
}

export interface DriverTargetRound {
  requests: number;
  ok: number;
  /** Streams with fewer tokens than asked for, and failed ones. */
  short: number;
  failed: number;
  errors: Record<string, number>;
  tokens: number;
  /** The target's slices' wall time in the round, ms. */
  sliceMs: number;
  ttft: Dist;
  /** The target's CPU over the whole round, and less its idle rate over the round's time outside its slices. */
  cpuSec: number;
  netCpuSec: number;
}

export interface DriverRound {
  spanMs: number;
  targets: Record<string, DriverTargetRound>;
  serverCpuSec: number;
  host: HostLoad;
}

export interface LedgerDriverResult {
  /** Each target's CPU seconds a second while all idled. */
  idle: Record<string, number>;
  /** Requests each target served in the warm-up (with one short stream per connection before it). */
  warmupRequests: Record<string, number>;
  warmupErrors: string[];
  rounds: DriverRound[];
  /** Requests each target served over the whole run, warm-up included. */
  totalRequests: Record<string, number>;
}

/**
 * A Williams design for n targets: orders (one a cycle) in which every target comes right after every other one
 * equally often (once each for an even n, in n orders; twice for an odd n, in 2n). What a target leaves behind for
 * the next slice (a batch of ledger lines written a moment later, spans exported) then falls on every other target
 * alike: a plain rotation would always put the same target after it.
 */
export function williamsDesign(n: number): number[][] {
  const first: number[] = [];
  for (let j = 0, lo = 0, hi = n - 1; j < n; j++) first.push(j === 0 ? 0 : j % 2 === 1 ? ++lo : hi--);
  const rows = Array.from({ length: n }, (_, r) => first.map((x) => (x + r) % n));
  return n % 2 === 0 ? rows : [...rows, ...rows.map((row) => [...row].reverse())];
}

/** Cycle k's order: the k-th order of the targets' Williams design, round and round. */
export function cycleOrder<T>(items: readonly T[], k: number): T[] {
  const design = williamsDesign(items.length);
  return design[k % design.length]!.map((i) => items[i]!);
}

interface Tally extends StreamTally {
  sliceMs: number;
}

const newTally = (): Tally => ({ ...newStreamTally(), sliceMs: 0 });

export async function runLedgerDriver(spec: LedgerDriverSpec): Promise<LedgerDriverResult> {
  const body = chatBody();
  const pools = new Map<string, Pool>(spec.targets.map((t) => [t.name, streamPool(t.origin, spec.streams + 4)]));
  const http = (t: DriverTarget): HttpTarget => ({ origin: t.origin, path: '/v1/chat/completions', headers: {} });
  const total: Record<string, number> = Object.fromEntries(spec.targets.map((t) => [t.name, 0]));
  const ask = async (t: DriverTarget, tally: Tally | undefined, askBody = body) => {
    total[t.name]!++;
    const r = await runChatStream(pools.get(t.name)!, http(t), askBody, { timeoutMs: spec.streamTimeoutMs });
    if (tally) await countStream(tally, r, spec.tokens);
    return r;
  };
  try {
    // Every connection opened first (one short stream each); then the warm-up in cycles of slices like the rounds',
    // so each target ends its warm-up at about the same time (one warmed first and then left idle while the others
    // warm up came out a few per cent costlier than its twin).
    const short = chatBody({ max_tokens: 1 });
    for (const t of spec.targets) await Promise.all(Array.from({ length: spec.streams }, () => ask(t, undefined, short)));
    const warm = new Map(spec.targets.map((t) => [t.name, newTally()]));
    const warmupCycles = Math.max(1, Math.ceil(spec.warmupMs / spec.sliceMs));
    for (let k = 0; k < warmupCycles; k++) {
      for (const t of cycleOrder(spec.targets, k)) await closedLoop(spec.streams, spec.sliceMs, () => ask(t, warm.get(t.name)));
    }
    const { warmupRequests, warmupErrors } = warmupSummary(warm);
    await sleep(spec.settleMs);
    const idle0 = spec.targets.map((t) => cpuSeconds(t.pid));
    const idleStart = performance.now();
    await sleep(spec.idleMs);
    const idleSec = (performance.now() - idleStart) / 1000;
    const idle = Object.fromEntries(spec.targets.map((t, i) => [t.name, (cpuSeconds(t.pid) - idle0[i]!) / idleSec]));

    const watched = [...spec.targets.map((t) => t.pid), ...spec.benchPids, ...spec.serverPids];
    const rounds: DriverRound[] = [];
    let cycle = 0;
    for (let r = 0; r < spec.rounds; r++) {
      const tallies = new Map(spec.targets.map((t) => [t.name, newTally()]));
      const cpu0 = spec.targets.map((t) => cpuSeconds(t.pid));
      const server0 = spec.serverPids.map(cpuSeconds);
      const host0 = hostSample(watched);
      const start = performance.now();
      for (let k = 0; k < spec.cyclesPerRound; k++, cycle++) {
        for (const t of cycleOrder(spec.targets, cycle)) {
          const tally = tallies.get(t.name)!;
          const s = performance.now();
          await closedLoop(spec.streams, spec.sliceMs, () => ask(t, tally));
          tally.sliceMs += performance.now() - s;
        }
      }
      if (r === spec.rounds - 1) await sleep(spec.settleMs);
      const spanMs = performance.now() - start;
      const host1 = hostSample(watched);
      const cpu1 = spec.targets.map((t) => cpuSeconds(t.pid));
      const server1 = spec.serverPids.map(cpuSeconds);
      const targets: Record<string, DriverTargetRound> = {};
      spec.targets.forEach((t, i) => {
        const x = tallies.get(t.name)!;
        const cpuSec = cpu1[i]! - cpu0[i]!;
        const idleFor = (spanMs - x.sliceMs) / 1000;
        targets[t.name] = { requests: x.requests, ok: x.ok, short: x.short, failed: x.failed, errors: x.errors, tokens: x.tokens, sliceMs: x.sliceMs, ttft: x.ttft.dist(), cpuSec, netCpuSec: cpuSec - idle[t.name]! * idleFor };
      });
      const serverCpuSec = server1.reduce((sum, v, i) => sum + (Number.isFinite(v) && Number.isFinite(server0[i]!) ? v - server0[i]! : 0), 0);
      rounds.push({ spanMs, targets, serverCpuSec, host: hostLoad(host0, host1) });
    }
    return { idle, warmupRequests, warmupErrors, rounds, totalRequests: total };
  } finally {
    await Promise.all([...pools.values()].map((p) => p.destroy().catch(() => {})));
  }
}

/** The longest a run can take (its loops are bounded by time, each stream by its own limit), for the backstops. */
export function ledgerDriverLimitMs(spec: LedgerDriverSpec): number {
  const n = spec.targets.length;
  return n * spec.warmupMs + spec.idleMs + spec.rounds * spec.cyclesPerRound * n * spec.sliceMs + 2 * spec.settleMs + 5 * spec.streamTimeoutMs + 60_000;
}

driverMain<LedgerDriverSpec>('ledger-driver', import.meta.url, ledgerDriverLimitMs, runLedgerDriver);
