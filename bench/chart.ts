// A hand-made SVG bar chart of the headline throughput ratios (gateway / direct path), no chart library.
import type { BenchResults } from './bench.js';
import { fanoutFigures, ratioAcross, tokensPerSec } from './figures.js';
import { fmt } from './headline.js';
import type { Spread } from './stats.js';

interface Bar {
  who: 'Jarvis' | 'peer';
  value: Spread;
}
interface Group {
  label: string;
  bars: Bar[];
  /** The target for Jarvis / direct, drawn as a dashed marker. */
  goal?: number;
}

const COLORS = { Jarvis: '#2b6cb0', peer: '#a0aec0' } as const;
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

export function chartGroups(r: BenchResults): Group[] {
  const groups: Group[] = [];
  for (const level of r.relay?.levels ?? []) {
    const c = level.concurrency;
    groups.push({
      label: `Flood, ${c} stream${c === 1 ? '' : 's'}`,
      bars: [
        { who: 'Jarvis', value: ratioAcross(level.runs, 'jarvis', 'direct', tokensPerSec) },
        { who: 'peer', value: ratioAcross(level.runs, 'peer', 'direct', tokensPerSec) },
      ],
      ...(c > 1 ? { goal: 0.5 } : {}),
    });
  }
  for (const p of r.latency?.pacings ?? []) {
    groups.push({
      label: `Paced ${r.latency!.concurrency} @ ${p.delayMs} ms`,
      bars: [
        { who: 'Jarvis', value: ratioAcross(p.runs, 'jarvis', 'direct', tokensPerSec) },
        { who: 'peer', value: ratioAcross(p.runs, 'peer', 'direct', tokensPerSec) },
      ],
      goal: 0.98,
    });
  }
  if (r.fanout) {
    groups.push({ label: `${r.fanout.streams} streams + ${r.fanout.subscribers} subs`, bars: [{ who: 'Jarvis', value: fanoutFigures(r.fanout).throughputRatio }] });
  }
  return groups;
}

export function renderChart(r: BenchResults): string {
  const groups = chartGroups(r);
  const W = 780;
  const left = 200;
  const right = 90;
  const plotW = W - left - right;
  const barH = 14;
  const top = 64;
  const values = groups.flatMap((g) => g.bars.flatMap((b) => [b.value.max, b.value.median])).filter(Number.isFinite);
  const xMax = Math.max(1.25, Math.ceil((Math.max(0, ...values) * 1.05) / 0.25) * 0.25);
  const x = (v: number) => left + (Math.max(0, v) / xMax) * plotW;
  const groupH = (g: Group) => g.bars.length * (barH + 3) + 14;
  const H = top + groups.reduce((a, g) => a + groupH(g), 0) + 48;

  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="Helvetica, Arial, sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="#ffffff"/>`);
  out.push(`<text x="12" y="22" font-size="15" font-weight="bold">Throughput relative to the direct path (client → mock)</text>`);
  const runs = r.options.runs;
  out.push(`<text x="12" y="40" fill="#4a5568">Median of ${runs} run${runs === 1 ? '' : 's'}; whiskers: min–max; dashed red: Jarvis target. ${esc(r.machine.cpuModel)}, ${r.machine.cores} cores, Node ${esc(r.machine.node)}${r.options.quick ? ' (--quick)' : ''}</text>`);
  // Legend.
  out.push(`<rect x="${W - 190}" y="48" width="10" height="10" fill="${COLORS.Jarvis}"/><text x="${W - 176}" y="57">Jarvis</text>`);
  out.push(`<rect x="${W - 120}" y="48" width="10" height="10" fill="${COLORS.peer}"/><text x="${W - 106}" y="57">peer (Portkey)</text>`);

  const bottom = H - 38;
  for (let v = 0; v <= xMax + 1e-9; v += 0.25) {
    const gx = x(v).toFixed(1);
    const major = Math.abs(v - 1) < 1e-9;
    out.push(`<line x1="${gx}" y1="${top - 4}" x2="${gx}" y2="${bottom}" stroke="${major ? '#1a202c' : '#e2e8f0'}" stroke-width="${major ? 1.5 : 1}"/>`);
    out.push(`<text x="${gx}" y="${bottom + 14}" text-anchor="middle" fill="#4a5568">${v.toFixed(2).replace(/0$/, '')}×</text>`);
  }
  out.push(`<text x="${x(1).toFixed(1)}" y="${bottom + 26}" text-anchor="middle" fill="#1a202c" font-size="10">= direct</text>`);

  let y = top;
  for (const g of groups) {
    const h = groupH(g);
    out.push(`<text x="${left - 8}" y="${y + h / 2 - 2}" text-anchor="end">${esc(g.label)}</text>`);
    if (g.goal !== undefined) {
      const gx = x(g.goal).toFixed(1);
      out.push(`<line x1="${gx}" y1="${y}" x2="${gx}" y2="${y + h - 10}" stroke="#e53e3e" stroke-width="2" stroke-dasharray="4,3"/>`);
    }
    let by = y;
    for (const b of g.bars) {
      const v = b.value;
      if (Number.isFinite(v.median)) {
        out.push(`<rect x="${left}" y="${by}" width="${(x(v.median) - left).toFixed(1)}" height="${barH}" fill="${COLORS[b.who]}"><title>${b.who}: ${fmt(v.median)}× direct</title></rect>`);
        if (v.n > 1 && v.max > v.min) {
          const cy = by + barH / 2;
          out.push(`<path d="M${x(v.min).toFixed(1)} ${cy}H${x(v.max).toFixed(1)}M${x(v.min).toFixed(1)} ${cy - 4}v8M${x(v.max).toFixed(1)} ${cy - 4}v8" stroke="#1a202c" stroke-width="1" fill="none"/>`);
        }
        out.push(`<text x="${(Math.max(x(v.median), x(v.max || 0)) + 6).toFixed(1)}" y="${by + barH - 3}" fill="#1a202c">${fmt(v.median)}×</text>`);
      } else {
        out.push(`<text x="${left + 4}" y="${by + barH - 3}" fill="#a0aec0">${b.who}: not measured</text>`);
      }
      by += barH + 3;
    }
    y += h;
  }
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
