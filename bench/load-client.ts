// The load client, run as its own process (pinned away from the gateway under test):
//   node --import tsx bench/load-client.ts '<LoadSpec JSON>' [--watch-stdin]
// Opens `concurrency` streaming chat (or Responses, or Anthropic Messages) requests against one target, optionally with /v1/events subscribers, and
// prints one line `BENCH_RESULT <LoadResult JSON>` on stdout. With --watch-stdin it exits when its parent's
// pipe closes (the parent died), so it never outlives the bench.
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { createParser } from 'eventsource-parser';
import type { Pool } from 'undici';
import { GatewayMonitor, type MonitorResult, type MonitorSpec } from './monitor.js';
import { Samples, distribution, type Dist } from './stats.js';
import { closedLoop, maxTokensField, runChatStream, streamBody, streamPool, subscribeEvents, type HttpTarget, type StreamRecord, type Subscription, type Wire } from './stream-client.js';

export interface LoadSpec {
  label: string;
  target: HttpTarget;
  /** Concurrent streams, one connection each. */
  concurrency: number;
  /** Tokens a complete stream carries; a stream with fewer is counted as short. */
  expectTokens: number;
  /** closed: every worker starts a new stream as soon as its last one ends, until durationMs; once: one each. */
  mode: 'closed' | 'once';
  durationMs: number;
  /** Worker i starts i * rampMs / concurrency after the measured phase begins. */
  rampMs: number;
  /** Concurrent warm-up streams (max_tokens 1) before measuring, so every connection is open; 0 for none. */
  warmupStreams: number;
  /**
   * Then, for this long, a closed loop of short streams on those connections: a gateway's first few thousand
   * requests run partly unoptimised code on a heap still sizing itself, and a bigger code base takes longer to warm.
   */
  warmupMs?: number;
  recordGaps: boolean;
  streamTimeoutMs: number;
  /** Hard cap on measured streams. */
  maxStreams: number;
  /** Extra fields for the request body. */
  body?: Record<string, unknown>;
  /** The API the client speaks (default chat): the body's shape and what counts as a token. */
  wire?: Wire;
  monitor?: MonitorSpec;
  subscribers?: { target: HttpTarget; count: number; settleMs: number };
}

export interface EventsResult {
  subscribers: number;
  connected: number;
  totalEvents: number;
  minPerSubscriber: number;
  maxPerSubscriber: number;
  byType: Record<string, number>;
  eventsPerSec: number;
  /** One subscriber parses every event fully: chat.token events and tokens per stream. */
  auditor: { streams: number; tokenEvents: number; tokens: number; tokenEventsPerStream: Dist; tokensPerEvent: Dist };
}

export interface LoadResult {
  label: string;
  concurrency: number;
  wallMs: number;
  streams: { started: number; ok: number; short: number; failed: number; finishReasons: Record<string, number>; errors: Record<string, number> };
  tokens: number;
  frames: number;
  tokensPerSec: number;
  streamsPerSec: number;
  ttft: Dist;
  gap: Dist | undefined;
  gapsDropped: number;
  gateway: MonitorResult | undefined;
  events: EventsResult | undefined;
}

const RESULT_PREFIX = 'BENCH_RESULT ';

export async function runLoad(spec: LoadSpec): Promise<LoadResult> {
  const pool = streamPool(spec.target.origin, Math.max(spec.concurrency, spec.warmupStreams) + 4);
  try {
    if (spec.warmupStreams > 0) await warmUp(pool, spec);
    return await measure(pool, spec);
  } finally {
    await pool.destroy().catch(() => {});
  }
}

async function warmUp(pool: Pool, spec: LoadSpec): Promise<void> {
  const wire = spec.wire ?? 'chat';
  const body = streamBody(wire, { ...spec.body, [maxTokensField(wire)]: 1 });
  await Promise.all(Array.from({ length: spec.warmupStreams }, () => runChatStream(pool, spec.target, body, { timeoutMs: spec.streamTimeoutMs, wire })));
  if (!spec.warmupMs) return;
  const short = streamBody(wire, { ...spec.body, [maxTokensField(wire)]: 4 });
  await closedLoop(spec.warmupStreams, spec.warmupMs, () => runChatStream(pool, spec.target, short, { timeoutMs: spec.streamTimeoutMs, wire }));
}

