// Turns raw per-run results into the figures the report prints: per-run values (ratios always against the direct
// path of the same run), then median and min-max across runs.
import type { LoadResult } from './load-client.js';
import type { BargeInRunResult } from './barge-in-driver.js';
import { EVENTS_DROPPED, LOOP_DELAY_BUCKET, LOOP_MAX, LOOP_P99, SUBSCRIBERS_DROPPED, histogramQuantile } from './metrics-scrape.js';
import type { CapacityResult } from './scenarios/capacity.js';
import type { FanoutResult } from './scenarios/fanout.js';
import type { LatencyResult } from './scenarios/latency.js';
import type { RelayResult } from './scenarios/relay.js';
import type { RunResults, TargetName } from './scenarios/stage.js';
import type { VoiceRunResult } from './voice-run.js';
import { COMBO, RELAY, counterparts, type WireCombo, type WireResult } from './scenarios/wire.js';
import type { RolloutRecord, Transport } from './rollout-client.js';
import type { RolloutResult } from './scenarios/rollout.js';
import type { RealtimeResult } from './scenarios/realtime.js';
import type { RelayPath, RelayResponseTiming, RelaySetRecord, RelayVariant, TextPath, TextSetRecord } from './realtime-client.js';
import { quartiles, ratio, spread, type Quartiles, type Spread } from './stats.js';

type Pick = (r: LoadResult) => number;

export const tokensPerSec: Pick = (r) => r.tokensPerSec;
export const streamsPerSec: Pick = (r) => r.streamsPerSec;
/** Gateway CPU per relayed token chunk, µs (numerically equal to CPU seconds per million tokens). */
export const cpuUsPerChunk: Pick = (r) => (r.gateway && r.tokens > 0 ? (r.gateway.cpuSec * 1e6) / r.tokens : NaN);
export const ttftP50: Pick = (r) => r.ttft.p50;
export const ttftP99: Pick = (r) => r.ttft.p99;
export const gapP50: Pick = (r) => r.gap?.p50 ?? NaN;
export const gapP99: Pick = (r) => r.gap?.p99 ?? NaN;

const value = (run: RunResults, t: TargetName, f: Pick) => {
  const r = run.results[t];
  return r ? f(r) : NaN;
};

/** The figure for one target across runs. */
export function across(runs: RunResults[], t: TargetName, f: Pick): Spread {
  return spread(runs.map((run) => value(run, t, f)));
}

/** a's figure divided by b's, per run, across runs. */
export function ratioAcross(runs: RunResults[], a: TargetName, b: TargetName, f: Pick): Spread {
  return spread(runs.map((run) => ratio(value(run, a, f), value(run, b, f))));
}

/** a's figure minus b's, per run, across runs (e.g. added latency against the direct path). */
export function addedAcross(runs: RunResults[], a: TargetName, b: TargetName, f: Pick): Spread {
  return spread(runs.map((run) => value(run, a, f) - value(run, b, f)));
}

/** Streams that failed or came up short, over all runs, and how many were measured. */
export function failures(runs: RunResults[], t: TargetName): { bad: number; total: number; errors: string[] } {
  let bad = 0;
  let total = 0;
  const errors = new Set<string>();
  for (const run of runs) {
    const r = run.results[t];
    if (r) {
      bad += r.streams.failed + r.streams.short;
      total += r.streams.started;
      for (const e of Object.keys(r.streams.errors)) errors.add(e);
    }
    const e = run.errors[t];
    if (e) errors.add(e.slice(0, 200));
  }
  return { bad, total, errors: [...errors].slice(0, 5) };
}

export function relayLevel(relay: RelayResult, concurrency: number) {
  return relay.levels.find((l) => l.concurrency === concurrency);
}

export function latencyPacing(latency: LatencyResult, delayMs: number) {
  return latency.pacings.find((p) => p.delayMs === delayMs);
}

