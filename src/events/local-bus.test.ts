// LocalEventBus: fan-out through filters, ids, replay after an id, replay then live with no gap or duplicate.
import { describe, expect, it } from 'vitest';
import type { Subscriber } from './event-bus.js';
import { LocalEventBus } from './local-bus.js';
import type { ChatEvent, EventFilter, PublishedEvent, StreamMeta } from './types.js';

const meta = (session: string, owner: string | null = null, request = `req-${session}`): StreamMeta => ({ request_id: request, session_id: session, trace: `t-${request}`, owner });

function collector(filter: EventFilter = {}): Subscriber & { got: PublishedEvent[]; ids: () => number[] } {
  const got: PublishedEvent[] = [];
  return { filter, got, deliver: (p) => void got.push(p), ids: () => got.map((p) => p.event.id) };
}

const newBus = (replay = 100) => new LocalEventBus({ replay, now: () => 1_000 });

describe('publishing', () => {
  it('gives each event an increasing id, the publish time and the stream meta', () => {
    const bus = newBus();
    const sub = collector();
    bus.subscribe(sub);
    bus.publish(meta('s1', null, 'r1'), 'chat.start', { model: 'm' });
    bus.publish(meta('s1', null, 'r1'), 'chat.token', { text: 'hi', tokens: 1 });
    const [first, second] = sub.ids();
    expect(second).toBeGreaterThan(first!);
    expect(sub.got[0]!.event).toMatchObject({ type: 'chat.start', request_id: 'r1', session_id: 's1', trace: 't-r1', ts: 1_000, data: { model: 'm' } });
  });

  it('keeps ids increasing when the clock steps back, and moves them forward with the clock', () => {
    const t0 = Date.UTC(2026, 10, 24);
    let now = t0 + 5_000;
    const bus = new LocalEventBus({ replay: 10, now: () => now });
    const sub = collector();
    bus.subscribe(sub);
    bus.publish(meta('s'), 'chat.start', {});
    now = t0 + 4_000;
    bus.publish(meta('s'), 'chat.token', {});
    now = t0 + 9_000;
    bus.publish(meta('s'), 'chat.end', {});
    const [a, b, c] = sub.ids();
    expect(b).toBeGreaterThan(a!);
    expect(c).toBeGreaterThan(b!);
    // A later clock gives ids above any a restarted bus at the earlier time could have handed out.
    const restarted = new LocalEventBus({ replay: 10, now: () => t0 + 5_000 });
    const other = collector();
    restarted.subscribe(other);
    for (let i = 0; i < 100; i++) restarted.publish(meta('s'), 'chat.token', {});
    expect(c).toBeGreaterThan(Math.max(...other.ids()));
  });

  it('serialises once, without the owner', () => {
    const bus = newBus();
    const a = collector();
    const b = collector();
    bus.subscribe(a);
    bus.subscribe(b);
    bus.publish(meta('s1', 'key-1'), 'chat.end', { finish_reason: 'stop' });
    expect(a.got[0]).toBe(b.got[0]);
    const parsed = JSON.parse(a.got[0]!.json) as ChatEvent & { owner?: unknown };
    expect(parsed).toEqual(a.got[0]!.event);
    expect(parsed.owner).toBeUndefined();
    expect(a.got[0]!.owner).toBe('key-1');
  });

  it('delivers synchronously, inside publish', () => {
    const bus = newBus();
    const sub = collector();
    bus.subscribe(sub);
    bus.publish(meta('s1'), 'chat.start', {});
    expect(sub.got).toHaveLength(1);
  });
});

describe('filters', () => {
  it('by session', () => {
    const bus = newBus();
    const one = collector({ sessionId: 'one' });
    const all = collector();
    bus.subscribe(one);
    bus.subscribe(all);
    bus.publish(meta('one'), 'chat.start', {});
    bus.publish(meta('two'), 'chat.start', {});
    bus.publish(meta('one'), 'chat.end', {});
    expect(one.got.map((p) => [p.event.session_id, p.event.type])).toEqual([
      ['one', 'chat.start'],
      ['one', 'chat.end'],
    ]);
    expect(all.got).toHaveLength(3);
  });

  it('by owner: a key sees its own streams only; null is an owner value of its own; undefined sees all', () => {
    const bus = newBus();
    const k1 = collector({ owner: 'k1' });
    const anonymous = collector({ owner: null });
    const everyone = collector({ owner: undefined });
    bus.subscribe(k1);
    bus.subscribe(anonymous);
    bus.subscribe(everyone);
    bus.publish(meta('s', 'k1', 'r1'), 'chat.start', {});
    bus.publish(meta('s', 'k2', 'r2'), 'chat.start', {});
    bus.publish(meta('s', null, 'r3'), 'chat.start', {});
    expect(k1.got.map((p) => p.event.request_id)).toEqual(['r1']);
    expect(anonymous.got.map((p) => p.event.request_id)).toEqual(['r3']);
    expect(everyone.got.map((p) => p.event.request_id)).toEqual(['r1', 'r2', 'r3']);
  });

  it('by session and owner together', () => {
    const bus = newBus();
    const sub = collector({ sessionId: 'a', owner: 'k1' });
    bus.subscribe(sub);
    bus.publish(meta('a', 'k1', 'r1'), 'chat.start', {});
    bus.publish(meta('a', 'k2', 'r2'), 'chat.start', {});
    bus.publish(meta('b', 'k1', 'r3'), 'chat.start', {});
    expect(sub.got.map((p) => p.event.request_id)).toEqual(['r1']);
  });
});

