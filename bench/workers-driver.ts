// Scenario 12's load, run as its own process on the load CPU:
//   node --import tsx bench/workers-driver.ts '<WorkersDriverSpec JSON>' [--watch-stdin]
// For each Jarvis under test (one process, or a node:cluster primary and its workers) one pool of connections per
// concurrency level, all opened before anything is measured and kept open for the run (a keep-alive connection stays
// on the worker that accepted it). It warms each Jarvis in alternating slices on its largest pool, lets them all idle
// for `idleMs` (each one's idle CPU a second), then runs rounds: in a round every level gets one slice of `sliceMs`
// of closed-loop streams per Jarvis, the two back to back in an order that alternates from round to round (and from
// level to level), so the machine's drift falls on both alike. A slice's CPU is the sum over the Jarvis's processes
// (the primary and every worker, all threads, /proc schedstat) from the slice's start to `settleMs` after its last
// stream, less its idle rate over that settle. Also read at each slice's boundaries: this driver's own CPU and the
// mock's (the load side), the Redis server's, what else the machine did, and the established connections each
// process of the Jarvis holds on its port. Prints one line `BENCH_RESULT <WorkersDriverResult JSON>`.
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Pool } from 'undici';
import { hostLoad, hostSample, type HostLoad } from './host-load.js';
import { cycleOrder } from './ledger-driver.js';
import { driverMain } from './load-client.js';
import { cpuSeconds, processTree } from './proc-stats.js';
import type { Dist } from './stats.js';
import { chatBody, closedLoop, runChatStream, streamPool, type HttpTarget } from './stream-client.js';
import { countStream, newStreamTally, warmupSummary, type StreamTally } from './stream-tally.js';

export interface WorkersDriverTarget {
  name: string;
  origin: string;
  /** The process Jarvis was started as: the primary with JARVIS_WORKERS, else Jarvis itself. */
  pid: number;
}

export interface WorkersDriverSpec {
  targets: WorkersDriverTarget[];
  /** Concurrent streams of a slice (one connection each), one slice per level per target per round. */
  levels: number[];
  /** Every answer is `tokens` tokens (the mock's default). */
  tokens: number;
  /** Each target's closed loop at the largest level before anything is measured, in alternating slices. */
  warmupMs: number;
  /** All idle, after the warm-up's settle: each target's idle CPU a second. */
  idleMs: number;
  rounds: number;
  sliceMs: number;
  /** Quiet time after each slice, inside its CPU window (its last log lines and sockets' ends). */
  settleMs: number;
  streamTimeoutMs: number;
  /** The mock upstream: with this driver, the load side. */
  mockPid: number;
  /** The Redis server both Jarvis use. */
  redisPid: number | undefined;
  /** Other processes of the bench (the bench itself): not "other load". */
  benchPids: number[];
}

export interface ProcessSlice {
  pid: number;
  /** CPU seconds over the slice and its settle (not less idle). */
  cpuSec: number;
  /** Established connections on the target's port this process held at the slice's end. */
  connections: number;
}

export interface WorkersSlice {
  round: number;
  level: number;
  target: string;
  /** 0: first of the slice pair, 1: second. */
  position: number;
  /** From the slice's first request to its last stream's end. */
  wallMs: number;
  requests: number;
  ok: number;
  short: number;
  failed: number;
  errors: Record<string, number>;
  tokens: number;
  ttft: Dist;
  /** The target's processes' CPU over the slice and its settle, less its idle rate over the settle. */
  cpuSec: number;
  /** Each process of the target (the primary first), as it was at the slice's start. */
  processes: ProcessSlice[];
  /** The target's process set changed during the slice (a worker died or was forked): its CPU is not whole. */
  treeChanged: boolean;
  /** This driver's CPU and the mock's over the slice and its settle. */
  driverCpuSec: number;
  mockCpuSec: number;
  redisCpuSec: number;
  host: HostLoad;
}

