// RedisEventBus against the real Redis on 127.0.0.1:6379: two buses (two instances) on one key prefix, each with
// its own RedisLink. Events published on one are delivered on the other; subscribe(afterId) replays from the
// stream and hands over to live delivery with no gap and no duplicate while publishing goes on.
import { randomBytes } from 'node:crypto';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisLink } from '../cluster/redis-link.js';
import type { Subscriber } from './event-bus.js';
import { RedisEventBus } from './redis-bus.js';
import type { ChatEvent, EventFilter, PublishedEvent, StreamMeta } from './types.js';

const REDIS_URL = 'redis://127.0.0.1:6379';
const uid = () => randomBytes(5).toString('hex');
const prefix = `jt:${uid()}:`;
const log = pino({ level: 'silent' });

const links: RedisLink[] = [];
let bus1: RedisEventBus;
let bus2: RedisEventBus;

class Collector implements Subscriber {
  readonly events: ChatEvent[] = [];
  readonly raw: PublishedEvent[] = [];
  constructor(readonly filter: EventFilter = {}) {}
  deliver(p: PublishedEvent): void {
    this.raw.push(p);
    this.events.push(p.event);
  }
}

const meta = (session: string, owner: string | null = null, request = `req_${session}`): StreamMeta => ({ request_id: request, session_id: session, trace: `t-${session}`, owner });

