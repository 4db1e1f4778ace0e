// The bench's parameters (full and --quick) and its command line.
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { BENCH_DIR } from './preloads.js';
import type { JarvisFrom } from './targets.js';
import type { BargeInClusterParams } from './scenarios/barge-in-cluster.js';
import type { LedgerParams } from './scenarios/ledger.js';
import type { RealtimeParams } from './scenarios/realtime.js';
import type { RolloutParams } from './scenarios/rollout.js';
import type { VoiceParams } from './scenarios/voice.js';
import type { WireParams } from './scenarios/wire.js';
import type { WorkersParams } from './scenarios/workers.js';

export const SCENARIOS = ['relay', 'latency', 'barge-in', 'capacity', 'fanout', 'tail', 'voice', 'wire', 'rollout', 'realtime', 'ledger', 'workers', 'barge-in-cluster'] as const;
export type ScenarioName = (typeof SCENARIOS)[number];

export interface BenchParams {
  /** 1. Relay throughput: closed-loop flood (no pacing) at each concurrency level. */
  relay: { levels: number[]; tokens: number; durationMs: number; warmupMs: number };
  /** 2. Added latency: paced streams, one stage per pacing. */
  latency: { concurrency: number; tokens: number; pacingsMs: number[]; durationMs: number; warmupMs: number };
  /** 3. Barge-in storm at each ramp (Jarvis, the floor relay, two instances on one Redis). */
  bargeIn: { sessions: number; requestsPerSession: number; gapMs: number; tokens: number; delayMs: number; rampsMs: number[] };
  /** 4. Capacity: many slow streams at once (Jarvis and the floor relay). */
  capacity: { streams: number; tokens: number; delayMs: number; rampMs: number; scrapeEveryMs: number };
  /** 5. Fan-out: /v1/events subscribers while streams run. */
  fanout: { subscribers: number; streams: number; tokens: number; delayMs: number; settleMs: number };
  /** 6. A first-token tail on one of two upstreams: no route, failover by deadline, hedging. */
  tail: { concurrency: number; tokens: number; delayMs: number; durationMs: number; tailEvery: number; tailTtftMs: number; firstTokenTimeoutMs: number; hedgeAfterMs: number };
  /** 7. Voice-like sessions (bench/voice-run.ts), Jarvis against the floor relay. */
  voice: VoiceParams;
  /** 8. CPU per token by client API and upstream API: chat, Responses and Messages over OpenAI, Anthropic and Gemini upstreams. */
  wire: WireParams;
  /** 9. A tool-call rollout through the Responses API: over a WebSocket against over HTTP SSE. */
  rollout: RolloutParams;
  /** 10. The Realtime API: text mode's first token against chat completions, and what the relay adds to each frame. */
  realtime: RealtimeParams;
  /** 11. The usage ledger (off, embedded, PostgreSQL) and traces (off, on): CPU per request against the ledger off. */
  ledger: LedgerParams;
  /** 12. JARVIS_WORKERS=N against one process (one Redis, one mock): throughput and CPU per chunk over a concurrency ladder. */
  workers: WorkersParams;
  /** 13. Scenario 3's two-instance storm with the pair on a single Redis and on a six-node Redis Cluster, interleaved rounds. */
  bargeInCluster: BargeInClusterParams;
  streamTimeoutMs: number;
}

