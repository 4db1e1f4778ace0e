// GET /v1/events end to end: live events over SSE and WebSocket, session filtering, replay from Last-Event-ID /
// since, API-key tenancy, heartbeats, the subscriber count in /healthz and what shutdown does to subscribers.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { connect, type Socket } from 'node:net';
import { Agent, fetch, type Response } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { ChatEvent } from '../src/events/types.js';
import { startJarvis, type TestJarvis } from './support/jarvis.js';
import { forEachSseBlock, parseSseBlock, sseData } from './support/sse.js';
import { startMockUpstream, type MockUpstream } from '../fakes/openai/index.js';
import { upgrade } from './support/access.js';

type JarvisEvent = ChatEvent;

const DEADLINE_MS = 5000;

/**
 * HTTP clients get a dispatcher per server, destroyed before that server closes: undici opens a fresh
 * connection after an aborted request's socket closes, and Jarvis's shutdown waits for a connection that never
 * sent a request until its client drops it, which would add undici's 4 s keep-alive to every close.
 */
const agents = new Map<string, Agent>();
const agentFor = (base: string) => agents.get(base) ?? agents.set(base, new Agent()).get(base)!;
async function closeServer(server: TestJarvis | undefined): Promise<void> {
  if (!server) return;
  await agents.get(server.url)?.destroy();
  agents.delete(server.url);
  await server.close();
}

/** Resolves once `ready()` holds, re-checked on every change announced through `onChange`; fails at the deadline. */
function waitUntil(ready: () => boolean, failed: () => string | undefined, onChange: Set<() => void>, what: string, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const finish = (err?: Error) => {
      clearTimeout(timer);
      onChange.delete(check);
      if (err) reject(err);
      else resolve();
    };
    const check = () => {
      if (ready()) return finish();
      const why = failed();
      if (why !== undefined) finish(new Error(`${why} before ${what}`));
    };
    const timer = setTimeout(() => finish(new Error(`no ${what} within ${timeoutMs} ms`)), timeoutMs);
    onChange.add(check);
    check();
  });
}

/** An SSE subscriber to /v1/events, parsed as it arrives. */
class SseSubscriber {
  readonly events: JarvisEvent[] = [];
  /** The `id:` and `event:` lines of each event, as sent. */
  readonly frames: { id: string | undefined; event: string | undefined }[] = [];
  readonly comments: string[] = [];
  /** The `event: close` goodbye, if one came. */
  goodbye: Record<string, unknown> | undefined;
  raw = '';
  ended = false;
  readonly done: Promise<void>;
  readonly #changed = new Set<() => void>();
  readonly #abort: AbortController;

  private constructor(res: Response, abort: AbortController) {
    this.#abort = abort;
    this.done = this.#pump(res.body!);
  }

  static async open(base: string, opts: { query?: string; headers?: Record<string, string> } = {}): Promise<SseSubscriber> {
    const abort = new AbortController();
    const res = await fetch(`${base}/v1/events${opts.query ? `?${opts.query}` : ''}`, { headers: opts.headers ?? {}, signal: abort.signal, dispatcher: agentFor(base) });
    if (res.status !== 200) throw new Error(`GET /v1/events answered ${res.status}: ${await res.text()}`);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const sub = new SseSubscriber(res, abort);
    // `: connected` is written after the subscriber is attached, in the same tick: once seen, events are live.
    await sub.waitFor(() => sub.comments.length > 0, 'the connected comment');
    expect(sub.raw.startsWith(': connected\n\n')).toBe(true);
    return sub;
  }