/** Polls `check` (true when done) with a deadline; `each` runs before every check (e.g. publishing again). */
async function until(check: () => boolean, what: string, each?: () => void, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    each?.();
    if (check()) return;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function expectStrictlyIncreasing(events: ChatEvent[]): void {
  for (let i = 1; i < events.length; i++) expect(events[i]!.id, `event ${i}`).toBeGreaterThan(events[i - 1]!.id);
}

beforeAll(async () => {
  for (let i = 0; i < 2; i++) links.push(new RedisLink({ url: REDIS_URL, prefix, log }));
  await Promise.all(links.map((l) => l.connect()));
  bus1 = new RedisEventBus({ link: links[0]!, replay: 10_000, log });
  bus2 = new RedisEventBus({ link: links[1]!, replay: 10_000, log });
  bus1.start();
  bus2.start();
  // Each read loop starts at "new entries from now"; publish until both have seen one, so neither misses what follows.
  const warm1 = new Collector({ sessionId: 'warm' });
  const warm2 = new Collector({ sessionId: 'warm' });
  const off = [bus1.subscribe(warm1), bus2.subscribe(warm2)];
  await until(() => warm1.events.length > 0 && warm2.events.length > 0, 'both read loops running', () => bus1.publish(meta('warm'), 'chat.start', {}));
  off.forEach((f) => f());
});

afterAll(async () => {
  await Promise.all([bus1?.close(), bus2?.close()]);
  const cmd = links[0]?.cmd;
  let cursor = '0';
  if (cmd) {
    do {
      const [next, keys] = await cmd.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
      cursor = next;
      if (keys.length) await cmd.del(...keys);
    } while (cursor !== '0');
  }
  await Promise.all(links.map((l) => l.close()));
});

describe('RedisEventBus across two instances', () => {
  it('publishes on one bus and delivers on the other, in order, with the same ids on both', async () => {
    const session = `s-${uid()}`;
    const on1 = new Collector({ sessionId: session });
    const on2 = new Collector({ sessionId: session });
    const off = [bus1.subscribe(on1), bus2.subscribe(on2)];
    bus1.publish(meta(session), 'chat.start', { model: 'm' });
    bus1.publish(meta(session), 'chat.token', { text: 'Hello', tokens: 1 });
    bus1.publish(meta(session), 'chat.token', { text: ' world', tokens: 1 });
    bus1.publish(meta(session), 'chat.end', { finish_reason: 'stop' });
    await until(() => on2.events.length === 4 && on1.events.length === 4, 'four events on both buses');
    off.forEach((f) => f());

    expect(on2.events.map((e) => e.type)).toEqual(['chat.start', 'chat.token', 'chat.token', 'chat.end']);
    expect(on2.events.map((e) => e.data.text ?? '').join('')).toBe('Hello world');
    expect(on2.events[0]).toMatchObject({ request_id: `req_${session}`, session_id: session, trace: `t-${session}`, data: { model: 'm' } });
    expectStrictlyIncreasing(on2.events);
    expect(on1.events).toEqual(on2.events);
    // The serialised form a transport sends is the event itself.
    for (const p of on2.raw) expect(JSON.parse(p.json)).toEqual(p.event);
  });

  it('carries the owner across instances, for per-key filtering', async () => {
    const session = `s-${uid()}`;
    const mine = new Collector({ sessionId: session, owner: 'key1' });
    const anyone = new Collector({ sessionId: session });
    const off = [bus2.subscribe(mine), bus2.subscribe(anyone)];
    bus1.publish(meta(session, 'key1', 'r1'), 'chat.start', {});
    bus1.publish(meta(session, 'key2', 'r2'), 'chat.start', {});
    bus1.publish(meta(session, null, 'r3'), 'chat.start', {});
    await until(() => anyone.events.length === 3, 'three events');
    off.forEach((f) => f());
    expect(mine.events.map((e) => e.request_id)).toEqual(['r1']);
    expect(mine.raw[0]!.owner).toBe('key1');
    expect(anyone.raw.map((p) => p.owner)).toEqual(['key1', 'key2', null]);
  });

  it('stops delivering after unsubscribe', async () => {
    const session = `s-${uid()}`;
    const gone = new Collector({ sessionId: session });
    const stays = new Collector({ sessionId: session });
    const offGone = bus2.subscribe(gone);
    const offStays = bus2.subscribe(stays);
    bus1.publish(meta(session), 'chat.start', {});
    await until(() => gone.events.length === 1 && stays.events.length === 1, 'first event');
    offGone();
    bus1.publish(meta(session), 'chat.end', {});
    await until(() => stays.events.length === 2, 'second event');
    offStays();
    expect(gone.events).toHaveLength(1);
  });

  it('events that arrive live while the replay is still being read are held, then delivered after it, once', async () => {
    const session = `s-${uid()}`;
    const reference = new Collector({ sessionId: session });
    const offRef = bus2.subscribe(reference);
    for (let n = 0; n < 50; n++) bus1.publish(meta(session), 'chat.token', { text: `a${n}` });
    await until(() => reference.events.length === 50, '50 events');

    // Hold back Redis's (real) answer to the replay read until live events have been dispatched meanwhile.
    const cmd = links[1]!.cmd;
    const xrange = cmd.xrange;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let answered!: () => void;
    const replayAnswered = new Promise<void>((r) => (answered = r));
    cmd.xrange = (async (...args: Parameters<typeof xrange>) => {
      const page = await (xrange as (...a: unknown[]) => Promise<unknown>).apply(cmd, args);
      answered();
      await gate;
      return page;
    }) as unknown as typeof xrange;
    const late = new Collector({ sessionId: session });
    let offLate: (() => void) | undefined;
    try {
      offLate = bus2.subscribe(late, reference.events[9]!.id);
      await replayAnswered;
      // Everything from here on is not in the replay page: only live delivery can bring it.
      for (let n = 50; n < 80; n++) bus1.publish(meta(session), 'chat.token', { text: `a${n}` });
      await until(() => reference.events.length === 80, '80 events on the reference');
      expect(late.events).toEqual([]);
    } finally {
      cmd.xrange = xrange;
      release();
    }
    await until(() => late.events.length >= 70, 'the replay and the held events');
    offRef();
    offLate?.();
    expect(late.events.map((e) => e.data.text)).toEqual(Array.from({ length: 70 }, (_, i) => `a${i + 10}`));
    expect(late.events).toEqual(reference.events.slice(10));
  });

  it('subscribe(afterId) on the other bus replays from the stream (across pages) and goes live with no gap or duplicate while publishing continues', async () => {
    const session = `s-${uid()}`;
    const reference = new Collector({ sessionId: session });
    const offRef = bus2.subscribe(reference);
    const data = (n: number) => ({ text: `t${n}`, tokens: 1 });

    // More than one replay page (1000) before the late subscriber arrives...
    const BEFORE = 1200;
    const DURING = 400;
    for (let n = 0; n < BEFORE; n++) bus1.publish(meta(session), 'chat.token', data(n));
    await until(() => reference.events.length === BEFORE, `${BEFORE} events on the reference`);

    // ...and more published while its replay is being read: on both buses, in small bursts.
    let published = BEFORE;
    const publishing = (async () => {
      while (published < BEFORE + DURING) {
        for (let k = 0; k < 10; k++) (published % 2 ? bus1 : bus2).publish(meta(session), 'chat.token', data(published++));
        await new Promise((r) => setImmediate(r));
      }
    })();
    const from = 99;
    const afterId = reference.events[from]!.id;
    const late2 = new Collector({ sessionId: session });
    const late1 = new Collector({ sessionId: session });
    const offLate = [bus2.subscribe(late2, afterId), bus1.subscribe(late1, afterId)];
    await publishing;

    const total = BEFORE + DURING;
    await until(() => reference.events.length === total && late2.events.length === total - from - 1 && late1.events.length === total - from - 1, 'every event on every subscriber');
    offRef();
    offLate.forEach((f) => f());

    expectStrictlyIncreasing(reference.events);
    // Every event exactly once; those published from one connection in the order they were published.
    const texts = reference.events.map((e) => e.data.text as string);
    expect([...texts].sort()).toEqual(Array.from({ length: total }, (_, n) => `t${n}`).sort());
    expect(texts.slice(0, BEFORE)).toEqual(Array.from({ length: BEFORE }, (_, n) => `t${n}`));
    const expected = reference.events.slice(from + 1).map((e) => e.id);
    expect(late2.events.map((e) => e.id)).toEqual(expected);
    expect(late1.events.map((e) => e.id)).toEqual(expected);
    expect(late2.events).toEqual(reference.events.slice(from + 1));
  });
});


describe('RedisEventBus at its edges (issue 13)', () => {
  /** A bus of its own on a fresh prefix, with its own link (which a test may take down) and a captured log. */
  async function isolated() {
    const own = `jt:${uid()}:`;
    const records: { msg: string; [k: string]: unknown }[] = [];
    const capture = pino({ level: 'info', base: null }, { write: (l: string) => void records.push(JSON.parse(l) as { msg: string }) });
    const link = new RedisLink({ url: REDIS_URL, prefix: own, log: capture });
    const writer = new RedisLink({ url: REDIS_URL, prefix: own, log });
    await Promise.all([link.connect(), writer.connect()]);
    let failures = 0;
    const bus = new RedisEventBus({ link, replay: 1000, log: capture, instanceId: 'iso', onReadFailure: () => failures++ });
    return {
      bus,
      link,
      writer,
      records,
      failures: () => failures,
      async close() {
        await bus.close();
        await writer.cmd.del(`${own}events`);
        await Promise.all([link.close(), writer.close()]);
      },
    };
  }

  it('a Last-Event-ID beyond the stream does not silence the subscriber: live events still arrive', async () => {
    const session = `s-${uid()}`;
    const ahead = new Collector({ sessionId: session });
    const off = bus2.subscribe(ahead, Number.MAX_SAFE_INTEGER);
    await until(() => ahead.events.length > 0, 'a live event after an id from the future', () => bus1.publish(meta(session), 'chat.start', {}));
    off();
  });

  it("events delivered locally while Redis was away do not move a subscriber's cursor past events that reach Redis", async () => {
    const iso = await isolated();
    try {
      iso.bus.start();
      const session = `s-${uid()}`;
      const sub = new Collector({ sessionId: session });
      iso.bus.subscribe(sub);
      await until(() => sub.events.length > 0, 'the read loop running', () => iso.bus.publish(meta(session), 'chat.start', { n: 0 }));
      const before = Date.now();
      // This instance loses Redis for commands (its reader stays connected); it publishes locally meanwhile.
      iso.link.cmd.disconnect(false);
      await until(() => !iso.link.available, 'the link down');
      while (Date.now() < before + 3);
      iso.bus.publish(meta(session), 'chat.token', { local: true });
      expect(sub.events.at(-1)!.data).toEqual({ local: true });
      // Another instance's event reaches the stream with a time (id) earlier than the local one's.
      const body = { type: 'chat.end', request_id: 'req_x', session_id: session, trace: 't', ts: before, data: { remote: true } };
      await iso.writer.cmd.xadd(`${iso.writer.prefix}events`, `${before + 1}-0`, 'e', JSON.stringify(body), 'o', '');
      await until(() => sub.events.some((e) => (e.data as { remote?: boolean }).remote), 'the earlier-stamped Redis event delivered');
    } finally {
      await iso.close();
    }
  });

  it('a read loop that keeps failing detaches its listeners, and says so once, with a count', async () => {
    const iso = await isolated();
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.name);
    process.on('warning', onWarning);
    try {
      // The stream's key holds a string: every XREAD fails with WRONGTYPE.
      await iso.writer.cmd.set(`${iso.writer.prefix}events`, 'not a stream');
      iso.bus.start();
      await until(() => iso.failures() >= 14, '14 failed reads', undefined, 15_000);
      expect(warnings).not.toContain('MaxListenersExceededWarning');
      const lines = iso.records.filter((r) => r.msg === 'event_read_failed');
      expect(lines).toHaveLength(1);
      expect(String(lines[0]!.err)).toMatch(/WRONGTYPE/);
    } finally {
      process.off('warning', onWarning);
      await iso.close();
    }
  });
});
