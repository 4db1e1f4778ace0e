// Cluster faults, against a private redis-server on its own port (the shared 6379 is never stopped): Redis lost
// mid-run and restarted on the same port, an instance killed with SIGKILL mid-stream, and Redis unreachable at
// start (exit code 2, or JARVIS_REDIS_OPTIONAL=1 to start local and join later). Real processes, real HTTP.
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { simulatedAnswer } from '../src/providers/simulated/answer.js';
import {
  chat,
  EventSubscriber,
  metricValue,
  mustFindLog,
  orFail,
  pollUntil,
  sessionHolders,
  sessionId,
  spawnJarvis,
  startCluster,
  testPrefix,
  waitReady,
  type JarvisProcess,
  type LogLine,
  type TestCluster,
} from './support/cluster.js';
import { startMockUpstream, type MockUpstream } from '../fakes/openai/index.js';
import { freePort, startRedisServer, type RedisServer } from './support/redis-server.js';

const LONG = 'Long essay about the history of bridges';
const SHORT = '5+6?';
/** The bound on waiting for a previous stream's owner, on instance 2 (the requester in the SIGKILL cases). */
const PREV_WAIT_MS = 500;

let rs: RedisServer;
let upstream: MockUpstream;
let cluster: TestCluster;
let i1: JarvisProcess;
let i2: JarvisProcess;
const extra: JarvisProcess[] = [];
const extraRedis: RedisServer[] = [];

beforeAll(async () => {
  [rs, upstream] = await Promise.all([startRedisServer(), startMockUpstream()]);
  cluster = await startCluster({
    n: 2,
    redisUrl: rs.url,
    // A short TTL: owned records are refreshed (and restored after a Redis restart) every third of it.
    env: { JARVIS_UPSTREAM_BASE_URL: upstream.url, JARVIS_DEFAULT_MODEL: 'mock-model', JARVIS_SESSION_TTL_MS: '1500' },
    envFor: (i): Record<string, string> => (i === 2 ? { JARVIS_PREV_STREAM_WAIT_MS: String(PREV_WAIT_MS) } : {}),
  });
  [i1, i2] = cluster.instances as [JarvisProcess, JarvisProcess];
});

afterAll(async () => {
  await Promise.all(extra.map((p) => p.kill('SIGTERM', 5000)));
  await cluster?.stop();
  await upstream?.close();
  await Promise.all([rs, ...extraRedis].map((r) => r?.stop('SIGKILL')));
});

const has = (lines: LogLine[], event: string, fields: Record<string, string> = {}) => lines.some((l) => l.event === event && Object.entries(fields).every(([k, v]) => l.fields[k] === v));

/** A cross-instance cancel-previous barge-in: A on `from`, B on `to`; returns both results and B's log lines. */
async function crossBargeIn(from: JarvisProcess, to: JarvisProcess) {
  const session = sessionId('x');
  const a = chat(from, LONG, { session});
  await orFail(a.firstToken, "A's first token");
  const [ra, rb] = await orFail(Promise.all([a.result, chat(to, SHORT, { session}).result]), 'both responses');
  await to.waitForLog({ event: 'stream_end', fields: { stream_id: rb.requestId } });
  const start = mustFindLog(await to.logs(), { event: 'stream_start', fields: { stream_id: rb.requestId } });
  return { ra, rb, session, trace: start.fields.trace! };
}

