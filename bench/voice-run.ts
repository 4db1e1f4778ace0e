// 7. Voice-like sessions, run inside the barge-in driver (mock and client on one clock): many sessions, each a person
// talking to an assistant. A session asks, listens to an answer streamed at speaking pace, pauses and asks again;
// one request in `bargeEvery` interrupts the answer before it ends (a barge-in). Events subscribers watch it all.
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { MockUpstream } from '../fakes/openai/index.js';
import { LOOP_P99, EVENTS_DROPPED } from './metrics-scrape.js';
import { GatewayMonitor, type MonitorResult } from './monitor.js';
import { distribution, type Dist } from './stats.js';
import { chatBody, runChatStream, streamPool, subscribeEvents, type HttpTarget, type StreamRecord, type Subscription } from './stream-client.js';
import { REQUEST_HEADER, upstreamByTag, watchHeadersSent } from './tagged-requests.js';

export interface VoiceRunSpec {
  origin: string;
  sessions: number;
  /** Sessions start spread over this window, then run until `durationMs` after the first started. */
  rampMs: number;
  durationMs: number;
  /** Pause after an answer before the next question, ms (uniform in [min, max]). */
  thinkMs: [number, number];
  /** Tokens of an answer and its pace in tokens a second (uniform in [min, max]). */
  answerTokens: [number, number];
  tokensPerSec: [number, number];
  /** One request in this many interrupts the answer before it (a barge-in), somewhere in its middle. */
  bargeEvery: number;
  /** /v1/events subscribers (0 for a target without events). */
  subscribers: number;
  streamTimeoutMs: number;
  seed: number;
  gatewayPid?: number;
  metricsUrl?: string;
}

export interface VoiceRunResult {
  requests: number;
  bargeIns: number;
  /** Every request's time to its first token, client side, ms. */
  ttft: Dist;
  /** Barge-in: the new request's headers written to its socket -> the old answer's upstream connection closed, ms. */
  upstreamClose: Dist;
  /** Answers that were not interrupted but did not end with every token and [DONE]. */
  badAnswers: number;
  badEndings: Record<string, number>;
  /** Interrupted answers whose upstream request was still open when the run was read (should be 0). */
  unclosedUpstream: number;
  tokens: number;
  events: number;
  eventsDropped: number;
  wallMs: number;
  /** The driver's own CPU over the run, cores (it holds the mock and every client: above ~0.9 it is the bottleneck). */
  driverCores: number;
  gateway: MonitorResult;
}