export interface WorkersDriverResult {
  /** Each target's CPU seconds a second while all idled (every process of it). */
  idle: Record<string, number>;
  /** Each target's processes after the warm-up (the primary first). */
  pids: Record<string, number[]>;
  /**
   * How each level's pool of connections was split between the target's processes when it was opened (the
   * established connections each process gained on the target's port, the primary first): a keep-alive connection
   * stays with the worker that accepted it.
   */
  opened: Record<string, Record<number, number[]>>;
  /** Requests each target served in the warm-up, and its failures. */
  warmupRequests: Record<string, number>;
  warmupErrors: string[];
  slices: WorkersSlice[];
}


/** The socket inodes of the established TCP connections whose local port is `port` (IPv4 and IPv6). */
function establishedInodes(port: number): Set<string> {
  const inodes = new Set<string>();
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode ...
      const f = line.trim().split(/\s+/);
      if (f.length < 10 || f[3] !== '01') continue;
      if (f[1]!.slice(f[1]!.lastIndexOf(':') + 1) === hexPort) inodes.add(f[9]!);
    }
  }
  return inodes;
}

/** How many of `inodes` each process holds open; NaN for a process whose descriptors cannot be read. */
function connectionsOf(pids: number[], inodes: Set<string>): number[] {
  return pids.map((pid) => {
    try {
      let n = 0;
      for (const fd of readdirSync(`/proc/${pid}/fd`)) {
        try {
          const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
          if (m && inodes.has(m[1]!)) n++;
        } catch {
          // closed while reading
        }
      }
      return n;
    } catch {
      return NaN;
    }
  });
}

const treeCpu = (pids: number[]) => pids.map(cpuSeconds);
const sumFinite = (xs: number[]) => xs.reduce((s, x) => s + (Number.isFinite(x) ? x : 0), 0);
const ownCpuSec = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

