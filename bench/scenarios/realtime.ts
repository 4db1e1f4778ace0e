// 10. The Realtime API through Jarvis, both modes, in one run:
//  - text mode (a model that does not speak the Realtime API): the first token of a response on an open socket,
//    against the same answer through POST /v1/chat/completions (stream: true), both to the OpenAI mock;
//  - relay mode (an upstream with `realtime: native`): when each delta of a response with audio arrives, over a
//    socket to the Realtime fake itself against one through Jarvis's relay.
// One Jarvis in front of both upstreams (the OpenAI mock its default upstream, the Realtime fake an upstream of its
// own for one model), each a process of its own; each run is a client process of its own on the load CPU
// (bench/realtime-client.ts), which warms up and then runs pairs of sets (turns back to back on one path), the
// order alternating within each half.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { realtimeFigures } from '../figures.js';
import { fmt } from '../headline.js';
import { parseResultLine } from '../load-client.js';
import { REPO_DIR } from '../preloads.js';
import { spawnChild } from '../processes.js';
import { realtimeClientLimitMs, type RealtimeClientResult, type RealtimeSpec, type RelayVariant } from '../realtime-client.js';
import { LOAD_CPU, startJarvis, startMock, startRealtimeMock, type JarvisFrom } from '../targets.js';
import type { ScenarioContext } from './stage.js';

export interface RealtimeParams {
  /** Tokens of the OpenAI mock's answer in the text half (the first at once, all in one write). */
  tokens: number;
  /**
   * The Realtime fake's answers in the relay half, each measured on its own: `words` words, each a transcript delta
   * and an audio delta (100 ms, 6.4 kB), `delayMs` apart (0: unpaced, 32 words a write burst); `pairs` of sets a run.
   */
  relay: RelayVariant[];
  /**
   * Text: measured pairs per run of a set of `turnsPerSet` turns back to back over sockets and one over HTTP. Relay:
   * a set is `responsesPerSet` responses back to back over sockets to the fake, or over sockets through Jarvis.
   */
  textPairs: number;
  turnsPerSet: number;
  responsesPerSet: number;
  /** Before the first run (Jarvis is fresh): `warmupConcurrency` loops of unmeasured text sets for `warmupMs`, then of relay sets for `relayWarmupMs`. */
  warmupMs: number;
  relayWarmupMs: number;
  warmupConcurrency: number;
  /** Unmeasured pairs of each half at the start of every run (the client's process is fresh each run). */
  warmup: number;
  /** Quiet time after each set, counted in its CPU. */
  settleMs: number;
}

export interface RealtimeRun {
  result?: RealtimeClientResult;
  error?: string;
}

export interface RealtimeResult extends RealtimeParams {
  /** The relay half's model: an upstream with `realtime: native` in front of the fake. */
  relayModel: string;
  runs: RealtimeRun[];
}

export interface RealtimeOptions {
  runs: number;
  jarvisFrom: JarvisFrom;
  jarvisNodeArgs: string[];
  timeoutMs: number;
  log(msg: string): void;
}

/** The model the relay half asks for, routed to the Realtime fake. */
export const RELAY_MODEL = 'gpt-realtime';
/** Jarvis's idle CPU is read over this long in every run, before the measured pairs. */
const IDLE_MS = 500;

const message = (err: unknown) => (err instanceof Error ? err.message : String(err));

export function runRealtimeScenario(ctx: ScenarioContext): Promise<RealtimeResult> {
  const o = ctx.opts;
  return measureRealtime(o.params.realtime, { runs: o.runs, jarvisFrom: o.jarvisFrom, jarvisNodeArgs: o.jarvisNodeArgs ?? [], timeoutMs: Math.min(o.params.streamTimeoutMs, 10_000), log: ctx.log });
}

/** The client as its own process on the load CPU; its result line. */
async function runRealtimeClient(spec: RealtimeSpec): Promise<RealtimeClientResult> {
  const child = spawnChild('realtime-client', process.execPath, ['--import', 'tsx', 'bench/realtime-client.ts', JSON.stringify(spec), '--watch-stdin'], { cpu: LOAD_CPU, cwd: REPO_DIR, stdout: 'lines' });
  let result: RealtimeClientResult | undefined;
  child.onLine((line) => {
    result = parseResultLine<RealtimeClientResult>(line) ?? result;
  });
  // The client bounds itself; this is the backstop if it hangs anyway.
  const timer = setTimeout(() => void child.stop(1000), realtimeClientLimitMs(spec) + 30_000);
  const code = await child.exited;
  clearTimeout(timer);
  if (!result) throw new Error(`realtime client for ${spec.label} failed (exit ${code}): ${child.stderrTail().slice(-1200).trim()}`);
  return result;
}