export function bargeInFigures(runs: BargeInRunResult[]) {
  const s = (f: (r: BargeInRunResult) => number) => spread(runs.map(f));
  const sum = (f: (r: BargeInRunResult) => number) => runs.reduce((a, r) => a + f(r), 0);
  return {
    closeP50: s((r) => r.oldClosedAfterNewSent.p50),
    closeP99: s((r) => r.oldClosedAfterNewSent.p99),
    handoffP50: s((r) => r.handoff.p50),
    handoffP99: s((r) => r.handoff.p99),
    finalTtftP50: s((r) => r.finalTtft.p50),
    finalTtftP99: s((r) => r.finalTtft.p99),
    newTtftP50: s((r) => r.newTtft.p50),
    newTtftP99: s((r) => r.newTtft.p99),
    clientQueueP99: s((r) => r.clientQueue.p99),
    loopP99Ms: s((r) => maxOf(r.gateway?.metricSamples[LOOP_P99]) * 1000),
    cpuSec: s((r) => r.gateway?.cpuSec ?? NaN),
    reorderedSessions: sum((r) => r.clientReorderedSessions),
    olderWonSessions: sum((r) => r.olderWonSessions),
    evaluatedSessions: sum((r) => r.finalStreams),
    measuredCloses: sum((r) => r.oldClosedAfterNewSent.n),
    oldStreams: sum((r) => r.oldStreams),
    oldCancelled: sum((r) => r.oldCancelled),
    oldNeverUpstream: sum((r) => r.oldNeverUpstream),
    oldClosedBeforeNext: sum((r) => r.oldClosedBeforeNext),
    finalStreams: sum((r) => r.finalStreams),
    finalComplete: sum((r) => r.finalComplete),
    unclosed: sum((r) => r.unclosedUpstream),
    oldOtherEndings: mergeCounts(runs.map((r) => r.oldOtherEndings)),
    finalOtherEndings: mergeCounts(runs.map((r) => r.finalOtherEndings)),
  };
}

function mergeCounts(list: Record<string, number>[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of list) for (const [k, v] of Object.entries(m)) out[k] = (out[k] ?? 0) + v;
  return out;
}

const maxOf = (xs: number[] | undefined) => (xs && xs.length > 0 ? Math.max(...xs) : NaN);

/** Capacity figures for Jarvis's runs, or for the floor relay's (`which: 'floor'`). */
export function capacityFigures(c: CapacityResult, which: 'jarvis' | 'floor' = 'jarvis') {
  const runs = which === 'jarvis' ? c.runs : c.floorRuns;
  const s = (f: (r: LoadResult) => number) => spread(runs.map(f));
  return {
    served: s((r) => r.streams.ok),
    servedAll: runs.length > 0 && runs.every((r) => r.streams.ok === c.streams),
    rssIdleMiB: s((r) => (r.gateway?.rssStartKiB ?? NaN) / 1024),
    rssPeakMiB: s((r) => (r.gateway?.rssPeakKiB ?? NaN) / 1024),
    rssPerStreamKiB: s((r) => ((r.gateway?.rssPeakKiB ?? NaN) - (r.gateway?.rssStartKiB ?? NaN)) / c.streams),
    // The worst scrape window's p99 (prom-client resets its histogram at every scrape).
    loopP99Ms: s((r) => maxOf(r.gateway?.metricSamples[LOOP_P99]) * 1000),
    loopP99HoldMs: s((r) => maxOf(holding(c, r.gateway?.metricSamples[LOOP_P99])) * 1000),
    // Every watchdog tick while all streams were open, or of the whole run, as one distribution.
    loopP99HoldAllMs: s((r) => loopQuantileWhileHolding(c, r) * 1000),
    loopP99RunAllMs: s((r) => (r.gateway ? histogramQuantile(0.99, r.gateway.metricsStart, r.gateway.metricsEnd) * 1000 : NaN)),
    loopP99MedianMs: s((r) => spread(r.gateway?.metricSamples[LOOP_P99] ?? []).median * 1000),
    loopMaxMs: s((r) => maxOf(r.gateway?.metricSamples[LOOP_MAX]) * 1000),
    scrapes: s((r) => r.gateway?.metricSamples[LOOP_P99]?.length ?? 0),
    ttftP99: s((r) => r.ttft.p99),
    cpuSec: s((r) => r.gateway?.cpuSec ?? NaN),
    failures: runs.reduce((a, r) => a + r.streams.failed + r.streams.short, 0),
    errors: [...new Set(runs.flatMap((r) => Object.keys(r.streams.errors)))].slice(0, 5),
  };
}