export const FULL: BenchParams = {
  // Each party's first measurement in a stage starts with warmupMs of short streams (load-client.ts, warmUp): the
  // gateway then stays up for the stage's other runs and levels.
  relay: { levels: [1, 64, 256, 1024], tokens: 200, durationMs: 3000, warmupMs: 2000 },
  latency: { concurrency: 256, tokens: 100, pacingsMs: [20, 5], durationMs: 5000, warmupMs: 2000 },
  // The sessions start over 5 and 20 s: 1,000 and 250 requests a second. (A 5,000-a-second storm was dropped to keep
  // the bench under 25 minutes: there even the floor relay queued for seconds, so it measured overload, not barge-in.)
  bargeIn: { sessions: 1000, requestsPerSession: 5, gapMs: 20, tokens: 50, delayMs: 20, rampsMs: [5000, 20_000] },
  // Opened at ~670 a second: a 2,000-a-second ramp measured how fast one core accepts connections (clients
  // timed out), not how many streams it holds. All are open together from 15 s to 30 s.
  capacity: { streams: 10_000, tokens: 30, delayMs: 1000, rampMs: 15_000, scrapeEveryMs: 1000 },
  fanout: { subscribers: 100, streams: 500, tokens: 100, delayMs: 20, settleMs: 500 },
  // One request in twenty waits 3 s for its first token: a p99 ruined by 5% of requests.
  tail: { concurrency: 32, tokens: 20, delayMs: 20, durationMs: 10_000, tailEvery: 20, tailTtftMs: 3000, firstTokenTimeoutMs: 500, hedgeAfterMs: 200 },
  // A person asks, hears an answer at speaking pace, pauses and asks again; one request in five talks over the answer.
  voice: { sessions: 1000, rampMs: 4000, durationMs: 15_000, thinkMs: [2000, 4000], answerTokens: [30, 90], tokensPerSec: [30, 60], bargeEvery: 5, subscribers: 10 },
  // route-cost.ts's load (tenth round): one warm Jarvis, the nine combinations in rotating phases, one per run.
  wire: { streams: 64, tokens: 50, delayMs: 20, phaseMs: 4000, warmupMs: 2000 },
  // 20 calls and a text answer: 21 turns a rollout. Jarvis warms up for 4 s (some 7,000 turns) before the first run;
  // each run then measures 10 pairs (a WebSocket and an HTTP SSE rollout back to back).
  rollout: { calls: 20, rollouts: 10, warmupMs: 4000, warmupConcurrency: 4, warmup: 5, tokens: 20, outputChars: 200, delayMs: 0, settleMs: 30 },
  // Text: 20 tokens at once from the OpenAI mock, in sets of 10 turns. Relay, in sets of 5 responses: 50 words of
  // audio and transcript (100 deltas, ~340 kB) unpaced, and 10 words a millisecond apart (each frame on its own).
  // Before the first run Jarvis warms up on text turns for 4 s (some 2,000: one loop of sets, which goes faster than
  // several on the shared load CPU), then on relayed responses for 1.5 s.
  realtime: {
    tokens: 20,
    textPairs: 10,
    turnsPerSet: 10,
    relay: [
      { words: 50, delayMs: 0, pairs: 10 },
      { words: 10, delayMs: 1, pairs: 5 },
    ],
    responsesPerSet: 5,
    warmupMs: 4000,
    relayWarmupMs: 1500,
    warmupConcurrency: 1,
    warmup: 2,
    settleMs: 25,
  },
  // 16 streams of 20 unpaced tokens: the request path at its busiest, so a per-request cost shows. Five Jarvis
  // (a, b, c, d, a'), warmed 4 s each (some 8,000 requests), 1 s all idle, then 6 rounds (2 per run) of 10 cycles (a
  // Williams design for 5) of a 400 ms slice each; the ledger's default 1 s flush interval, a 1.1 s settle; then
  // 20,000 lines straight to each store. About 2.5 minutes (with --ledger-before, 6 cycles of 6: about the same).
  ledger: { configs: ['off', 'embedded', 'postgres', 'traced', 'again'], streams: 16, tokens: 20, delayMs: 0, warmupMs: 4000, idleMs: 1000, roundsPerRun: 2, sliceMs: 400, flushMs: null, settleMs: 1100, storeLines: 20_000 },
  // The relay scenario's flood (200 unpaced tokens) at 16, 64 and 256 streams, through two workers and through one
  // process: 3 s of warm-up each, then 6 rounds (2 per run) of a 1.5 s slice per configuration per level, the pair's
  // order alternating. About 80 s (1.5 minutes with the build).
  workers: { workers: 2, levels: [16, 64, 256], tokens: 200, warmupMs: 3000, idleMs: 1000, roundsPerRun: 2, sliceMs: 1500, settleMs: 200, ledger: false },
  // Scenario 3's storm at its two rates (1,000 and 250 requests a second), two instances on each Redis: a warm-up
  // storm of 200 sessions over 2 s each, 1 s all idle, then 3 rounds (1 per run), each giving both rates one storm per
  // configuration, the pair back to back. About 4 minutes.
  bargeInCluster: { sessions: 1000, requestsPerSession: 5, gapMs: 20, tokens: 50, delayMs: 20, rampsMs: [5000, 20_000], roundsPerRun: 1, warmupSessions: 200, warmupRampMs: 2000, idleMs: 1000 },
  streamTimeoutMs: 60_000,
};

