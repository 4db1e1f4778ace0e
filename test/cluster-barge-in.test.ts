// Cross-instance barge-in with two real Jarvis processes sharing the Redis on 127.0.0.1:6379 under this file's
// own key prefix: the cancel-previous contract across two log files (by timestamp), simultaneous arrival (exactly
// one winner), the superseded stream's upstream request being closed, policy reject across instances, and the
// Redis figures on /metrics and /healthz. Only the LLM upstream is mocked.
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { simulatedAnswer } from '../src/providers/simulated/answer.js';
import {
  chat,
  keysOf,
  metricValue,
  mustFindLog,
  orFail,
  pollUntil,
  sessionId,
  startCluster,
  type JarvisProcess,
  type LogLine,
  type TestCluster,
} from './support/cluster.js';
import { startMockUpstream, type MockUpstream, type RecordedRequest } from '../fakes/openai/index.js';

const REDIS_URL = 'redis://127.0.0.1:6379';
/** Hundreds of tokens: seconds at 200 tokens/s, so A is always mid-stream when B arrives. */
const LONG = 'Long essay about the history of clocks';
const SHORT = '2+2?';

let cluster: TestCluster;
let i1: JarvisProcess;
let i2: JarvisProcess;
let upstream: MockUpstream;
let redis: Redis;

beforeAll(async () => {
  upstream = await startMockUpstream();
  redis = new Redis(REDIS_URL);
  cluster = await startCluster({
    n: 2,
    redisUrl: REDIS_URL,
    env: { JARVIS_UPSTREAM_BASE_URL: upstream.url, JARVIS_DEFAULT_MODEL: 'mock-model', JARVIS_SIM_TOKENS_PER_SEC: '200', JARVIS_SIM_TTFT_MS: '10' },
  });
  [i1, i2] = cluster.instances as [JarvisProcess, JarvisProcess];
});

afterAll(async () => {
  await cluster?.stop();
  await upstream?.close();
  if (cluster) expect(await keysOf(redis, cluster.prefix)).toEqual([]);
  redis?.disconnect();
});

/** Both instances' logs once `ready` finds what the test needs in them (the files are written asynchronously). */
async function logsWhen(ready: (l1: LogLine[], l2: LogLine[]) => boolean): Promise<[LogLine[], LogLine[]]> {
  return pollUntil(async () => {
    const [l1, l2] = await Promise.all([i1.logs(), i2.logs()]);
    return ready(l1, l2) ? ([l1, l2] as [LogLine[], LogLine[]]) : undefined;
  }, 'log lines');
}

const has = (lines: LogLine[], event: string, fields: Record<string, string>) => lines.some((l) => l.event === event && Object.entries(fields).every(([k, v]) => l.fields[k] === v));

