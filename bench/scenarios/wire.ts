// 8. What a token costs Jarvis by wire: the same paced answer asked for through each client API
// (/v1/chat/completions, /v1/responses, /v1/messages) from each upstream API: OpenAI (the project's mock), Anthropic
// (bench/anthropic-mock.ts, fakes/anthropic's events) and Gemini (bench/gemini-mock.ts, fakes/gemini's chunks),
// against one warm Jarvis: the nine cells of the matrix that are not the simulator. Two pass the upstream's stream
// through (chat → OpenAI, Messages → Anthropic); the other seven translate it (Responses is always built from Chat
// Completions chunks: the mock does not speak the Responses API, so no upstream here has `responses: native`). Every
// combination is warmed first; then each run measures them all one after the other, in an order that rotates from
// run to run, each phase a closed loop of `streams` streams in a load client of its own on the load CPU. Only
// Jarvis's CPU is measured (its /proc schedstat): the upstreams are processes of their own, on the load CPU.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import type { LoadResult, LoadSpec } from '../load-client.js';
import { runLoadClient } from '../load-runner.js';
import { MESSAGES_VERSION, type Wire } from '../stream-client.js';
import { startAnthropicMock, startGeminiMock, startJarvis, startMock, type JarvisFrom, type Running } from '../targets.js';
import type { ScenarioContext } from './stage.js';

export interface WireParams {
  /** Concurrent streams of every phase (one connection each), in a closed loop. */
  streams: number;
  /** Tokens of every answer, from every upstream, `delayMs` apart. */
  tokens: number;
  delayMs: number;
  /** One measured phase of one combination. */
  phaseMs: number;
  /** Each combination's closed loop before the first run, so no phase measures a path's first requests. */
  warmupMs: number;
}

export const WIRE_COMBOS = [
  'chat-openai',
  'messages-anthropic',
  'chat-anthropic',
  'messages-openai',
  'chat-gemini',
  'messages-gemini',
  'responses-openai',
  'responses-anthropic',
  'responses-gemini',
] as const;
export type WireCombo = (typeof WIRE_COMBOS)[number];

/** The models the Anthropic and Gemini upstreams serve (the OpenAI mock serves Jarvis's default, mock-model). */
export const ANTHROPIC_MODEL = 'claude-bench';
export const GEMINI_MODEL = 'gemini-bench';
/** The key Jarvis sends the Gemini upstream (`x-goog-api-key`), which checks it. */
export const GEMINI_KEY = 'bench-gemini-key';

export type WireUpstream = 'openai' | 'anthropic' | 'gemini';
/** The upstreams that count the answers they start (GET /bench/requests): the OpenAI mock does not. */
export const COUNTED_UPSTREAMS = ['anthropic', 'gemini'] as const;
export type CountedUpstream = (typeof COUNTED_UPSTREAMS)[number];

export interface ComboInfo {
  label: string;
  /** The client's API. */
  wire: Wire;
  upstream: WireUpstream;
  /** The upstream speaks the client's API: its stream passes through. */
  passThrough: boolean;
}

const WIRE_LABEL: Record<Wire, string> = { chat: 'chat', responses: 'Responses', messages: 'Messages' };
const UPSTREAM_LABEL: Record<WireUpstream, string> = { openai: 'OpenAI', anthropic: 'Anthropic', gemini: 'Gemini' };
const combo = (wire: Wire, upstream: WireUpstream): ComboInfo => ({
  label: `${WIRE_LABEL[wire]} → ${UPSTREAM_LABEL[upstream]}`,
  wire,
  upstream,
  // The Responses API is built from Chat Completions chunks (translated) unless an upstream has `responses: native`,
  // which the bench's OpenAI mock does not speak; no client API is Gemini's.
  passThrough: (wire === 'chat' && upstream === 'openai') || (wire === 'messages' && upstream === 'anthropic'),
});

