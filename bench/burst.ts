// Bursts of requests at once against a fresh gateway, one burst after another: how a gateway's CPU per request and
// a burst's first tokens change as it warms up. Not part of `npm run bench`; bench/README.md, tenth round.
//   npx tsx bench/burst.ts [--gateway jarvis|floor] [--requests 256] [--bursts 30] [--tokens 5]
import { parseArgs } from 'node:util';
import { cpuSeconds } from './proc-stats.js';
import { pinningAvailable, setPinning, stopAll } from './processes.js';
import { distribution } from './stats.js';
import { chatBody, runChatStream, streamPool } from './stream-client.js';
import { jarvisTarget, startFloor, startJarvis, startMock } from './targets.js';

const { values } = parseArgs({
  options: {
    gateway: { type: 'string', default: 'jarvis' },
    requests: { type: 'string', default: '256' },
    bursts: { type: 'string', default: '30' },
    tokens: { type: 'string', default: '5' },
  },
});
const n = Number(values.requests);
const bursts = Number(values.bursts);
setPinning(pinningAvailable());
const mock = await startMock({ tokens: Number(values.tokens), delayMs: 20 });
const gateway = values.gateway === 'floor' ? await startFloor(mock.origin) : await startJarvis({ upstreamBaseUrl: mock.baseUrl, from: 'dist' });
const pool = streamPool(gateway.origin, n);
const target = jarvisTarget(gateway.origin);
const burst = (body: string) => Promise.all(Array.from({ length: n }, () => runChatStream(pool, target, body, { timeoutMs: 30_000 })));
// Every connection open first, as the bench's loads do: no burst measures a TCP connect.
await burst(chatBody({ max_tokens: 1 }));
console.log('burst  CPU/request  TTFT p50  TTFT p99  failed');
for (let b = 1; b <= bursts; b++) {
  const before = cpuSeconds(gateway.child.pid);
  const records = await burst(chatBody());
  const cpuUs = ((cpuSeconds(gateway.child.pid) - before) * 1e6) / n;
  const ttft = distribution(records.map((r) => r.ttftMs).filter(Number.isFinite));
  const failed = records.filter((r) => r.error).length;
  console.log(`${String(b).padStart(5)}  ${cpuUs.toFixed(0).padStart(8)} µs  ${ttft.p50.toFixed(1).padStart(6)} ms  ${ttft.p99.toFixed(1).padStart(6)} ms  ${failed}`);
}
await pool.close();
await stopAll();
process.exit(0);
