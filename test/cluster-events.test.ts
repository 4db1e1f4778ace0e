// Events across instances: two real Jarvis processes on the shared Redis (this file's own prefix). A subscriber
// on one instance sees a stream served by the other; ids are one increasing sequence everywhere; a subscriber
// that reconnects to another instance with Last-Event-ID gets exactly what it missed, compared against one that
// stayed connected.
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { simulatedAnswer } from '../src/providers/simulated/answer.js';
import { chat, EventSubscriber, keysOf, orFail, sessionId, startCluster, type JarvisEvent, type JarvisProcess, type TestCluster } from './support/cluster.js';

const REDIS_URL = 'redis://127.0.0.1:6379';
/** Hundreds of tokens, over a second at 400 tokens/s: many batched chat.token events. */
const LONG = 'Long essay about the history of maps';
const SHORT = '3+4?';

let cluster: TestCluster;
let i1: JarvisProcess;
let i2: JarvisProcess;
let redis: Redis;
const subscribers: EventSubscriber[] = [];

async function subscribe(proc: JarvisProcess, opts: { session?: string; lastEventId?: number } = {}): Promise<EventSubscriber> {
  const sub = await EventSubscriber.open(proc, opts);
  subscribers.push(sub);
  return sub;
}

beforeAll(async () => {
  redis = new Redis(REDIS_URL);
  cluster = await startCluster({ n: 2, redisUrl: REDIS_URL, env: { JARVIS_SIM_TOKENS_PER_SEC: '400', JARVIS_SIM_TTFT_MS: '10' } });
  [i1, i2] = cluster.instances as [JarvisProcess, JarvisProcess];
});

afterAll(async () => {
  await Promise.all(subscribers.map((s) => s.close()));
  await cluster?.stop();
  if (cluster) expect(await keysOf(redis, cluster.prefix)).toEqual([]);
  redis?.disconnect();
});

const ofRequest = (events: JarvisEvent[], requestId: string) => events.filter((e) => e.request_id === requestId);

function expectIncreasing(events: JarvisEvent[]): void {
  for (let i = 1; i < events.length; i++) expect(events[i]!.id, `event ${i} id`).toBeGreaterThan(events[i - 1]!.id);
}

describe('events across instances', () => {
  it('a subscriber on instance 2 sees chat.start, chat.token and chat.end of a stream served by instance 1', async () => {
    const session = sessionId('ev');
    const sub2 = await subscribe(i2, { session });
    const sub1 = await subscribe(i1, { session });
    const res = await orFail(chat(i1, SHORT, { session }).result, 'the chat');
    expect(res.finishReason).toBe('stop');
    await Promise.all([sub2.untilEnd(res.requestId), sub1.untilEnd(res.requestId)]);

    const events = ofRequest(sub2.events, res.requestId);
    expect(events.length).toBe(sub2.events.length);
    expect(events[0]!.type).toBe('chat.start');
    expect(events.at(-1)!.type).toBe('chat.end');
    const tokens = events.slice(1, -1);
    expect(tokens.length).toBeGreaterThan(0);
    for (const e of tokens) expect(e.type).toBe('chat.token');
    expect(tokens.map((e) => e.data.text).join('')).toBe(res.text);
    expect(res.text).toBe(simulatedAnswer(SHORT).join(''));
    expect(tokens.reduce((n, e) => n + (e.data.tokens as number), 0)).toBe(res.chunks.filter((c) => c.choices?.[0]?.delta.content).length);
    expect(events.at(-1)!.data).toMatchObject({ finish_reason: 'stop', generated_tokens: simulatedAnswer(SHORT).length });
    for (const e of events) expect(e.session_id).toBe(session);

    expectIncreasing(events);
    expect(sub2.frameIds).toEqual(sub2.events.map((e) => String(e.id)));
    // The producing instance's own subscriber sees the very same events, ids included: one stream, one order.
    expect(sub1.events).toEqual(sub2.events);
  });

  it('replay after reconnecting elsewhere: Last-Event-ID on instance 2 continues exactly where instance 1 left off', async () => {
    const session = sessionId('rp');
    const stayed = await subscribe(i2, { session });
    const first = await subscribe(i1, { session });
    const c = chat(i1, LONG, { session });
    // A few events in, the subscriber drops while the stream is still generating...
    await first.until(() => first.events.length >= 3, 'three events');
    await first.close();
    const readBefore = [...first.events];
    const last = readBefore.at(-1)!.id;
    // ...and reconnects to the other instance, while events keep coming.
    const again = await subscribe(i2, { session, lastEventId: last });
    const res = await orFail(c.result, 'the chat');
    expect(res.finishReason).toBe('stop');
    await Promise.all([stayed.untilEnd(res.requestId), again.untilEnd(res.requestId)]);

    expect(again.events.length).toBeGreaterThan(0);
    expect(again.events[0]!.id).toBeGreaterThan(last);
    expect([...readBefore, ...again.events]).toEqual(stayed.events);
    expectIncreasing(stayed.events);
    expect(stayed.events[0]!.type).toBe('chat.start');
    expect(stayed.events.at(-1)!.type).toBe('chat.end');
    expect(
      stayed.events
        .filter((e) => e.type === 'chat.token')
        .map((e) => e.data.text)
        .join(''),
    ).toBe(res.text);
  });

  it('every instance delivers every instance’s events in one order', async () => {
    const [sx, sy] = [sessionId('ox'), sessionId('oy')];
    const u1 = await subscribe(i1);
    const u2 = await subscribe(i2);
    const [rx, ry] = await orFail(Promise.all([chat(i1, LONG, { session: sx }).result, chat(i2, LONG, { session: sy }).result]), 'both chats');
    expect([rx.finishReason, ry.finishReason]).toEqual(['stop', 'stop']);
    await Promise.all([u1.untilEnd(rx.requestId), u1.untilEnd(ry.requestId), u2.untilEnd(rx.requestId), u2.untilEnd(ry.requestId)]);

    const mine = (events: JarvisEvent[]) => events.filter((e) => e.session_id === sx || e.session_id === sy);
    const seen1 = mine(u1.events);
    const seen2 = mine(u2.events);
    expect(seen1).toEqual(seen2);
    expectIncreasing(seen1);
    for (const r of [rx, ry]) {
      const evs = ofRequest(seen1, r.requestId);
      expect(evs[0]!.type).toBe('chat.start');
      expect(evs.at(-1)!.type).toBe('chat.end');
      expect(evs.filter((e) => e.type === 'chat.token').map((e) => e.data.text).join('')).toBe(r.text);
    }
  });
});
