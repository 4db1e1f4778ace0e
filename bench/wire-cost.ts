// What a streamed token costs Jarvis by wire: every client API (chat, Responses, Messages) over every upstream API
// (OpenAI, Anthropic, Gemini), the same paced answer from three upstreams in processes of their own, in rotating
// phases against one warm Jarvis: chat → OpenAI (today's relay) and Messages → Anthropic pass through, the other
// seven cells translate. The same measurement as `npm run bench -- --scenario wire` (bench/scenarios/wire.ts),
// printed rather than written to the report. bench/README.md, eleventh and twelfth rounds.
//   npx tsx bench/wire-cost.ts [--streams 64] [--tokens 50] [--delay 20] [--phase-ms 4000] [--warmup-ms 2000]
//     [--rounds 3] [--combos chat-openai,messages-anthropic,...,responses-gemini] [--quick]
//     [--no-build] [--source] [--no-pin] [--json FILE] [--jarvis-node-args="--cpu-prof --cpu-prof-dir=/tmp/prof"]
// --quick takes the bench's --quick parameters (32 streams of 30 tokens, 2 s phases); explicit options override.
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { FULL, QUICK } from './config.js';
import { fmtSpread } from './headline.js';
import { wireComboFigures, wireCostliest, wireRatios } from './figures.js';
import { pinningActive, pinningAvailable, setPinning, stopAll } from './processes.js';
import { COMBO, RELAY, WIRE_COMBOS, measureWire, type WireCombo, type WireParams } from './scenarios/wire.js';
import { GATEWAY_CPU, LOAD_CPU, buildJarvis } from './targets.js';

const { values } = parseArgs({
  options: {
    streams: { type: 'string' },
    tokens: { type: 'string' },
    delay: { type: 'string' },
    'phase-ms': { type: 'string' },
    'warmup-ms': { type: 'string' },
    rounds: { type: 'string', default: '3' },
    combos: { type: 'string', default: WIRE_COMBOS.join(',') },
    quick: { type: 'boolean', default: false },
    'no-build': { type: 'boolean', default: false },
    source: { type: 'boolean', default: false },
    'no-pin': { type: 'boolean', default: false },
    json: { type: 'string' },
    'jarvis-node-args': { type: 'string', default: '' },
  },
});
const base = values.quick ? QUICK : FULL;
const num = (v: string | undefined, fallback: number) => (v === undefined ? fallback : Number(v));
const params: WireParams = {
  streams: num(values.streams, base.wire.streams),
  tokens: num(values.tokens, base.wire.tokens),
  delayMs: num(values.delay, base.wire.delayMs),
  phaseMs: num(values['phase-ms'], base.wire.phaseMs),
  warmupMs: num(values['warmup-ms'], base.wire.warmupMs),
};
const combos = values.combos.split(',').map((c) => c.trim()) as WireCombo[];
for (const c of combos) if (!(WIRE_COMBOS as readonly string[]).includes(c)) throw new Error(`unknown combination ${JSON.stringify(c)} (${WIRE_COMBOS.join(', ')})`);
const log = (msg: string) => process.stderr.write(`[wire ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);

process.on('SIGINT', () => void stopAll().then(() => process.exit(130)));
setPinning(!values['no-pin'] && pinningAvailable());
if (!values.source && !values['no-build']) {
  log('building Jarvis (npm run build) ...');
  const err = await buildJarvis();
  if (err) throw new Error(err);
}
const result = await measureWire(params, {
  runs: Number(values.rounds),
  jarvisFrom: values.source ? 'source' : 'dist',
  jarvisNodeArgs: values['jarvis-node-args'].split(' ').filter(Boolean),
  streamTimeoutMs: base.streamTimeoutMs,
  combos,
  log,
});
await stopAll();

const pad = (s: string, n: number) => s.padEnd(n);
const out: string[] = [
  `${params.streams} streams of ${params.tokens} tokens, ${params.delayMs} ms apart, from every upstream; ${result.runs.length} rounds of ${params.phaseMs / 1000} s phases per combination (after ${params.warmupMs / 1000} s of warm-up each); median (min–max) across rounds`,
  `pinning: ${pinningActive() ? `Jarvis on CPU ${GATEWAY_CPU}; load clients and the upstreams on CPU ${LOAD_CPU}` : 'none'}; Jarvis from ${values.source ? 'source (tsx)' : 'dist/'}`,
  '',
];
for (const c of result.combos) {
  const f = wireComboFigures(result, c);
  out.push(
    `${pad(COMBO[c].label, 22)} ${pad(COMBO[c].passThrough ? 'passed through' : 'translated', 15)} CPU/token ${pad(fmtSpread(f.cpuUsPerToken, 'µs'), 24)} TTFT p50 ${pad(fmtSpread(f.ttftP50, 'ms'), 24)} p99 ${pad(fmtSpread(f.ttftP99, 'ms'), 24)} RSS ${pad(fmtSpread(f.rssPeakMiB, 'MiB'), 20)} bad ${f.bad}/${f.total}`,
  );
  for (const e of f.errors) out.push(`    error: ${e}`);
}
out.push('', 'CPU per token, ratio per round:');
const mark = (median: number, max: number) => (Number.isFinite(median) ? (median <= max ? '✓' : '✗') : '–');
for (const r of wireRatios(result)) out.push(`  ${mark(r.measured.median, r.max)} ${pad(r.label, 66)} ${pad(fmtSpread(r.measured, '×'), 22)} (goal ${r.goal})`);
const top = wireCostliest(result);
if (top) {
  out.push(
    `  ${mark(top.measured.median, top.max)} ${pad(`costliest translated cell: ${COMBO[top.combo].label} / ${COMBO[RELAY].label}`, 66)} ${pad(fmtSpread(top.measured, '×'), 22)} (goal ${top.goal}; ${Number.isFinite(top.measured.median) ? `${Math.abs(top.max - top.measured.median).toFixed(2)}× ${top.measured.median <= top.max ? 'under' : 'over'} it` : 'not measured'})`,
    `    per round, the costliest of any translated cell: ${fmtSpread(top.worstPerRun, '×')} (${top.costliestPerRun.map((c) => (c ? COMBO[c].label : '–')).join(', ')})`,
  );
}
for (const e of result.warmupErrors) out.push(`warm-up failed: ${e}`);
process.stdout.write(`${out.join('\n')}\n`);
if (values.json) writeFileSync(values.json, `${JSON.stringify({ params, result }, null, 1)}\n`);
process.exit(0);