async function measure(pool: Pool, spec: LoadSpec): Promise<LoadResult> {
  const wire = spec.wire ?? 'chat';
  const body = streamBody(wire, spec.body);
  const gaps = spec.recordGaps ? new Samples(64 * 1024) : undefined;
  const ttfts = new Samples(1024, 1_000_000);
  const streams: LoadResult['streams'] = { started: 0, ok: 0, short: 0, failed: 0, finishReasons: {}, errors: {} };
  let tokens = 0;
  let frames = 0;

  const events = spec.subscribers ? await openSubscribers(spec.subscribers) : undefined;
  const monitor = new GatewayMonitor(spec.monitor ?? {});
  await monitor.start();

  const t0 = performance.now();
  const deadline = t0 + spec.durationMs;
  const tally = (r: StreamRecord) => {
    tokens += r.tokens;
    frames += r.frames;
    if (Number.isFinite(r.ttftMs)) ttfts.push(r.ttftMs);
    const reason = r.finishReason ?? 'none';
    streams.finishReasons[reason] = (streams.finishReasons[reason] ?? 0) + 1;
    if (r.error) {
      streams.failed++;
      const key = r.error.slice(0, 100);
      if (key in streams.errors || Object.keys(streams.errors).length < 20) streams.errors[key] = (streams.errors[key] ?? 0) + 1;
    } else if (r.tokens !== spec.expectTokens) streams.short++;
    else streams.ok++;
  };
  const worker = async (i: number) => {
    if (spec.rampMs > 0) await sleep((spec.rampMs * i) / spec.concurrency);
    do {
      if (streams.started >= spec.maxStreams) return;
      streams.started++;
      const r = await runChatStream(pool, spec.target, body, { timeoutMs: spec.streamTimeoutMs, gaps, wire });
      tally(r);
      // A failing target answers at once: back off so a closed loop does not spin.
      if (r.error) await sleep(20);
    } while (spec.mode === 'closed' && performance.now() < deadline);
  };
  await Promise.all(Array.from({ length: spec.concurrency }, (_, i) => worker(i)));
  const wallMs = performance.now() - t0;

  let eventsResult: EventsResult | undefined;
  if (events && spec.subscribers) {
    // Subscribers may lag behind the streams: wait until they have been quiet for settleMs (at most 15 s).
    const settleMs = spec.subscribers.settleMs;
    const giveUp = performance.now() + 15_000;
    for (;;) {
      const last = Math.max(0, ...events.subs.map((s) => s.lastChunkAt).filter(Number.isFinite));
      const quietFor = performance.now() - last;
      if (quietFor >= settleMs || performance.now() > giveUp) break;
      await sleep(Math.min(100, settleMs - quietFor + 1));
    }
    eventsResult = await closeSubscribers(events, t0);
  }
  const gateway = spec.monitor ? await monitor.stop() : undefined;
  return {
    label: spec.label,
    concurrency: spec.concurrency,
    wallMs,
    streams,
    tokens,
    frames,
    tokensPerSec: tokens / (wallMs / 1000),
    streamsPerSec: streams.ok / (wallMs / 1000),
    ttft: ttfts.dist(),
    gap: gaps?.dist(),
    gapsDropped: gaps?.dropped ?? 0,
    gateway,
    events: eventsResult,
  };
}

interface OpenSubscribers {
  pool: Pool;
  subs: Subscription[];
  audit: { perStream: Map<string, { events: number; tokens: number }> };
}