/**
 * The scrapes whose whole window fell while every stream was open: after the ramp, before the first stream's
 * last token. Scrape k (from 1) covers ((k - 1) * every, k * every] after the measured phase began.
 */
function holding(c: CapacityResult, samples: number[] | undefined): number[] {
  const [first, last] = holdingScrapes(c);
  return (samples ?? []).slice(first, last + 1);
}

/** The first and last scrape (0-based) whose window fell while every stream was open. */
function holdingScrapes(c: CapacityResult): [number, number] {
  const every = c.scrapeEveryMs;
  return [Math.ceil(c.rampMs / every), Math.floor((c.tokens * c.delayMs) / every) - 1];
}

/** The loop-delay histogram's p99 between the scrape before the holding windows and the last of them. */
function loopQuantileWhileHolding(c: CapacityResult, r: LoadResult): number {
  const g = r.gateway;
  if (!g) return NaN;
  const [first, last] = holdingScrapes(c);
  const at = (i: number) => {
    if (i < 0) return g.metricsStart;
    const out: Record<string, number> = {};
    for (const [key, values] of Object.entries(g.metricSamples)) if (key.startsWith(LOOP_DELAY_BUCKET) && values[i] !== undefined) out[key] = values[i]!;
    return out;
  };
  const to = at(last);
  return Object.keys(to).length > 0 ? histogramQuantile(0.99, at(first - 1), to) : NaN;
}

export function fanoutFigures(f: FanoutResult) {
  const j = (pick: (r: LoadResult) => number) => spread(f.runs.map((run) => (run.results.jarvis ? pick(run.results.jarvis) : NaN)));
  // A labelled counter has no series until its first increment: absent from a scrape that worked means 0.
  const delta = (r: LoadResult, name: string) => {
    const g = r.gateway;
    if (!g || Object.keys(g.metricsStart).length === 0 || Object.keys(g.metricsEnd).length === 0) return NaN;
    return (g.metricsEnd[name] ?? 0) - (g.metricsStart[name] ?? 0);
  };
  return {
    eventsPerSec: j((r) => r.events?.eventsPerSec ?? NaN),
    totalEvents: j((r) => r.events?.totalEvents ?? NaN),
    minPerSubscriber: j((r) => r.events?.minPerSubscriber ?? NaN),
    maxPerSubscriber: j((r) => r.events?.maxPerSubscriber ?? NaN),
    connected: j((r) => r.events?.connected ?? NaN),
    tokenEventsPerStream: j((r) => r.events?.auditor.tokenEventsPerStream.p50 ?? NaN),
    tokensPerEvent: j((r) => r.events?.auditor.tokensPerEvent.p50 ?? NaN),
    auditedStreams: j((r) => r.events?.auditor.streams ?? NaN),
    auditedTokens: j((r) => r.events?.auditor.tokens ?? NaN),
    eventsDropped: j((r) => delta(r, EVENTS_DROPPED)),
    subscribersDropped: j((r) => delta(r, SUBSCRIBERS_DROPPED)),
    throughputRatio: ratioAcross(f.runs, 'jarvis', 'direct', tokensPerSec),
    jarvisTokensPerSec: across(f.runs, 'jarvis', tokensPerSec),
    directTokensPerSec: across(f.runs, 'direct', tokensPerSec),
    jarvisFailures: failures(f.runs, 'jarvis'),
  };
}

