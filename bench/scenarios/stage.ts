// A "stage": a fresh mock upstream with one scenario's pacing, a fresh Jarvis in front of it and (optionally) a
// fresh peer gateway, all torn down afterwards. Also runs one measurement against each target of a stage.
import type { BenchOptions } from '../config.js';
import type { LoadResult, LoadSpec } from '../load-client.js';
import { runLoadClient } from '../load-runner.js';
import { peerTarget, startPeer, type RunningPeer } from '../peer.js';
import type { HttpTarget } from '../stream-client.js';
import { directTarget, jarvisTarget, startFloor, startJarvis, startMock, type MockKnobs, type Running, type RunningJarvis } from '../targets.js';

/** `floor` is bench/bare-relay.ts: the least a Node.js gateway costs on this machine. */
export type TargetName = 'direct' | 'jarvis' | 'peer' | 'floor';

export interface ScenarioContext {
  opts: BenchOptions;
  /** Why the peer cannot be used in this bench (not installed, --no-peer), if so. */
  peerUnavailable: string | undefined;
  log(msg: string): void;
}

export interface StageTarget {
  target: HttpTarget;
  /** The gateway process, for CPU and RSS (none for the direct path). */
  pid?: number;
  metricsUrl?: string;
}

export interface Stage {
  mock: Running & { baseUrl: string };
  jarvis: RunningJarvis;
  peer: RunningPeer | undefined;
  /** Set when the peer was wanted but did not start. */
  peerError: string | undefined;
  targets: Partial<Record<TargetName, StageTarget>>;
}

/** One run's measurements, one per target; a target whose measurement failed has an error instead. */
export interface RunResults {
  results: Partial<Record<TargetName, LoadResult>>;
  errors: Partial<Record<TargetName, string>>;
}

const message = (err: unknown) => (err instanceof Error ? err.message : String(err));

export async function withStage<T>(
  ctx: ScenarioContext,
  mockDefaults: MockKnobs,
  opts: { peer: boolean; floor: boolean },
  fn: (stage: Stage) => Promise<T>,
): Promise<T> {
  const mock = await startMock(mockDefaults);
  try {
    const jarvis = await startJarvis({
      upstreamBaseUrl: mock.baseUrl,
      from: ctx.opts.jarvisFrom,
      nodeArgs: ctx.opts.jarvisNodeArgs ?? [],
    });
    try {
      let peer: RunningPeer | undefined;
      let peerError: string | undefined;
      if (opts.peer && ctx.peerUnavailable === undefined) {
        try {
          peer = await startPeer();
        } catch (err) {
          peerError = message(err);
          ctx.log(`peer gateway did not start: ${peerError}`);
        }
      }
      const floor = opts.floor ? await startFloor(mock.origin) : undefined;
      const targets: Stage['targets'] = {
        direct: { target: directTarget(mock.origin) },
        jarvis: { target: jarvisTarget(jarvis.origin), pid: jarvis.child.pid, metricsUrl: jarvis.metricsUrl },
      };
      if (peer) targets.peer = { target: peerTarget(peer.origin, mock.baseUrl), pid: peer.child.pid };
      if (floor) targets.floor = { target: jarvisTarget(floor.origin), pid: floor.child.pid, metricsUrl: floor.metricsUrl };
      try {
        return await fn({ mock, jarvis, peer, peerError, targets });
      } finally {
        await peer?.stop();
        await floor?.stop();
      }
    } finally {
      await jarvis.stop();
    }
  } finally {
    await mock.child.stop();
  }
}

/**
 * Measures each named target of the stage once, one after the other. The order rotates with `run` so that no
 * target is always measured first (or last) on a machine whose noise drifts.
 */
export async function measureTargets(
  ctx: ScenarioContext,
  stage: Stage,
  names: TargetName[],
  run: number,
  specFor: (name: TargetName, t: StageTarget) => LoadSpec,
): Promise<RunResults> {
  const out: RunResults = { results: {}, errors: {} };
  const present = names.filter((n) => stage.targets[n]);
  const order = present.map((_, i) => present[(i + run) % present.length]!);
  for (const name of order) {
    const spec = specFor(name, stage.targets[name]!);
    ctx.log(`  run ${run + 1}: ${spec.label}`);
    try {
      out.results[name] = await runLoadClient(spec);
    } catch (err) {
      out.errors[name] = message(err);
      ctx.log(`  ${spec.label} failed: ${message(err)}`);
    }
  }
  return out;
}
