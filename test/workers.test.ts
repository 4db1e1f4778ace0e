// JARVIS_WORKERS: one primary forking two workers on one port (node:cluster), coordinated through the Redis on
// 127.0.0.1:6379 under this file's own key prefix. Which worker answers a connection is read from /healthz's
// `worker`; a connection stays on its worker, so a test picks a worker by keeping the connection that reached it.
// Barge-in across two workers, a worker killed and restarted with no request hung, SIGTERM draining both, and
// the start refused without Redis. The settings' own checks are at the end.
import { availableParallelism } from 'node:os';
import { Agent, fetch } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { restartDelay, RESTART_MAX_MS, workerCount, workerInstanceId } from '../src/cluster/workers.js';
import { ConfigError, loadConfig } from '../src/config.js';
import { simulatedAnswer } from '../src/providers/simulated/answer.js';
import {
  deleteKeys,
  mustFindLog,
  orFail,
  pollUntil,
  sessionId,
  spawnJarvis,
  StreamingChat,
  testPrefix,
  user,
  waitReady,
  type JarvisProcess,
  type LogLine,
} from './support/cluster.js';

const REDIS_URL = 'redis://127.0.0.1:6379';
/** Hundreds of tokens: a couple of seconds at 200 tokens/s, well within the 10 s grace. */
const LONG = 'Long essay about the history of clocks';
const SHORT = '2+2?';
const GRACE_MS = 10_000;

interface WorkerHealth {
  status: string;
  worker?: number;
  draining?: boolean;
  redis: { state: string; instance?: string };
}

const prefix = testPrefix();
let jarvis: JarvisProcess;
const agents: Agent[] = [];

/** A connection of its own (one socket, kept alive): it stays on whichever worker the primary gave it. */
function connection(): Agent {
  const agent = new Agent({ connections: 1, keepAliveTimeout: 60_000, keepAliveMaxTimeout: 60_000 });
  agents.push(agent);
  return agent;
}

async function healthOn(agent: Agent): Promise<WorkerHealth> {
  const res = await fetch(`${jarvis.url}/healthz`, { dispatcher: agent, signal: AbortSignal.timeout(5000) });
  expect(res.status).toBe(200);
  return (await res.json()) as WorkerHealth;
}

/** A connection that reached worker `k`: new connections until one lands there (the kernel gives each to a waiting worker). */
async function connectionTo(k: number): Promise<Agent> {
  for (let tries = 0; tries < 20; tries++) {
    const agent = connection();
    const h = await healthOn(agent).catch(() => undefined);
    if (h?.worker === k) return agent;
    await agent.close();
  }
  throw new Error(`no connection reached worker ${k} in 20 tries`);
}

const chatOn = (agent: Agent, prompt: string, headers: Record<string, string> = {}) =>
  new StreamingChat(jarvis.url, { messages: user(prompt) }, headers, agent);

/** The log's lines once `ready` holds for them. */
function logsWhen(ready: (lines: LogLine[]) => boolean, what: string, timeoutMs = 10_000): Promise<LogLine[]> {
  return pollUntil(async () => {
    const lines = await jarvis.logs();
    return ready(lines) ? lines : undefined;
  }, what, timeoutMs);
}

const linesOf = (lines: LogLine[], event: string, k: number) => lines.filter((l) => l.event === event && l.fields.worker === String(k));
const startedLines = (lines: LogLine[], k: number) => linesOf(lines, 'worker_started', k);

beforeAll(async () => {
  jarvis = await spawnJarvis({
    id: 'wk',
    redisUrl: REDIS_URL,
    prefix,
    env: { JARVIS_WORKERS: '2', JARVIS_SIM_TOKENS_PER_SEC: '200', JARVIS_SIM_TTFT_MS: '10', JARVIS_SHUTDOWN_GRACE_MS: String(GRACE_MS) },
  });
  await waitReady(jarvis);
  // Both workers listening.
  await logsWhen((l) => l.filter((x) => x.event === 'jarvis_listening').length >= 2, 'both workers listening', 30_000);
  await connectionTo(1);
  await connectionTo(2);
});

afterAll(async () => {
  await Promise.all(agents.map((a) => a.destroy().catch(() => {})));
  await jarvis?.kill('SIGTERM', 15_000);
  await deleteKeys(REDIS_URL, prefix).catch(() => {});
});