/** mulberry32: the same seed gives both targets the same conversation schedule. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export async function runVoice(mock: MockUpstream, spec: VoiceRunSpec): Promise<VoiceRunResult> {
  const random = rng(spec.seed);
  const between = ([lo, hi]: [number, number]) => lo + (hi - lo) * random();
  const run = `v${spec.seed}-${Math.round(performance.now())}`;
  const target: HttpTarget = { origin: spec.origin, path: '/v1/chat/completions', headers: {} };
  // A barge-in has two requests of a session open at once, for a moment.
  const pool = streamPool(spec.origin, spec.sessions * 2 + spec.subscribers + 8);
  const subs: Subscription[] = [];
  try {
    const warm = chatBody({ max_tokens: 1 });
    await Promise.all(Array.from({ length: Math.min(spec.sessions * 2, 4096) }, () => runChatStream(pool, target, warm, { timeoutMs: spec.streamTimeoutMs })));
    for (let i = 0; i < spec.subscribers; i++) subs.push(subscribeEvents(pool, { origin: spec.origin, path: '/v1/events', headers: {} }));
    await Promise.all(subs.map((s) => s.connected));

    const firstRecord = mock.requests.length;
    const headersSent = watchHeadersSent();
    const monitor = new GatewayMonitor({ pid: spec.gatewayPid, metricsUrl: spec.metricsUrl, metrics: [LOOP_P99, EVENTS_DROPPED], scrapeEveryMs: 1000 });
    await monitor.start();
    const driverCpu0 = process.cpuUsage();
    const t0 = performance.now();
    const end = t0 + spec.durationMs;
    const records: { tag: string; barged: boolean; expect: number; rec: StreamRecord }[] = [];
    /** Tag of the request that interrupted, by the tag of the one it interrupted. */
    const interruptedBy = new Map<string, string>();

    // The whole schedule is drawn up front, so both targets get the same conversations whatever their speed.
    const session = async (s: number) => {
      const plan = Array.from({ length: 64 }, () => ({
        think: between(spec.thinkMs),
        tokens: Math.round(between(spec.answerTokens)),
        delayMs: Math.round(1000 / between(spec.tokensPerSec)),
        barge: random() < 1 / spec.bargeEvery,
        at: 0.2 + 0.6 * random(),
      }));
      await sleep((spec.rampMs * s) / spec.sessions);
      const id = `voice-${run}-s${s}`;
      const answers: Promise<unknown>[] = [];
      for (let k = 0; k < plan.length && performance.now() < end; k++) {
        const step = plan[k]!;
        const tag = `${id}#${k}`;
        const body = chatBody({ user: tag, messages: [{ role: 'user', content: `benchmark tokens:${step.tokens} delay:${step.delayMs}` }] });
        const entry = { tag, barged: false, expect: step.tokens, rec: undefined as unknown as StreamRecord };
        records.push(entry);
        const done = runChatStream(pool, target, body, { timeoutMs: spec.streamTimeoutMs, headers: { 'x-session-id': id, [REQUEST_HEADER]: tag } }).then((rec) => (entry.rec = rec));
        const next = plan[k + 1];
        if (next?.barge) {
          // The person speaks over the answer somewhere in its middle.
          await sleep(next.at * step.tokens * step.delayMs);
          entry.barged = true;
          interruptedBy.set(tag, `${id}#${k + 1}`);
          answers.push(done);
          continue;
        }
        await done;
        await sleep(next ? next.think : 0);
      }
      await Promise.all(answers);
    };
    await Promise.all(Array.from({ length: spec.sessions }, (_, s) => session(s)));
    const wallMs = performance.now() - t0;
    const driverCpu = process.cpuUsage(driverCpu0);
    headersSent.stop();
    const gateway = await monitor.stop();

    const { byTag } = await upstreamByTag(mock, firstRecord);

    const ttft: number[] = [];
    const close: number[] = [];
    const badEndings: Record<string, number> = {};
    let badAnswers = 0;
    let unclosedUpstream = 0;
    let tokens = 0;
    for (const { tag, barged, expect, rec } of records) {
      tokens += rec.tokens;
      if (Number.isFinite(rec.ttftMs)) ttft.push(rec.ttftMs);
      if (!barged) {
        if (rec.error || rec.finishReason !== 'stop' || rec.tokens !== expect) {
          badAnswers++;
          const why = rec.error ? `error: ${rec.error.slice(0, 60)}` : `${rec.finishReason ?? 'none'} after ${rec.tokens}/${expect} tokens`;
          badEndings[why] = (badEndings[why] ?? 0) + 1;
        }
        continue;
      }
      const old = byTag.get(tag);
      const sentAt = headersSent.times.get(interruptedBy.get(tag)!);
      // An answer that ended before its interruption was sent was not interrupted after all (a slow first token).
      if (!old || sentAt === undefined) continue;
      if (old.closedAt === undefined) unclosedUpstream++;
      else if (old.closedAt >= sentAt) close.push(old.closedAt - sentAt);
    }
    return {
      requests: records.length,
      bargeIns: interruptedBy.size,
      ttft: distribution(ttft),
      upstreamClose: distribution(close),
      badAnswers,
      badEndings,
      unclosedUpstream,
      tokens,
      events: subs.reduce((n, s) => n + s.counter.total, 0),
      eventsDropped: (gateway.metricsEnd[EVENTS_DROPPED] ?? NaN) - (gateway.metricsStart[EVENTS_DROPPED] ?? NaN),
      wallMs,
      driverCores: (driverCpu.user + driverCpu.system) / 1000 / wallMs,
      gateway,
    };
  } finally {
    for (const s of subs) s.close();
    await Promise.all(subs.map((s) => s.closed.catch(() => {})));
    await pool.destroy().catch(() => {});
  }
}