/** One value a run for each figure of the voice scenario (runs of one target, in order). */
export function voiceFigures(runs: VoiceRunResult[]) {
  return {
    cores: runs.map((x) => x.gateway.cpuSec / (x.wallMs / 1000)),
    usPerToken: runs.map((x) => (x.gateway.cpuSec / x.tokens) * 1e6),
    rssMiB: runs.map((x) => x.gateway.rssPeakKiB / 1024),
    ttftP50: runs.map((x) => x.ttft.p50),
    ttftP99: runs.map((x) => x.ttft.p99),
    closeP50: runs.map((x) => x.upstreamClose.p50),
    closeP99: runs.map((x) => x.upstreamClose.p99),
    loopP99: runs.map((x) => maxOf(x.gateway.metricSamples[LOOP_P99]) * 1000),
    tokensPerSec: runs.map((x) => x.tokens / (x.wallMs / 1000)),
    requests: runs.map((x) => x.requests),
    driverCores: runs.map((x) => x.driverCores),
  };
}
export type VoiceFigures = ReturnType<typeof voiceFigures>;

/** Per combination of the wire scenario: each figure median and min-max across runs, and its bad streams. */
export function wireComboFigures(w: WireResult, c: WireCombo) {
  const s = (f: (r: LoadResult) => number) => spread(w.runs.map((run) => (run.results[c] ? f(run.results[c]!) : NaN)));
  let bad = 0;
  let total = 0;
  const errors = new Set<string>();
  for (const run of w.runs) {
    const r = run.results[c];
    if (r) {
      bad += r.streams.failed + r.streams.short;
      total += r.streams.started;
      for (const e of Object.keys(r.streams.errors)) errors.add(e);
    }
    if (run.errors[c]) errors.add(run.errors[c]!.slice(0, 200));
  }
  return {
    cpuUsPerToken: s(cpuUsPerChunk),
    ttftP50: s(ttftP50),
    ttftP99: s(ttftP99),
    rssPeakMiB: s((r) => (r.gateway?.rssPeakKiB ?? NaN) / 1024),
    tokensPerSec: s(tokensPerSec),
    bad,
    total,
    errors: [...errors].slice(0, 5),
  };
}

export interface WireRatio {
  /** `a` / `b`: CPU per token, per run. */
  a: WireCombo;
  b: WireCombo;
  /**
   * `pass-through`: Messages → Anthropic against the relay; `relay`: a translated combination against the relay
   * (issue 26's goal); `counterpart`: a translated combination against another pass-through it shares an API with.
   */
  kind: 'pass-through' | 'relay' | 'counterpart';
  label: string;
  /** The goal as a bound on the ratio's median. */
  max: number;
  goal: string;
  measured: Spread;
}

/** The combination's CPU per token in each run (NaN where it was not measured). */
const cpuPerRun = (w: WireResult, c: WireCombo) => w.runs.map((run) => (run.results[c] ? cpuUsPerChunk(run.results[c]!) : NaN));

/** The translated combinations the result measured. */
export const translatedCombos = (w: WireResult) => w.combos.filter((c) => !COMBO[c].passThrough);

/**
 * The issue's comparisons of CPU per token, each computed within a run (the phases minutes apart at most) and then
 * summarised: the Messages pass-through against today's chat relay (≤ 1×); every translated combination against the
 * relay (≤ 1.3×: issue 26's goal, "the costliest translated cell is at most 1.3× the pass-through chat relay"); and
 * each translated combination against the other pass-through it shares its client API or its upstream with (≤ 1.3×).
 */
export function wireRatios(w: WireResult): WireRatio[] {
  const make = (a: WireCombo, b: WireCombo, kind: WireRatio['kind'], max: number, why: string): WireRatio => {
    const pb = cpuPerRun(w, b);
    return { a, b, kind, label: `${COMBO[a].label} / ${COMBO[b].label}${why}`, max, goal: `≤ ${max}×`, measured: spread(cpuPerRun(w, a).map((x, i) => ratio(x, pb[i]!))) };
  };
  const out = [make('messages-anthropic', RELAY, 'pass-through', 1, ' (pass-through vs relay)')];
  for (const t of translatedCombos(w)) out.push(make(t, RELAY, 'relay', 1.3, ' (translated vs relay)'));
  for (const t of translatedCombos(w)) for (const { combo, why } of counterparts(t)) out.push(make(t, combo, 'counterpart', 1.3, ` (${why})`));
  return out.filter((r) => w.combos.includes(r.a) && w.combos.includes(r.b));
}