// Small enough to finish in a few minutes, large enough that the same-run CPU and memory ratios against the floor
// hold within a few percent from one invocation to the next (bench/README.md, "Quick runs" has the spread of each).
export const QUICK: BenchParams = {
  relay: { levels: [1, 64], tokens: 200, durationMs: 2000, warmupMs: 1000 },
  latency: { concurrency: 64, tokens: 50, pacingsMs: [20], durationMs: 3000, warmupMs: 1000 },
  bargeIn: { sessions: 200, requestsPerSession: 5, gapMs: 20, tokens: 30, delayMs: 20, rampsMs: [4000] },
  capacity: { streams: 1000, tokens: 6, delayMs: 1000, rampMs: 1500, scrapeEveryMs: 1000 },
  fanout: { subscribers: 10, streams: 50, tokens: 50, delayMs: 20, settleMs: 300 },
  tail: { concurrency: 8, tokens: 5, delayMs: 10, durationMs: 3000, tailEvery: 5, tailTtftMs: 1000, firstTokenTimeoutMs: 300, hedgeAfterMs: 100 },
  voice: { sessions: 200, rampMs: 2000, durationMs: 8000, thinkMs: [1000, 2000], answerTokens: [20, 40], tokensPerSec: [30, 60], bargeEvery: 5, subscribers: 5 },
  wire: { streams: 32, tokens: 30, delayMs: 20, phaseMs: 2000, warmupMs: 1000 },
  rollout: { calls: 20, rollouts: 5, warmupMs: 2000, warmupConcurrency: 4, warmup: 3, tokens: 20, outputChars: 200, delayMs: 0, settleMs: 30 },
  realtime: { tokens: 20, textPairs: 4, turnsPerSet: 10, relay: [{ words: 50, delayMs: 0, pairs: 4 }, { words: 10, delayMs: 1, pairs: 2 }], responsesPerSet: 5, warmupMs: 1000, relayWarmupMs: 300, warmupConcurrency: 1, warmup: 1, settleMs: 25 },
  // (a)-(d) only, 2.5 s of warm-up each, 3 rounds of 4 cycles of 250 ms slices, the stores alone not measured:
  // about 30 s.
  ledger: { configs: ['off', 'embedded', 'postgres', 'traced'], streams: 16, tokens: 20, delayMs: 0, warmupMs: 2500, idleMs: 300, roundsPerRun: 1, sliceMs: 250, flushMs: null, settleMs: 1100, storeLines: 0 },
  // 64 streams only, 1.5 s of warm-up each, 3 rounds of 1 s slices: about 15 s.
  workers: { workers: 2, levels: [64], tokens: 200, warmupMs: 1500, idleMs: 500, roundsPerRun: 1, sliceMs: 1000, settleMs: 200, ledger: false },
  // The quick barge-in storm (250 a second, 200 sessions over 4 s) on each Redis, 3 rounds (1 per run): about 1 minute.
  bargeInCluster: { sessions: 200, requestsPerSession: 5, gapMs: 20, tokens: 30, delayMs: 20, rampsMs: [4000], roundsPerRun: 1, warmupSessions: 100, warmupRampMs: 1000, idleMs: 500 },
  streamTimeoutMs: 30_000,
};

export interface BenchOptions {
  scenarios: ScenarioName[];
  runs: number;
  quick: boolean;
  peer: boolean;
  pin: boolean;
  build: boolean;
  jarvisFrom: JarvisFrom;
  /** Extra node arguments for Jarvis, e.g. ['--cpu-prof', '--cpu-prof-dir=/tmp/prof'] for the lead's profiles. */
  jarvisNodeArgs?: string[];
  /** A git ref whose build the ledger scenario measures beside today's (the build before the ledger and traces). */
  ledgerBefore?: string | undefined;
  outDir: string;
  params: BenchParams;
}

export const DEFAULT_OUT_DIR = join(BENCH_DIR, 'results');

export const USAGE = `usage: npm run bench -- [--quick] [--scenario NAME[,NAME]] [--runs N] [--no-peer] [--no-build] [--no-pin] [--out DIR]
  scenarios: ${SCENARIOS.join(', ')} (default: all)
  --quick     small loads, a few seconds each, 3 runs (about 6 minutes): enough to see a 20% regression
  --runs N    repetitions of every measurement (default 3); medians and min-max are reported
  --no-peer   skip the peer gateway (Portkey)
  --no-build  use the existing dist/ instead of running npm run build first
  --no-pin    do not pin processes to CPUs with taskset
  --out DIR   where latest.md, latest.svg and latest.json go (default bench/results)
  --jarvis-node-args="ARGS"  extra node arguments for Jarvis, e.g. --jarvis-node-args="--cpu-prof --cpu-prof-dir=/tmp/prof"
  --ledger-before REF  the ledger scenario also measures the build of git REF (e.g. the commit before the ledger), built in a temp dir`;

export class UsageError extends Error {}

export function parseCli(argv: string[]): BenchOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      scenario: { type: 'string', multiple: true },
      runs: { type: 'string' },
      'no-peer': { type: 'boolean', default: false },
      'no-build': { type: 'boolean', default: false },
      'no-pin': { type: 'boolean', default: false },
      out: { type: 'string' },
      'jarvis-node-args': { type: 'string' },
      'ledger-before': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) throw new UsageError('');
  const scenarios = (values.scenario ?? [...SCENARIOS]).flatMap((s) => s.split(',')).map((s) => s.trim()).filter(Boolean);
  for (const s of scenarios) if (!(SCENARIOS as readonly string[]).includes(s)) throw new UsageError(`unknown scenario ${JSON.stringify(s)}`);
  const runs = values.runs === undefined ? 3 : Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1 || runs > 20) throw new UsageError('--runs must be an integer from 1 to 20');
  return {
    scenarios: SCENARIOS.filter((s) => scenarios.includes(s)),
    runs,
    quick: values.quick,
    peer: !values['no-peer'],
    pin: !values['no-pin'],
    build: !values['no-build'],
    jarvisFrom: 'dist',
    jarvisNodeArgs: values['jarvis-node-args']?.split(/\s+/).filter(Boolean) ?? [],
    ledgerBefore: values['ledger-before'],
    outDir: values.out ?? DEFAULT_OUT_DIR,
    params: values.quick ? QUICK : FULL,
  };
}
