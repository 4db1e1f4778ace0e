// The orchestrator: prepares Jarvis and the peer, runs the chosen scenarios one after the other and collects
// their raw results. Writing the report is report.ts's job; the command line is run.ts's.
import { performance } from 'node:perf_hooks';
import type { BenchOptions, BenchParams, ScenarioName } from './config.js';
import { machineInfo, type MachineInfo } from './machine.js';
import { PEER_NAME, PEER_VERSION, ensurePeer } from './peer.js';
import { pinningActive, pinningAvailable, setPinning, stopAll } from './processes.js';
import { runBargeInScenario, type BargeInResult } from './scenarios/barge-in.js';
import { runBargeInClusterScenario, type BargeInClusterResult } from './scenarios/barge-in-cluster.js';
import { runCapacity, type CapacityResult } from './scenarios/capacity.js';
import { runFanout, type FanoutResult } from './scenarios/fanout.js';
import { runLedgerScenario, type LedgerResult } from './scenarios/ledger.js';
import { runLatency, type LatencyResult } from './scenarios/latency.js';
import { runRelay, type RelayResult } from './scenarios/relay.js';
import { runRealtimeScenario, type RealtimeResult } from './scenarios/realtime.js';
import { runRollout, type RolloutResult } from './scenarios/rollout.js';
import type { ScenarioContext } from './scenarios/stage.js';
import { runTail, type TailResult } from './scenarios/tail.js';
import { runVoiceScenario, type VoiceResult } from './scenarios/voice.js';
import { runWire, type WireResult } from './scenarios/wire.js';
import { runWorkersScenario, type WorkersResult } from './scenarios/workers.js';
import { GATEWAY_CPU, LOAD_CPU, buildJarvis } from './targets.js';

export interface BenchResults {
  machine: MachineInfo;
  pinning: string;
  options: { scenarios: ScenarioName[]; runs: number; quick: boolean; peer: boolean; jarvisFrom: BenchOptions['jarvisFrom'] };
  params: BenchParams;
  peer: { name: string; version: string; available: boolean; reason: string | undefined };
  relay?: RelayResult;
  latency?: LatencyResult;
  bargeIn?: BargeInResult;
  capacity?: CapacityResult;
  fanout?: FanoutResult;
  tail?: TailResult;
  voice?: VoiceResult;
  wire?: WireResult;
  rollout?: RolloutResult;
  realtime?: RealtimeResult;
  ledger?: LedgerResult;
  workers?: WorkersResult;
  bargeInCluster?: BargeInClusterResult;
  /** Scenarios that could not run at all, with why. */
  failures: Partial<Record<ScenarioName, string>>;
  durationS: number;
}

function describePinning(): string {
  if (pinningActive()) return `taskset: load client, mock upstream and drivers on CPU ${LOAD_CPU}; the gateway under test (Jarvis or the peer) on CPU ${GATEWAY_CPU}`;
  if (!pinningAvailable()) return 'not pinned: taskset missing or fewer than 2 CPUs';
  return 'not pinned (--no-pin)';
}

const RUNNERS: Record<ScenarioName, (ctx: ScenarioContext, out: BenchResults) => Promise<void>> = {
  relay: async (ctx, out) => void (out.relay = await runRelay(ctx)),
  latency: async (ctx, out) => void (out.latency = await runLatency(ctx)),
  'barge-in': async (ctx, out) => void (out.bargeIn = await runBargeInScenario(ctx)),
  capacity: async (ctx, out) => void (out.capacity = await runCapacity(ctx)),
  fanout: async (ctx, out) => void (out.fanout = await runFanout(ctx)),
  tail: async (ctx, out) => void (out.tail = await runTail(ctx)),
  voice: async (ctx, out) => void (out.voice = await runVoiceScenario(ctx)),
  wire: async (ctx, out) => void (out.wire = await runWire(ctx)),
  rollout: async (ctx, out) => void (out.rollout = await runRollout(ctx)),
  realtime: async (ctx, out) => void (out.realtime = await runRealtimeScenario(ctx)),
  ledger: async (ctx, out) => void (out.ledger = await runLedgerScenario(ctx)),
  workers: async (ctx, out) => void (out.workers = await runWorkersScenario(ctx)),
  'barge-in-cluster': async (ctx, out) => void (out.bargeInCluster = await runBargeInClusterScenario(ctx)),
};

export async function runBench(opts: BenchOptions, log: (msg: string) => void): Promise<BenchResults> {
  const started = performance.now();
  setPinning(opts.pin);
  const out: BenchResults = {
    machine: machineInfo(),
    pinning: describePinning(),
    options: { scenarios: opts.scenarios, runs: opts.runs, quick: opts.quick, peer: opts.peer, jarvisFrom: opts.jarvisFrom },
    params: opts.params,
    peer: { name: PEER_NAME, version: PEER_VERSION, available: false, reason: undefined },
    failures: {},
    durationS: 0,
  };
  try {
    if (opts.jarvisFrom === 'dist' && opts.build) {
      log('building Jarvis (npm run build) ...');
      const err = await buildJarvis();
      if (err) throw new Error(err);
    }
    const wantsPeer = opts.peer && opts.scenarios.some((s) => s === 'relay' || s === 'latency');
    let peerUnavailable: string | undefined = opts.peer ? undefined : 'skipped (--no-peer)';
    if (wantsPeer) {
      peerUnavailable = await ensurePeer(log).catch((err: unknown) => (err instanceof Error ? err.message : String(err)));
      if (peerUnavailable) log(`peer gateway unavailable: ${peerUnavailable}`);
    }
    out.peer.available = wantsPeer && peerUnavailable === undefined;
    out.peer.reason = peerUnavailable;
    const ctx: ScenarioContext = { opts, peerUnavailable, log };
    for (const name of opts.scenarios) {
      log(`scenario ${name}`);
      try {
        await RUNNERS[name](ctx, out);
      } catch (err) {
        out.failures[name] = err instanceof Error ? err.message : String(err);
        log(`scenario ${name} failed: ${out.failures[name]}`);
      }
      // Nothing of one scenario may linger into the next.
      await stopAll();
    }
  } finally {
    await stopAll();
    out.durationS = Math.round((performance.now() - started) / 1000);
  }
  return out;
}