export const COMBO: Record<WireCombo, ComboInfo> = Object.fromEntries(
  WIRE_COMBOS.map((c) => {
    const [wire, upstream] = c.split('-') as [Wire, WireUpstream];
    return [c, combo(wire, upstream)];
  }),
) as Record<WireCombo, ComboInfo>;

/** Today's chat relay: what every translated combination is held to (issue 26: at most 1.3× its CPU per token). */
export const RELAY: WireCombo = 'chat-openai';

/**
 * The pass-throughs a translated combination is also held to, besides the relay: the one with the same client API
 * and the one with the same upstream, where such a pass-through exists and is not the relay itself.
 */
export function counterparts(t: WireCombo): { combo: WireCombo; why: 'same client API' | 'same upstream' }[] {
  const passThroughs = WIRE_COMBOS.filter((c) => COMBO[c].passThrough && c !== RELAY);
  return [
    ...passThroughs.filter((c) => COMBO[c].wire === COMBO[t].wire).map((c) => ({ combo: c, why: 'same client API' as const })),
    ...passThroughs.filter((c) => COMBO[c].upstream === COMBO[t].upstream).map((c) => ({ combo: c, why: 'same upstream' as const })),
  ];
}

export interface WireRun {
  results: Partial<Record<WireCombo, LoadResult>>;
  errors: Partial<Record<WireCombo, string>>;
  /** Answers the Anthropic upstream started during each phase (its connection warm-up included). */
  anthropicRequests: Partial<Record<WireCombo, number>>;
  /** Answers the Gemini upstream started during each phase (absent in results from before it was measured). */
  geminiRequests?: Partial<Record<WireCombo, number>>;
}

export interface WireResult extends WireParams {
  combos: WireCombo[];
  runs: WireRun[];
  /** Warm-up phases that failed (the runs are measured anyway, and say so if the path is broken). */
  warmupErrors: string[];
}

export interface WireOptions {
  runs: number;
  jarvisFrom: JarvisFrom;
  jarvisNodeArgs: string[];
  streamTimeoutMs: number;
  combos?: readonly WireCombo[];
  log(msg: string): void;
}

const message = (err: unknown) => (err instanceof Error ? err.message : String(err));

export function runWire(ctx: ScenarioContext): Promise<WireResult> {
  const o = ctx.opts;
  return measureWire(o.params.wire, { runs: o.runs, jarvisFrom: o.jarvisFrom, jarvisNodeArgs: o.jarvisNodeArgs ?? [], streamTimeoutMs: o.params.streamTimeoutMs, log: ctx.log });
}

const TARGET: Record<Wire, { path: string; headers: Record<string, string> }> = {
  chat: { path: '/v1/chat/completions', headers: {} },
  responses: { path: '/v1/responses', headers: {} },
  messages: { path: '/v1/messages', headers: { 'anthropic-version': MESSAGES_VERSION } },
};

const MODEL: Record<WireUpstream, string> = { openai: 'mock-model', anthropic: ANTHROPIC_MODEL, gemini: GEMINI_MODEL };

/** Answers each counted upstream has started so far. */
async function startedAnswers(upstreams: Record<CountedUpstream, Running>): Promise<Record<CountedUpstream, number>> {
  const count = async (u: Running) => {
    const res = await request(`${u.origin}/bench/requests`, { signal: AbortSignal.timeout(5000) });
    return ((await res.body.json()) as { requests: number }).requests;
  };
  const [anthropic, gemini] = await Promise.all([count(upstreams.anthropic), count(upstreams.gemini)]);
  return { anthropic, gemini };
}

