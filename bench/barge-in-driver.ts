// The barge-in driver, run as its own process: it hosts the mock upstream in-process (startMockUpstream), so the
// mock's receivedAt/closedAt and the client's send times share one clock (performance.now()).
//   node --import tsx bench/barge-in-driver.ts [--watch-stdin]
// Prints `BENCH_READY <mock base url>`, then reads one JSON command per stdin line:
//   {"cmd":"run", ...BargeInRunSpec}  ->  `BENCH_RESULT <BargeInRunResult JSON>`
//   {"cmd":"voice", ...VoiceRunSpec}   ->  `BENCH_RESULT <VoiceRunResult JSON>` (voice-run.ts)
//   {"cmd":"exit"}
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';
import { startMockUpstream, type MockUpstream } from '../fakes/openai/index.js';
import { REQUEST_HEADER, upstreamByTag, watchHeadersSent } from './tagged-requests.js';
import { resultLine } from './load-client.js';
import { runVoice, type VoiceRunSpec } from './voice-run.js';
import { LOOP_MAX, LOOP_P99 } from './metrics-scrape.js';
import { GatewayMonitor, type MonitorResult } from './monitor.js';
import { hostLoad, hostSample, type HostLoad } from './host-load.js';
import { cpuSeconds } from './proc-stats.js';
import { distribution, type Dist } from './stats.js';
import { chatBody, runChatStream, streamPool, type HttpTarget, type StreamRecord } from './stream-client.js';

export interface BargeInRunSpec {
  jarvisOrigin: string;
  /** Several instances on one Redis: a session's requests alternate between them (request k → k mod n). */
  jarvisOrigins?: string[];
  sessions: number;
  requestsPerSession: number;
  /** Time between a session's requests. */
  gapMs: number;
  /** Sessions start spread over this window. */
  rampMs: number;
  /** Tokens of a stream that is not interrupted (the mock's default). */
  tokens: number;
  streamTimeoutMs: number;
  /** Jarvis's pid and /metrics, for its CPU, RSS and event-loop lag during the storm. */
  jarvisPid?: number;
  metricsUrl?: string;
  /**
   * Processes whose CPU over the storm is summed by group (e.g. `jarvis`: both instances of a pair, `redis`: every
   * redis-server of a cluster), read over the same window as `gateway`.
   */
  cpuGroups?: Record<string, number[]>;
  /** With cpuGroups: the bench's own other processes, for what else the machine did over the storm (host-load.ts). */
  hostPids?: number[];
}

export interface BargeInRunResult {
  sessions: number;
  requests: number;
  /** New request's headers written to its socket by the client -> old upstream connection closed at the mock, ms. */
  oldClosedAfterNewSent: Dist;
  /** Request handed to undici -> its headers written to the socket: the client's own queueing, ms. */
  clientQueue: Dist;
  /** Sessions whose requests the client itself wrote out of order (left out of every figure but clientQueue). */
  clientReorderedSessions: number;
  /** Sessions (written in order) where an older request's stream ran to the end, so a newer one lost. */
  olderWonSessions: number;
  /** Old upstream connection closed -> new request arrived at the mock, ms: Jarvis's hand-over. */
  handoff: Dist;
  /** TTFT of each session's last request (the one that is not interrupted), client side, ms. */
  finalTtft: Dist;
  /** TTFT of every superseding request that got a token, ms. */
  newTtft: Dist;
  /** Superseded requests that never reached the upstream (cancelled while waiting). */
  oldNeverUpstream: number;
  /** Superseded upstream requests whose connection closed before the next request was even sent. */
  oldClosedBeforeNext: number;
  oldStreams: number;
  oldCancelled: number;
  oldOtherEndings: Record<string, number>;
  finalStreams: number;
  finalComplete: number;
  finalOtherEndings: Record<string, number>;
  /** Upstream requests whose connection had not closed when the run was read (should be 0). */
  unclosedUpstream: number;
  wallMs: number;
  gateway: MonitorResult;
  /** Each of spec.cpuGroups' CPU seconds over the storm (when asked). */
  groupCpuSec?: Record<string, number>;
  /** The machine over the storm (when cpuGroups were asked). */
  host?: HostLoad;
}

function ending(r: StreamRecord): string {
  if (r.error) return `error: ${r.error.slice(0, 80)}`;
  return r.finishReason ?? 'none';
}

