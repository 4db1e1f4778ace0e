// What else the machine did during a measured window: its busy CPU from /proc/stat (every process, and the time a
// hypervisor stole from this VM), less what the bench's own processes used, is what other processes used. Linux
// only; NaN elsewhere.
import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { cpuSeconds } from './proc-stats.js';

let ticks: number | undefined;
function clockTicks(): number {
  if (ticks === undefined) {
    try {
      ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8', timeout: 2000 }).trim()) || 100;
    } catch {
      ticks = 100;
    }
  }
  return ticks;
}

export interface HostSample {
  atMs: number;
  /** Seconds of CPU busy on all CPUs (user, nice, system, irq, softirq), and stolen by the hypervisor. */
  busySec: number;
  stealSec: number;
  /** The bench process's own CPU and its children's that have ended and been reaped (the load clients). */
  benchSec: number;
  /** CPU of the live processes named at the start (gateways, upstreams), by pid. */
  pids: Map<number, number>;
}

function procStat(): { busy: number; steal: number } {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal
    const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = f;
    return { busy: (user + nice + system + irq + softirq) / clockTicks(), steal: steal / clockTicks() };
  } catch {
    return { busy: NaN, steal: NaN };
  }
}

function selfAndReaped(): number {
  try {
    const stat = readFileSync('/proc/self/stat', 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime, stime, cutime, cstime are fields 14-17 of the line, 11-14 after "pid (comm) ".
    return (Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14])) / clockTicks();
  } catch {
    return NaN;
  }
}

export function hostSample(pids: readonly number[]): HostSample {
  const { busy, steal } = procStat();
  return { atMs: performance.now(), busySec: busy, stealSec: steal, benchSec: selfAndReaped(), pids: new Map(pids.map((p) => [p, cpuSeconds(p)])) };
}

export interface HostLoad {
  wallSec: number;
  /** Cores busy on average over the window, all processes. */
  busyCores: number;
  /** Of them, the bench's own processes (itself, its load clients, the pids watched) and everything else. */
  benchCores: number;
  otherCores: number;
  /** Cores' worth of time the hypervisor gave to other guests. */
  stealCores: number;
}

/** The window from `a` to `b` (the pids watched are `a`'s; one that ended since counts what it used until `a`). */
export function hostLoad(a: HostSample, b: HostSample, extraSec = 0): HostLoad {
  const wallSec = (b.atMs - a.atMs) / 1000;
  let watched = 0;
  for (const [pid, s0] of a.pids) {
    const s1 = b.pids.get(pid);
    if (s1 !== undefined && Number.isFinite(s1) && Number.isFinite(s0)) watched += s1 - s0;
  }
  const bench = b.benchSec - a.benchSec + watched + extraSec;
  const busy = b.busySec - a.busySec;
  return { wallSec, busyCores: busy / wallSec, benchCores: bench / wallSec, otherCores: Math.max(0, busy - bench) / wallSec, stealCores: (b.stealSec - a.stealSec) / wallSec };
}
