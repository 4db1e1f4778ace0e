// Every core (JARVIS_WORKERS): a primary process forks N workers with node:cluster on one port; the primary opens
// the listening socket and the workers accept on it (the kernel hands out connections). Each worker is a whole
// Jarvis and an instance of its own in Redis (`<JARVIS_INSTANCE_ID or host name>-w<slot>`), coordinated as
// separate instances are. The primary loads none of the app: it forks, restarts a worker that dies (with a backoff) and, on SIGTERM or SIGINT, passes
// the signal on and exits once every worker has drained and exited.
import cluster, { type Worker } from 'node:cluster';
import { availableParallelism } from 'node:os';
import type { Logger } from 'pino';

/** Tells a forked worker which slot (1..N) it fills: its name in Redis, /healthz and /metrics. */
export const WORKER_SLOT_ENV = 'JARVIS_WORKER_SLOT';

/** A dead worker is forked again after RESTART_BASE_MS, doubling for each death in a row, up to RESTART_MAX_MS. */
export const RESTART_BASE_MS = 100;
export const RESTART_MAX_MS = 10_000;
/** A worker that lived this long died on its own: the next restart waits RESTART_BASE_MS again. */
export const STABLE_MS = 10_000;
/** After a stop's grace period, how long workers get to close (ledger, traces) before they are killed. */
export const STOP_MARGIN_MS = 30_000;

/** How many workers a `workers` setting means: `auto` is one per core the process may use. */
export function workerCount(setting: number | 'auto'): number {
  return setting === 'auto' ? availableParallelism() : setting;
}

/** This process's slot when the primary forked it, else undefined (a single process, or the primary). */
export function workerSlot(env: Record<string, string | undefined>): number | undefined {
  if (!cluster.isWorker) return undefined;
  const slot = Number(env[WORKER_SLOT_ENV]);
  return Number.isInteger(slot) && slot >= 1 ? slot : undefined;
}

/** A worker's instance id: the instance's name and its slot, within the 64 characters config allows. */
export function workerInstanceId(base: string, slot: number): string {
  const suffix = `-w${slot}`;
  return base.replace(/[^\w.:-]/g, '_').slice(0, 64 - suffix.length) + suffix;
}

/** How long the primary waits before forking a worker again, after `streak` deaths in a row (1, 2, ...). */
export function restartDelay(streak: number): number {
  return Math.min(RESTART_MAX_MS, RESTART_BASE_MS * 2 ** Math.max(0, streak - 1));
}

export interface PrimaryOptions {
  workers: number;
  /**
   * Who hands out connections: the operating system (the default: every worker accepts on the one listening socket)
   * or the primary (node:cluster's round robin), as NODE_CLUSTER_SCHED_POLICY=rr asks.
   */
  roundRobin?: boolean;
  log: Logger;
  /** The workers' JARVIS_SHUTDOWN_GRACE_MS: a stop kills workers still running STOP_MARGIN_MS after it. */
  shutdownGraceMs: number;
  /** Ends the primary with this exit code (after its log is written). */
  exit: (code: number) => void;
}

interface Slot {
  worker: Worker | undefined;
  startedAt: number;
  /** Deaths in a row of workers that lived less than STABLE_MS. */
  streak: number;
  restart: NodeJS.Timeout | undefined;
}

/**
 * Runs the primary: forks `workers` workers and keeps them running until SIGTERM or SIGINT. A worker that exits
 * before every worker has listened once fails the start (the primary stops the rest and exits with its code, 2
 * for a configuration or Redis error, as one process would); after that a worker that dies is forked again.
 */
export function runPrimary(opts: PrimaryOptions): void {
  const { log } = opts;
  const slots = new Map<number, Slot>();
  const listened = new Set<number>();
  let started = false;
  let stopping = false;
  let exitCode = 0;
  let force: NodeJS.Timeout | undefined;

  const alive = () => [...slots.values()].filter((s) => s.worker).length;

  const fork = (slot: number) => {
    const state = slots.get(slot)!;
    state.restart = undefined;
    const worker = cluster.fork({ [WORKER_SLOT_ENV]: String(slot) });
    state.worker = worker;
    state.startedAt = performance.now();
    log.info({ worker: slot, pid: worker.process.pid }, 'worker_started');
    worker.once('listening', () => {
      listened.add(slot);
      started ||= listened.size === opts.workers;
    });
    worker.once('exit', (code, signal) => exited(slot, worker, code, signal));
  };

  const exited = (slot: number, worker: Worker, code: number | null, signal: string | null) => {
    const state = slots.get(slot)!;
    if (state.worker !== worker) return;
    state.worker = undefined;
    const fields = { worker: slot, pid: worker.process.pid, code, signal };
    if (stopping) {
      log.info(fields, 'worker_exited');
      if (code !== 0 && exitCode === 0) exitCode = 1;
      if (alive() === 0) finish();
      return;
    }
    if (!started && !listened.has(slot)) {
      // It could not start (Redis unreachable, the port taken): neither can the others, and the start fails.
      log.error(fields, 'worker_exited');
      stop(undefined, code === null || code === 0 ? 1 : code);
      return;
    }
    const lived = performance.now() - state.startedAt;
    state.streak = lived >= STABLE_MS ? 1 : state.streak + 1;
    const delay = restartDelay(state.streak);
    log.warn({ ...fields, restart_in_ms: delay }, 'worker_exited');
    state.restart = setTimeout(() => fork(slot), delay);
  };

  const finish = () => {
    clearTimeout(force);
    log.info({ code: exitCode }, 'workers_stopped');
    opts.exit(exitCode);
  };

  /** Passes the signal to every worker (each drains as one process does) and exits once all have exited. */
  const stop = (signal: NodeJS.Signals | undefined, code = 0) => {
    if (stopping) return;
    stopping = true;
    exitCode = code;
    if (signal) log.info({ signal, workers: alive() }, 'signal_received');
    for (const state of slots.values()) {
      clearTimeout(state.restart);
      state.restart = undefined;
      // The process, not worker.kill(): that would disconnect the worker first, closing its listener before it drains.
      state.worker?.process.kill(signal ?? 'SIGTERM');
    }
    if (alive() === 0) {
      finish();
      return;
    }
    force = setTimeout(() => {
      for (const state of slots.values()) state.worker?.process.kill('SIGKILL');
    }, opts.shutdownGraceMs + STOP_MARGIN_MS);
  };

  // The primary's round robin hands each connection to a worker over IPC and closes its copy only once the worker
  // has taken it: one handed to a worker in the instant it dies is never answered nor closed (the client hangs
  // until its own timeout). On the shared socket, a connection no worker has accepted waits in the kernel's queue
  // for a live worker, and one the dead worker had accepted is reset with it.
  cluster.schedulingPolicy = opts.roundRobin ? cluster.SCHED_RR : cluster.SCHED_NONE;
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  log.info({ workers: opts.workers, pid: process.pid, scheduling: opts.roundRobin ? 'rr' : 'none' }, 'workers_start');
  for (let slot = 1; slot <= opts.workers; slot++) {
    slots.set(slot, { worker: undefined, startedAt: 0, streak: 0, restart: undefined });
    fork(slot);
  }
}
