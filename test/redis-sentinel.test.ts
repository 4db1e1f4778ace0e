// Jarvis on a Redis Sentinel set (issue 30): two real Jarvis processes given REDIS_SENTINELS and REDIS_SENTINEL_NAME
// (no REDIS_URL), a set of the test's own (one master, one replica, three sentinels). Cross-instance barge-in,
// events with replay, quotas and stored responses work, then the master is killed, the replica promoted, and the
// same checks pass again once both instances follow the new master; how long that took is measured.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseSseBlock, forEachSseBlock } from './support/sse.js';
import { chat, orFail, pollUntil, sessionId, startJarvisProcess, type JarvisProcess } from './support/cluster.js';
import { startSentinelSet, SENTINEL_NAME, type SentinelSet } from './support/redis-sentinel.js';
import { configError } from './support/config.js';

const KEYS = ['before=sk-sentinel-before-0123', 'after=sk-sentinel-after-01234'];
const bearer = (entry: string) => ({ authorization: `Bearer ${entry.slice(entry.indexOf('=') + 1)}` });
const LONG = 'Long essay about the history of clocks';

let set: SentinelSet;
let i1: JarvisProcess;
let i2: JarvisProcess;

beforeAll(async () => {
  set = await startSentinelSet();
  const env = {
    REDIS_SENTINELS: set.sentinels,
    REDIS_SENTINEL_NAME: SENTINEL_NAME,
    JARVIS_API_KEYS: KEYS.join(','),
    JARVIS_KEY_RPM: '3',
    JARVIS_SIM_TOKENS_PER_SEC: '200',
  };
  const prefix = `jarvis-sentinel-${sessionId('p')}:`;
  [i1, i2] = await Promise.all([startJarvisProcess({ id: 's1', prefix, env }), startJarvisProcess({ id: 's2', prefix, env })]);
}, 60_000);

afterAll(async () => {
  await Promise.all([i1?.kill('SIGTERM', 5000), i2?.kill('SIGTERM', 5000)]);
  await set?.close();
});

/** The four checks, with one key's quota: barge-in across instances, events with replay, quotas, a stored response. */
async function checks(key: string): Promise<void> {
  const auth = bearer(key);
  // Barge-in: B on instance 2 supersedes A on instance 1.
  const session = sessionId('sen');
  const a = chat(i1, LONG, { session, headers: auth });
  await orFail(a.firstToken, "A's first token");
  const b = chat(i2, '2+2?', { session, headers: auth });
  const [ra, rb] = await orFail(Promise.all([a.result, b.result]), 'both answers');
  expect(ra.finishReason).toBe('cancelled');
  expect(rb.finishReason).toBe('stop');

  // Events: the session's events, written by instance 1 and 2, replayed from the start on instance 2.
  const events = await orFail(replay(i2, session, auth, 'chat.end'), 'the replayed events');
  expect(events.filter((t) => t === 'chat.start')).toHaveLength(2);
  expect(events).toContain('chat.cancelled');

  // A stored response made on instance 1 is read on instance 2.
  const made = await fetch(`${i1.url}/v1/responses`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ model: 'jarvis-sim', input: 'Hi' }) });
  expect(made.status).toBe(200);
  const { id } = (await made.json()) as { id: string };
  // Stored as the answer settles, beside sending it: the other instance reads it a moment later at most.
  await pollUntil(async () => ((await fetch(`${i2.url}/v1/responses/${id}`, { headers: auth })).status === 200 ? true : undefined), 'the response read on instance 2', 5000);

  // Quotas: three requests a minute for the key across both instances; the fourth is refused.
  const fourth = await fetch(`${i1.url}/v1/chat/completions`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ model: 'jarvis-sim', messages: [{ role: 'user', content: 'Hi' }] }) });
  expect(fourth.status).toBe(429);
}

/** Event types of a session replayed from its first event, once one of type `until` has come. */
async function replay(proc: JarvisProcess, session: string, headers: Record<string, string>, until: string): Promise<string[]> {
  return pollUntil(async () => {
    const controller = new AbortController();
    const types: string[] = [];
    const res = await fetch(`${proc.url}/v1/events?session_id=${session}&since=0`, { headers, signal: controller.signal });
    let done = false;
    await forEachSseBlock(res.body!, (block) => {
      const { data, comments } = parseSseBlock(block);
      if (data) types.push((JSON.parse(data) as { type: string }).type);
      // The replay is over once the subscription says it is live.
      if (comments.includes(': connected')) {
        done = true;
        controller.abort();
      }
    }).catch(() => {});
    return done && types.includes(until) ? types : undefined;
  }, `${until} replayed`);
}

describe('Jarvis on a Redis Sentinel set', () => {
  it('refuses a bad combination with one line', () => {
    expect(configError({ REDIS_URL: 'redis://127.0.0.1:6379', REDIS_SENTINELS: '127.0.0.1:26379', REDIS_SENTINEL_NAME: 'm' }).message).toMatch(/REDIS_URL and REDIS_SENTINELS/);
    expect(configError({ REDIS_SENTINELS: '127.0.0.1:26379' }).message).toMatch(/REDIS_SENTINEL_NAME is required/);
    expect(configError({ REDIS_SENTINEL_NAME: 'm' }).message).toMatch(/no REDIS_SENTINELS/);
    expect(configError({ REDIS_CLUSTER_NODES: '127.0.0.1:7000' }).message).toMatch(/not supported yet/);
  });

  it('coordinates two instances, and follows a failover: the master killed, the replica promoted', async () => {
    await checks(KEYS[0]!);
    const killed = performance.now();
    await set.killMaster();
    const promoted = performance.now();
    // Both instances follow the new master: Redis up on each again.
    await pollUntil(async () => {
      const states = await Promise.all([i1, i2].map(async (p) => (await p.health()).redis.state));
      return states.every((s) => s === 'up') || undefined;
    }, 'both instances on the new master', 30_000, 50).catch(async (err: unknown) => {
      // Say where each instance's link stands, and what it logged of Redis, so a failure here can be read.
      const seen = await Promise.all(
        [i1, i2].map(async (p) => `${p.id}: ${JSON.stringify((await p.health()).redis)} ${(await p.logs()).filter((l) => l.event.startsWith('redis_') || l.event.startsWith('barge_in')).map((l) => l.event).join(',')}`),
      );
      throw new Error(`${(err as Error).message}; ${seen.join('; ')}`);
    });
    const followed = performance.now();
    console.log(`sentinel failover: promoted ${Math.round(promoted - killed)} ms after the kill, both instances up ${Math.round(followed - killed)} ms after it`);
    await checks(KEYS[1]!);
  }, 90_000);
});