async function openSubscribers(cfg: NonNullable<LoadSpec['subscribers']>): Promise<OpenSubscribers> {
  const pool = streamPool(cfg.target.origin, cfg.count + 2);
  const perStream = new Map<string, { events: number; tokens: number }>();
  const decoder = new TextDecoder();
  const parser = createParser({
    onEvent(e) {
      if (e.event !== 'chat.token') return;
      const ev = JSON.parse(e.data) as { request_id: string; data: { tokens: number } };
      const s = perStream.get(ev.request_id) ?? { events: 0, tokens: 0 };
      s.events++;
      s.tokens += ev.data.tokens;
      perStream.set(ev.request_id, s);
    },
  });
  const subs = Array.from({ length: cfg.count }, (_, i) =>
    subscribeEvents(pool, cfg.target, i === 0 ? (chunk) => parser.feed(decoder.decode(chunk, { stream: true })) : undefined),
  );
  for (const s of subs) s.closed.catch(() => {});
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('events subscribers did not connect within 15 s')), 15_000);
  });
  try {
    await Promise.race([Promise.all(subs.map((s) => s.connected)), timeout]);
  } finally {
    clearTimeout(timer);
  }
  return { pool, subs, audit: { perStream } };
}

async function closeSubscribers(open: OpenSubscribers, t0: number): Promise<EventsResult> {
  const counts = open.subs.map((s) => s.counter.total);
  const byType: Record<string, number> = {};
  for (const s of open.subs) for (const [k, v] of s.counter.byType) byType[k] = (byType[k] ?? 0) + v;
  const lastAt = Math.max(...open.subs.map((s) => s.lastChunkAt).filter(Number.isFinite));
  for (const s of open.subs) s.close();
  await Promise.race([Promise.allSettled(open.subs.map((s) => s.closed)), sleep(5000)]);
  await open.pool.destroy().catch(() => {});
  const per = [...open.audit.perStream.values()];
  const total = counts.reduce((a, b) => a + b, 0);
  return {
    subscribers: open.subs.length,
    connected: open.subs.filter((s) => s.counter.connected).length,
    totalEvents: total,
    minPerSubscriber: Math.min(...counts),
    maxPerSubscriber: Math.max(...counts),
    byType,
    eventsPerSec: total / ((lastAt - t0) / 1000),
    auditor: {
      streams: per.length,
      tokenEvents: per.reduce((a, s) => a + s.events, 0),
      tokens: per.reduce((a, s) => a + s.tokens, 0),
      tokenEventsPerStream: distribution(per.map((s) => s.events)),
      tokensPerEvent: distribution(per.map((s) => s.tokens / s.events)),
    },
  };
}

/** Reads a result line printed by this client (or the barge-in driver); JSON null stands for NaN. */
export function parseResultLine<T>(line: string): T | undefined {
  if (!line.startsWith(RESULT_PREFIX)) return undefined;
  return JSON.parse(line.slice(RESULT_PREFIX.length), (_k, v: unknown) => (v === null ? NaN : v)) as T;
}

export function resultLine(result: unknown): string {
  return `${RESULT_PREFIX}${JSON.stringify(result)}\n`;
}

/**
 * A driver process's main, when `moduleUrl` is the script node was started with: its spec is the JSON in argv[2];
 * with `--watch-stdin` it exits (3) when the bench that spawned it goes; it gives up (4) after `limitMs(spec)`,
 * whatever happens; and it prints its result as one result line.
 */
export function driverMain<S>(name: string, moduleUrl: string, limitMs: (spec: S) => number, run: (spec: S) => Promise<unknown>): void {
  if (!process.argv[1] || moduleUrl !== pathToFileURL(process.argv[1]).href) return;
  const main = async () => {
    const spec = JSON.parse(process.argv[2] ?? '') as S;
    if (process.argv.includes('--watch-stdin')) {
      process.stdin.on('close', () => process.exit(3));
      process.stdin.resume();
    }
    const limit = limitMs(spec);
    setTimeout(() => {
      process.stderr.write(`${name}: gave up after ${limit} ms\n`);
      process.exit(4);
    }, limit).unref();
    const result = await run(spec);
    process.stdout.write(resultLine(result), () => process.exit(0));
  };
  main().catch((err: unknown) => {
    process.stderr.write(`${name}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  });
}

// Bounded whatever happens: ramp + duration + one stream's time limit + margin.
driverMain<LoadSpec>('load-client', import.meta.url, (spec) => spec.rampMs + spec.durationMs + spec.streamTimeoutMs * 2 + 30_000, runLoad);
