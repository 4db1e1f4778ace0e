// What writing the usage ledger costs each store on its own, outside Jarvis (scenario 11's last part):
//   node --import tsx bench/ledger-store-cost.ts '<StoreCostSpec JSON>' [--watch-stdin]
// Opens the embedded store (SQLite in a worker thread, a fresh file) and, when given a database URL, the
// PostgreSQL one, with Jarvis's own store classes (dist/ or src/), and writes `lines` lines to each in batches of
// `batch` (the ledger's batch: 1000 lines, one transaction), back to back, after one unmeasured batch. Prints one
// line `BENCH_RESULT <StoreCostResult JSON>`: per store, lines a second (wall), this process's CPU per line (all
// threads: the caller's side and the embedded store's worker, where SQLite runs) and, for PostgreSQL, the CPU of the
// database's backends per line. In Jarvis all of it is off the request path: the ledger writes every flush
// interval, and SQLite runs in its worker thread.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import type { LedgerStore, LedgerWrite, UsageRecord } from '../src/ledger/types.js';
import { resultLine } from './load-client.js';
import { BackendWatch } from './postgres.js';
import { REPO_DIR } from './preloads.js';
import { cpuSeconds } from './proc-stats.js';

export interface StoreCostSpec {
  /** Measured lines per store. */
  lines: number;
  batch: number;
  /** The PostgreSQL database to write to (its name, for its backends' CPU), or none: the embedded store only. */
  postgres?: { url: string; database: string } | undefined;
  /** Jarvis's built store classes (dist/) or its sources (src/, through tsx). */
  from: 'dist' | 'source';
}

export interface StoreCost {
  store: 'embedded' | 'postgres';
  lines: number;
  batches: number;
  wallMs: number;
  linesPerSec: number;
  /** This process's CPU (all threads) per line written. */
  cpuUsPerLine: number;
  /** The database's backends' CPU per line (PostgreSQL only; NaN for the embedded store). */
  serverCpuUsPerLine: number;
  /** Each batch's wall time, ms. */
  batchMs: number[];
}

export interface StoreCostResult {
  stores: StoreCost[];
  errors: string[];
}

/** A line as the ledger writes it for a completed chat answer (the bench's mock model, priced). */
function record(n: number, now: number): UsageRecord {
  return {
    id: `${now.toString(16).padStart(12, '0')}${n.toString(16).padStart(8, '0')}01`,
    request_id: `chatcmpl-bench${n.toString(36).padStart(10, '0')}`,
    created_ms: now,
    day: new Date(now).toISOString().slice(0, 10),
    key: null,
    session: null,
    api: 'chat.completions',
    model: 'mock-model',
    upstream: 'default',
    served_model: 'mock-model',
    provider: 'openai',
    attempt: 1,
    answered: 1,
    outcome: 'end',
    reason: 'stop',
    input_tokens: 9,
    cached_tokens: 0,
    cache_write_tokens: 0,
    output_tokens: 20,
    reasoning_tokens: 0,
    delivered_tokens: 20,
    delivered_chars: 110,
    generated_chars: 110,
    heard_chars: 110,
    not_heard_tokens: 0,
    estimated: 0,
    ttft_ms: 1,
    duration_ms: 3,
    cost: 0.0000325,
    not_heard_cost: 0,
    price_output: 1.5,
  };
}

let serial = 0;
const batchOf = (size: number): LedgerWrite[] => {
  const now = Date.now();
  return Array.from({ length: size }, () => ({ kind: 'record' as const, record: record(serial++, now) }));
};

async function measure(store: LedgerStore, spec: StoreCostSpec, backends: { watch: BackendWatch } | undefined): Promise<StoreCost> {
  await store.open();
  try {
    // One unmeasured batch: the first INSERT prepares and compiles what the others reuse.
    await store.write(batchOf(spec.batch));
    const batches = Math.max(1, Math.round(spec.lines / spec.batch));
    const prepared = Array.from({ length: batches }, () => batchOf(spec.batch));
    const pids = backends ? await backends.watch.pids() : [];
    const server0 = BackendWatch.cpu(pids);
    const cpu0 = cpuSeconds(process.pid);
    const t0 = performance.now();
    const batchMs: number[] = [];
    for (const b of prepared) {
      const s = performance.now();
      await store.write(b);
      batchMs.push(performance.now() - s);
    }
    const wallMs = performance.now() - t0;
    const cpu = cpuSeconds(process.pid) - cpu0;
    const server = backends ? BackendWatch.used(server0, BackendWatch.cpu(pids)) : NaN;
    const lines = batches * spec.batch;
    return { store: store.kind, lines, batches, wallMs, linesPerSec: lines / (wallMs / 1000), cpuUsPerLine: (cpu * 1e6) / lines, serverCpuUsPerLine: (server * 1e6) / lines, batchMs };
  } finally {
    await store.close();
  }
}

export async function storeCost(spec: StoreCostSpec): Promise<StoreCostResult> {
  const root = join(REPO_DIR, spec.from === 'dist' ? 'dist' : 'src');
  const ext = spec.from === 'dist' ? 'js' : 'ts';
  const embedded = (await import(pathToFileURL(join(root, 'ledger', 'stores', `embedded.${ext}`)).href)) as typeof import('../src/ledger/stores/embedded.js');
  const postgres = (await import(pathToFileURL(join(root, 'ledger', 'stores', `postgres.${ext}`)).href)) as typeof import('../src/ledger/stores/postgres.js');
  const out: StoreCostResult = { stores: [], errors: [] };
  const dir = mkdtempSync(join(tmpdir(), 'jarvis-bench-store-'));
  try {
    try {
      out.stores.push(await measure(new embedded.EmbeddedLedgerStore({ file: join(dir, 'ledger.sqlite') }), spec, undefined));
    } catch (err) {
      out.errors.push(`embedded: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (spec.postgres) {
      const watch = await BackendWatch.open(spec.postgres.database);
      try {
        // Jarvis's pool (4 connections); the ledger writes one batch at a time, so one of them is used.
        out.stores.push(await measure(new postgres.PostgresLedgerStore({ url: spec.postgres.url }), spec, { watch }));
      } catch (err) {
        out.errors.push(`postgres: ${err instanceof Error ? err.message : String(err)}`);
      } finally {
        await watch.close();
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return out;
}

async function main(): Promise<void> {
  const spec = JSON.parse(process.argv[2] ?? '') as StoreCostSpec;
  if (process.argv.includes('--watch-stdin')) {
    process.stdin.on('close', () => process.exit(3));
    process.stdin.resume();
  }
  setTimeout(() => {
    process.stderr.write('ledger-store-cost: gave up after 120 s\n');
    process.exit(4);
  }, 120_000).unref();
  const result = await storeCost(spec);
  process.stdout.write(resultLine(result), () => process.exit(0));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    process.stderr.write(`ledger-store-cost: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  });
}