describe('Redis lost while running, then restarted on the same port', () => {
  it('degrades to local without failing anything, and rejoins when Redis is back', async () => {
    // In flight on both instances when Redis dies; and one long upstream stream that outlives the outage.
    const s1 = sessionId('in1');
    const s2 = sessionId('in2');
    const sR = sessionId('long');
    const a1 = chat(i1, LONG, { session: s1 });
    const a2 = chat(i2, LONG, { session: s2 });
    const r = chat(i1, `Keep talking ${sR} tokens:1000 delay:20`, { session: sR, body: { model: 'mock-model' } });
    await orFail(Promise.all([a1.firstToken, a2.firstToken, r.firstToken]), 'first tokens');
    const idR = (await r.opened).requestId;

    await rs.stop('SIGKILL');

    for (const p of [i1, i2]) {
      await p.waitForLog({ event: 'redis_unavailable' });
      await p.waitForHealth((h) => h.redis.state === 'down', 'redis.state down');
      expect(metricValue(await p.metrics(), 'jarvis_redis_up')).toBe(0);
    }

    // New requests on both instances are served, not hung or failed.
    const [n1, n2] = await orFail(Promise.all([chat(i1, SHORT, { session: sessionId('n1') }).result, chat(i2, SHORT, { session: sessionId('n2') }).result]), 'new requests while Redis is down');
    for (const n of [n1, n2]) {
      expect(n.status).toBe(200);
      expect(n.finishReason).toBe('stop');
      expect(n.done).toBe(true);
      expect(n.text).toBe(simulatedAnswer(SHORT).join(''));
    }

    // Barge-in on one instance still works, and that instance's subscribers still get its events.
    const s3 = sessionId('local');
    const sub = await EventSubscriber.open(i1, { session: s3 });
    const x = chat(i1, LONG, { session: s3 });
    await orFail(x.firstToken, "X's first token");
    const [rx, ry] = await orFail(Promise.all([x.result, chat(i1, SHORT, { session: s3 }).result]), 'local barge-in');
    expect(rx.finishReason).toBe('cancelled');
    expect(rx.done).toBe(true);
    expect(ry.finishReason).toBe('stop');
    await i1.waitForLog({ event: 'stream_end', fields: { stream_id: ry.requestId } });
    const yStart = mustFindLog(await i1.logs(), { event: 'stream_start', fields: { stream_id: ry.requestId } });
    mustFindLog(await i1.logs(), { event: 'prev_stream_finished_cleanly', fields: { trace: yStart.fields.trace!, prev: rx.requestId } });
    await sub.untilEnd(ry.requestId);
    expect(sub.events.filter((e) => e.request_id === ry.requestId).map((e) => e.type)).toEqual(expect.arrayContaining(['chat.start', 'chat.token', 'chat.end']));
    await sub.close();

    // The streams in flight when Redis died finished normally, after the outage began.
    const [ra1, ra2] = await orFail(Promise.all([a1.result, a2.result]), 'in-flight streams');
    for (const [res, proc] of [[ra1, i1], [ra2, i2]] as const) {
      expect(res.finishReason).toBe('stop');
      expect(res.done).toBe(true);
      expect(res.text).toBe(simulatedAnswer(LONG).join(''));
      const lines = await proc.waitForLog({ event: 'stream_end', fields: { stream_id: res.requestId } }).then(() => proc.logs());
      const lost = mustFindLog(lines, { event: 'redis_unavailable' });
      expect(lost.index).toBeLessThan(mustFindLog(lines, { event: 'stream_end', fields: { stream_id: res.requestId } }).index);
    }

    // Redis comes back on the same port, empty.
    await rs.start();
    for (const p of [i1, i2]) {
      await p.waitForLog({ event: 'redis_recovered' });
      await p.waitForHealth((h) => h.redis.state === 'up', 'redis.state up');
      expect(metricValue(await p.metrics(), 'jarvis_redis_up')).toBe(1);
    }

    // A cross-instance barge-in works again, at once, in both directions; and events flow across again.
    const watch = await EventSubscriber.open(i2);
    const back = await crossBargeIn(i2, i1);
    expect(back.ra.finishReason).toBe('cancelled');
    expect(back.ra.done).toBe(true);
    expect(back.rb.finishReason).toBe('stop');
    mustFindLog(await i1.logs(), { event: 'prev_stream_finished_cleanly', fields: { trace: back.trace, prev: back.ra.requestId, prev_instance: 'i2' } });
    const fwd = await crossBargeIn(i1, i2);
    expect([fwd.ra.finishReason, fwd.rb.finishReason]).toEqual(['cancelled', 'stop']);
    mustFindLog(await i2.logs(), { event: 'prev_stream_finished_cleanly', fields: { trace: fwd.trace, prev: fwd.ra.requestId, prev_instance: 'i1' } });
    // i2's subscriber sees the stream i1 served.
    await watch.untilEnd(back.rb.requestId);
    expect(watch.events.filter((e) => e.request_id === back.rb.requestId && e.type === 'chat.token').map((e) => e.data.text).join('')).toBe(back.rb.text);
    await watch.close();

    // The stream that outlived the outage is registered again in the restarted Redis, so a request for its
    // session on the other instance supersedes it.
    const admin = new Redis(rs.url);
    try {
      await pollUntil(async () => ((await sessionHolders(admin, cluster.prefix, sR)).join() === `i1|${idR}` ? true : undefined), 'the long stream re-registered');
    } finally {
      admin.disconnect();
    }
    const rb = await orFail(chat(i2, SHORT, { session: sR }).result, 'B for the long session');
    const rr = await orFail(r.result, 'the long stream');
    expect(rr.finishReason).toBe('cancelled');
    expect(rb.finishReason).toBe('stop');
    await i2.waitForLog({ event: 'stream_end', fields: { stream_id: rb.requestId } });
    const bStart = mustFindLog(await i2.logs(), { event: 'stream_start', fields: { stream_id: rb.requestId } });
    mustFindLog(await i2.logs(), { event: 'prev_stream_finished_cleanly', fields: { trace: bStart.fields.trace!, prev: idR, prev_instance: 'i1' } });
  });
});

