// What a streamed answer costs Jarvis through each API: the same paced upstream answer asked for through
// /v1/chat/completions and through /v1/responses (translated, stored or not), in alternating phases against one
// warm Jarvis. Prints CPU per token, client TTFT p50/p99 and RSS after each phase. Not part of `npm run bench`;
// bench/README.md, tenth round.
//   npx tsx bench/route-cost.ts [--streams 64] [--tokens 50] [--delay 20] [--phase-ms 4000] [--rounds 3]
//     [--routes chat,responses,responses-unstored] [--jarvis-node-args="--cpu-prof --cpu-prof-dir=/tmp/prof"]
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { cpuSeconds, rssKiB } from './proc-stats.js';
import { pinningAvailable, setPinning, stopAll } from './processes.js';
import { distribution, spread } from './stats.js';
import { closedLoop, streamPool } from './stream-client.js';
import { startJarvis, startMock } from './targets.js';

const { values } = parseArgs({
  options: {
    streams: { type: 'string', default: '64' },
    tokens: { type: 'string', default: '50' },
    delay: { type: 'string', default: '20' },
    'phase-ms': { type: 'string', default: '4000' },
    rounds: { type: 'string', default: '3' },
    routes: { type: 'string', default: 'chat,responses,responses-unstored' },
    'jarvis-node-args': { type: 'string', default: '' },
  },
});
const streams = Number(values.streams);
const tokens = Number(values.tokens);
const phaseMs = Number(values['phase-ms']);

interface Route {
  key: string;
  name: string;
  path: string;
  body: string;
  /** Matches the first chunk that carries answer text. */
  firstText: RegExp;
}
const messages = [{ role: 'user', content: 'benchmark' }];
const ALL_ROUTES: Route[] = [
  { key: 'chat', name: 'chat completions', path: '/v1/chat/completions', body: JSON.stringify({ model: 'mock-model', stream: true, messages }), firstText: /"content":"[^"]/ },
  { key: 'responses', name: 'responses, stored', path: '/v1/responses', body: JSON.stringify({ model: 'mock-model', stream: true, input: 'benchmark' }), firstText: /response\.output_text\.delta/ },
  { key: 'responses-unstored', name: 'responses, store: false', path: '/v1/responses', body: JSON.stringify({ model: 'mock-model', stream: true, store: false, input: 'benchmark' }), firstText: /response\.output_text\.delta/ },
];
const wanted = values.routes.split(',');
const ROUTES = ALL_ROUTES.filter((r) => wanted.includes(r.key));

setPinning(pinningAvailable());
const mock = await startMock({ tokens, delayMs: Number(values.delay) });
const nodeArgs = values['jarvis-node-args'].split(' ').filter(Boolean);
const jarvis = await startJarvis({ upstreamBaseUrl: mock.baseUrl, from: 'dist', nodeArgs });
const pool = streamPool(jarvis.origin, streams + 4);

/** One streamed answer read to its end: its TTFT, or NaN if it failed. */
async function ask(route: Route): Promise<number> {
  const sentAt = performance.now();
  const res = await pool.request({ path: route.path, method: 'POST', headers: { 'content-type': 'application/json' }, body: route.body, signal: AbortSignal.timeout(30_000) });
  let first = NaN;
  for await (const chunk of res.body) if (Number.isNaN(first) && route.firstText.test(String(chunk))) first = performance.now() - sentAt;
  return res.statusCode === 200 ? first : NaN;
}

/** A closed loop of `streams` answers through `route` for `ms`. */
async function phase(route: Route, ms: number) {
  const ttfts: number[] = [];
  let failed = 0;
  const cpu0 = cpuSeconds(jarvis.child.pid);
  await closedLoop(streams, ms, async () => {
    const t = await ask(route).catch(() => NaN);
    if (Number.isFinite(t)) ttfts.push(t);
    else failed++;
  });
  const cpuUsPerToken = ((cpuSeconds(jarvis.child.pid) - cpu0) * 1e6) / (ttfts.length * tokens);
  return { cpuUsPerToken, ttft: distribution(ttfts), failed, rssMiB: rssKiB(jarvis.child.pid) / 1024 };
}

// Warm every route first, so no phase measures the first requests of a code path.
for (const route of ROUTES) await phase(route, 2000);
const results = new Map(ROUTES.map((r) => [r.name, [] as Awaited<ReturnType<typeof phase>>[]]));
for (let round = 0; round < Number(values.rounds); round++) {
  // The order rotates, so no route is always measured after the same one.
  for (let i = 0; i < ROUTES.length; i++) {
    const route = ROUTES[(i + round) % ROUTES.length]!;
    results.get(route.name)!.push(await phase(route, phaseMs));
  }
}
const fmt = (xs: number[], digits: number) => {
  const s = spread(xs);
  return `${s.median.toFixed(digits)} (${s.min.toFixed(digits)}–${s.max.toFixed(digits)})`;
};
console.log(`${streams} streams of ${tokens} tokens, ${values.delay} ms apart; ${values.rounds} phases of ${phaseMs / 1000} s per route; median (min–max)`);
for (const [name, runs] of results) {
  console.log(
    `${name.padEnd(24)} CPU/token ${fmt(runs.map((r) => r.cpuUsPerToken), 1)} µs  TTFT p50 ${fmt(runs.map((r) => r.ttft.p50), 1)} ms  p99 ${fmt(runs.map((r) => r.ttft.p99), 1)} ms  RSS ${fmt(runs.map((r) => r.rssMiB), 0)} MiB  failed ${runs.reduce((n, r) => n + r.failed, 0)}`,
  );
}
await pool.close();
await stopAll();
process.exit(0);
