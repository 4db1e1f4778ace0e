// Tenancy: a key's identity (its name) namespaces its sessions and its events. Two keys using the same
// X-Session-Id never touch each other's streams or see each other's events, on one instance and across two
// instances on Redis; two keys under one name (a rotation) are one tenant.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { as, deletePrefix, Events, startClusteredJarvis, testPrefix } from './support/access.js';
import { user } from './support/chat.js';
import { StreamingChat } from './support/cluster.js';
import { startJarvis, type TestJarvis } from './support/jarvis.js';

const ALICE = 'sk-alice-tenant-01';
const BOB = 'sk-bob-tenant-0002';
const CAROL_OLD = 'sk-carol-old-0003';
const CAROL_NEW = 'sk-carol-new-0004';
const apiKeys = [`alice=${ALICE}`, `bob=${BOB}`, `carol=${CAROL_OLD}`, `carol=${CAROL_NEW}`];
const overrides = { apiKeys, simulator: { tokensPerSec: 200, ttftMs: 0 }, events: { flushMs: 5, flushBytes: 24 } };

const long = (session: string) => ({ body: { messages: user('Write a long essay about sharing'), max_tokens: 150 }, headers: { 'x-session-id': session } });
const short = (session: string) => ({ body: { messages: user('hi'), max_tokens: 3 }, headers: { 'x-session-id': session } });
const start = (url: string, key: string, req: { body: Record<string, unknown>; headers: Record<string, string> }) =>
  new StreamingChat(url, req.body, { ...req.headers, ...as(key) });

/**
 * Alice streams in session "shared" on `a`; Bob, in the same session id, on `b`. Bob's request must not cancel
 * Alice's, and each one's subscriptions (one on each instance) must see its own stream only.
 */
async function sameSessionIdTwoTenants(a: TestJarvis, b: TestJarvis): Promise<void> {
  const aliceEvents = [await Events.open(a.url, as(ALICE)), await Events.open(b.url, as(ALICE), 'session_id=shared')];
  const bobEvents = [await Events.open(b.url, as(BOB)), await Events.open(a.url, as(BOB), 'session_id=shared')];
  try {
    const alice = start(a.url, ALICE, long('shared'));
    await alice.untilTokens(1);
    const bob = await start(b.url, BOB, short('shared')).result;
    const aliceResult = await alice.result;
    expect(bob).toMatchObject({ status: 200, finishReason: 'length', done: true });
    expect(aliceResult.finishReason, "Bob's request cancelled Alice's stream").toBe('length');
    expect(aliceResult.chunks.filter((c) => c.choices?.[0]?.delta.content)).toHaveLength(150);

    for (const sub of aliceEvents) await sub.untilEnd(aliceResult.requestId);
    for (const sub of bobEvents) await sub.untilEnd(bob.requestId);
    for (const sub of aliceEvents) {
      expect(new Set(sub.events.map((e) => e.request_id))).toEqual(new Set([aliceResult.requestId]));
      expect(sub.events.at(-1)).toMatchObject({ type: 'chat.end', session_id: 'shared' });
    }
    for (const sub of bobEvents) expect(new Set(sub.events.map((e) => e.request_id))).toEqual(new Set([bob.requestId]));
    // Nothing of the owner reaches a subscriber: not the name, not the key.
    expect(JSON.stringify(aliceEvents[0]!.events)).not.toMatch(/alice|sk-/);
  } finally {
    for (const sub of [...aliceEvents, ...bobEvents]) await sub.close();
  }
  for (const j of new Set([a, b])) expect(await j.logs()).not.toMatch(/stream_cancelled .*reason=superseded/);
}

describe('one instance', () => {
  let jarvis: TestJarvis;
  beforeAll(async () => {
    jarvis = await startJarvis(overrides);
  });
  afterAll(() => jarvis.close());

  it('two keys in one X-Session-Id: neither cancels nor sees the other', async () => {
    await sameSessionIdTwoTenants(jarvis, jarvis);
  });

  it('two keys under one name are one tenant: the new key supersedes the old key’s stream, and each sees the other’s events', async () => {
    const oldKeyEvents = await Events.open(jarvis.url, as(CAROL_OLD), 'session_id=rotating');
    try {
      const first = start(jarvis.url, CAROL_OLD, long('rotating'));
      await first.untilTokens(1);
      const second = await start(jarvis.url, CAROL_NEW, short('rotating')).result;
      expect((await first.result).finishReason).toBe('cancelled');
      expect(second.finishReason).toBe('length');
      await oldKeyEvents.untilEnd(second.requestId);
      expect(oldKeyEvents.events.map((e) => e.type)).toContain('chat.cancelled');
    } finally {
      await oldKeyEvents.close();
    }
  });
});

describe('two instances on Redis', () => {
  const prefix = testPrefix();
  let one: TestJarvis;
  let two: TestJarvis;
  beforeAll(async () => {
    [one, two] = await Promise.all([startClusteredJarvis(prefix, overrides), startClusteredJarvis(prefix, overrides)]);
  });
  afterAll(async () => {
    await Promise.all([one?.close(), two?.close()]);
    await deletePrefix(prefix);
  });

  it('two keys in one X-Session-Id on different instances: neither cancels nor sees the other', async () => {
    await sameSessionIdTwoTenants(one, two);
  });

  it('while one key in one session id across instances is a barge-in', async () => {
    const first = start(one.url, ALICE, long('alone'));
    await first.untilTokens(1);
    const second = await start(two.url, ALICE, short('alone')).result;
    expect((await first.result).finishReason).toBe('cancelled');
    expect(second.finishReason).toBe('length');
  });
});