  async #pump(body: AsyncIterable<Uint8Array>): Promise<void> {
    try {
      await forEachSseBlock(
        body,
        (block) => this.#block(block),
        (text) => {
          this.raw += text;
          for (const fn of [...this.#changed]) fn();
        },
      );
    } catch {
      // aborted by close(), or the server went away: `ended` says so either way
    } finally {
      this.ended = true;
      for (const fn of [...this.#changed]) fn();
    }
  }


  #block(block: string): void {
    const { id, event, data, comments } = parseSseBlock(block);
    this.comments.push(...comments);
    if (data === undefined) return;
    if (event === 'close') {
      this.goodbye = JSON.parse(data) as Record<string, unknown>;
      return;
    }
    this.events.push(JSON.parse(data) as JarvisEvent);
    this.frames.push({ id, event });
  }

  waitFor(ready: () => boolean, what: string, timeoutMs = DEADLINE_MS): Promise<void> {
    return waitUntil(ready, () => (this.ended ? 'the events stream ended' : undefined), this.#changed, what, timeoutMs);
  }

  /** Waits for the final event (chat.end, chat.error or chat.cancelled) of `requestId`. */
  waitForEnd(requestId: string): Promise<void> {
    return this.waitFor(() => this.events.some((e) => e.request_id === requestId && FINAL.has(e.type)), `the final event of ${requestId}`);
  }

  async close(): Promise<void> {
    this.#abort.abort();
    await this.done;
  }
}

/** A WebSocket subscriber to /v1/events: one JSON text message per event. */
class WsSubscriber {
  readonly events: JarvisEvent[] = [];
  pings = 0;
  closedWith: { code: number; reason: string } | undefined;
  readonly closed: Promise<{ code: number; reason: string }>;
  readonly #changed = new Set<() => void>();

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data, isBinary) => {
      expect(isBinary).toBe(false);
      this.events.push(JSON.parse(String(data)) as JarvisEvent);
      for (const fn of [...this.#changed]) fn();
    });
    ws.on('ping', () => {
      this.pings++;
      for (const fn of [...this.#changed]) fn();
    });
    this.closed = new Promise((resolve) =>
      ws.once('close', (code, reason) => {
        this.closedWith = { code, reason: String(reason) };
        for (const fn of [...this.#changed]) fn();
        resolve(this.closedWith);
      }),
    );
  }

  static async open(base: string, opts: { query?: string; headers?: Record<string, string> } = {}): Promise<WsSubscriber> {
    const ws = new WebSocket(`${base.replace(/^http/, 'ws')}/v1/events${opts.query ? `?${opts.query}` : ''}`, { headers: opts.headers ?? {} });
    const sub = new WsSubscriber(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    return sub;
  }

  waitFor(ready: () => boolean, what: string, timeoutMs = DEADLINE_MS): Promise<void> {
    return waitUntil(ready, () => (this.closedWith ? `the socket closed (${this.closedWith.code})` : undefined), this.#changed, what, timeoutMs);
  }

  waitForEnd(requestId: string): Promise<void> {
    return this.waitFor(() => this.events.some((e) => e.request_id === requestId && FINAL.has(e.type)), `the final event of ${requestId}`);
  }

  async close(): Promise<void> {
    if (!this.closedWith) this.ws.close();
    await this.closed;
  }
}

const FINAL = new Set(['chat.end', 'chat.error', 'chat.cancelled']);


interface ChatResult {
  status: number;
  requestId: string;
  raw: string;
  /** The `data:` payloads, `[DONE]` included. */
  data: string[];
  content: string;
  contentChunks: number;
  finishReason: string | null | undefined;
}

function parseChat(status: number, requestId: string, raw: string): ChatResult {
  const data = sseData(raw);
  let content = '';
  let contentChunks = 0;
  let finishReason: string | null | undefined;
  for (const d of data) {
    if (d === '[DONE]') continue;
    const chunk = JSON.parse(d) as { choices: { delta: { content?: string }; finish_reason: string | null }[] };
    const c = chunk.choices[0];
    if (c?.delta.content) {
      content += c.delta.content;
      contentChunks++;
    }
    if (c?.finish_reason) finishReason = c.finish_reason;
  }
  return { status, requestId, raw, data, content, contentChunks, finishReason };
}

/** A streaming chat request whose first bytes can be awaited separately from its end. */
function openChat(base: string, body: Record<string, unknown>, headers: Record<string, string> = {}): { firstBytes: Promise<void>; result: Promise<ChatResult> } {
  let gotFirst!: () => void;
  const firstBytes = new Promise<void>((resolve) => (gotFirst = resolve));
  const result = (async () => {
    const res = await fetch(`${base}/v1/chat/completions`, {
      dispatcher: agentFor(base),
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify({ stream: true, ...body }),
    });
    expect(res.status).toBe(200);
    const decoder = new TextDecoder();
    let raw = '';
    for await (const chunk of res.body!) {
      raw += decoder.decode(chunk, { stream: true });
      if (raw.includes('data: ')) gotFirst();
    }
    gotFirst();
    return parseChat(res.status, res.headers.get('x-request-id') ?? '', raw);
  })();
  result.catch(() => gotFirst());
  return { firstBytes, result };
}

const chat = (base: string, body: Record<string, unknown>, headers: Record<string, string> = {}) => openChat(base, body, headers).result;
const user = (content: string) => [{ role: 'user', content }];

async function health(base: string): Promise<Record<string, number>> {
  return (await (await fetch(`${base}/healthz`, { dispatcher: agentFor(base) })).json()) as Record<string, number>;
}

/** Polls /healthz until `ok` holds; fails with the last counts at the deadline. */
async function waitForHealth(base: string, ok: (h: Record<string, number>) => boolean, what: string, timeoutMs = DEADLINE_MS): Promise<Record<string, number>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const h = await health(base);
    if (ok(h)) return h;
    if (Date.now() > deadline) throw new Error(`/healthz never showed ${what}: ${JSON.stringify(h)}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function expectStrictlyIncreasing(ids: number[]): void {
  for (let i = 1; i < ids.length; i++) expect(ids[i]!, `id #${i} after ${ids[i - 1]}`).toBeGreaterThan(ids[i - 1]!);
}

/** chat.start, chat.token(s), then chat.end: one stream, in order, carrying exactly what the client saw. */
function expectStreamEvents(events: JarvisEvent[], result: ChatResult, sessionId: string): void {
  const types = events.map((e) => e.type);
  expect(types[0]).toBe('chat.start');
  expect(types.at(-1)).toBe('chat.end');
  const tokens = events.slice(1, -1);
  expect(tokens.length).toBeGreaterThan(0);
  for (const e of tokens) expect(e.type).toBe('chat.token');
  for (const e of events) {
    expect(e).toMatchObject({ request_id: result.requestId, session_id: sessionId });
    expect(typeof e.trace).toBe('string');
    expect(e.trace.length).toBeGreaterThan(0);
    expect(Number.isInteger(e.id)).toBe(true);
    expect(typeof e.ts).toBe('number');
  }
  expectStrictlyIncreasing(events.map((e) => e.id));
  expect(tokens.map((e) => e.data.text).join('')).toBe(result.content);
  expect(tokens.reduce((n, e) => n + (e.data.tokens as number), 0)).toBe(result.contentChunks);
  expect(events.at(-1)!.data).toMatchObject({ finish_reason: result.finishReason, generated_tokens: result.contentChunks });
}

let mock: MockUpstream;
let jarvis: TestJarvis;

beforeAll(async () => {
  mock = await startMockUpstream();
  jarvis = await startJarvis({
    heartbeatMs: 20,
    simulator: { tokensPerSec: 1000, ttftMs: 0 },
    // Small batches (flushBytes 24): a stream is several chat.token events.
    events: { flushMs: 5, flushBytes: 24 },
    upstreams: [{ name: 'mock', baseUrl: mock.url, models: ['mock-model'] }],
  });
});
afterAll(async () => {
  await closeServer(jarvis);
  await mock?.close();
});

describe('GET /v1/events (SSE)', () => {
  it("delivers chat.start, chat.tokens and chat.end of its session's stream, in id order, with exactly the streamed text; nothing of other sessions", async () => {
    const mine = await SseSubscriber.open(jarvis.url, { query: 'session_id=sess-a' });
    const everything = await SseSubscriber.open(jarvis.url);
    try {
      const other = await chat(jarvis.url, { model: 'jarvis-sim', messages: user('Tell me about rivers') }, { 'x-session-id': 'sess-b' });
      const result = await chat(jarvis.url, { model: 'jarvis-sim', messages: user('Tell me about mountains') }, { 'x-session-id': 'sess-a' });
      expect(result.finishReason).toBe('stop');
      expect(result.data.at(-1)).toBe('[DONE]');
      await mine.waitForEnd(result.requestId);
      await everything.waitForEnd(result.requestId);

      // Events reach a subscriber in publish order, so all of sess-b's would have come before sess-a's chat.end.
      expect(mine.events.filter((e) => e.request_id === other.requestId)).toEqual([]);
      expect(new Set(mine.events.map((e) => e.session_id))).toEqual(new Set(['sess-a']));
      expectStreamEvents(mine.events, result, 'sess-a');
      // Batches go out past flushBytes (24): this answer is several batches, whatever the timing.
      expect(Buffer.byteLength(result.content)).toBeGreaterThan(3 * 25);
      expect(mine.events.filter((e) => e.type === 'chat.token').length).toBeGreaterThanOrEqual(3);
      expect(mine.frames).toEqual(mine.events.map((e) => ({ id: String(e.id), event: e.type })));

      // The unfiltered subscriber did get sess-b's stream: the filter, not chance, kept it from `mine`.
      expectStreamEvents(everything.events.filter((e) => e.request_id === other.requestId), other, 'sess-b');
      expect(everything.events.filter((e) => e.request_id === result.requestId)).toEqual(mine.events);
      expectStrictlyIncreasing(everything.events.map((e) => e.id));
    } finally {
      await mine.close();
      await everything.close();
    }
  });

  it('over a WebSocket on the same path delivers the same events, one JSON text message each', async () => {
    const sse = await SseSubscriber.open(jarvis.url, { query: 'session_id=sess-ws' });
    const ws = await WsSubscriber.open(jarvis.url, { query: 'session_id=sess-ws' });
    try {
      await waitForHealth(jarvis.url, (h) => h.subscribers === 2, 'both subscribers');
      const noise = await chat(jarvis.url, { model: 'jarvis-sim', messages: user('Say something else') }, { 'x-session-id': 'sess-ws-other' });
      const result = await chat(jarvis.url, { model: 'jarvis-sim', messages: user('Tell me about lakes') }, { 'x-session-id': 'sess-ws' });
      await sse.waitForEnd(result.requestId);
      await ws.waitForEnd(result.requestId);
      expectStreamEvents(ws.events, result, 'sess-ws');
      expect(ws.events.some((e) => e.request_id === noise.requestId)).toBe(false);
      expect(ws.events).toEqual(sse.events);
    } finally {
      await sse.close();
      await ws.close();
    }
  });

  it('replays the retained events after Last-Event-ID (header or query) and `since` (WebSocket), then continues live with no gap or duplicate', async () => {
    const session = 'sess-replay';
    const live = await SseSubscriber.open(jarvis.url, { query: `session_id=${session}` });
    const replayed: { name: string; events: () => JarvisEvent[]; waitForEnd: (id: string) => Promise<void>; close: () => Promise<void> }[] = [];
    try {
      const first = await chat(jarvis.url, { model: 'jarvis-sim', messages: user('Tell me about replays') }, { 'x-session-id': session });
      await live.waitForEnd(first.requestId);
      const original = [...live.events];
      expect(original.length).toBeGreaterThan(3);
      const second = original[1]!.id;
      const expected = original.slice(2);

      const viaHeader = await SseSubscriber.open(jarvis.url, { query: `session_id=${session}`, headers: { 'last-event-id': String(second) } });
      const viaQuery = await SseSubscriber.open(jarvis.url, { query: `session_id=${session}&last_event_id=${second}` });
      const viaWs = await WsSubscriber.open(jarvis.url, { query: `session_id=${session}&since=${second}` });
      for (const [name, sub] of [['Last-Event-ID header', viaHeader], ['last_event_id query', viaQuery], ['WebSocket since', viaWs]] as const) {
        replayed.push({ name, events: () => sub.events, waitForEnd: (id) => sub.waitForEnd(id), close: () => sub.close() });
      }
      for (const r of replayed) {
        await r.waitForEnd(first.requestId);
        expect(r.events(), r.name).toEqual(expected);
      }

      // Live from there: the next stream arrives once, whole, right after the replayed events.
      const next = await chat(jarvis.url, { model: 'jarvis-sim', messages: user('And once more') }, { 'x-session-id': session });
      await live.waitForEnd(next.requestId);
      for (const r of replayed) {
        await r.waitForEnd(next.requestId);
        expect(r.events(), r.name).toEqual(live.events.slice(2));
      }
    } finally {
      await live.close();
      for (const r of replayed) await r.close();
    }
  });

  it('answers an invalid Last-Event-ID, last_event_id or since with a 400 in the OpenAI error shape', async () => {
    const errorShape = { error: { message: expect.any(String), type: 'invalid_request_error', code: expect.any(String) } };
    const header = await fetch(`${jarvis.url}/v1/events`, { headers: { 'last-event-id': 'not-an-id' }, dispatcher: agentFor(jarvis.url) });
    expect(header.status).toBe(400);
    const headerBody = (await header.json()) as { error: { param: string | null } };
    expect(headerBody).toMatchObject(errorShape);
    expect(headerBody.error.param).toBe('Last-Event-ID');

    const query = await fetch(`${jarvis.url}/v1/events?last_event_id=-5`, { dispatcher: agentFor(jarvis.url) });
    expect(query.status).toBe(400);
    expect(await query.json()).toMatchObject(errorShape);

    const ws = await upgrade(jarvis.url, '/v1/events?since=yesterday');
    expect(ws.status).toBe(400);
    expect(JSON.parse(ws.body)).toMatchObject(errorShape);

    await waitForHealth(jarvis.url, (h) => h.subscribers === 0, 'no subscribers');
  });
});

describe('heartbeat', () => {
  it('sends `: ping` on an idle events stream and ping frames to an idle WebSocket subscriber', async () => {
    const sse = await SseSubscriber.open(jarvis.url, { query: 'session_id=sess-idle' });
    const ws = await WsSubscriber.open(jarvis.url, { query: 'session_id=sess-idle' });
    try {
      await sse.waitFor(() => sse.comments.includes(': ping'), 'a `: ping` comment');
      await ws.waitFor(() => ws.pings > 0, 'a ping frame');
      expect(sse.events).toEqual([]);
    } finally {
      await sse.close();
      await ws.close();
    }
  });

  it('sends `: ping` on a chat stream that pauses between tokens, without disturbing its chunks', async () => {
    // The mock upstream sends a token every 200 ms; the heartbeat interval is 20 ms.
    const result = await chat(jarvis.url, { model: 'mock-model', messages: user('slow please tokens:3 delay:200') });
    expect(result.finishReason).toBe('stop');
    expect(result.content).toBe('tok0 tok1 tok2 ');
    expect(result.data.at(-1)).toBe('[DONE]');
    const firstData = result.raw.indexOf('data: ');
    const ping = result.raw.indexOf(': ping\n\n', firstData);
    expect(ping, result.raw).toBeGreaterThan(firstData);
    expect(ping).toBeLessThan(result.raw.indexOf('data: [DONE]'));
    // Every ping is a whole comment frame of its own.
    for (const frame of result.raw.split('\n\n').filter((f) => f.includes('ping'))) expect(frame).toBe(': ping');
  });
});

describe('/healthz subscribers', () => {
  it('counts connected SSE and WebSocket subscribers and returns to 0 when they disconnect', async () => {
    await waitForHealth(jarvis.url, (h) => h.subscribers === 0, 'no subscribers');
    const a = await SseSubscriber.open(jarvis.url);
    const b = await SseSubscriber.open(jarvis.url, { query: 'session_id=x' });
    const c = await WsSubscriber.open(jarvis.url);
    try {
      await waitForHealth(jarvis.url, (h) => h.subscribers === 3, '3 subscribers');
      await a.close();
      await waitForHealth(jarvis.url, (h) => h.subscribers === 2, '2 subscribers');
    } finally {
      await a.close();
      await b.close();
      await c.close();
    }
    const h = await waitForHealth(jarvis.url, (x) => x.subscribers === 0, 'no subscribers');
    expect(h).toMatchObject({ subscribers: 0, streams: 0, sessions: 0, buffers: 0, timers: 0 });
  });
});

/** A raw connection to `base`, for what fetch cannot do: pipelining, hanging up mid-request. */
async function rawConnection(base: string): Promise<Socket> {
  const { hostname, port } = new URL(base);
  const socket = connect(Number(port), hostname);
  socket.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  return socket;
}

describe('subscribers whose client is gone', () => {
  const GET = 'GET /v1/events HTTP/1.1\r\nHost: jarvis\r\n\r\n';

  it('are not left registered when the client hangs up right after asking', async () => {
    await waitForHealth(jarvis.url, (h) => h.subscribers === 0, 'no subscribers');
    // Only the server can tell when it has handled a request whose client is already gone: watch for it.
    const handled: ServerResponse[] = [];
    const onRequest = (req: IncomingMessage, res: ServerResponse) => {
      if (req.url === '/v1/events?session_id=hangup') handled.push(res);
    };
    const server = jarvis.jarvis.app.server;
    server.on('request', onRequest);
    try {
      const socket = await rawConnection(jarvis.url);
      socket.end(GET.replace('/v1/events', '/v1/events?session_id=hangup'));
      socket.destroy();
      const deadline = Date.now() + DEADLINE_MS;
      // The handler writes the SSE head whether or not anyone is there to read it.
      while (handled[0]?.headersSent !== true) {
        if (Date.now() > deadline) throw new Error('the events handler never answered the request');
        await new Promise((r) => setTimeout(r, 5));
      }
      await waitForHealth(jarvis.url, (h) => h.subscribers === 0, 'no subscriber left behind');
    } finally {
      server.off('request', onRequest);
    }
  });

  it('are not left registered when their request was pipelined behind another events stream', async () => {
    await waitForHealth(jarvis.url, (h) => h.subscribers === 0, 'no subscribers');
    const socket = await rawConnection(jarvis.url);
    socket.write(GET + GET);
    // The second response is queued behind the first, which never ends; both subscribers are registered. The
    // queued response gets no 'close' of its own when the connection goes: only the socket tells.
    await waitForHealth(jarvis.url, (h) => h.subscribers === 2, 'both pipelined subscribers');
    socket.destroy();
    await waitForHealth(jarvis.url, (h) => h.subscribers === 0, 'no subscribers after the client left');
  });
});

describe('tenancy with API keys', () => {
  const KEY_A = 'sk-alpha-0123456789';
  const KEY_B = 'sk-bravo-9876543210';
  const as = (key: string) => ({ authorization: `Bearer ${key}` });
  let keyed: TestJarvis;

  beforeAll(async () => {
    keyed = await startJarvis({ apiKeys: [KEY_A, KEY_B], heartbeatMs: 20, simulator: { tokensPerSec: 200, ttftMs: 0 }, events: { flushMs: 5, flushBytes: 24 } });
  });
  afterAll(async () => {
    await closeServer(keyed);
  });

  it('refuses a missing or wrong key with 401, over SSE and WebSocket', async () => {
    for (const headers of [{}, as('sk-wrong-key-000000'), { authorization: KEY_A }]) {
      const res = await fetch(`${keyed.url}/v1/events`, { headers, dispatcher: agentFor(keyed.url) });
      expect(res.status).toBe(401);
      expect(await res.json()).toMatchObject({ error: { type: 'authentication_error', code: 'invalid_api_key', message: expect.any(String) } });
      const ws = await upgrade(keyed.url, '/v1/events', headers);
      expect(ws.status).toBe(401);
      expect(JSON.parse(ws.body)).toMatchObject({ error: { type: 'authentication_error', code: 'invalid_api_key' } });
    }
    await waitForHealth(keyed.url, (h) => h.subscribers === 0, 'no subscribers');
  });

  it('shows each key only its own streams, even in the same X-Session-Id, and one key cannot barge in on the other', async () => {
    const session = { 'x-session-id': 'shared' };
    const aSession = await SseSubscriber.open(keyed.url, { query: 'session_id=shared', headers: as(KEY_A) });
    const aAll = await WsSubscriber.open(keyed.url, { headers: as(KEY_A) });
    const bSession = await SseSubscriber.open(keyed.url, { query: 'session_id=shared', headers: as(KEY_B) });
    const bAll = await SseSubscriber.open(keyed.url, { headers: as(KEY_B) });
    try {
      await waitForHealth(keyed.url, (h) => h.subscribers === 4, '4 subscribers');
      // A's stream runs ~1 s; B's request in the same session id starts while it is running.
      const a = openChat(keyed.url, { model: 'jarvis-sim', messages: user('Write a long essay about sharing'), max_tokens: 200 }, { ...as(KEY_A), ...session });
      await a.firstBytes;
      const b = await chat(keyed.url, { model: 'jarvis-sim', messages: user('hi'), max_tokens: 5 }, { ...as(KEY_B), ...session });
      const aResult = await a.result;
      expect(b.finishReason).toBe('length');
      expect(aResult.finishReason, 'key B cancelled key A\'s stream').toBe('length');
      expect(aResult.contentChunks).toBe(200);

      await aSession.waitForEnd(aResult.requestId);
      await aAll.waitForEnd(aResult.requestId);
      await bSession.waitForEnd(b.requestId);
      await bAll.waitForEnd(b.requestId);
      expectStreamEvents(aSession.events, aResult, 'shared');
      expect(aAll.events).toEqual(aSession.events);
      expectStreamEvents(bSession.events, b, 'shared');
      expect(bAll.events).toEqual(bSession.events);

      // The two streams overlapped (ids are global to the bus): B started after A and before A ended.
      const bStart = bSession.events[0]!.id;
      expect(bStart).toBeGreaterThan(aSession.events[0]!.id);
      expect(bStart).toBeLessThan(aSession.events.at(-1)!.id);
      expect(await keyed.logs()).not.toMatch(/stream_cancelled .*reason=superseded/);
    } finally {
      await aSession.close();
      await aAll.close();
      await bSession.close();
      await bAll.close();
    }
  });
});

describe('shutdown', () => {
  it("ends connected subscribers' streams, so closing the server does not hang on them", async () => {
    const server = await startJarvis({ simulator: { tokensPerSec: 1000, ttftMs: 0 } });
    try {
      const sse = await SseSubscriber.open(server.url);
      const ws = await WsSubscriber.open(server.url);
      await waitForHealth(server.url, (h) => h.subscribers === 2, '2 subscribers');
      const result = await chat(server.url, { model: 'jarvis-sim', messages: user('hi') });
      await sse.waitForEnd(result.requestId);
      await ws.waitForEnd(result.requestId);

      await server.close();
      await sse.done;
      await ws.closed;
      expect(sse.ended).toBe(true);
      expect(sse.goodbye).toEqual({ reason: 'shutdown' });
      // 1001 "going away", with the reason, so a client knows to reconnect elsewhere.
      expect(ws.closedWith?.code).toBe(1001);
    } finally {
      await closeServer(server);
    }
  });
});