export interface WireCostliest {
  /** The translated combination whose CPU per token over the relay's has the highest median across runs. */
  combo: WireCombo;
  /** Its ratio to the relay, per run. */
  measured: Spread;
  /** Per run, the highest ratio of any translated combination to the relay (whichever it was), across runs. */
  worstPerRun: Spread;
  /** Which combination was costliest in each run. */
  costliestPerRun: (WireCombo | undefined)[];
  max: number;
  goal: string;
}

/** Issue 26's goal in one line: the costliest translated cell against 1.3× the chat relay; undefined if not measured. */
export function wireCostliest(w: WireResult): WireCostliest | undefined {
  const relays = wireRatios(w).filter((r) => r.kind === 'relay' && Number.isFinite(r.measured.median));
  if (relays.length === 0 || !w.combos.includes(RELAY)) return undefined;
  const top = relays.reduce((a, b) => (b.measured.median > a.measured.median ? b : a));
  const relay = cpuPerRun(w, RELAY);
  const per = w.runs.map((_, i) => {
    let best: { c: WireCombo; x: number } | undefined;
    for (const r of relays) {
      const x = ratio(cpuPerRun(w, r.a)[i]!, relay[i]!);
      if (Number.isFinite(x) && (!best || x > best.x)) best = { c: r.a, x };
    }
    return best;
  });
  return { combo: top.a, measured: top.measured, worstPerRun: spread(per.map((b) => b?.x ?? NaN)), costliestPerRun: per.map((b) => b?.c), max: 1.3, goal: '≤ 1.3×' };
}

/** One transport's rollouts in scenario 9, over every rollout (or turn) of every run. */
export interface RolloutTransportFigures {
  rollouts: number;
  /** A rollout's end-to-end time, ms. */
  e2eMs: Quartiles;
  /** A turn's first token (text or arguments delta), ms: every turn of every rollout. */
  ttftMs: Quartiles;
  /** A turn's request sent → its response.completed, ms: every turn of every rollout. */
  turnMs: Quartiles;
  /** Jarvis's CPU per turn of a rollout, µs. */
  cpuUsPerTurn: Quartiles;
  /** The rollout client's own CPU per turn, µs (not Jarvis's: what the transport costs a client). */
  clientCpuUsPerTurn: Quartiles;
  /** Opening the WebSocket (inside e2eMs); no samples over HTTP. */
  connectMs: Quartiles;
}

export interface RolloutFigures {
  ws: RolloutTransportFigures;
  sse: RolloutTransportFigures;
  /** Pairs with a rollout of each transport measured. */
  pairs: number;
  /** WS / SSE, per pair (the two rollouts back to back), over every pair of every run. */
  ratios: { e2e: Quartiles; ttft: Quartiles; cpu: Quartiles };
  /** Rollouts that failed, over all runs (warm-ups included), and runs that failed whole. */
  errors: string[];
  /** Jarvis's CPU while idle, ms a second, per run. */
  idleCpuMsPerSec: Spread;
  /** Upstream answers per turn the clients sent, over the runs in which no rollout failed (1 when nothing was retried or lost). */
  upstreamPerTurn: number;
}

