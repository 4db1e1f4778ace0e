// Rolling restarts: from SIGTERM on, /readyz answers 503 so a load balancer stops sending new requests, while the
// listener stays open through the grace period (the balancer learns only at its next probe): a new connection is
// accepted, /healthz still answers 200 (draining), a new request gets 503 server_shutting_down with Retry-After, and
// the running stream finishes. A real process, signalled as an orchestrator does.
import { Agent, fetch } from 'undici';
import { afterAll, afterEach, expect, it } from 'vitest';
import { simulatedAnswer } from '../src/providers/simulated/answer.js';
import { mustFindLog, orFail, pollUntil, spawnJarvis, StreamingChat, user, waitReady, type JarvisProcess } from './support/cluster.js';
import { startJarvis, type TestJarvis } from './support/jarvis.js';

/** Hundreds of tokens: seconds at 100 tokens/s, well within the grace period. */
const LONG = 'Long essay about the history of lighthouses';
const GRACE_MS = 15_000;

const agents: Agent[] = [];
/** A connection of its own, opened for this request: what a load balancer's new connection is. */
function fresh(): Agent {
  const agent = new Agent({ connections: 1 });
  agents.push(agent);
  return agent;
}

let proc: JarvisProcess | undefined;
let jarvis: TestJarvis | undefined;
afterEach(async () => {
  await Promise.all(agents.splice(0).map((a) => a.destroy().catch(() => {})));
  await proc?.kill('SIGKILL');
  proc = undefined;
  await jarvis?.close();
  jarvis = undefined;
});
afterAll(() => Promise.all(agents.map((a) => a.destroy().catch(() => {}))));

it('after SIGTERM: /readyz 503 at once, the listener still accepts, new requests 503 with Retry-After, the running stream finishes, exit 0', async () => {
  proc = await spawnJarvis({ id: 'roll', env: { JARVIS_SIM_TOKENS_PER_SEC: '100', JARVIS_SIM_TTFT_MS: '0', JARVIS_SHUTDOWN_GRACE_MS: String(GRACE_MS) } });
  await waitReady(proc, () => true);
  expect((await fetch(`${proc.url}/readyz`, { dispatcher: fresh() })).status).toBe(200);
  // A keep-alive connection opened before the signal, idle when it comes.
  const idle = fresh();
  expect((await fetch(`${proc.url}/healthz`, { dispatcher: idle }).then((r) => r.json())) as object).toMatchObject({ status: 'ok', draining: false });
  const stream = new StreamingChat(proc.url, { messages: user(LONG) }, {}, fresh());
  await orFail(stream.firstToken, 'the first token');
  const total = simulatedAnswer(LONG).length;

  const signalled = performance.now();
  proc.child.kill('SIGTERM');
  const url = proc.url;
  const notReady = await pollUntil(async () => {
    const res = await fetch(`${url}/readyz`, { dispatcher: fresh() });
    if (res.status === 503) return { body: (await res.json()) as object, cacheControl: res.headers.get('cache-control') };
    await res.body?.cancel();
    return undefined;
  }, '/readyz 503', 2000, 5);
  const readyzMs = performance.now() - signalled;
  expect(notReady).toEqual({ body: { status: 'not_ready', reason: 'shutting_down' }, cacheControl: 'no-store' });
  expect(readyzMs).toBeLessThan(1000);
  expect(stream.tokens).toBeLessThan(total);

  // Liveness holds: an orchestrator must not kill a process that is finishing its streams.
  const health = await fetch(`${url}/healthz`, { dispatcher: fresh() });
  expect(health.status).toBe(200);
  expect(health.headers.get('connection')).toBe('close');
  expect(await health.json()).toMatchObject({ status: 'ok', draining: true, streams: 1 });

  // A new connection is accepted; its request is refused in a way a client retries elsewhere.
  const refused = await fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'jarvis-sim', messages: user('2+2?'), stream: true }),
    dispatcher: fresh(),
  });
  expect(refused.status).toBe(503);
  expect(refused.headers.get('retry-after')).toBe('1');
  expect(((await refused.json()) as { error: { code: string; type: string } }).error).toMatchObject({ code: 'server_shutting_down' });
  // So is one on the connection that was open and idle before the signal.
  const onIdle = await fetch(`${url}/v1/models`, { dispatcher: idle });
  expect(onIdle.status).toBe(503);
  await onIdle.body?.cancel();

  const result = await orFail(stream.result, 'the running stream to finish', GRACE_MS);
  expect(result.finishReason).toBe('stop');
  expect(result.done).toBe(true);
  expect(result.text).toBe(simulatedAnswer(LONG).join(''));
  expect(await orFail(proc.exited, 'the exit', GRACE_MS)).toEqual({ code: 0, signal: null });
  // Once the streams are done the listener closes.
  await expect(fetch(`${url}/healthz`, { dispatcher: fresh() })).rejects.toThrow();

  const lines = await proc.logs();
  const start = mustFindLog(lines, { event: 'shutdown_start', fields: { live_streams: '1' } });
  const end = mustFindLog(lines, { event: 'stream_end', fields: { stream_id: result.requestId, outcome: 'end' } });
  const done = mustFindLog(lines, { event: 'shutdown_done' });
  expect(start.index).toBeLessThan(end.index);
  expect(end.index).toBeLessThan(done.index);
  expect(lines.filter((l) => l.event === 'stream_cancelled')).toEqual([]);
  mustFindLog(lines, { event: 'request_rejected', fields: { status: '503', code: 'server_shutting_down' } });
});

it('keeps the listener open through the grace period while a stream runs, and closes it once the stream is cancelled at its end', async () => {
  jarvis = await startJarvis({ simulator: { tokensPerSec: 20, ttftMs: 0 }, shutdownGraceMs: 400 });
  const stream = new StreamingChat(jarvis.url, { messages: user(LONG) }, {}, fresh());
  await orFail(stream.firstToken, 'the first token');
  const began = performance.now();
  const shutdown = jarvis.jarvis.shutdown();
  // Well into the grace period, new connections are still taken and answered.
  await new Promise((r) => setTimeout(r, 200));
  const during = await fetch(`${jarvis.url}/readyz`, { dispatcher: fresh() });
  expect(during.status).toBe(503);
  await during.body?.cancel();
  await orFail(shutdown, 'the shutdown');
  expect(performance.now() - began).toBeGreaterThanOrEqual(390);
  expect((await stream.result).finishReason).toBe('cancelled');
  await expect(fetch(`${jarvis.url}/healthz`, { dispatcher: fresh() })).rejects.toThrow();
});