describe('replay', () => {
  it('without afterId: live events only', () => {
    const bus = newBus();
    bus.publish(meta('s'), 'chat.start', {});
    const sub = collector();
    bus.subscribe(sub);
    expect(sub.got).toEqual([]);
    bus.publish(meta('s'), 'chat.end', {});
    expect(sub.got.map((p) => p.event.type)).toEqual(['chat.end']);
  });

  it('after an id: the retained events after it, through the filter', () => {
    const bus = newBus();
    const spy = collector();
    bus.subscribe(spy);
    bus.publish(meta('a'), 'chat.start', {});
    bus.publish(meta('b'), 'chat.start', {});
    bus.publish(meta('a'), 'chat.token', { text: 'x', tokens: 1 });
    bus.publish(meta('a'), 'chat.end', {});
    const [first] = spy.ids();

    const sub = collector({ sessionId: 'a' });
    bus.subscribe(sub, first);
    expect(sub.got.map((p) => p.event.type)).toEqual(['chat.token', 'chat.end']);
    // Replay hands out the very events the live subscribers got.
    expect(sub.got[0]).toBe(spy.got[2]);
  });

  it('after an id older than the ring: what the ring still holds', () => {
    const bus = newBus(2);
    const spy = collector();
    bus.subscribe(spy);
    for (let i = 0; i < 5; i++) bus.publish(meta('s'), 'chat.token', { i });
    const sub = collector();
    bus.subscribe(sub, 0);
    expect(sub.ids()).toEqual(spy.ids().slice(-2));
  });

  it('replay then live: every event exactly once, in id order, with no gap', () => {
    const bus = newBus();
    const spy = collector();
    bus.subscribe(spy);
    for (let i = 0; i < 10; i++) bus.publish(meta('s'), 'chat.token', { i });
    const resumeAfter = spy.ids()[3]!;

    const sub = collector();
    bus.subscribe(sub, resumeAfter);
    for (let i = 10; i < 15; i++) bus.publish(meta('s'), 'chat.token', { i });

    const expected = spy.ids().filter((id) => id > resumeAfter);
    expect(sub.ids()).toEqual(expected);
    expect(new Set(sub.ids()).size).toBe(sub.ids().length);
    expect(sub.got.map((p) => p.event.data.i)).toEqual(Array.from({ length: 11 }, (_, k) => k + 4));
  });

  it('a subscriber that publishes from deliver still sees events once and in order', () => {
    const bus = newBus();
    const spy = collector();
    bus.subscribe(spy);
    bus.publish(meta('s'), 'chat.start', {});
    const got: number[] = [];
    let echoed = false;
    bus.subscribe(
      {
        filter: {},
        deliver: (p) => {
          got.push(p.event.id);
          if (!echoed) {
            echoed = true;
            bus.publish(meta('s'), 'chat.end', {});
          }
        },
      },
      0,
    );
    bus.publish(meta('s'), 'chat.token', {});
    expect(spy.ids()).toHaveLength(3);
    expect(got).toEqual(spy.ids());
  });
});

describe('unsubscribe and close', () => {
  it('unsubscribe stops delivery and updates the count; twice is harmless', () => {
    const bus = newBus();
    const a = collector();
    const b = collector();
    const offA = bus.subscribe(a);
    bus.subscribe(b);
    expect(bus.subscribers).toBe(2);
    bus.publish(meta('s'), 'chat.start', {});
    offA();
    offA();
    expect(bus.subscribers).toBe(1);
    bus.publish(meta('s'), 'chat.end', {});
    expect(a.got.map((p) => p.event.type)).toEqual(['chat.start']);
    expect(b.got.map((p) => p.event.type)).toEqual(['chat.start', 'chat.end']);
  });

  it('close drops every subscriber', async () => {
    const bus = newBus();
    const a = collector();
    bus.subscribe(a);
    await bus.close();
    expect(bus.subscribers).toBe(0);
    bus.publish(meta('s'), 'chat.start', {});
    expect(a.got).toEqual([]);
  });
});
