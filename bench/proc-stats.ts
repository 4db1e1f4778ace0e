// CPU time and resident memory of a process, read from /proc (Linux). Both cover every thread of the process.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';

let ticksPerSecond: number | undefined;

function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8', timeout: 2000 }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

/**
 * CPU seconds used so far by all threads of `pid`: the sum of each thread's run time in ns from
 * /proc/PID/task/TID/schedstat, which is far finer than utime+stime's clock ticks (10 ms). Falls back to
 * utime+stime; NaN if neither can be read.
 */
export function cpuSeconds(pid: number): number {
  try {
    let ns = 0;
    for (const tid of readdirSync(`/proc/${pid}/task`)) ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    if (Number.isFinite(ns) && ns > 0) return ns / 1e9;
  } catch {
    // no schedstat (kernel option) or a thread ended while reading: use the coarser counters
  }
  return statCpuSeconds(pid);
}

/** User + system CPU seconds from /proc/PID/stat (clock-tick resolution); NaN if unavailable. */
export function statCpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which is in parentheses and may itself contain spaces or parentheses.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime are fields 14 and 15 of the whole line, i.e. 11 and 12 after "pid (comm) ".
    return (Number(fields[11]) + Number(fields[12])) / clockTicks();
  } catch {
    return NaN;
  }
}

/**
 * `pid` and every live process descended from it, `pid` first (e.g. node:cluster's primary and its workers); [] when
 * `pid` is gone. Reads /proc/PID/task/TID/children, or scans every /proc/PID/stat for its parent where the kernel
 * has no such file.
 */
export function processTree(pid: number): number[] {
  if (!existsSync(`/proc/${pid}`)) return [];
  const out: number[] = [];
  const visit = (p: number) => {
    out.push(p);
    for (const c of childPids(p)) if (!out.includes(c)) visit(c);
  };
  visit(pid);
  return out;
}

function childPids(pid: number): number[] {
  try {
    const pids: number[] = [];
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const text = readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim();
      if (text) pids.push(...text.split(/\s+/).map(Number));
    }
    return pids;
  } catch {
    // no children file (kernel option), or the process is gone: the parents of every process
  }
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      // "pid (comm) state ppid ...": the parent is the second field after the command name.
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) pids.push(Number(name));
    } catch {
      // it ended while reading
    }
  }
  return pids;
}

/** Resident set size of `pid` in KiB (VmRSS); NaN if unavailable. */
export function rssKiB(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : NaN;
  } catch {
    return NaN;
  }
}
