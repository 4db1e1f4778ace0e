// Jarvis on a Redis Sentinel set (issue 30): two real Jarvis processes given REDIS_SENTINELS and REDIS_SENTINEL_NAME
// (no REDIS_URL), a set of the test's own (one master, one replica, three sentinels). Cross-instance barge-in,
// events with replay, quotas and stored responses work, then the master is killed, the replica promoted, and the
// same checks pass again once both instances follow the new master; how long that took is measured.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pollUntil, sessionId, startJarvisProcess, type JarvisProcess } from './support/cluster.js';
import { checks } from './support/ha-checks.js';
import { startSentinelSet, SENTINEL_NAME, type SentinelSet } from './support/redis-sentinel.js';
import { configError } from './support/config.js';

const KEYS = ['before=sk-sentinel-before-0123', 'after=sk-sentinel-after-01234'];

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

describe('Jarvis on a Redis Sentinel set', () => {
  it('refuses a bad combination with one line', () => {
    expect(configError({ REDIS_URL: 'redis://127.0.0.1:6379', REDIS_SENTINELS: '127.0.0.1:26379', REDIS_SENTINEL_NAME: 'm' }).message).toMatch(/REDIS_URL and REDIS_SENTINELS/);
    expect(configError({ REDIS_SENTINELS: '127.0.0.1:26379' }).message).toMatch(/REDIS_SENTINEL_NAME is required/);
    expect(configError({ REDIS_SENTINEL_NAME: 'm' }).message).toMatch(/no REDIS_SENTINELS/);
    expect(configError({ REDIS_CLUSTER_NODES: '127.0.0.1:7000', REDIS_SENTINELS: '127.0.0.1:26379', REDIS_SENTINEL_NAME: 'm' }).message).toMatch(/REDIS_SENTINELS and REDIS_CLUSTER_NODES are set together/);
  });

  it('coordinates two instances, and follows a failover: the master killed, the replica promoted', async () => {
    await checks(i1, i2, KEYS[0]!);
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
    await checks(i1, i2, KEYS[1]!);
  }, 90_000);
});
