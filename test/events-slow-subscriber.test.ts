// A subscriber that stops reading is disconnected once its unread bytes pass events.maxSubscriberBufferBytes,
// and never holds up a chat stream: publishing is a non-blocking write into its buffer, whatever it does.
import { connect, type Socket } from 'node:net';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Health } from './support/chat.js';
import { startJarvis, type TestJarvis } from './support/jarvis.js';
import { sseData } from './support/sse.js';

const STREAMS_PER_ROUND = 8;
/**
 * The kernel absorbs a few MB for a peer that does not read (socket send buffer autotuned up to tcp_wmem's
 * maximum, 4 MB by default, plus the peer's receive buffer) before Node holds any unread bytes itself; so
 * streams run in rounds until the stalled subscribers are gone, whatever the host's buffer sizes. 25 rounds
 * is ~55 MB of events per subscriber, over ten times what default Linux buffers hold.
 */
const MAX_ROUNDS = 25;
/** Long (but valid) trace and session ids make every event ~0.5 KB, so fewer rounds are needed. */
const LONG_ID = 'x'.repeat(100);

let jarvis: TestJarvis;
let agent: Agent;
const stalled: Socket[] = [];

beforeAll(async () => {
  jarvis = await startJarvis({
    heartbeatMs: 20,
    simulator: { tokensPerSec: 1000, ttftMs: 0 },
    // Every token its own chat.token event (each is > 1 byte), and a tiny allowance of unread bytes.
    events: { flushMs: 5, flushBytes: 1, maxSubscriberBufferBytes: 2048 },
  });
  agent = new Agent();
});
afterAll(async () => {
  for (const s of stalled) s.destroy();
  await agent?.destroy();
  await jarvis?.close();
});


async function health(): Promise<Health> {
  const res = await request(`${jarvis.url}/healthz`, { dispatcher: agent });
  return (await res.body.json()) as Health;
}

async function waitForHealth(ok: (h: Health) => boolean, what: string, timeoutMs = 10_000): Promise<Health> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const h = await health();
    if (ok(h)) return h;
    if (Date.now() > deadline) throw new Error(`/healthz never showed ${what}: ${JSON.stringify(h)}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A raw TCP client that sends `request`, reads until `until` arrives, and then never reads (nor answers) again. */
async function stalledClient(request: string, until: string): Promise<{ socket: Socket; head: string }> {
  const { hostname, port } = new URL(jarvis.url);
  const socket = connect(Number(port), hostname);
  stalled.push(socket);
  socket.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  socket.write(request);
  let head = '';
  await new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      head += chunk.toString('latin1');
      if (!head.includes(until)) return;
      socket.off('data', onData);
      socket.pause();
      resolve();
    };
    socket.on('data', onData);
    socket.once('close', () => reject(new Error(`closed before subscribing: ${head}`)));
  });
  return { socket, head };
}

/** An events SSE subscriber that reads up to `: connected`, and then never reads again. */
async function stalledSubscriber(): Promise<Socket> {
  const { host } = new URL(jarvis.url);
  const { socket, head } = await stalledClient(`GET /v1/events HTTP/1.1\r\nHost: ${host}\r\nAccept: text/event-stream\r\n\r\n`, ': connected\n\n');
  expect(head).toMatch(/^HTTP\/1\.1 200 /);
  expect(head).toMatch(/content-type: text\/event-stream/i);
  return socket;
}

/** An events WebSocket subscriber that reads the 101, and then never reads (nor answers a close) again. */
async function stalledWsSubscriber(): Promise<Socket> {
  const { host } = new URL(jarvis.url);
  const key = Buffer.from('0123456789abcdef').toString('base64');
  const request = `GET /v1/events HTTP/1.1\r\nHost: ${host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`;
  const { socket, head } = await stalledClient(request, '\r\n\r\n');
  expect(head).toMatch(/^HTTP\/1\.1 101 /);
  return socket;
}

/** Jarvis's grace for a dropped SSE subscriber's goodbye: its socket is destroyed this long after the drop. */
const GOODBYE_GRACE_MS = 1000;

/** The goodbye a dropped SSE subscriber gets, and the end of its chunked response. */
const GOODBYE = 'event: close\ndata: {"reason":"slow_consumer"}\n\n\r\n0\r\n\r\n';

interface Ended {
  /** The response ended (the goodbye event and the chunked terminator arrived), or the socket closed first. */
  how: 'ended' | 'closed';
  /** The last bytes read. */
  tail: string;
  /** The peer closed the connection (FIN, or a reset): the client never closed its side. */
  byServer: boolean;
  /** From resuming to the end. */
  ms: number;
}

/**
 * Resumes reading a dropped subscriber and resolves once its connection is over: either the response ended (the
 * goodbye event and the chunked terminator arrive) or, if the server freed the socket first, it closed.
 */
function readUntilEnded(socket: Socket, timeoutMs = 10_000): Promise<Ended> {
  let tail = '';
  let byServer = false;
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`dropped subscriber's connection still open; last bytes: ${JSON.stringify(tail)}`)), timeoutMs);
    const finish = (how: 'ended' | 'closed') => {
      clearTimeout(timer);
      resolve({ how, tail, byServer, ms: performance.now() - started });
    };
    socket.on('data', (chunk: Buffer) => {
      tail = (tail + chunk.toString('latin1')).slice(-1024);
      if (tail.endsWith('\r\n0\r\n\r\n')) finish('ended');
    });
    socket.once('end', () => (byServer = true));
    socket.once('error', (err: NodeJS.ErrnoException) => (byServer ||= err.code === 'ECONNRESET' || err.code === 'EPIPE'));
    socket.once('close', () => finish('closed'));
    socket.resume();
  });
}

