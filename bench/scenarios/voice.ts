// 7. Voice-like sessions through Jarvis and the floor relay (bench/voice-run.ts has the conversation model). Each
// run starts a fresh gateway, alternating which goes first, and both get the same seeded schedule.
import { parseResultLine } from '../load-client.js';
import { voiceLimitMs } from '../barge-in-driver.js';
import { startFloor, startJarvis } from '../targets.js';
import type { VoiceRunResult, VoiceRunSpec } from '../voice-run.js';
import { startDriver } from './barge-in.js';
import type { ScenarioContext } from './stage.js';

export type VoiceParams = Omit<VoiceRunSpec, 'origin' | 'streamTimeoutMs' | 'seed' | 'gatewayPid' | 'metricsUrl'>;

export interface VoiceResult {
  params: VoiceParams;
  jarvis: VoiceRunResult[];
  floor: VoiceRunResult[];
  errors: string[];
}

export async function runVoiceScenario(ctx: ScenarioContext): Promise<VoiceResult> {
  const p = ctx.opts.params.voice;
  const out: VoiceResult = { params: p, jarvis: [], floor: [], errors: [] };
  const { driver, upstreamBaseUrl } = await startDriver({ tokens: 5, delayMs: 20 });
  try {
    for (let run = 0; run < ctx.opts.runs; run++) {
      const order = run % 2 === 0 ? (['jarvis', 'floor'] as const) : (['floor', 'jarvis'] as const);
      for (const name of order) {
        // The floor has no /v1/events: its subscribers are left out, and the report says so.
        ctx.log(`  run ${run + 1}: voice ${name}, ${p.sessions} sessions${name === 'jarvis' ? ` + ${p.subscribers} subscribers` : ''} for ${p.durationMs / 1000} s`);
        const gw = name === 'jarvis'
          ? await startJarvis({ upstreamBaseUrl, from: ctx.opts.jarvisFrom, nodeArgs: ctx.opts.jarvisNodeArgs ?? [] })
          : await startFloor(new URL(upstreamBaseUrl).origin);
        try {
          const spec: VoiceRunSpec = {
            ...p,
            subscribers: name === 'jarvis' ? p.subscribers : 0,
            origin: gw.origin,
            streamTimeoutMs: ctx.opts.params.streamTimeoutMs,
            seed: 1000 + run,
            gatewayPid: gw.child.pid,
            metricsUrl: gw.metricsUrl,
          };
          const line = driver.waitForLine(/^BENCH_RESULT .*$/, voiceLimitMs(spec) + 60_000);
          driver.send(JSON.stringify({ cmd: 'voice', ...spec }));
          const result = parseResultLine<VoiceRunResult>((await line)[0]);
          if (result) out[name].push(result);
        } catch (err) {
          out.errors.push(`${name}: ${err instanceof Error ? err.message : String(err)}`);
          return out;
        } finally {
          await gw.stop();
        }
      }
    }
    driver.send(JSON.stringify({ cmd: 'exit' }));
    await Promise.race([driver.exited, new Promise((r) => setTimeout(r, 3000))]);
  } finally {
    await driver.stop(2000);
  }
  return out;
}
