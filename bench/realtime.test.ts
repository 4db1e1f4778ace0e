import { describe, expect, it } from 'vitest';
import { knobsIn } from '../fakes/realtime/knobs.js';
import { realtimeFigures } from './figures.js';
import { relayQuestion, type RelaySetRecord, type TextSetRecord } from './realtime-client.js';
import { shownDeltas } from './report.js';
import type { RealtimeResult } from './scenarios/realtime.js';

const textSet = (path: 'ws' | 'http', pair: number, ttftMs: number[], cpuSec: number): TextSetRecord => ({ path, pair, ttftMs, totalMs: ttftMs.map((x) => x + 1), cpuSec, clientCpuSec: 0 });

/** A relay set whose responses' deltas arrive `start + i * step` ms after response.create. */
const relaySet = (path: 'direct' | 'jarvis', pair: number, starts: number[], step: number, cpuSec: number, frames = 10): RelaySetRecord => ({
  path,
  pair,
  responses: starts.map((start) => ({ createdMs: start / 2, deltaMs: [0, 1, 2, 3].map((i) => start + i * step), doneMs: start + 4 * step })),
  frames,
  bytes: 1000,
  reads: 4,
  cpuSec,
  clientCpuSec: 0,
});

function result(runs: RealtimeResult['runs']): RealtimeResult {
  return { tokens: 5, textPairs: 2, turnsPerSet: 2, relay: [{ words: 2, delayMs: 0, pairs: 2 }], responsesPerSet: 2, warmupMs: 0, relayWarmupMs: 0, warmupConcurrency: 1, warmup: 0, settleMs: 10, relayModel: 'gpt-realtime', runs };
}

describe('realtime figures', () => {
  it('takes the text ratios per pair of sets, from the sets of one run with the same pair number', () => {
    const f = realtimeFigures(
      result([
        {
          result: {
            label: 'r',
            warmup: { text: 4, relay: 2 },
            idleCpuMsPerSec: 5,
            // Pair 1's HTTP set is missing: only pair 0 pairs up.
            text: { ws: [textSet('ws', 0, [1, 1], 0.002), textSet('ws', 1, [9, 9], 0.004)], http: [textSet('http', 0, [2, 2], 0.001)] },
            relay: [{ direct: [], jarvis: [] }],
            errors: [],
          },
        },
      ]),
    );
    expect(f.text.pairs).toBe(1);
    expect(f.text.ratios.ttft.median).toBeCloseTo(0.5);
    expect(f.text.ratios.cpu.median).toBeCloseTo(2);
    expect(f.text.ttftDiffMs.median).toBeCloseTo(-1);
    expect(f.text.ws.turns).toBe(4);
    // 1,000 and 2,000 µs a turn in its two sets: every set counts, paired or not.
    expect(f.text.ws.cpuUsPerTurn.median).toBeCloseTo(1500);
    expect(f.warmup).toEqual({ text: 4, relay: 2 });
  });

  it("pairs the k-th relayed response with the k-th direct one of the same pair, delta by delta, and nets Jarvis's CPU per frame", () => {
    const f = realtimeFigures(
      result([
        {
          result: {
            label: 'r',
            warmup: { text: 0, relay: 0 },
            idleCpuMsPerSec: 5,
            text: { ws: [], http: [] },
            relay: [{ direct: [relaySet('direct', 0, [1, 2], 1, 0.0001)], jarvis: [relaySet('jarvis', 0, [1.5, 2.5], 2, 0.0003)] }],
            errors: [],
          },
        },
        // A run that failed whole adds nothing.
        { error: 'client died' },
      ]),
    );
    const y = f.relay[0]!;
    expect(y.pairs).toBe(2);
    expect(y.setPairs).toBe(1);
    // Delta i arrives 0.5 + i ms later through Jarvis in both pairs of responses.
    expect(y.perDelta.map((d) => d.addedMs.median)).toEqual([0.5, 1.5, 2.5, 3.5]);
    expect(y.addedFirstMs.median).toBeCloseTo(0.5);
    expect(y.addedLastMs.median).toBeCloseTo(3.5);
    expect(y.addedDoneMs.median).toBeCloseTo(4.5);
    expect(y.cpuUsPerFrame.median).toBeCloseTo(30);
    expect(y.cpuUsPerFrameNet.median).toBeCloseTo(20);
    expect(y.jarvis.jarvisCpuUs.median).toBeCloseTo(150);
    expect(f.errors).toEqual(['run failed: client died']);
  });
});

describe('the relay half', () => {
  it('asks the Realtime fake for the answer it measures', () => {
    expect(knobsIn(relayQuestion(50)).words).toHaveLength(50);
    expect(knobsIn(relayQuestion(50)).delayMs).toBe(0);
    expect(knobsIn(relayQuestion(10, 1))).toMatchObject({ delayMs: 1, scenario: undefined });
    expect(knobsIn(relayQuestion(10, 1)).words).toHaveLength(10);
  });

  it("shows the first deltas, some along the way, the fake's burst edge when unpaced, and the last", () => {
    expect(shownDeltas(100, true)).toEqual([1, 2, 10, 25, 50, 64, 65, 75, 100]);
    expect(shownDeltas(20, false)).toEqual([1, 2, 5, 10, 15, 20]);
    expect(shownDeltas(8, true)).toEqual([1, 2, 4, 6, 8]);
  });
});