/** Starts the OpenAI mock, the Realtime fake and one Jarvis in front of both, runs the client once per run, and stops them. */
export async function measureRealtime(p: RealtimeParams, o: RealtimeOptions): Promise<RealtimeResult> {
  const dir = mkdtempSync(join(tmpdir(), 'jarvis-bench-realtime-'));
  const stops: (() => Promise<unknown>)[] = [];
  try {
    const mock = await startMock({ tokens: p.tokens, delayMs: 0, ttftMs: 0 });
    stops.push(() => mock.child.stop());
    const fake = await startRealtimeMock();
    stops.push(() => fake.child.stop());
    // The OpenAI mock is the default upstream (every other model, served in text mode); the fake takes one model.
    const config = join(dir, 'upstreams.json');
    writeFileSync(config, JSON.stringify({ upstreams: [{ name: 'realtime', baseUrl: fake.baseUrl, models: [RELAY_MODEL], realtime: 'native' }] }));
    const jarvis = await startJarvis({ upstreamBaseUrl: mock.baseUrl, from: o.jarvisFrom, env: { JARVIS_CONFIG: config }, nodeArgs: o.jarvisNodeArgs });
    stops.push(() => jarvis.stop());
    const runs: RealtimeRun[] = [];
    for (let run = 0; run < o.runs; run++) {
      const relays = p.relay.map((v) => `${v.pairs} of ${v.words}-word answers${v.delayMs > 0 ? ` ${v.delayMs} ms a word` : ''}`).join(', ');
      const label = `realtime run ${run + 1}: ${p.textPairs} pairs of sets of ${p.turnsPerSet} text turns (socket, chat completions); pairs of sets of ${p.responsesPerSet} responses (direct, through Jarvis): ${relays}`;
      o.log(`  ${label}`);
      const out: RealtimeRun = {};
      try {
        out.result = await runRealtimeClient({
          label,
          origin: jarvis.origin,
          textModel: 'mock-model',
          tokens: p.tokens,
          directUrl: fake.url,
          relayModel: RELAY_MODEL,
          relay: p.relay,
          textPairs: p.textPairs,
          turnsPerSet: p.turnsPerSet,
          responsesPerSet: p.responsesPerSet,
          // Jarvis is warmed once, by the first run's client; every client warms its own code and sockets.
          warmupMs: run === 0 ? p.warmupMs : 0,
          relayWarmupMs: run === 0 ? p.relayWarmupMs : 0,
          warmupConcurrency: p.warmupConcurrency,
          warmup: p.warmup,
          idleMs: IDLE_MS,
          settleMs: p.settleMs,
          timeoutMs: o.timeoutMs,
          pid: jarvis.child.pid,
        });
        for (const e of out.result.errors.slice(0, 3)) o.log(`  ${e}`);
      } catch (err) {
        out.error = message(err);
        o.log(`  ${label} failed: ${out.error}`);
      }
      runs.push(out);
    }
    const result: RealtimeResult = { ...p, relayModel: RELAY_MODEL, runs };
    const f = realtimeFigures(result);
    const med = (q: { median: number }) => fmt(q.median);
    o.log(`  realtime: first token socket ${med(f.text.ws.ttftMs)} ms, chat completions ${med(f.text.http.ttftMs)} ms (${med(f.text.ratios.ttft)}×)`);
    for (const v of f.relay) {
      o.log(`  relay, ${v.words} words${v.delayMs > 0 ? ` ${v.delayMs} ms apart` : ' unpaced'}: adds ${med(v.addedFirstMs)} ms to the first delta, ${med(v.addedAllDeltasMs)} ms to a delta (pooled), ${med(v.addedDoneMs)} ms to response.done; ${med(v.cpuUsPerFrame)} µs of Jarvis's CPU a frame`);
    }
    return result;
  } finally {
    // Jarvis first, then the upstreams.
    for (const stop of stops.reverse()) await stop().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  }
}
