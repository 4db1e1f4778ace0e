// Spawning the bench's child processes: CPU pinning, a raised open-files limit, stdout line reading, and a
// registry so every child dies with the bench (normal exit, error, Ctrl-C).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { createInterface } from 'node:readline';

export interface SpawnOptions {
  /** Pin to this CPU with taskset (when pinning is available and enabled). */
  cpu?: number | undefined;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** 'lines' keeps stdout for onLine/waitForLine; 'ignore' sends it to /dev/null. */
  stdout: 'lines' | 'ignore';
}

export interface Child {
  readonly name: string;
  readonly pid: number;
  readonly proc: ChildProcess;
  /** Resolves with the exit code (or the signal name) once the process is gone. */
  readonly exited: Promise<number | string>;
  /** The last few KiB of stderr, for error messages. */
  stderrTail(): string;
  onLine(fn: (line: string) => void): void;
  /** Resolves with the first stdout line matching `re`; rejects on exit or after `timeoutMs`. */
  waitForLine(re: RegExp, timeoutMs: number): Promise<RegExpExecArray>;
  /** Writes a line to stdin. */
  send(line: string): void;
  /** SIGTERM, then SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

/** Synchronous, so it also works from process.on('exit'). */
export function killAllChildren(): void {
  for (const proc of live) {
    try {
      proc.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
  live.clear();
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', killAllChildren);
}

let tasksetChecked: boolean | undefined;

/** taskset exists and the machine has at least two CPUs to split between load and gateway. */
export function pinningAvailable(): boolean {
  if (tasksetChecked === undefined) {
    const r = spawnSync('taskset', ['-c', '0', 'true'], { stdio: 'ignore', timeout: 5000 });
    const cpus = spawnSync('nproc', [], { encoding: 'utf8', timeout: 5000 });
    tasksetChecked = r.status === 0 && Number(cpus.stdout) >= 2;
  }
  return tasksetChecked;
}

let pinEnabled = true;
export function setPinning(enabled: boolean): void {
  pinEnabled = enabled;
}
export function pinningActive(): boolean {
  return pinEnabled && pinningAvailable();
}

/** The soft open-files limit children get: the hard limit, or 65536 if the hard limit allows it. */
export function childFileLimit(): number {
  const r = spawnSync('sh', ['-c', 'ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null; ulimit -n'], { encoding: 'utf8', timeout: 5000 });
  const n = Number(r.stdout.trim());
  return Number.isFinite(n) && n > 0 ? n : 1024;
}

export function spawnChild(name: string, command: string, args: string[], opts: SpawnOptions): Child {
  installExitHook();
  const pin = opts.cpu !== undefined && pinningActive() ? ['taskset', '-c', String(opts.cpu)] : [];
  // `exec` keeps one pid all the way through sh and taskset, so the pid is the real process's.
  const script = 'ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$@"';
  const proc = spawn('sh', ['-c', script, `bench-${name}`, ...pin, command, ...args], {
    cwd: opts.cwd,
    env: opts.env ?? process.env,
    stdio: ['pipe', opts.stdout === 'lines' ? 'pipe' : 'ignore', 'pipe'],
  });
  if (proc.pid === undefined) throw new Error(`could not spawn ${name} (${command})`);
  let stderr = '';
  proc.stderr!.setEncoding('utf8');
  proc.stderr!.on('data', (d: string) => {
    stderr = (stderr + d).slice(-4096);
  });
  proc.stdin!.on('error', () => {});
  const listeners: ((line: string) => void)[] = [];
  if (proc.stdout) {
    const rl = createInterface({ input: proc.stdout, crlfDelay: Infinity });
    rl.on('line', (line) => {
      for (const fn of listeners) fn(line);
    });
  }
  const exited = new Promise<number | string>((resolve) => {
    proc.once('exit', (code, signal) => {
      live.delete(proc);
      resolve(code ?? signal ?? 'unknown');
    });
  });
  const child: Child = {
    name,
    pid: proc.pid,
    proc,
    exited,
    stderrTail: () => stderr,
    onLine: (fn) => listeners.push(fn),
    waitForLine(re, timeoutMs) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${name}: no line matching ${re} within ${timeoutMs} ms; stderr: ${stderr.slice(-800)}`)), timeoutMs);
        listeners.push((line) => {
          const m = re.exec(line);
          if (m) {
            clearTimeout(timer);
            resolve(m);
          }
        });
        void exited.then((code) => {
          clearTimeout(timer);
          reject(new Error(`${name} exited (${code}) before printing ${re}; stderr: ${stderr.slice(-800)}`));
        });
      });
    },
    send(line) {
      if (proc.stdin?.writable) proc.stdin.write(`${line}\n`);
    },
    async stop(graceMs = 5000) {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
  live.add(proc);
  return child;
}

/** SIGTERM to every live child, SIGKILL to those still there after `graceMs`. */
export async function stopAll(graceMs = 3000): Promise<void> {
  await Promise.all(
    [...live].map(
      (proc) =>
        new Promise<void>((resolve) => {
          if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
          const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
          proc.once('exit', () => {
            clearTimeout(timer);
            resolve();
          });
          proc.kill('SIGTERM');
        }),
    ),
  );
}

/** A free TCP port on 127.0.0.1 (bound and released; the caller binds it right after). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Runs a command to completion with a time limit; resolves with its exit code and output tail. */
export function runToCompletion(command: string, args: string[], opts: { cwd?: string; timeoutMs: number; env?: NodeJS.ProcessEnv }): Promise<{ code: number | string; output: string }> {
  installExitHook();
  return new Promise((resolve) => {
    const proc = spawn(command, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const keep = (d: Buffer) => {
      output = (output + d.toString('utf8')).slice(-8192);
    };
    proc.stdout.on('data', keep);
    proc.stderr.on('data', keep);
    const timer = setTimeout(() => {
      output += `\n(killed after ${opts.timeoutMs} ms)`;
      proc.kill('SIGKILL');
    }, opts.timeoutMs);
    live.add(proc);
    proc.once('close', (code, signal) => {
      clearTimeout(timer);
      live.delete(proc);
      resolve({ code: code ?? signal ?? 'unknown', output });
    });
    proc.once('error', (err) => {
      clearTimeout(timer);
      live.delete(proc);
      resolve({ code: 'spawn-error', output: err.message });
    });
  });
}