export async function runBargeIn(mock: MockUpstream, spec: BargeInRunSpec): Promise<BargeInRunResult> {
  const R = spec.requestsPerSession;
  const run = randomBytes(4).toString('hex');
  const origins = spec.jarvisOrigins ?? [spec.jarvisOrigin];
  const targets: HttpTarget[] = origins.map((origin) => ({ origin, path: '/v1/chat/completions', headers: {} }));
  const pools = origins.map((origin) => streamPool(origin, Math.ceil((spec.sessions * R) / origins.length) + 8));
  try {
    // Warm the JITs and one connection per request of the storm, outside any session, so the storm opens no
    // connection: a request on a brand-new connection can reach Jarvis's handler after a later request of its
    // session on a warm one, and the storm would then measure accept order, not barge-in.
    const warm = chatBody({ max_tokens: 1 });
    const perOrigin = Math.ceil(Math.min(spec.sessions * R, 8192) / origins.length);
    await Promise.all(
      pools.flatMap((p, i) => Array.from({ length: perOrigin }, () => runChatStream(p, targets[i]!, warm, { timeoutMs: spec.streamTimeoutMs }))),
    );

    const firstRecord = mock.requests.length;
    const headersSent = watchHeadersSent();
    const monitor = new GatewayMonitor({ pid: spec.jarvisPid, metricsUrl: spec.metricsUrl, metrics: [LOOP_P99, LOOP_MAX], scrapeEveryMs: 500 });
    const groups = Object.entries(spec.cpuGroups ?? {});
    const groupCpu = () => Object.fromEntries(groups.map(([name, pids]) => [name, pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0)]));
    const watched = [...new Set([...groups.flatMap(([, pids]) => pids), ...(spec.hostPids ?? [])])];
    const host0 = groups.length > 0 ? hostSample(watched) : undefined;
    const cpu0 = groupCpu();
    await monitor.start();
    const results: Promise<StreamRecord>[][] = Array.from({ length: spec.sessions }, () => []);
    const t0 = performance.now();
    const fire = (s: number, k: number) => {
      const session = `bench-${run}-s${s}`;
      const body = chatBody({ user: `${session}#${k}` });
      const i = k % origins.length;
      results[s]![k] = runChatStream(pools[i]!, targets[i]!, body, { timeoutMs: spec.streamTimeoutMs, headers: { 'x-session-id': session, [REQUEST_HEADER]: `${session}#${k}` } });
    };
    // Every request is scheduled up front on its own timer: a slow gateway cannot delay the storm.
    const scheduled = new Promise<void>((resolve) => {
      let pending = spec.sessions * R;
      for (let s = 0; s < spec.sessions; s++) {
        const start = (spec.rampMs * s) / spec.sessions;
        for (let k = 0; k < R; k++) {
          setTimeout(() => {
            fire(s, k);
            if (--pending === 0) resolve();
          }, start + k * spec.gapMs);
        }
      }
    });
    await scheduled;
    const records = await Promise.all(results.map((rs) => Promise.all(rs)));
    const wallMs = performance.now() - t0;
    headersSent.stop();
    const gateway = await monitor.stop();
    const cpu1 = groupCpu();
    const host = host0 ? hostLoad(host0, hostSample(watched)) : undefined;
    const groupCpuSec = groups.length > 0 ? Object.fromEntries(groups.map(([name]) => [name, cpu1[name]! - cpu0[name]!])) : undefined;

    // Every upstream connection of this run must close; wait for that, bounded.
    const { upstream, byTag: byKey } = await upstreamByTag(mock, firstRecord);

    const closeAfterSend: number[] = [];
    const clientQueue: number[] = [];
    let clientReorderedSessions = 0;
    let olderWonSessions = 0;
    let oldStreams = 0;
    let finalStreams = 0;
    const handoff: number[] = [];
    const newTtft: number[] = [];
    const finalTtft: number[] = [];
    const oldOther: Record<string, number> = {};
    const finalOther: Record<string, number> = {};
    let oldNeverUpstream = 0;
    let oldClosedBeforeNext = 0;
    let oldCancelled = 0;
    let finalComplete = 0;
    for (let s = 0; s < spec.sessions; s++) {
      const session = `bench-${run}-s${s}`;
      const wroteAt = (k: number) => headersSent.times.get(`${session}#${k}`) ?? NaN;
      for (let k = 0; k < R; k++) clientQueue.push(wroteAt(k) - records[s]![k]!.sentAt);
      // The client itself wrote a request after its successor (e.g. one waited for a connection): Jarvis rightly
      // saw them the other way round, so this session says nothing about Jarvis.
      if (Array.from({ length: R - 1 }, (_, k) => wroteAt(k) < wroteAt(k + 1)).includes(false)) {
        clientReorderedSessions++;
        continue;
      }
      oldStreams += R - 1;
      finalStreams++;
      // The user-visible failure of barge-in: an older request's answer ran to the end while a newer one (written
      // later by the client) was cancelled, i.e. Jarvis admitted them in the other order.
      const completed = (k: number) => !records[s]![k]!.error && records[s]![k]!.finishReason === 'stop';
      if (Array.from({ length: R - 1 }, (_, k) => completed(k)).includes(true)) olderWonSessions++;
      for (let k = 0; k < R; k++) {
        const rec = records[s]![k]!;
        if (k > 0 && Number.isFinite(rec.ttftMs)) newTtft.push(rec.ttftMs);
        if (k === R - 1) {
          if (Number.isFinite(rec.ttftMs)) finalTtft.push(rec.ttftMs);
          if (!rec.error && rec.finishReason === 'stop' && rec.tokens === spec.tokens) finalComplete++;
          else finalOther[ending(rec)] = (finalOther[ending(rec)] ?? 0) + 1;
          continue;
        }
        if (!rec.error && rec.finishReason === 'cancelled') oldCancelled++;
        else oldOther[ending(rec)] = (oldOther[ending(rec)] ?? 0) + 1;
        const old = byKey.get(`${session}#${k}`);
        if (!old) {
          oldNeverUpstream++;
          continue;
        }
        if (old.closedAt === undefined) continue;
        // The moment the new request's headers went to its socket, on the mock's clock.
        const dt = old.closedAt - wroteAt(k + 1);
        if (dt < 0) oldClosedBeforeNext++;
        else closeAfterSend.push(dt);
        const next = byKey.get(`${session}#${k + 1}`);
        if (next) handoff.push(next.receivedAt - old.closedAt);
      }
    }
    return {
      sessions: spec.sessions,
      requests: spec.sessions * R,
      oldClosedAfterNewSent: distribution(closeAfterSend),
      clientQueue: distribution(clientQueue.filter(Number.isFinite)),
      clientReorderedSessions,
      olderWonSessions,
      handoff: distribution(handoff),
      finalTtft: distribution(finalTtft),
      newTtft: distribution(newTtft),
      oldNeverUpstream,
      oldClosedBeforeNext,
      oldStreams,
      oldCancelled,
      oldOtherEndings: oldOther,
      finalStreams,
      finalComplete,
      finalOtherEndings: finalOther,
      unclosedUpstream: upstream.filter((r) => r.closedAt === undefined).length,
      wallMs,
      gateway,
      ...(groupCpuSec ? { groupCpuSec } : {}),
      ...(host ? { host } : {}),
    };
  } finally {
    await Promise.all(pools.map((p) => p.destroy().catch(() => {})));
  }
}