/** Starts the three upstreams and one Jarvis in front of them, measures, and stops them. */
export async function measureWire(p: WireParams, o: WireOptions): Promise<WireResult> {
  const combos = [...(o.combos ?? WIRE_COMBOS)];
  const answer = { tokens: p.tokens, delayMs: p.delayMs };
  const dir = mkdtempSync(join(tmpdir(), 'jarvis-bench-wire-'));
  const stops: (() => Promise<unknown>)[] = [];
  try {
    const openai = await startMock(answer);
    stops.push(() => openai.child.stop());
    const anthropic = await startAnthropicMock(answer);
    stops.push(() => anthropic.child.stop());
    const gemini = await startGeminiMock({ ...answer, apiKey: GEMINI_KEY });
    stops.push(() => gemini.child.stop());
    const config = join(dir, 'upstreams.json');
    // The OpenAI mock is the default upstream (every model but the other two's), as in every other scenario.
    writeFileSync(
      config,
      JSON.stringify({
        upstreams: [
          { name: 'anthropic', provider: 'anthropic', baseUrl: anthropic.origin, models: [ANTHROPIC_MODEL] },
          { name: 'gemini', provider: 'gemini', baseUrl: gemini.baseUrl, apiKey: GEMINI_KEY, models: [GEMINI_MODEL] },
        ],
      }),
    );
    const jarvis = await startJarvis({ upstreamBaseUrl: openai.baseUrl, from: o.jarvisFrom, env: { JARVIS_CONFIG: config }, nodeArgs: o.jarvisNodeArgs });
    stops.push(() => jarvis.stop());
    const counted = { anthropic, gemini };
    const spec = (c: WireCombo, label: string, durationMs: number): LoadSpec => ({
      label,
      target: { origin: jarvis.origin, ...TARGET[COMBO[c].wire] },
      wire: COMBO[c].wire,
      concurrency: p.streams,
      expectTokens: p.tokens,
      mode: 'closed',
      durationMs,
      rampMs: 0,
      // One short stream per connection first, so no phase measures a TCP connect.
      warmupStreams: p.streams,
      recordGaps: false,
      streamTimeoutMs: o.streamTimeoutMs,
      maxStreams: 5_000_000,
      body: { model: MODEL[COMBO[c].upstream] },
      monitor: { pid: jarvis.child.pid },
    });
    const warmupErrors: string[] = [];
    for (const c of combos) {
      o.log(`  warm-up: ${COMBO[c].label}, ${p.streams} streams for ${p.warmupMs / 1000} s`);
      await runLoadClient(spec(c, `wire warm-up ${COMBO[c].label}`, p.warmupMs)).catch((err: unknown) => warmupErrors.push(`${COMBO[c].label}: ${message(err)}`));
    }
    const runs: WireRun[] = [];
    for (let run = 0; run < o.runs; run++) {
      const out: Required<WireRun> = { results: {}, errors: {}, anthropicRequests: {}, geminiRequests: {} };
      // The order rotates, so no combination is always measured after the same one.
      for (let i = 0; i < combos.length; i++) {
        const c = combos[(i + run) % combos.length]!;
        const label = `wire ${COMBO[c].label}, ${p.streams} streams`;
        o.log(`  run ${run + 1}: ${label}`);
        try {
          const before = await startedAnswers(counted);
          const result = await runLoadClient(spec(c, label, p.phaseMs));
          const after = await startedAnswers(counted);
          const served = { anthropic: (out.anthropicRequests[c] = after.anthropic - before.anthropic), gemini: (out.geminiRequests[c] = after.gemini - before.gemini) };
          // A phase that reached the wrong upstream measured another combination: it is an error, not a figure.
          for (const u of COUNTED_UPSTREAMS) {
            const wrong = COMBO[c].upstream === u ? served[u] < result.streams.started : served[u] > 0;
            if (wrong) throw new Error(`${label}: the ${UPSTREAM_LABEL[u]} upstream started ${served[u]} answers for ${result.streams.started} streams`);
          }
          out.results[c] = result;
        } catch (err) {
          out.errors[c] = message(err);
          o.log(`  ${label} failed: ${message(err)}`);
        }
      }
      runs.push(out);
    }
    return { ...p, combos, runs, warmupErrors };
  } finally {
    // Jarvis first, then the upstreams.
    for (const stop of stops.reverse()) await stop().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  }
}