/** Scenario 9's figures: each transport's quartiles, and the WS / SSE ratios taken per pair. */
export function rolloutFigures(r: RolloutResult): RolloutFigures {
  const turns = r.calls + 1;
  const records = (t: Transport) => r.runs.flatMap((run) => run.result?.[t] ?? []);
  const of = (t: Transport): RolloutTransportFigures => {
    const rs = records(t);
    return {
      rollouts: rs.length,
      e2eMs: quartiles(rs.map((x) => x.totalMs)),
      ttftMs: quartiles(rs.flatMap((x) => x.ttftMs)),
      turnMs: quartiles(rs.flatMap((x) => x.turnMs)),
      cpuUsPerTurn: quartiles(rs.map((x) => (x.cpuSec * 1e6) / turns)),
      clientCpuUsPerTurn: quartiles(rs.map((x) => (x.clientCpuSec * 1e6) / turns)),
      connectMs: quartiles(rs.map((x) => x.connectMs)),
    };
  };
  const pairs: [RolloutRecord, RolloutRecord][] = r.runs.flatMap((run) => {
    const sse = new Map((run.result?.sse ?? []).map((x) => [x.pair, x]));
    return (run.result?.ws ?? []).flatMap((w): [RolloutRecord, RolloutRecord][] => {
      const s = sse.get(w.pair);
      return s ? [[w, s]] : [];
    });
  });
  const paired = (f: (x: RolloutRecord) => number) => quartiles(pairs.map(([w, s]) => ratio(f(w), f(s))));
  let upstream = 0;
  let sent = 0;
  for (const run of r.runs) {
    if (!run.result || !run.upstream || run.result.errors.length > 0) continue;
    upstream += run.upstream.requests;
    sent += (run.result.warmupRollouts + 2 * (r.warmup + r.rollouts)) * turns;
  }
  return {
    ws: of('ws'),
    sse: of('sse'),
    pairs: pairs.length,
    ratios: { e2e: paired((x) => x.totalMs), ttft: paired((x) => quartiles(x.ttftMs).median), cpu: paired((x) => x.cpuSec) },
    errors: r.runs.flatMap((run) => [...(run.error ? [`run failed: ${run.error}`] : []), ...(run.result?.errors ?? [])]),
    idleCpuMsPerSec: spread(r.runs.map((run) => run.result?.idleCpuMsPerSec ?? NaN)),
    upstreamPerTurn: sent > 0 ? upstream / sent : NaN,
  };
}

/** The records of a path, over every run; and the pairs (a record of each path with the same pair number, in one run). */
function pairedRecords<P extends string, R extends { pair: number }>(runs: ({ [K in P]: R[] } | undefined)[], a: P, b: P): { a: R[]; b: R[]; pairs: [R, R][] } {
  const pairs = runs.flatMap((x) => {
    const bs = new Map((x?.[b] ?? []).map((r) => [r.pair, r]));
    return (x?.[a] ?? []).flatMap((r): [R, R][] => {
      const other = bs.get(r.pair);
      return other ? [[r, other]] : [];
    });
  });
  return { a: runs.flatMap((x) => x?.[a] ?? []), b: runs.flatMap((x) => x?.[b] ?? []), pairs };
}

/** One path of scenario 10's text half, over every turn (or set) of every run. */
export interface RealtimeTextFigures {
  turns: number;
  sets: number;
  /** Socket: response.create sent → first response.output_text.delta; HTTP: request sent → first content chunk. ms, every turn. */
  ttftMs: Quartiles;
  /** → response.done, or the end of the body. ms, every turn. */
  totalMs: Quartiles;
  /** Jarvis's CPU per turn of a set, µs, every set. */
  cpuUsPerTurn: Quartiles;
  /** The client's own CPU per turn of a set, µs. */
  clientCpuUsPerTurn: Quartiles;
}

/** One path of scenario 10's relay half, over every response (or set) of every run. */
export interface RealtimeRelayFigures {
  responses: number;
  sets: number;
  /** response.create sent → response.created, the first delta, the last delta, response.done; ms, every response. */
  createdMs: Quartiles;
  firstMs: Quartiles;
  lastMs: Quartiles;
  doneMs: Quartiles;
  /** Jarvis's CPU per response of a set, µs (on the direct path Jarvis relays nothing: its idle over as long). */
  jarvisCpuUs: Quartiles;
  /** The client's own CPU per response, µs. */
  clientCpuUs: Quartiles;
  /** Frames both ways, bytes received and reads of the client's socket, per response of a set. */
  frames: Quartiles;
  bytes: Quartiles;
  reads: Quartiles;
}

export interface RealtimeFigures {
  text: {
    ws: RealtimeTextFigures;
    http: RealtimeTextFigures;
    /** Pairs of sets (a set of each path back to back). */
    pairs: number;
    /** Socket / HTTP, per pair of sets (first token and whole answer: the sets' medians). */
    ratios: { ttft: Quartiles; total: Quartiles; cpu: Quartiles };
    /** Socket minus HTTP, the sets' median first tokens, per pair, ms. */
    ttftDiffMs: Quartiles;
  };
  /** Per relay variant (an answer of the fake, paced or not), in the scenario's order. */
  relay: RealtimeRelayVariantFigures[];
  /** Sets that failed, over all runs (warm-ups included), and runs that failed whole. */
  errors: string[];
  /** Jarvis's CPU while idle, ms a second, per run. */
  idleCpuMsPerSec: Spread;
  /** Turns and responses in the warm-up before the first run. */
  warmup: { text: number; relay: number };
}