describe('an instance killed with SIGKILL mid-stream leaves no session stuck', () => {
  it('policy reject: 409 while the dead owner’s record lives, 200 once its TTL has passed', async () => {
    const i3 = await cluster.add('i3', { JARVIS_SESSION_TTL_MS: '1000' });
    extra.push(i3);
    const session = sessionId('dead');
    const a = chat(i3, LONG, { session});
    await orFail(a.firstToken, "A's first token");
    const idA = (await a.opened).requestId;
    const admin = new Redis(rs.url);
    try {
      expect(await sessionHolders(admin, cluster.prefix, session)).toEqual([`i3|${idA}`]);
      await i3.kill('SIGKILL');
      await a.result.catch(() => {});

      const statuses: number[] = [];
      const ok = await pollUntil(
        async () => {
          const res = await chat(i2, SHORT, { session, policy: 'reject'}).result;
          statuses.push(res.status);
          if (res.status === 409) {
            expect(res.error?.code).toBe('session_busy');
            return undefined;
          }
          return res;
        },
        'a 200 for the dead session',
        10_000,
        50,
      );
      expect(ok.status).toBe(200);
      expect(ok.finishReason).toBe('stop');
      // Only 409s before the one 200, never anything else.
      expect(statuses.slice(0, -1).every((s) => s === 409)).toBe(true);
      // The record that let it through is the new stream's own (or already released), not the dead one's.
      expect(await sessionHolders(admin, cluster.prefix, session)).not.toContain(`i3|${idA}`);
    } finally {
      admin.disconnect();
    }
  });

  it('cancel-previous: a request for the dead owner’s session waits at most JARVIS_PREV_STREAM_WAIT_MS and completes', async () => {
    // A long TTL, so the dead owner's record is certainly still there when B claims the session.
    const i4 = await cluster.add('i4', { JARVIS_SESSION_TTL_MS: '10000' });
    extra.push(i4);
    const session = sessionId('dead');
    const a = chat(i4, LONG, { session});
    await orFail(a.firstToken, "A's first token");
    const idA = (await a.opened).requestId;
    await i4.kill('SIGKILL');
    await a.result.catch(() => {});
    const admin = new Redis(rs.url);
    try {
      expect(await sessionHolders(admin, cluster.prefix, session)).toEqual([`i4|${idA}`]);
    } finally {
      admin.disconnect();
    }

    const b = await orFail(chat(i2, SHORT, { session}).result, 'B');
    expect(b.status).toBe(200);
    expect(b.finishReason).toBe('stop');
    expect(b.text).toBe(simulatedAnswer(SHORT).join(''));
    await i2.waitForLog({ event: 'stream_end', fields: { stream_id: b.requestId } });
    const lines = await i2.logs();
    const start = mustFindLog(lines, { event: 'stream_start', fields: { stream_id: b.requestId } });
    // The dead instance's liveness key outlives it by up to its TTL, so it may only be reconnecting: B asks until
    // the bound, then proceeds. (Once the liveness key has expired, B would not wait at all.)
    const prev = mustFindLog(lines, { event: 'prev_stream_wait_timeout', fields: { trace: start.fields.trace!, prev: idA, prev_instance: 'i4' } });
    expect(Number(prev.fields.waited_ms)).toBeGreaterThanOrEqual(PREV_WAIT_MS);
    expect(has(lines, 'prev_stream_finished_cleanly', { trace: start.fields.trace! })).toBe(false);
  });
});

describe('Redis unreachable at start', () => {
  it('exits with code 2 and a one-line message naming JARVIS_REDIS_OPTIONAL', async () => {
    const port = await freePort();
    const p = await spawnJarvis({ id: 'nostart', redisUrl: `redis://127.0.0.1:${port}`, prefix: testPrefix() });
    extra.push(p);
    const exit = await orFail(p.exited, 'the process exiting', 20_000);
    expect(exit).toEqual({ code: 2, signal: null });
    const lines = p.stderr().split('\n').filter(Boolean);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('JARVIS_REDIS_OPTIONAL');
    expect(lines[0]).toContain(`127.0.0.1:${port}`);
  });

  it('with JARVIS_REDIS_OPTIONAL=1 it starts local, serves, and joins once Redis comes up on that port', async () => {
    const port = await freePort();
    const prefix = testPrefix();
    const p = await spawnJarvis({ id: 'opt', redisUrl: `redis://127.0.0.1:${port}`, prefix, env: { JARVIS_REDIS_OPTIONAL: '1' } });
    extra.push(p);
    const h = await waitReady(p, (h) => h.redis.state === 'down');
    expect(h.status).toBe('ok');
    await p.waitForLog({ event: 'redis_unavailable' });
    expect(metricValue(await p.metrics(), 'jarvis_redis_up')).toBe(0);
    const served = await orFail(chat(p, SHORT, { session: sessionId('opt')}).result, 'a request without Redis');
    expect(served.finishReason).toBe('stop');

    const late = await startRedisServer({ port });
    extraRedis.push(late);
    await p.waitForHealth((h) => h.redis.state === 'up', 'redis.state up');
    await p.waitForLog({ event: 'redis_recovered' });
    expect(metricValue(await p.metrics(), 'jarvis_redis_up')).toBe(1);

    // Joined: its sessions and events now live in that Redis.
    const session = sessionId('joined');
    const a = chat(p, LONG, { session});
    await orFail(a.firstToken, 'first token');
    const idA = (await a.opened).requestId;
    const admin = new Redis(late.url);
    try {
      expect(await sessionHolders(admin, prefix, session)).toEqual([`opt|${idA}`]);
      await pollUntil(async () => ((await admin.xlen(`${prefix}events`)) > 0 ? true : undefined), 'events in the Redis stream');
    } finally {
      admin.disconnect();
    }
    a.controller.abort();
    await a.result.catch(() => {});
  });
});
