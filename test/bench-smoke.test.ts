// Keeps `npm run bench` from rotting: the relay scenario end to end in a tiny configuration (2 streams x 20
// tokens, one run, the direct path, Jarvis and the floor relay, no peer, no pinning), with real processes: mock
// upstream, Jarvis from source, bench/bare-relay.ts, load client. Results go to a temp dir. No timing
// assertions: only that the harness measures something.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { runBench } from '../bench/bench.js';
import { QUICK, type BenchOptions, type BenchParams } from '../bench/config.js';
import { writeReport } from '../bench/report.js';
import { LEDGER_CONFIGS } from '../bench/scenarios/ledger.js';
import { WIRE_COMBOS } from '../bench/scenarios/wire.js';

const outDir = mkdtempSync(join(tmpdir(), 'jarvis-bench-smoke-'));
afterAll(() => rmSync(outDir, { recursive: true, force: true }));

/** One run of `scenarios` from source, unpinned, without the peer, with QUICK's parameters but for `params`. */
const smoke = (scenarios: BenchOptions['scenarios'], params: Partial<BenchParams>): BenchOptions => ({
  scenarios,
  runs: 1,
  quick: true,
  peer: false,
  pin: false,
  build: false,
  jarvisFrom: 'source',
  outDir,
  params: { ...QUICK, ...params, streamTimeoutMs: 10_000 },
});

it('runs the relay scenario against the direct path, Jarvis and the floor relay and writes a report', async () => {
  const results = await runBench(smoke(['relay'], { relay: { levels: [2], tokens: 20, durationMs: 300, warmupMs: 100 } }), () => {});

  expect(results.failures).toEqual({});
  expect(results.peer.available).toBe(false);
  const run = results.relay?.levels[0]?.runs[0];
  expect(run?.errors).toEqual({});
  for (const target of ['direct', 'jarvis', 'floor'] as const) {
    const r = run?.results[target];
    expect(r?.tokensPerSec).toBeGreaterThan(0);
    expect(r?.streams.ok).toBeGreaterThan(0);
    expect(r?.streams.failed).toBe(0);
    expect(r?.tokens).toBe(20 * (r?.streams.started ?? 0));
  }
  expect(run?.results.peer).toBeUndefined();
  // The gateway's CPU was read from /proc (Linux; elsewhere it is NaN and the report says so).
  if (process.platform === 'linux') {
    expect(run?.results.jarvis?.gateway?.cpuSec).toBeGreaterThan(0);
    expect(run?.results.floor?.gateway?.cpuSec).toBeGreaterThan(0);
  }

  const paths = writeReport(results, outDir);
  expect(readFileSync(paths.md, 'utf8')).toContain('## 1. Relay throughput');
  expect(readFileSync(paths.svg, 'utf8')).toMatch(/^<svg[^>]*>/);
  expect(existsSync(paths.json)).toBe(true);
}, 90_000);

it('runs the voice scenario through Jarvis and the floor relay, with barge-ins and subscribers', async () => {
  // Answers of 20-30 tokens at 40 a second, a barge-in in one request of two: every session interrupts itself.
  const voice: BenchParams['voice'] = { sessions: 4, rampMs: 100, durationMs: 2500, thinkMs: [50, 100], answerTokens: [20, 30], tokensPerSec: [40, 40], bargeEvery: 2, subscribers: 2 };
  const results = await runBench(smoke(['voice'], { voice }), () => {});

  expect(results.failures).toEqual({});
  expect(results.voice?.errors).toEqual([]);
  for (const target of ['jarvis', 'floor'] as const) {
    const run = results.voice?.[target][0];
    expect(run?.requests).toBeGreaterThan(0);
    expect(run?.bargeIns).toBeGreaterThan(0);
    // Every answer that was not interrupted arrived whole, and every interrupted one's upstream request closed.
    expect(run?.badAnswers).toBe(0);
    expect(run?.unclosedUpstream).toBe(0);
    expect(run?.upstreamClose.n).toBeGreaterThan(0);
  }
  // Only Jarvis has events; its subscribers saw the sessions.
  expect(results.voice?.jarvis[0]?.events).toBeGreaterThan(0);
  expect(results.voice?.floor[0]?.events).toBe(0);
  expect(readFileSync(writeReport(results, outDir).md, 'utf8')).toContain('## 7. Voice-like sessions');
}, 90_000);