describe('cross-instance barge-in (two processes, one Redis)', () => {
  it('B on instance 2 supersedes A on instance 1: A cancelled with [DONE], B completes, cleanup logged before B starts', async () => {
    const session = sessionId('bi');
    const a = chat(i1, LONG, { session });
    await orFail(a.firstToken, "A's first token");
    const b = chat(i2, SHORT, { session });
    const [ra, rb] = await orFail(Promise.all([a.result, b.result]), 'both responses');

    expect(ra.status).toBe(200);
    expect(ra.finishReason).toBe('cancelled');
    expect(ra.done).toBe(true);
    const fullA = simulatedAnswer(LONG).join('');
    expect(fullA.startsWith(ra.text)).toBe(true);
    expect(ra.text.length).toBeLessThan(fullA.length);

    expect(rb.status).toBe(200);
    expect(rb.finishReason).toBe('stop');
    expect(rb.done).toBe(true);
    expect(rb.text).toBe(simulatedAnswer(SHORT).join(''));

    const A = ra.requestId;
    const B = rb.requestId;
    const [l1, l2] = await logsWhen((l1, l2) => has(l1, 'stream_end', { stream_id: A }) && has(l2, 'stream_end', { stream_id: B }));

    // Instance 1: A's cancellation and cleanup, in this order.
    const cancelled = mustFindLog(l1, { event: 'stream_cancelled', fields: { request_id: A, reason: 'superseded' } }, 'i1');
    const cleanupBuffer = mustFindLog(l1, { event: 'cleanup_buffer', fields: { request_id: A } }, 'i1');
    const buffersCleaned = mustFindLog(l1, { event: 'event_buffers_cleaned', fields: { request_id: A } }, 'i1');
    const endA = mustFindLog(l1, { event: 'stream_end', fields: { stream_id: A, cleanup_done: 'true', outcome: 'cancelled' } }, 'i1');
    expect(cancelled.index).toBeLessThan(cleanupBuffer.index);
    expect(cleanupBuffer.index).toBeLessThan(buffersCleaned.index);
    expect(buffersCleaned.index).toBeLessThan(endA.index);

    // Instance 2: B started, learnt of A's clean end from instance 1, and only then produced tokens.
    const startB = mustFindLog(l2, { event: 'stream_start', fields: { stream_id: B } }, 'i2');
    const prevDone = mustFindLog(l2, { event: 'prev_stream_finished_cleanly', fields: { trace: startB.fields.trace!, prev: A, prev_instance: 'i1' } }, 'i2');
    const firstFlushB = mustFindLog(l2, { event: 'flush_scheduled', fields: { request_id: B } }, 'i2');
    expect(startB.index).toBeLessThan(prevDone.index);
    expect(prevDone.index).toBeLessThan(firstFlushB.index);
    expect(findLogAfter(l2, 'prev_stream_wait_timeout', startB.fields.trace!)).toBeUndefined();

    // Across the two files, by timestamp (one machine, one clock; millisecond resolution, so "not after").
    for (const line of [cancelled, cleanupBuffer, buffersCleaned, endA]) expect(line.ts, `${line.event} not after prev_stream_finished_cleanly`).toBeLessThanOrEqual(prevDone.ts);
    expect(startB.ts).toBeLessThanOrEqual(cancelled.ts);
  });

  it('two requests arriving at once on two instances: every time exactly one completes and the other is cancelled', async () => {
    const rounds = await Promise.all(
      Array.from({ length: 5 }, async () => {
        const session = sessionId('sim');
        // Both long, so whichever claimed first is still generating when the other's claim supersedes it.
        const x = chat(i1, LONG, { session });
        const y = chat(i2, LONG, { session });
        const [rx, ry] = await Promise.all([x.result, y.result]);
        return { session, rx, ry };
      }),
    );

    for (const { rx, ry } of rounds) {
      expect([rx.status, ry.status]).toEqual([200, 200]);
      expect([rx.finishReason, ry.finishReason].sort()).toEqual(['cancelled', 'stop']);
      expect(rx.done && ry.done).toBe(true);
    }
    // Either the winner's claim displaced the loser (its instance asked the loser's, by name, and heard back
    // after its cleanup), or the loser's claim reached Redis second and found the newer request already there.
    const expected = rounds.map(({ rx, ry }) => {
      const [winner, loser, winnerLog, loserId] = rx.finishReason === 'stop' ? [rx, ry, 1, 'i2'] : [ry, rx, 2, 'i1'];
      return { winner: winner.requestId, loser: loser.requestId, winnerLog, loserId, winnerId: winnerLog === 1 ? 'i1' : 'i2' };
    });
    await logsWhen((l1, l2) => expected.every((e) => has(e.loserId === 'i1' ? l1 : l2, 'stream_end', { stream_id: e.loser }) && has(e.winnerLog === 1 ? l1 : l2, 'stream_end', { stream_id: e.winner })));
    const [l1, l2] = await Promise.all([i1.logs(), i2.logs()]);
    for (const e of expected) {
      const wl = e.winnerLog === 1 ? l1 : l2;
      const ll = e.loserId === 'i1' ? l1 : l2;
      const start = mustFindLog(wl, { event: 'stream_start', fields: { stream_id: e.winner } });
      const loserStart = mustFindLog(ll, { event: 'stream_start', fields: { stream_id: e.loser } });
      const displaced = has(wl, 'prev_stream_finished_cleanly', { trace: start.fields.trace!, prev: e.loser, prev_instance: e.loserId });
      const yielded = has(ll, 'arrived_after_newer', { trace: loserStart.fields.trace!, by: e.winner, by_instance: e.winnerId });
      expect(displaced !== yielded, `${e.loser}: displaced by the winner or yielded to it, one of the two`).toBe(true);
      mustFindLog(ll, { event: 'stream_cancelled', fields: { request_id: e.loser, reason: 'superseded' } });
      mustFindLog(ll, { event: 'stream_end', fields: { stream_id: e.loser, outcome: 'cancelled', cleanup_done: 'true' } });
    }
  });

  it("the superseded stream's upstream request is closed once B has started (mock upstream)", async () => {
    const session = sessionId('up');
    const promptA = `Tell me everything ${session} tokens:1000 delay:20`;
    const promptB = `Short answer ${session} tokens:5 delay:0`;
    const a = chat(i1, promptA, { session, body: { model: 'mock-model' } });
    await orFail(a.firstToken, "A's first token");
    const recA = upstream.requests.find((r) => r.body.messages?.[0]?.content === promptA);
    expect(recA).toBeDefined();
    const b = chat(i2, promptB, { session, body: { model: 'mock-model' } });
    const [ra, rb] = await orFail(Promise.all([a.result, b.result]), 'both responses');
    const recB = upstream.requests.find((r) => r.body.messages?.[0]?.content === promptB) as RecordedRequest;

    expect(ra.finishReason).toBe('cancelled');
    expect(ra.done).toBe(true);
    expect(rb.finishReason).toBe('stop');
    expect(rb.text).toBe('tok0 tok1 tok2 tok3 tok4 ');

    // By the time B's client has its answer, A's upstream connection was closed by Jarvis, before it was done,
    // and before B's own upstream request arrived.
    await orFail(recA!.closed, "A's upstream request closing");
    expect(recA!.clientClosed).toBe(true);
    expect(recA!.finished).toBe(false);
    expect(recA!.tokensSent).toBeLessThan(1000);
    expect(recB.finished).toBe(true);
    expect(recA!.closedAt!).toBeLessThanOrEqual(recB.receivedAt);
  });

  it('policy reject across instances: 409 session_busy while A runs on the other instance, 200 once it is gone', async () => {
    const session = sessionId('rej');
    const a = chat(i1, LONG, { session });
    await orFail(a.firstToken, "A's first token");

    const busy = await chat(i2, SHORT, { session, policy: 'reject' }).result;
    expect(busy.status).toBe(409);
    expect(busy.error?.code).toBe('session_busy');
    expect(busy.error?.type).toBe('invalid_request_error');

    // The rejected request touched nothing: A keeps streaming, and is only ended by its own client here.
    const after409 = a.tokens;
    await orFail(a.untilTokens(after409 + 3), 'A streaming on after the 409');
    const idA = (await a.opened).requestId;
    a.controller.abort();
    await a.result.catch(() => {});
    await i1.waitForLog({ event: 'stream_end', fields: { stream_id: idA } });
    const l1 = await i1.logs();
    expect(mustFindLog(l1, { event: 'stream_cancelled', fields: { request_id: idA } }).fields.reason).toBe('client_disconnected');

    // Released in Redis (the owner deletes its record after cleanup): now the session is free everywhere.
    await pollUntil(async () => ((await redis.exists(`${cluster.prefix}session:{-/${session}}`)) === 0 ? true : undefined), 'session record deleted');
    const free = await chat(i2, SHORT, { session, policy: 'reject' }).result;
    expect(free.status).toBe(200);
    expect(free.finishReason).toBe('stop');
  });

  it('/metrics and /healthz show the Redis link up and the cross-instance control round trip', async () => {
    const before = metricValue(await i2.metrics(), 'jarvis_redis_control_latency_seconds_count') ?? 0;
    const session = sessionId('met');
    const a = chat(i1, LONG, { session });
    await orFail(a.firstToken, "A's first token");
    const rb = await chat(i2, SHORT, { session }).result;
    expect(rb.finishReason).toBe('stop');
    expect((await a.result).finishReason).toBe('cancelled');

    const m2 = await i2.metrics();
    expect(metricValue(m2, 'jarvis_redis_up')).toBe(1);
    expect(metricValue(m2, 'jarvis_redis_control_latency_seconds_count')).toBeGreaterThanOrEqual(before + 1);
    expect(metricValue(await i1.metrics(), 'jarvis_redis_up')).toBe(1);
    for (const [proc, id] of [[i1, 'i1'], [i2, 'i2']] as const) {
      const h = await proc.health();
      expect(h.redis).toEqual({ state: 'up', instance: id });
    }
  });

  it('leaves nothing behind: both instances idle and no session records in Redis', async () => {
    for (const proc of [i1, i2]) await proc.waitForHealth((h) => h.streams === 0 && h.sessions === 0 && h.buffers === 0 && h.timers === 0, 'idle');
    await pollUntil(async () => ((await keysOf(redis, cluster.prefix, 'session:*')).length === 0 ? true : undefined), 'no session records');
  });

  // Last: it stops instance 2.
  it('SIGTERM: an instance shuts down cleanly (exit 0) without reporting Redis as lost', async () => {
    const exit = await i2.kill('SIGTERM');
    expect(exit).toEqual({ code: 0, signal: null });
    const lines = await i2.logs();
    mustFindLog(lines, { event: 'shutdown_done' }, 'i2');
    // Closing its own connections is not Redis becoming unavailable (an operator alerts on that event).
    expect(lines.filter((l) => l.event === 'redis_unavailable').map((l) => l.raw)).toEqual([]);
    expect((await i1.health()).redis.state).toBe('up');
  });
});

function findLogAfter(lines: LogLine[], event: string, trace: string): LogLine | undefined {
  return lines.find((l) => l.event === event && l.fields.trace === trace);
}
