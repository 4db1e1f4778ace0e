// 8. What a token costs Jarvis by wire: the same paced answer asked for through /v1/chat/completions and
// /v1/messages, from an OpenAI upstream (the project's mock) and from an Anthropic one (bench/anthropic-mock.ts,
// fakes/anthropic's events), against one warm Jarvis. Two combinations pass the upstream's stream through
// (chat → OpenAI, Messages → Anthropic), two translate it (chat → Anthropic, Messages → OpenAI). Every combination
// is warmed first; then each run measures the four one after the other, in an order that rotates from run to run,
// each phase a closed loop of `streams` streams in a load client of its own on the load CPU. Only Jarvis's CPU is
// measured (its /proc schedstat): both upstreams are processes of their own, on the load CPU.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import type { LoadResult, LoadSpec } from '../load-client.js';
import { runLoadClient } from '../load-runner.js';
import { MESSAGES_VERSION, type HttpTarget, type Wire } from '../stream-client.js';
import { startAnthropicMock, startJarvis, startMock, type JarvisFrom } from '../targets.js';
import type { ScenarioContext } from './stage.js';

export interface WireParams {
  /** Concurrent streams of every phase (one connection each), in a closed loop. */
  streams: number;
  /** Tokens of every answer, from both upstreams, `delayMs` apart. */
  tokens: number;
  delayMs: number;
  /** One measured phase of one combination. */
  phaseMs: number;
  /** Each combination's closed loop before the first run, so no phase measures a path's first requests. */
  warmupMs: number;
}

export const WIRE_COMBOS = ['chat-openai', 'messages-anthropic', 'chat-anthropic', 'messages-openai'] as const;
export type WireCombo = (typeof WIRE_COMBOS)[number];

/** The model the Anthropic upstream serves (the OpenAI mock serves Jarvis's default, mock-model). */
export const ANTHROPIC_MODEL = 'claude-bench';

export interface ComboInfo {
  label: string;
  /** The client's API. */
  wire: Wire;
  upstream: 'openai' | 'anthropic';
  /** The upstream speaks the client's API: its stream passes through. */
  passThrough: boolean;
}

export const COMBO: Record<WireCombo, ComboInfo> = {
  'chat-openai': { label: 'chat → OpenAI', wire: 'chat', upstream: 'openai', passThrough: true },
  'messages-anthropic': { label: 'Messages → Anthropic', wire: 'messages', upstream: 'anthropic', passThrough: true },
  'chat-anthropic': { label: 'chat → Anthropic', wire: 'chat', upstream: 'anthropic', passThrough: false },
  'messages-openai': { label: 'Messages → OpenAI', wire: 'messages', upstream: 'openai', passThrough: false },
};

/** The pass-through a translated combination is held to: the same client API's, and the same upstream's. */
export const COUNTERPARTS: Record<'chat-anthropic' | 'messages-openai', { sameClient: WireCombo; sameUpstream: WireCombo }> = {
  'chat-anthropic': { sameClient: 'chat-openai', sameUpstream: 'messages-anthropic' },
  'messages-openai': { sameClient: 'messages-anthropic', sameUpstream: 'chat-openai' },
};

export interface WireRun {
  results: Partial<Record<WireCombo, LoadResult>>;
  errors: Partial<Record<WireCombo, string>>;
  /** Answers the Anthropic upstream started during each phase (its connection warm-up included). */
  anthropicRequests: Partial<Record<WireCombo, number>>;
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

/** Starts both upstreams and one Jarvis in front of them, measures, and stops them. */
export async function measureWire(p: WireParams, o: WireOptions): Promise<WireResult> {
  const combos = [...(o.combos ?? WIRE_COMBOS)];
  const answer = { tokens: p.tokens, delayMs: p.delayMs };
  const openai = await startMock(answer);
  const dir = mkdtempSync(join(tmpdir(), 'jarvis-bench-wire-'));
  try {
    const anthropic = await startAnthropicMock(answer);
    try {
      const config = join(dir, 'upstreams.json');
      // The OpenAI mock is the default upstream (every model but the Anthropic one), as in every other scenario.
      writeFileSync(config, JSON.stringify({ upstreams: [{ name: 'anthropic', provider: 'anthropic', baseUrl: anthropic.origin, models: [ANTHROPIC_MODEL] }] }));
      const jarvis = await startJarvis({ upstreamBaseUrl: openai.baseUrl, from: o.jarvisFrom, env: { JARVIS_CONFIG: config }, nodeArgs: o.jarvisNodeArgs });
      try {
        const target = (c: WireCombo): HttpTarget =>
          COMBO[c].wire === 'messages'
            ? { origin: jarvis.origin, path: '/v1/messages', headers: { 'anthropic-version': MESSAGES_VERSION } }
            : { origin: jarvis.origin, path: '/v1/chat/completions', headers: {} };
        const spec = (c: WireCombo, label: string, durationMs: number): LoadSpec => ({
          label,
          target: target(c),
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
          body: { model: COMBO[c].upstream === 'anthropic' ? ANTHROPIC_MODEL : 'mock-model' },
          monitor: { pid: jarvis.child.pid },
        });
        const anthropicAnswers = async () => {
          const res = await request(`${anthropic.origin}/bench/requests`, { signal: AbortSignal.timeout(5000) });
          return ((await res.body.json()) as { requests: number }).requests;
        };
        const warmupErrors: string[] = [];
        for (const c of combos) {
          o.log(`  warm-up: ${COMBO[c].label}, ${p.streams} streams for ${p.warmupMs / 1000} s`);
          await runLoadClient(spec(c, `wire warm-up ${COMBO[c].label}`, p.warmupMs)).catch((err: unknown) => warmupErrors.push(`${COMBO[c].label}: ${message(err)}`));
        }
        const runs: WireRun[] = [];
        for (let run = 0; run < o.runs; run++) {
          const out: WireRun = { results: {}, errors: {}, anthropicRequests: {} };
          // The order rotates, so no combination is always measured after the same one.
          for (let i = 0; i < combos.length; i++) {
            const c = combos[(i + run) % combos.length]!;
            const label = `wire ${COMBO[c].label}, ${p.streams} streams`;
            o.log(`  run ${run + 1}: ${label}`);
            try {
              const before = await anthropicAnswers();
              const result = await runLoadClient(spec(c, label, p.phaseMs));
              const served = (out.anthropicRequests[c] = (await anthropicAnswers()) - before);
              // A phase that reached the wrong upstream measured another combination: it is an error, not a figure.
              const anthropic = COMBO[c].upstream === 'anthropic';
              if (anthropic ? served < result.streams.started : served > 0) throw new Error(`${label}: the Anthropic upstream started ${served} answers for ${result.streams.started} streams`);
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
        await jarvis.stop();
      }
    } finally {
      await anthropic.child.stop();
    }
  } finally {
    await openai.child.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