it('runs the wire scenario: chat, Responses and Messages through one Jarvis to an OpenAI, an Anthropic and a Gemini upstream', async () => {
  const results = await runBench(smoke(['wire'], { wire: { streams: 2, tokens: 10, delayMs: 5, phaseMs: 300, warmupMs: 100 } }), () => {});

  expect(results.failures).toEqual({});
  expect(results.wire?.warmupErrors).toEqual([]);
  expect(results.wire?.combos).toEqual([...WIRE_COMBOS]);
  const run = results.wire?.runs[0];
  expect(run?.errors).toEqual({});
  for (const combo of WIRE_COMBOS) {
    const r = run?.results[combo];
    expect(r?.streams.ok).toBeGreaterThan(0);
    expect(r?.streams.failed).toBe(0);
    expect(r?.tokens).toBe(10 * (r?.streams.started ?? 0));
    // Each combination reached the upstream it names, and only that one.
    const started = r?.streams.started ?? 1;
    if (combo.endsWith('anthropic')) expect(run?.anthropicRequests[combo]).toBeGreaterThanOrEqual(started);
    else expect(run?.anthropicRequests[combo]).toBe(0);
    if (combo.endsWith('gemini')) expect(run?.geminiRequests?.[combo]).toBeGreaterThanOrEqual(started);
    else expect(run?.geminiRequests?.[combo]).toBe(0);
    if (process.platform === 'linux') expect(r?.gateway?.cpuSec).toBeGreaterThan(0);
  }
  const md = readFileSync(writeReport(results, outDir).md, 'utf8');
  expect(md).toContain('## 8. CPU per token by wire');
  expect(md).toContain('Messages → Anthropic / chat → OpenAI');
  expect(md).toContain('Responses → Gemini / chat → OpenAI');
  expect(md).toContain('Costliest translated cell');
}, 120_000);