export async function runWorkersDriver(spec: WorkersDriverSpec): Promise<WorkersDriverResult> {
  const body = chatBody();
  const short = chatBody({ max_tokens: 1 });
  const maxLevel = Math.max(...spec.levels);
  // Exactly one connection per stream of the level (no spares, unlike the load client's pools): a pool cannot grow
  // during the run, so how its connections were split between the workers when it was opened holds for every slice.
  const pools = new Map<string, Map<number, Pool>>(spec.targets.map((t) => [t.name, new Map(spec.levels.map((c) => [c, streamPool(t.origin, c)]))]));
  const http = (t: WorkersDriverTarget): HttpTarget => ({ origin: t.origin, path: '/v1/chat/completions', headers: {} });
  const portOf = (t: WorkersDriverTarget) => Number(new URL(t.origin).port);
  const ask = async (t: WorkersDriverTarget, level: number, tally: StreamTally | undefined, askBody = body) => {
    const r = await runChatStream(pools.get(t.name)!.get(level)!, http(t), askBody, { timeoutMs: spec.streamTimeoutMs });
    if (tally) await countStream(tally, r, spec.tokens);
    return r;
  };
  try {
    // Every connection of every pool opened first (one short stream each, all of a pool at once, so the workers
    // accept them as a client's burst of connections would be accepted).
    const opened: WorkersDriverResult['opened'] = {};
    for (const t of spec.targets) {
      const tree = processTree(t.pid);
      let before = connectionsOf(tree, establishedInodes(portOf(t)));
      opened[t.name] = {};
      for (const c of spec.levels) {
        await Promise.all(Array.from({ length: c }, () => ask(t, c, undefined, short)));
        const after = connectionsOf(tree, establishedInodes(portOf(t)));
        opened[t.name]![c] = after.map((n, i) => n - before[i]!);
        before = after;
      }
    }
    const warm = new Map(spec.targets.map((t) => [t.name, newStreamTally()]));
    const warmupCycles = Math.max(1, Math.ceil(spec.warmupMs / spec.sliceMs));
    for (let k = 0; k < warmupCycles; k++) {
      for (const t of cycleOrder(spec.targets, k)) await closedLoop(maxLevel, spec.sliceMs, () => ask(t, maxLevel, warm.get(t.name)));
    }
    const { warmupRequests, warmupErrors } = warmupSummary(warm);
    await sleep(spec.settleMs);
    const pids = Object.fromEntries(spec.targets.map((t) => [t.name, processTree(t.pid)]));
    const idle0 = spec.targets.map((t) => sumFinite(treeCpu(pids[t.name]!)));
    const idleStart = performance.now();
    await sleep(spec.idleMs);
    const idleSec = (performance.now() - idleStart) / 1000;
    const idle = Object.fromEntries(spec.targets.map((t, i) => [t.name, (sumFinite(treeCpu(pids[t.name]!)) - idle0[i]!) / idleSec]));

    const slices: WorkersSlice[] = [];
    for (let round = 0; round < spec.rounds; round++) {
      for (const [li, level] of spec.levels.entries()) {
        // Two targets: the pair's order flips from round to round, and from level to level within a round.
        for (const [position, t] of cycleOrder(spec.targets, round + li).entries()) {
          const tree0 = processTree(t.pid);
          const watched = [...spec.targets.flatMap((x) => processTree(x.pid)), spec.mockPid, ...(spec.redisPid ? [spec.redisPid] : []), ...spec.benchPids];
          const host0 = hostSample(watched);
          const cpu0 = treeCpu(tree0);
          const driver0 = ownCpuSec();
          const mock0 = cpuSeconds(spec.mockPid);
          const redis0 = spec.redisPid ? cpuSeconds(spec.redisPid) : NaN;
          const tally = newStreamTally();
          const start = performance.now();
          await closedLoop(level, spec.sliceMs, () => ask(t, level, tally));
          const wallMs = performance.now() - start;
          await sleep(spec.settleMs);
          const settleSec = (performance.now() - start - wallMs) / 1000;
          const cpu1 = treeCpu(tree0);
          const driver1 = ownCpuSec();
          const mock1 = cpuSeconds(spec.mockPid);
          const redis1 = spec.redisPid ? cpuSeconds(spec.redisPid) : NaN;
          const host1 = hostSample(watched);
          const tree1 = processTree(t.pid);
          const connections = connectionsOf(tree0, establishedInodes(portOf(t)));
          const processes = tree0.map((pid, i) => ({ pid, cpuSec: cpu1[i]! - cpu0[i]!, connections: connections[i]! }));
          slices.push({
            round,
            level,
            target: t.name,
            position,
            wallMs,
            requests: tally.requests,
            ok: tally.ok,
            short: tally.short,
            failed: tally.failed,
            errors: tally.errors,
            tokens: tally.tokens,
            ttft: tally.ttft.dist(),
            cpuSec: sumFinite(processes.map((p) => p.cpuSec)) - idle[t.name]! * settleSec,
            processes,
            treeChanged: tree1.length !== tree0.length || tree1.some((p) => !tree0.includes(p)) || processes.some((p) => !Number.isFinite(p.cpuSec)),
            driverCpuSec: driver1 - driver0,
            mockCpuSec: mock1 - mock0,
            redisCpuSec: redis1 - redis0,
            host: hostLoad(host0, host1),
          });
        }
      }
    }
    return { idle, pids, opened, warmupRequests, warmupErrors, slices };
  } finally {
    await Promise.all([...pools.values()].flatMap((m) => [...m.values()]).map((p) => p.destroy().catch(() => {})));
  }
}

/** The longest a run can take (its loops are bounded by time, each stream by its own limit), for the backstops. */
export function workersDriverLimitMs(spec: WorkersDriverSpec): number {
  const n = spec.targets.length;
  const slices = spec.rounds * spec.levels.length * n;
  return n * spec.warmupMs + spec.idleMs + slices * (spec.sliceMs + spec.settleMs) + 5 * spec.streamTimeoutMs + 60_000;
}

driverMain<WorkersDriverSpec>('workers-driver', import.meta.url, workersDriverLimitMs, runWorkersDriver);