/** One answer of the fake (its words and pacing), relayed through Jarvis against read from the fake directly. */
export interface RealtimeRelayVariantFigures {
  /** The fake's answer: words, each a transcript delta and an audio delta, `delayMs` apart (0: unpaced). */
  words: number;
  delayMs: number;
  direct: RealtimeRelayFigures;
  jarvis: RealtimeRelayFigures;
  /** Pairs of responses: the k-th response of each path's set in one pair of sets. */
  pairs: number;
  setPairs: number;
  /** For each delta by its index (0-based, in arrival order): when it arrived on each path, and through Jarvis minus direct per pair, ms. */
  perDelta: { directMs: Quartiles; jarvisMs: Quartiles; addedMs: Quartiles }[];
  /** Through Jarvis minus direct pooled over every delta of every pair. */
  addedAllDeltasMs: Quartiles;
  addedCreatedMs: Quartiles;
  addedFirstMs: Quartiles;
  addedLastMs: Quartiles;
  addedDoneMs: Quartiles;
  /** Through Jarvis / direct, per pair: response.create → response.created, the first delta, the last, response.done. */
  ratios: { created: Quartiles; first: Quartiles; last: Quartiles; done: Quartiles };
  /** Jarvis's CPU per frame it relayed (its CPU over a relayed set's window / the frames both ways), µs. */
  cpuUsPerFrame: Quartiles;
  /** The same less Jarvis's CPU over the paired direct set's window (its idle over about as long), µs. */
  cpuUsPerFrameNet: Quartiles;
}

/** Scenario 10's figures: each path's quartiles, and the ratios and differences taken per pair. */
export function realtimeFigures(r: RealtimeResult): RealtimeFigures {
  const results = r.runs.map((run) => run.result);
  const text = pairedRecords<TextPath, TextSetRecord>(
    results.map((x) => x?.text),
    'ws',
    'http',
  );
  const med = (xs: number[]) => quartiles(xs).median;
  const textOf = (sets: TextSetRecord[]): RealtimeTextFigures => ({
    turns: sets.reduce((n, x) => n + x.ttftMs.length, 0),
    sets: sets.length,
    ttftMs: quartiles(sets.flatMap((x) => x.ttftMs)),
    totalMs: quartiles(sets.flatMap((x) => x.totalMs)),
    cpuUsPerTurn: quartiles(sets.map((x) => (x.cpuSec * 1e6) / x.ttftMs.length)),
    clientCpuUsPerTurn: quartiles(sets.map((x) => (x.clientCpuSec * 1e6) / x.ttftMs.length)),
  });
  const tp = text.pairs;
  return {
    text: {
      ws: textOf(text.a),
      http: textOf(text.b),
      pairs: tp.length,
      ratios: {
        ttft: quartiles(tp.map(([w, h]) => ratio(med(w.ttftMs), med(h.ttftMs)))),
        total: quartiles(tp.map(([w, h]) => ratio(med(w.totalMs), med(h.totalMs)))),
        cpu: quartiles(tp.map(([w, h]) => ratio(w.cpuSec / w.ttftMs.length, h.cpuSec / h.ttftMs.length))),
      },
      ttftDiffMs: quartiles(tp.map(([w, h]) => med(w.ttftMs) - med(h.ttftMs))),
    },
    relay: r.relay.map((v, i) => relayVariantFigures(v, results.map((x) => x?.relay[i]))),
    errors: r.runs.flatMap((run) => [...(run.error ? [`run failed: ${run.error}`] : []), ...(run.result?.errors ?? [])]),
    idleCpuMsPerSec: spread(r.runs.map((run) => run.result?.idleCpuMsPerSec ?? NaN)),
    warmup: { text: r.runs.reduce((n, run) => n + (run.result?.warmup.text ?? 0), 0), relay: r.runs.reduce((n, run) => n + (run.result?.warmup.relay ?? 0), 0) },
  };
}