it('runs the rollout scenario: a tool loop through the Responses API over a WebSocket and over HTTP SSE', async () => {
  const rollout: BenchParams['rollout'] = { calls: 3, rollouts: 2, warmupMs: 100, warmupConcurrency: 1, warmup: 1, tokens: 5, outputChars: 20, delayMs: 0, settleMs: 10 };
  const results = await runBench(smoke(['rollout'], { rollout }), () => {});

  expect(results.failures).toEqual({});
  const run = results.rollout?.runs[0];
  expect(run?.error).toBeUndefined();
  expect(run?.result?.errors).toEqual([]);
  expect(run?.result?.ws).toHaveLength(2);
  expect(run?.result?.sse).toHaveLength(2);
  // Every turn reached the upstream: a call per turn but the last, for both transports and the warm-up.
  expect(run?.upstream?.calls).toBeGreaterThanOrEqual(2 * 2 * 3);
  expect(readFileSync(writeReport(results, outDir).md, 'utf8')).toMatch(/## 9\./);
}, 90_000);

it('runs the realtime scenario: text mode against chat completions, and the relay against the Realtime fake directly', async () => {
  const realtime: BenchParams['realtime'] = { tokens: 5, textPairs: 2, turnsPerSet: 2, relay: [{ words: 4, delayMs: 0, pairs: 2 }], responsesPerSet: 2, warmupMs: 100, relayWarmupMs: 100, warmupConcurrency: 1, warmup: 1, settleMs: 10 };
  const results = await runBench(smoke(['realtime'], { realtime }), () => {});

  expect(results.failures).toEqual({});
  const run = results.realtime?.runs[0];
  expect(run?.error).toBeUndefined();
  expect(run?.result?.errors).toEqual([]);
  // Every text turn got the mock's whole answer (the client checks it), over the socket and over HTTP.
  for (const path of ['ws', 'http'] as const) {
    expect(run?.result?.text[path]).toHaveLength(2);
    for (const set of run?.result?.text[path] ?? []) expect(set.ttftMs).toHaveLength(2);
  }
  // Every response came with its audio and transcript (the client checks their number), directly and through the
  // relay: text mode has no audio.
  for (const path of ['direct', 'jarvis'] as const) {
    expect(run?.result?.relay[0]?.[path]).toHaveLength(2);
    for (const set of run?.result?.relay[0]?.[path] ?? []) for (const r of set.responses) expect(r.deltaMs).toHaveLength(8);
  }
  expect(readFileSync(writeReport(results, outDir).md, 'utf8')).toMatch(/## 10\./);
}, 90_000);

it('runs the ledger scenario: the ledger off, embedded and on PostgreSQL, and traced, interleaved, with every line and span accounted for', async () => {
  const ledger: BenchParams['ledger'] = { configs: ['off', 'embedded', 'postgres', 'traced'], streams: 2, tokens: 10, delayMs: 0, warmupMs: 100, idleMs: 100, roundsPerRun: 1, sliceMs: 100, flushMs: 100, settleMs: 300, storeLines: 1000 };
  const results = await runBench(smoke(['ledger'], { ledger }), () => {});

  expect(results.failures).toEqual({});
  const l = results.ledger;
  expect(l?.skipped).toEqual({});
  expect(l?.driverError).toBeUndefined();
  expect(l?.measured).toEqual(LEDGER_CONFIGS.filter((c) => ledger.configs.includes(c)));
  const round = l?.driver?.rounds[0];
  for (const c of ledger.configs) {
    const x = round?.targets[c];
    expect(x?.requests).toBeGreaterThan(0);
    expect(x?.failed).toBe(0);
    expect(x?.short).toBe(0);
    expect(x?.tokens).toBe(10 * (x?.requests ?? 0));
    if (process.platform === 'linux') expect(x?.cpuSec).toBeGreaterThan(0);
  }
  // A ledger line for every request each ledger served (warm-up included), none for the ledger off; a span for each traced one.
  const served = l?.driver?.totalRequests ?? {};
  for (const c of ['embedded', 'postgres', 'traced'] as const) expect(l?.linesWritten[c]).toBe(served[c]);
  expect(l?.linesWritten.off).toBeUndefined();
  expect(l?.traces?.spans).toBeGreaterThanOrEqual(served.traced ?? Infinity);
  expect(l?.traces?.refused).toBe(0);
  // Both stores took the lines written straight to them.
  expect(l?.store?.errors).toEqual([]);
  expect(l?.store?.stores.map((s) => s.store)).toEqual(['embedded', 'postgres']);
  for (const s of l?.store?.stores ?? []) expect(s.linesPerSec).toBeGreaterThan(0);
  const md = readFileSync(writeReport(results, outDir).md, 'utf8');
  expect(md).toContain('## 11. The usage ledger and traces');
  expect(md).toContain('(d) − (b): tracing turned on');
}, 120_000);

it('runs the workers scenario: JARVIS_WORKERS=2 against one process on one Redis, every stream served', async () => {
  const workers: BenchParams['workers'] = { workers: 2, levels: [2], tokens: 10, warmupMs: 200, idleMs: 100, roundsPerRun: 1, sliceMs: 200, settleMs: 50, ledger: false };
  const results = await runBench(smoke(['workers'], { workers }), () => {});

  expect(results.failures).toEqual({});
  const w = results.workers;
  expect(w?.skipped).toEqual({});
  expect(w?.driverError).toBeUndefined();
  expect(w?.measured).toEqual(['one', 'workers']);
  // The primary and its two workers, against one process.
  expect(Object.values(w?.driver?.pids ?? {}).map((p) => p.length).sort()).toEqual([1, 3]);
  const slices = w?.driver?.slices ?? [];
  expect(slices.length).toBeGreaterThanOrEqual(2);
  for (const s of slices) {
    expect(s.requests).toBeGreaterThan(0);
    expect(s.failed).toBe(0);
    expect(s.tokens).toBe(10 * s.ok);
  }
  const md = readFileSync(writeReport(results, outDir).md, 'utf8');
  expect(md).toContain('## 12. Every core');
}, 120_000);

it('runs the barge-in storm on a single Redis and on a six-node Redis Cluster, every older stream cancelled', async () => {
  const bargeInCluster: BenchParams['bargeInCluster'] = { sessions: 4, requestsPerSession: 3, gapMs: 20, tokens: 20, delayMs: 20, rampsMs: [200], roundsPerRun: 1, warmupSessions: 2, warmupRampMs: 100, idleMs: 100 };
  const results = await runBench(smoke(['barge-in-cluster'], { bargeInCluster }), () => {});

  expect(results.failures).toEqual({});
  const b = results.bargeInCluster;
  expect(b?.skipped).toEqual({});
  expect(b?.error).toBeUndefined();
  expect(b?.measured).toEqual(['single', 'cluster']);
  expect(b?.redis.cluster?.servers).toBe(6);
  expect(b?.storms.map((s) => s.config).sort()).toEqual(['cluster', 'single']);
  for (const s of b?.storms ?? []) {
    expect(s.error).toBeUndefined();
    expect(s.result?.finalStreams).toBe(4);
    expect(s.result?.unclosedUpstream).toBe(0);
  }
  const md = readFileSync(writeReport(results, outDir).md, 'utf8');
  expect(md).toContain('## 13. Barge-in storm on a Redis Cluster');
}, 120_000);