/** The longest a storm may take: its ramp, its requests' gaps and two stream timeouts. */
export function stormLimitMs(spec: Pick<BargeInRunSpec, 'rampMs' | 'gapMs' | 'requestsPerSession' | 'streamTimeoutMs'>): number {
  return spec.rampMs + spec.gapMs * spec.requestsPerSession + spec.streamTimeoutMs * 2;
}

/** The longest a voice run may take: its duration, then the last answers (a stream timeout each, two in a row). */
export function voiceLimitMs(spec: Pick<VoiceRunSpec, 'durationMs' | 'streamTimeoutMs'>): number {
  return spec.durationMs + spec.streamTimeoutMs * 2;
}

async function main(): Promise<void> {
  const tokens = Number(process.argv.find((a) => a.startsWith('--tokens='))?.slice(9) ?? 50);
  const delayMs = Number(process.argv.find((a) => a.startsWith('--delay-ms='))?.slice(11) ?? 20);
  const mock = await startMockUpstream({ host: '127.0.0.1', defaults: { tokens, delayMs } });
  const exit = (code: number) => void mock.close().finally(() => process.exit(code));
  if (process.argv.includes('--watch-stdin')) process.stdin.on('close', () => exit(3));
  process.stdout.write(`BENCH_READY ${mock.url}\n`);
  const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
  for await (const line of rl) {
    if (line.trim() === '') continue;
    const cmd = JSON.parse(line) as { cmd: 'run' | 'voice' | 'exit' };
    if (cmd.cmd === 'exit') break;
    const limitMs = cmd.cmd === 'voice' ? voiceLimitMs(cmd as unknown as VoiceRunSpec) : stormLimitMs(cmd as unknown as BargeInRunSpec);
    const limit = setTimeout(() => {
      process.stderr.write('barge-in-driver: run did not finish in time\n');
      exit(4);
    }, limitMs + 30_000);
    const result = cmd.cmd === 'voice' ? await runVoice(mock, cmd as unknown as VoiceRunSpec) : await runBargeIn(mock, cmd as unknown as BargeInRunSpec);
    clearTimeout(limit);
    // Forget this run's records: the next run must not pay for (or match against) them.
    mock.requests.length = 0;
    process.stdout.write(resultLine(result));
  }
  exit(0);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    process.stderr.write(`barge-in-driver: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  });
}