describe('JARVIS_WORKERS=2', () => {
  it('serves from two worker processes on one port, each naming itself in /healthz and /metrics', async () => {
    const [a1, a2] = [await connectionTo(1), await connectionTo(2)];
    const [h1, h2] = [await healthOn(a1), await healthOn(a2)];
    expect(h1).toMatchObject({ status: 'ok', worker: 1, draining: false, redis: { state: 'up', instance: 'wk-w1' } });
    expect(h2).toMatchObject({ status: 'ok', worker: 2, draining: false, redis: { state: 'up', instance: 'wk-w2' } });
    // Each worker's metrics are its own, every series labelled with it.
    const m1 = await (await fetch(`${jarvis.url}/metrics`, { dispatcher: a1 })).text();
    const m2 = await (await fetch(`${jarvis.url}/metrics`, { dispatcher: a2 })).text();
    expect(m1).toMatch(/^jarvis_live_streams\{worker="1"\} 0$/m);
    expect(m2).toMatch(/^jarvis_live_streams\{worker="2"\} 0$/m);
    expect(m1).not.toContain('worker="2"');
    // The primary and each worker said who they are.
    const lines = await logsWhen((l) => l.filter((x) => x.event === 'jarvis_listening').length >= 2, 'both workers listening');
    mustFindLog(lines, { event: 'workers_start', fields: { workers: '2' } });
    mustFindLog(lines, { event: 'jarvis_listening', fields: { worker: '1' } });
    mustFindLog(lines, { event: 'jarvis_listening', fields: { worker: '2' } });
  });

  it('barge-in across workers: a request on worker 2 supersedes the same session on worker 1', async () => {
    const [a1, a2] = [await connectionTo(1), await connectionTo(2)];
    const session = sessionId('wk');
    const first = chatOn(a1, LONG, { 'x-session-id': session });
    await orFail(first.firstToken, "the first request's first token");
    const second = chatOn(a2, SHORT, { 'x-session-id': session });
    const [r1, r2] = await orFail(Promise.all([first.result, second.result]), 'both answers');

    expect(r1.status).toBe(200);
    expect(r1.finishReason).toBe('cancelled');
    expect(r1.done).toBe(true);
    expect(r1.text.length).toBeLessThan(simulatedAnswer(LONG).join('').length);
    expect(r2.status).toBe(200);
    expect(r2.finishReason).toBe('stop');
    expect(r2.text).toBe(simulatedAnswer(SHORT).join(''));
    // Cancelled on worker 1 at worker 2's request, through Redis as between two instances.
    const lines = await logsWhen((l) => l.some((x) => x.event === 'prev_stream_finished_cleanly' && x.fields.prev === r1.requestId), 'the barge-in logged');
    mustFindLog(lines, { event: 'prev_stream_finished_cleanly', fields: { prev: r1.requestId, prev_instance: 'wk-w1' } });
    mustFindLog(lines, { event: 'stream_cancelled', fields: { reason: 'superseded', request_id: r1.requestId } });
  });

  it('restarts a worker killed with SIGKILL; meanwhile every request gets an answer or an error at once, none hangs', async () => {
    const before = await jarvis.logs();
    const killed = startedLines(before, 1).at(-1)!;
    const pid = Number(killed.fields.pid);
    expect(pid).toBeGreaterThan(0);
    // A stream running on the worker that dies: its client learns at once (the connection breaks).
    const a1 = await connectionTo(1);
    const running = chatOn(a1, LONG);
    await orFail(running.firstToken, "the running stream's first token");

    const killedAt = performance.now();
    process.kill(pid, 'SIGKILL');
    const outcomes = await Promise.all(
      Array.from({ length: 20 }, async (_, i) => {
        await new Promise((r) => setTimeout(r, i * 10));
        const agent = connection();
        const start = performance.now();
        try {
          const res = await fetch(`${jarvis.url}/healthz`, { dispatcher: agent, signal: AbortSignal.timeout(3000) });
          await res.body?.cancel();
          return { kind: res.status === 200 ? 'answered' : `status ${res.status}`, ms: performance.now() - start };
        } catch (err) {
          const name = (err as Error).name;
          return { kind: name === 'TimeoutError' || name === 'AbortError' ? 'hung' : 'error', ms: performance.now() - start };
        } finally {
          void agent.close();
        }
      }),
    );
    expect(outcomes.filter((o) => o.kind === 'hung')).toEqual([]);
    expect(outcomes.filter((o) => o.kind === 'answered').length).toBeGreaterThan(0);
    const broken = await orFail(
      running.result.then(
        (r) => `ended ${r.finishReason} done=${r.done}`,
        () => 'connection error',
      ),
      'the killed worker’s stream to end',
      3000,
    );
    expect(broken).not.toMatch(/done=true/);

    const listening = linesOf(before, 'jarvis_listening', 1).length;
    const after = await logsWhen((l) => linesOf(l, 'jarvis_listening', 1).length > listening, 'worker 1 forked again and listening', 20_000);
    expect(startedLines(after, 1).length).toBe(startedLines(before, 1).length + 1);
    const exited = mustFindLog(after, { event: 'worker_exited', fields: { worker: '1', pid: String(pid), signal: 'SIGKILL' } });
    expect(exited.level).toBe('warn');
    expect(Number(exited.fields.restart_in_ms)).toBeLessThanOrEqual(RESTART_MAX_MS);
    expect(startedLines(after, 1).at(-1)!.fields.pid).not.toBe(String(pid));
    const restartedMs = performance.now() - killedAt;
    // Both workers answer again.
    await connectionTo(1);
    await connectionTo(2);
    expect(restartedMs).toBeLessThan(20_000);
  });

  it('SIGTERM to the primary drains both workers: /readyz 503 at once, new requests 503, running streams finish, exit 0', async () => {
    const [a1, a2] = [await connectionTo(1), await connectionTo(2)];
    const s1 = chatOn(a1, LONG);
    const s2 = chatOn(a2, LONG);
    await orFail(Promise.all([s1.firstToken, s2.firstToken]), 'both streams under way');

    jarvis.child.kill('SIGTERM');
    // Every connection the primary hands out meanwhile reaches a draining worker.
    const notReady = await pollUntil(async () => {
      const res = await fetch(`${jarvis.url}/readyz`, { dispatcher: connection(), signal: AbortSignal.timeout(2000) });
      if (res.status === 503) return (await res.json()) as { status: string; reason?: string };
      await res.body?.cancel();
      return undefined;
    }, '/readyz 503', 2000, 5);
    expect(notReady).toEqual({ status: 'not_ready', reason: 'shutting_down' });
    const refused = await fetch(`${jarvis.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'jarvis-sim', messages: user(SHORT) }),
      dispatcher: connection(),
    });
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('1');
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('server_shutting_down');

    const [r1, r2] = await orFail(Promise.all([s1.result, s2.result]), 'both streams to finish', GRACE_MS);
    for (const r of [r1, r2]) {
      expect(r.finishReason).toBe('stop');
      expect(r.text).toBe(simulatedAnswer(LONG).join(''));
    }
    await Promise.all(agents.map((a) => a.destroy().catch(() => {})));
    expect(await orFail(jarvis.exited, 'the primary to exit', GRACE_MS)).toEqual({ code: 0, signal: null });
    const lines = await jarvis.logs();
    for (const k of ['1', '2']) mustFindLog(lines, { event: 'shutdown_done', fields: { worker: k } });
    mustFindLog(lines, { event: 'workers_stopped', fields: { code: '0' } });
    expect(lines.filter((l) => l.event === 'stream_cancelled' && l.fields.reason === 'shutdown')).toEqual([]);
  });
});

describe('the start', () => {
  it('refuses JARVIS_WORKERS=2 without Redis: exit code 2 and one line on stderr', async () => {
    const proc = await spawnJarvis({ id: 'wk-alone', env: { JARVIS_WORKERS: '2' } });
    expect(await orFail(proc.exited, 'the refusal')).toEqual({ code: 2, signal: null });
    const stderr = proc.stderr().trimEnd().split('\n');
    expect(stderr).toHaveLength(1);
    expect(stderr[0]).toMatch(/^jarvis: invalid configuration: workers: JARVIS_WORKERS=2 .*needs Redis: set REDIS_URL/);
  });
});

describe('the workers setting', () => {
  it('takes a positive integer or auto, and needs Redis for more than one', () => {
    const redis = { REDIS_URL };
    expect(loadConfig({}).workers).toBe(1);
    expect(loadConfig({ JARVIS_WORKERS: '1' }).workers).toBe(1);
    expect(loadConfig({ ...redis, JARVIS_WORKERS: '4' }).workers).toBe(4);
    expect(loadConfig({ ...redis, JARVIS_WORKERS: 'auto' }).workers).toBe('auto');
    for (const bad of ['0', '-1', '1.5', 'two', '2 workers']) {
      expect(() => loadConfig({ ...redis, JARVIS_WORKERS: bad })).toThrow(/^JARVIS_WORKERS must be a positive integer or auto/);
    }
    expect(() => loadConfig({ JARVIS_WORKERS: 'auto' })).toThrow(ConfigError);
    expect(workerCount('auto')).toBe(availableParallelism());
    expect(workerCount(3)).toBe(3);
  });

  it('names each worker after the instance, and backs off restarts of a worker that keeps dying', () => {
    expect(workerInstanceId('api-7', 2)).toBe('api-7-w2');
    expect(workerInstanceId('x'.repeat(80), 12)).toHaveLength(64);
    expect([1, 2, 3, 4].map(restartDelay)).toEqual([100, 200, 400, 800]);
    expect(restartDelay(30)).toBe(RESTART_MAX_MS);
  });
});