/** What holds however a dropped subscriber's connection ended: it ended soon, and the server ended it. */
function expectDisconnected(e: Ended): void {
  // Dropped before reading resumed, its socket is freed within the grace: it cannot stay open past it.
  expect(e.ms, `connection over ${Math.round(e.ms)} ms after reading resumed`).toBeLessThan(GOODBYE_GRACE_MS + 3000);
  if (e.how === 'ended') {
    // The goodbye, last, then the end of the chunked response.
    expect(e.tail.endsWith(GOODBYE), `ends with the goodbye: ${JSON.stringify(e.tail)}`).toBe(true);
    return;
  }
  // Freed before its goodbye could reach it: the server closed the connection (the client never closes its side),
  // with no normal end of the response, once the events the network held for it were read: a slow consumer's.
  expect(e.byServer, `closed by the server; last bytes ${JSON.stringify(e.tail)}`).toBe(true);
  expect(e.tail).not.toMatch(/\r\n0\r\n\r\n$/);
  expect(e.tail).toMatch(/\nevent: [a-z]+\.[a-z_.]+\ndata: \{/);
  // Nothing follows a goodbye, if that much of it arrived.
  const bye = e.tail.lastIndexOf('event: close\n');
  if (bye >= 0) expect(GOODBYE.startsWith(e.tail.slice(bye)), `nothing after the goodbye: ${JSON.stringify(e.tail.slice(bye))}`).toBe(true);
}

interface StreamResult {
  status: number;
  dataLines: number;
  finishReason: string | undefined;
  done: boolean;
}

async function longChat(i: number): Promise<StreamResult> {
  const res = await request(`${jarvis.url}/v1/chat/completions`, {
    dispatcher: agent,
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-session-id': `slow-sub-${i}-${LONG_ID}`, 'x-trace-id': `trace-${i}-${LONG_ID}` },
    body: JSON.stringify({ model: 'jarvis-sim', stream: true, messages: [{ role: 'user', content: `Write a long essay about rivers number ${i}` }] }),
  });
  const text = await res.body.text();
  const data = sseData(text);
  const finishes = [...text.matchAll(/"finish_reason":"(\w+)"/g)].map((m) => m[1]);
  return { status: res.statusCode, dataLines: data.length, finishReason: finishes.at(-1), done: data.at(-1) === '[DONE]' && text.endsWith('data: [DONE]\n\n') };
}

function droppedCount(metrics: string): number {
  const m = /^jarvis_event_subscribers_dropped_total\{reason="slow_consumer"\} (\d+)/m.exec(metrics);
  return m ? Number(m[1]) : 0;
}

describe('a subscriber that stops reading', () => {
  it('is dropped as a slow consumer while every chat stream completes normally', async () => {
    await waitForHealth((h) => h.subscribers === 0, 'no subscribers');
    const subscribers = [await stalledSubscriber(), await stalledSubscriber()];
    expect((await health()).subscribers).toBe(2);
    expect(await jarvis.logs()).not.toMatch(/subscriber_dropped/);

    const results: StreamResult[] = [];
    let rounds = 0;
    // Dropping unsubscribes at once, so /healthz shows it as soon as it happens.
    while ((await health()).subscribers > 0) {
      if (rounds++ === MAX_ROUNDS) throw new Error(`stalled subscribers still connected after ${results.length} streams`);
      results.push(...(await Promise.all(Array.from({ length: STREAMS_PER_ROUND }, (_, i) => longChat(results.length + i)))));
    }
    console.log(`stalled subscribers dropped after ${rounds} round(s), ${results.length} streams`);
    for (const r of results) {
      expect(r.status).toBe(200);
      expect(r.finishReason).toBe('stop');
      expect(r.done).toBe(true);
      // "Long essay" prompts are hundreds of tokens: role chunk + tokens + finish chunk + [DONE].
      expect(r.dataLines).toBeGreaterThan(300);
    }

    const log = await jarvis.waitForLog((l) => (l.match(/subscriber_dropped .*reason=slow_consumer/g) ?? []).length >= 2);
    for (const line of log.split('\n').filter((l) => l.includes('subscriber_dropped'))) {
      expect(line).toMatch(/ warn subscriber_dropped /);
      expect(line).toMatch(/reason=slow_consumer/);
      expect(line).toMatch(/last_event_id=\d+/);
    }
    expect(log).not.toMatch(/stream_cancelled/);
    expect((log.match(/stream_end .*outcome=end/g) ?? []).length).toBe(results.length);

    // Dropped means disconnected, not merely forgotten: its response is ended (goodbye, then the end of the chunked
    // response) or, if the grace ran out with the goodbye still unsent, its socket freed: which one depends on how
    // much the network took before reading resumed, and each is held to what it must show.
    const ended: Ended[] = [];
    for (const socket of subscribers) ended.push(await readUntilEnded(socket));
    for (const e of ended) expectDisconnected(e);
    console.log(`dropped subscribers' connections: ${ended.map((e) => `${e.how} (${Math.round(e.ms)} ms)`).join(', ')}`);

    const metrics = await (await request(`${jarvis.url}/metrics`, { dispatcher: agent })).body.text();
    expect(droppedCount(metrics)).toBeGreaterThanOrEqual(2);

    const h = await waitForHealth((x) => x.subscribers === 0 && x.streams === 0 && x.sessions === 0 && x.buffers === 0 && x.timers === 0, 'everything released');
    expect(h).toMatchObject({ subscribers: 0, streams: 0, sessions: 0, buffers: 0, timers: 0 });
  }, 60_000);
});

describe('a WebSocket subscriber that stops reading', () => {
  it('is dropped, and its connection freed within seconds (not after ws\'s 30 s wait for a close reply)', async () => {
    await waitForHealth((h) => h.subscribers === 0, 'no subscribers');
    const socket = await stalledWsSubscriber();
    expect((await health()).subscribers).toBe(1);
    let rounds = 0;
    let streams = 0;
    while ((await health()).subscribers > 0) {
      if (rounds++ === MAX_ROUNDS) throw new Error('stalled WebSocket subscriber still connected');
      await Promise.all(Array.from({ length: STREAMS_PER_ROUND }, () => longChat(streams++)));
    }
    const dropped = performance.now();
    await jarvis.waitForLog((l) => /subscriber_dropped .*reason=slow_consumer/.test(l));
    // The client never answers the close frame; all it can do is read what is left, then see the end.
    const closed = new Promise<number>((resolve) => socket.once('close', () => resolve(performance.now() - dropped)));
    socket.on('data', () => {});
    socket.resume();
    const afterMs = await Promise.race([closed, new Promise<number>((r) => setTimeout(() => r(Infinity), 15_000))]);
    expect(afterMs).toBeLessThan(15_000);
    console.log(`dropped WebSocket subscriber's connection closed ${Math.round(afterMs)} ms after the drop`);
  }, 60_000);
});
