// 9. A tool-call rollout through Jarvis's Responses API over a WebSocket against the same rollout over HTTP SSE.
// One Jarvis in front of the tool-loop upstream (bench/tool-loop-mock.ts: a function call while the conversation
// holds fewer than `calls` tool results, then text), each a process of its own; each run is a rollout client of its
// own on the load CPU (bench/rollout-client.ts), which warms up and then runs `rollouts` pairs, one rollout over
// each transport back to back, the order alternating. A turn over the WebSocket is one `response.create` with
// `store: false` whose `previous_response_id` the connection remembers; over HTTP it is a POST with `stream: true`,
// `store: true` and `previous_response_id`, which Jarvis's store serves. Both send only the new input each turn.
import { request } from 'undici';
import { rolloutFigures } from '../figures.js';
import { fmt } from '../headline.js';
import { parseResultLine } from '../load-client.js';
import { REPO_DIR } from '../preloads.js';
import { spawnChild } from '../processes.js';
import { rolloutClientLimitMs, type RolloutClientResult, type RolloutSpec } from '../rollout-client.js';
import { LOAD_CPU, startJarvis, startToolLoopMock, type JarvisFrom, type Running } from '../targets.js';
import type { ScenarioContext } from './stage.js';

export interface RolloutParams {
  /** Function calls in a rollout; it is calls + 1 turns (the last answers in text). */
  calls: number;
  /** Measured rollouts per transport and run (pairs). */
  rollouts: number;
  /** Before the first run: this long of `warmupConcurrency` concurrent loops of unmeasured rollouts (Jarvis is fresh). */
  warmupMs: number;
  warmupConcurrency: number;
  /** Unmeasured pairs at the start of every run (the client's process is fresh each run). */
  warmup: number;
  /** Tokens of the final text answer. */
  tokens: number;
  /** Characters of each function output the client sends. */
  outputChars: number;
  /** The upstream's pacing between frames (0: each answer in one write). */
  delayMs: number;
  /** Quiet time after each rollout, counted in its CPU. */
  settleMs: number;
}

export interface RolloutRun {
  result?: RolloutClientResult;
  error?: string;
  /** Answers the upstream started during the run, and how many of them were function calls. */
  upstream?: { requests: number; calls: number };
}

export interface RolloutResult extends RolloutParams {
  runs: RolloutRun[];
}

export interface RolloutOptions {
  runs: number;
  jarvisFrom: JarvisFrom;
  jarvisNodeArgs: string[];
  turnTimeoutMs: number;
  log(msg: string): void;
}

/** Jarvis's idle CPU is read over this long in every run, before the measured pairs. */
const IDLE_MS = 1000;

const message = (err: unknown) => (err instanceof Error ? err.message : String(err));

export function runRollout(ctx: ScenarioContext): Promise<RolloutResult> {
  const o = ctx.opts;
  return measureRollout(o.params.rollout, { runs: o.runs, jarvisFrom: o.jarvisFrom, jarvisNodeArgs: o.jarvisNodeArgs ?? [], turnTimeoutMs: Math.min(o.params.streamTimeoutMs, 10_000), log: ctx.log });
}

async function upstreamCounts(mock: Running): Promise<{ requests: number; calls: number }> {
  const res = await request(`${mock.origin}/bench/requests`, { signal: AbortSignal.timeout(5000) });
  return (await res.body.json()) as { requests: number; calls: number };
}

/** The rollout client as its own process on the load CPU; its result line. */
async function runRolloutClient(spec: RolloutSpec): Promise<RolloutClientResult> {
  const child = spawnChild('rollout', process.execPath, ['--import', 'tsx', 'bench/rollout-client.ts', JSON.stringify(spec), '--watch-stdin'], { cpu: LOAD_CPU, cwd: REPO_DIR, stdout: 'lines' });
  let result: RolloutClientResult | undefined;
  child.onLine((line) => {
    result = parseResultLine<RolloutClientResult>(line) ?? result;
  });
  // The client bounds itself; this is the backstop if it hangs anyway.
  const limitMs = rolloutClientLimitMs(spec) + 30_000;
  const timer = setTimeout(() => void child.stop(1000), limitMs);
  const code = await child.exited;
  clearTimeout(timer);
  if (!result) throw new Error(`rollout client for ${spec.label} failed (exit ${code}): ${child.stderrTail().slice(-1200).trim()}`);
  return result;
}

/** Starts the tool-loop upstream and one Jarvis in front of it, runs the rollout client once per run, and stops them. */
export async function measureRollout(p: RolloutParams, o: RolloutOptions): Promise<RolloutResult> {
  const mock = await startToolLoopMock({ calls: p.calls, tokens: p.tokens, delayMs: p.delayMs });
  try {
    const jarvis = await startJarvis({ upstreamBaseUrl: mock.baseUrl, from: o.jarvisFrom, nodeArgs: o.jarvisNodeArgs });
    try {
      const runs: RolloutRun[] = [];
      for (let run = 0; run < o.runs; run++) {
        const label = `rollout run ${run + 1}: ${p.rollouts} pairs of ${p.calls}-call rollouts (WebSocket, HTTP SSE)`;
        o.log(`  ${label}`);
        const out: RolloutRun = {};
        try {
          const before = await upstreamCounts(mock);
          out.result = await runRolloutClient({
            label,
            origin: jarvis.origin,
            model: 'mock-model',
            calls: p.calls,
            outputChars: p.outputChars,
            rollouts: p.rollouts,
            // Jarvis is warmed once, by the first run's client; every client warms its own code and connection.
            warmupMs: run === 0 ? p.warmupMs : 0,
            warmupConcurrency: p.warmupConcurrency,
            warmup: p.warmup,
            idleMs: IDLE_MS,
            settleMs: p.settleMs,
            turnTimeoutMs: o.turnTimeoutMs,
            pid: jarvis.child.pid,
          });
          const after = await upstreamCounts(mock);
          out.upstream = { requests: after.requests - before.requests, calls: after.calls - before.calls };
          for (const e of out.result.errors.slice(0, 3)) o.log(`  ${e}`);
        } catch (err) {
          out.error = message(err);
          o.log(`  ${label} failed: ${out.error}`);
        }
        runs.push(out);
      }
      const result = { ...p, runs };
      const f = rolloutFigures(result);
      const med = (q: { median: number }) => fmt(q.median);
      o.log(`  rollout: end to end WS ${med(f.ws.e2eMs)} ms, SSE ${med(f.sse.e2eMs)} ms (WS/SSE ${med(f.ratios.e2e)}×); Jarvis CPU per turn WS ${med(f.ws.cpuUsPerTurn)} µs, SSE ${med(f.sse.cpuUsPerTurn)} µs (${med(f.ratios.cpu)}×)`);
      return result;
    } finally {
      await jarvis.stop();
    }
  } finally {
    await mock.child.stop();
  }
}