/** One relay variant's figures: each path's quartiles, and the differences and ratios taken per pair of responses. */
function relayVariantFigures(v: RelayVariant, runs: (Record<RelayPath, RelaySetRecord[]> | undefined)[]): RealtimeRelayVariantFigures {
  const relay = pairedRecords<RelayPath, RelaySetRecord>(runs, 'jarvis', 'direct');
  const last = (x: RelayResponseTiming) => x.deltaMs.at(-1) ?? NaN;
  const perResponse = (x: RelaySetRecord, n: number) => n / x.responses.length;
  const relayOf = (sets: RelaySetRecord[]): RealtimeRelayFigures => {
    const rs = sets.flatMap((x) => x.responses);
    return {
      responses: rs.length,
      sets: sets.length,
      createdMs: quartiles(rs.map((x) => x.createdMs)),
      firstMs: quartiles(rs.map((x) => x.deltaMs[0] ?? NaN)),
      lastMs: quartiles(rs.map(last)),
      doneMs: quartiles(rs.map((x) => x.doneMs)),
      jarvisCpuUs: quartiles(sets.map((x) => perResponse(x, x.cpuSec * 1e6))),
      clientCpuUs: quartiles(sets.map((x) => perResponse(x, x.clientCpuSec * 1e6))),
      frames: quartiles(sets.map((x) => perResponse(x, x.frames))),
      bytes: quartiles(sets.map((x) => perResponse(x, x.bytes))),
      reads: quartiles(sets.map((x) => perResponse(x, x.reads))),
    };
  };
  // Responses pair up by their place in a pair of sets: the k-th through Jarvis with the k-th direct.
  const rp = relay.pairs.flatMap(([j, d]) => j.responses.flatMap((x, k): [RelayResponseTiming, RelayResponseTiming][] => (d.responses[k] ? [[x, d.responses[k]!]] : [])));
  const deltas = Math.max(0, ...rp.map(([j, d]) => Math.min(j.deltaMs.length, d.deltaMs.length)));
  const diff = (i: number) => rp.map(([j, d]) => (j.deltaMs[i] ?? NaN) - (d.deltaMs[i] ?? NaN));
  const paired = (f: (x: RelayResponseTiming) => number) => ({ added: quartiles(rp.map(([j, d]) => f(j) - f(d))), ratio: quartiles(rp.map(([j, d]) => ratio(f(j), f(d)))) });
  const created = paired((x) => x.createdMs);
  const first = paired((x) => x.deltaMs[0] ?? NaN);
  const lastDelta = paired(last);
  const done = paired((x) => x.doneMs);
  return {
    words: v.words,
    delayMs: v.delayMs,
    direct: relayOf(relay.b),
    jarvis: relayOf(relay.a),
    pairs: rp.length,
    setPairs: relay.pairs.length,
    perDelta: Array.from({ length: deltas }, (_, i) => ({
      directMs: quartiles(relay.b.flatMap((x) => x.responses.map((y) => y.deltaMs[i] ?? NaN))),
      jarvisMs: quartiles(relay.a.flatMap((x) => x.responses.map((y) => y.deltaMs[i] ?? NaN))),
      addedMs: quartiles(diff(i)),
    })),
    addedAllDeltasMs: quartiles(Array.from({ length: deltas }, (_, i) => diff(i)).flat()),
    addedCreatedMs: created.added,
    addedFirstMs: first.added,
    addedLastMs: lastDelta.added,
    addedDoneMs: done.added,
    ratios: { created: created.ratio, first: first.ratio, last: lastDelta.ratio, done: done.ratio },
    cpuUsPerFrame: quartiles(relay.a.map((x) => (x.frames > 0 ? (x.cpuSec * 1e6) / x.frames : NaN))),
    cpuUsPerFrameNet: quartiles(relay.pairs.map(([j, d]) => (j.frames > 0 ? ((j.cpuSec - d.cpuSec) * 1e6) / j.frames : NaN))),
  };
}
