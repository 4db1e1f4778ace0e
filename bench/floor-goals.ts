// Issue 18's goals, set against the floor relay measured in the same run: each row Jarvis's figure, the floor's,
// and the per-run comparison the goal names (a ratio, or a difference in ms), median and min-max across runs.
import type { BenchResults } from './bench.js';
import { capacityFigures, cpuUsPerChunk, gapP99, ttftP50, ttftP99, voiceFigures } from './figures.js';
import { stormLabel, type TargetRow } from './headline.js';
import { stormRate } from './scenarios/barge-in.js';
import type { LoadResult } from './load-client.js';
import type { BargeInRunResult } from './barge-in-driver.js';
import type { RunResults } from './scenarios/stage.js';
import { ratio, spread, type Spread } from './stats.js';

export interface FloorRow extends TargetRow {
  jarvis: Spread;
  floor: Spread;
  figureUnit: string;
}

const pass = (s: Spread, ok: (v: number) => boolean) => (Number.isFinite(s.median) ? ok(s.median) : undefined);
const added = (runs: RunResults[], t: 'jarvis' | 'floor', f: (r: LoadResult) => number) =>
  runs.map((run) => (run.results[t] && run.results.direct ? f(run.results[t]!) - f(run.results.direct!) : NaN));
const each = (runs: RunResults[], t: 'jarvis' | 'floor', f: (r: LoadResult) => number) => runs.map((run) => (run.results[t] ? f(run.results[t]!) : NaN));
const pairs = (a: number[], b: number[], f: (x: number, y: number) => number) => spread(a.map((x, i) => f(x, b[i] ?? NaN)));
const cpuPerRequest = (x: BargeInRunResult) => (x.gateway.cpuSec / x.requests) * 1000;

export function floorRows(r: BenchResults): FloorRow[] {
  const rows: FloorRow[] = [];
  /** `ok` undefined: a figure the issue asks to see, with no goal. */
  const row = (target: string, goal: string, j: number[], f: number[], figureUnit: string, cmp: 'ratio' | 'minus', ok?: (v: number) => boolean): void => {
    const measured = pairs(j, f, cmp === 'ratio' ? ratio : (x, y) => x - y);
    rows.push({ target, goal, measured, unit: cmp === 'ratio' ? '×' : 'ms', pass: ok ? pass(measured, ok) : undefined, jarvis: spread(j), floor: spread(f), figureUnit });
  };
  if (r.relay) {
    for (const level of r.relay.levels.filter((l) => l.concurrency > 1)) {
      const vsDirect = (t: 'jarvis' | 'floor') => level.runs.map((run) => ratio(run.results[t]?.tokensPerSec, run.results.direct?.tokensPerSec));
      row(`Flood ${level.concurrency} streams: throughput vs direct`, '≥ 0.85', vsDirect('jarvis'), vsDirect('floor'), '×', 'ratio', (v) => v >= 0.85);
    }
  }
  if (r.latency) {
    for (const p of r.latency.pacings) {
      row(`CPU per paced chunk @ ${p.delayMs} ms`, '≤ 1.25', each(p.runs, 'jarvis', cpuUsPerChunk), each(p.runs, 'floor', cpuUsPerChunk), 'µs', 'ratio', (v) => v <= 1.25);
    }
    const p20 = r.latency.pacings.find((p) => p.delayMs === 20) ?? r.latency.pacings[0];
    if (p20) {
      const c = r.latency.concurrency;
      row(`Paced ${c} @ ${p20.delayMs} ms: added TTFT p50`, '≤ floor + 2 ms', added(p20.runs, 'jarvis', ttftP50), added(p20.runs, 'floor', ttftP50), 'ms', 'minus', (v) => v <= 2);
      row(`Paced ${c} @ ${p20.delayMs} ms: added TTFT p99`, '≤ floor + 3 ms', added(p20.runs, 'jarvis', ttftP99), added(p20.runs, 'floor', ttftP99), 'ms', 'minus', (v) => v <= 3);
      row(`Paced ${c} @ ${p20.delayMs} ms: added gap p99`, '≤ floor + 3 ms', added(p20.runs, 'jarvis', gapP99), added(p20.runs, 'floor', gapP99), 'ms', 'minus', (v) => v <= 3);
    }
  }
  const b = r.bargeIn;
  if (b) {
    for (const rate of b.rates.filter((x) => x.jarvis.runs.length > 0)) {
      // The goals are by arrival rate: 1.3 at 250 requests a second, 1.5 at 1,000.
      const goal = stormRate(b, rate.rampMs) <= 250 ? 1.3 : 1.5;
      const close = (x: BargeInRunResult) => x.oldClosedAfterNewSent.p99;
      row(`Storm at ${stormLabel(b, rate.rampMs)}: old upstream closed p99`, `≤ ${goal}`, rate.jarvis.runs.map(close), rate.floor.runs.map(close), 'ms', 'ratio', (v) => v <= goal);
      row(`Storm at ${stormLabel(b, rate.rampMs)}: CPU per request`, '≤ 1.3', rate.jarvis.runs.map(cpuPerRequest), rate.floor.runs.map(cpuPerRequest), 'ms', 'ratio', (v) => v <= 1.3);
    }
  }
  const c = r.capacity;
  if (c && c.runs.length > 0) {
    const perStream = (x: LoadResult) => ((x.gateway?.rssPeakKiB ?? NaN) - (x.gateway?.rssStartKiB ?? NaN)) / c.streams;
    row(`Capacity ${c.streams} streams: RSS per stream`, '≤ 1.4', c.runs.map(perStream), c.floorRuns.map(perStream), 'KiB', 'ratio', (v) => v <= 1.4);
    const j = capacityFigures(c);
    const f = capacityFigures(c, 'floor');
    // An absolute goal: the floor's figure is beside it for scale.
    rows.push({ target: `Capacity ${c.streams} streams: event-loop p99 while all are open`, goal: '≤ 10 ms', measured: j.loopP99HoldAllMs, unit: 'ms', pass: pass(j.loopP99HoldAllMs, (v) => v <= 10), jarvis: j.loopP99HoldAllMs, floor: f.loopP99HoldAllMs, figureUnit: 'ms' });
  }
  const v = r.voice;
  if (v && v.jarvis.length > 0) {
    const j = voiceFigures(v.jarvis);
    const f = voiceFigures(v.floor);
    const label = `Voice, ${v.params.sessions} sessions`;
    // No goal in the issue: measured and shown.
    row(`${label}: CPU`, 'measured', j.cores, f.cores, 'cores', 'ratio');
    row(`${label}: peak RSS`, 'measured', j.rssMiB, f.rssMiB, 'MiB', 'ratio');
    row(`${label}: TTFT p99`, 'measured', j.ttftP99, f.ttftP99, 'ms', 'minus');
    row(`${label}: barge-in upstream close p99`, 'measured', j.closeP99, f.closeP99, 'ms', 'minus');
  }
  return rows;
}
