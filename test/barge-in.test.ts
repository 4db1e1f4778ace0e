// Barge-in sessions end to end, over real HTTP on loopback: the cancel-previous log contract, what a superseded
// client sees (raw SSE and the openai SDK), the upstream request being aborted, the other policies, client
// disconnects, the events a subscriber receives, and every per-stream resource released after each case.
import { randomBytes } from 'node:crypto';
import OpenAI from 'openai';
import type { ChatCompletionChunk } from 'openai/resources/chat/completions';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { simulatedAnswer } from '../src/providers/simulated/answer.js';
import { waitForIdle } from './support/chat.js';
import { startJarvis, type TestJarvis } from './support/jarvis.js';
import { forEachSseBlock, parseSseBlock } from './support/sse.js';
import { knobText, startMockUpstream, type MockKnobs, type MockUpstream, type RecordedRequest } from '../fakes/openai/index.js';

/** Long enough (hundreds of tokens, seconds at 200 tokens/s) that A is always mid-stream when B arrives. */
const LONG = 'Long essay about the history of clocks';
const SHORT = 'What is the capital of France?';
const uid = () => randomBytes(5).toString('hex');
const user = (content: string) => [{ role: 'user' as const, content }];

// ---------------------------------------------------------------------------------------------------------------
// Arrival order across every client in this file: a counter, not a clock, so "B's first token came after A's
// finish" is a fact about what the test process observed, with no timing threshold.
let arrivals = 0;

interface Chunk {
  choices: { index: number; delta: { role?: string; content?: string }; finish_reason: string | null }[];
  error?: { code: string | null; type: string; message: string };
}

/** Something that fills up as bytes arrive, which a test can wait on: resolved by a condition, not by time. */
class Observed {
  #waiters: (() => boolean)[] = [];
  #over = false;

  protected wake(): void {
    this.#waiters = this.#waiters.filter((check) => !check());
  }

  protected over(): void {
    this.#over = true;
    this.wake();
  }

  until(pred: () => boolean, what: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (pred()) resolve();
        else if (this.#over) reject(new Error(`stream ended before ${what}`));
        else return false;
        return true;
      };
      if (!check()) this.#waiters.push(check);
    });
  }
}

/** A streaming chat request read chunk by chunk, each chunk stamped with its arrival order. */
class ChatClient extends Observed {
  status = 0;
  requestId = '';
  /** Set when the response was not SSE (an error answered with a status). */
  errorBody: { error: { code: string | null; type: string; message: string } } | undefined;
  readonly received: { order: number; chunk: Chunk }[] = [];
  doneOrder: number | undefined;
  aborted = false;
  readonly opened: Promise<void>;
  readonly ended: Promise<void>;

  constructor(url: string, body: Record<string, unknown>, headers: Record<string, string>, readonly controller = new AbortController()) {
    super();
    let opened!: () => void;
    let failed!: (err: unknown) => void;
    this.opened = new Promise<void>((resolve, reject) => {
      opened = resolve;
      failed = reject;
    });
    this.opened.catch(() => {});
    this.ended = this.#run(url, body, headers, opened).then(
      () => this.over(),
      (err: unknown) => {
        failed(err);
        this.over();
        throw err;
      },
    );
    this.ended.catch(() => {});
  }

  async #run(url: string, body: Record<string, unknown>, headers: Record<string, string>, opened: () => void): Promise<void> {
    try {
      const res = await fetch(`${url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify({ stream: true, ...body }),
        signal: this.controller.signal,
      });
      this.status = res.status;
      this.requestId = res.headers.get('x-request-id') ?? '';
      opened();
      if (!res.headers.get('content-type')?.startsWith('text/event-stream')) {
        this.errorBody = (await res.json()) as NonNullable<ChatClient['errorBody']>;
        return;
      }
      await forEachSseBlock(res.body!, (block) => {
        const { data } = parseSseBlock(block);
        if (data === '[DONE]') this.doneOrder = ++arrivals;
        else if (data !== undefined) this.received.push({ order: ++arrivals, chunk: JSON.parse(data) as Chunk });
        this.wake();
      });
    } catch (err) {
      if (this.controller.signal.aborted) {
        this.aborted = true;
        return;
      }
      throw err;
    }
  }

  get content(): { order: number; text: string }[] {
    return this.received.flatMap((r) => (r.chunk.choices[0]?.delta.content ? [{ order: r.order, text: r.chunk.choices[0].delta.content }] : []));
  }

  get text(): string {
    return this.content.map((c) => c.text).join('');
  }

  /** The chunk that carried a finish_reason (there must be exactly one, and it must be the last with choices). */
  get finish(): { order: number; reason: string } | undefined {
    const withChoices = this.received.filter((r) => r.chunk.choices.length > 0);
    const last = withChoices.at(-1);
    const reason = last?.chunk.choices[0]?.finish_reason;
    if (!last || !reason) return undefined;
    if (withChoices.slice(0, -1).some((r) => r.chunk.choices[0]?.finish_reason !== null)) throw new Error('finish_reason before the last chunk');
    return { order: last.order, reason };
  }
}

interface BusEvent {
  id: number;
  type: string;
  request_id: string;
  session_id: string;
  data: Record<string, unknown>;
}

/** An SSE subscriber to /v1/events, parsing `id:`/`event:`/`data:` blocks as they arrive. */
class EventsClient extends Observed {
  readonly events: BusEvent[] = [];
  readonly connected: Promise<void>;
  readonly #controller = new AbortController();
  readonly #done: Promise<void>;

  constructor(url: string, sessionId: string) {
    super();
    let connected!: () => void;
    this.connected = new Promise<void>((resolve) => (connected = resolve));
    this.#done = (async () => {
      try {
        const res = await fetch(`${url}/v1/events?session_id=${encodeURIComponent(sessionId)}`, { signal: this.#controller.signal });
        if (res.status !== 200) throw new Error(`events answered ${res.status}`);
        await forEachSseBlock(res.body!, (block) => {
          const fields = parseSseBlock(block);
          // The server writes ": connected" after subscribing, in the same step: from here nothing can be missed.
          if (fields.comments.includes(': connected')) connected();
          const data = fields.data;
          if (fields.id !== undefined && data) {
            const event = JSON.parse(data) as BusEvent;
            expect(String(event.id)).toBe(fields.id);
            expect(event.type).toBe(fields.event);
            this.events.push(event);
          }
          this.wake();
        });
      } catch (err) {
        if (!this.#controller.signal.aborted) throw err;
      } finally {
        this.over();
      }
    })();
    this.#done.catch(() => {});
  }

  async close(): Promise<void> {
    this.#controller.abort();
    await this.#done;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The log: `<time> <level> <event> key=value ...`, parsed into the event name and its fields.

interface LogLine {
  index: number;
  level: string;
  event: string;
  f: Record<string, string>;
}

function parseLog(text: string): LogLine[] {
  const out: LogLine[] = [];
  for (const raw of text.split('\n')) {
    const m = /^(\S+) (\S+) (\S+)(.*)$/.exec(raw);
    if (!m) continue;
    const f: Record<string, string> = {};
    for (const kv of m[4]!.matchAll(/ (\w+)=("(?:[^"\\]|\\.)*"|\S*)/g)) {
      const v = kv[2]!;
      f[kv[1]!] = v.startsWith('"') ? (JSON.parse(v) as string) : v;
    }
    out.push({ index: out.length, level: m[2]!, event: m[3]!, f });
  }
  return out;
}

/** The lines of one stream: its own trace (stream lifecycle) or its request id (batcher lines carry only that). */
const ofStream = (lines: LogLine[], trace: string, requestId: string) =>
  lines.filter((l) => l.f.trace === trace || l.f.request_id === requestId || l.f.stream_id === requestId);

const logHas = (text: string, event: string, fields: Record<string, string>) =>
  parseLog(text).some((l) => l.event === event && Object.entries(fields).every(([k, v]) => l.f[k] === v));

const FLUSHES = new Set(['flush_scheduled', 'flush_start', 'flush_done', 'flush_cancelled', 'flush_immediate', 'flush_on_end']);

// ---------------------------------------------------------------------------------------------------------------


// ===============================================================================================================

describe('barge-in on the simulator', () => {
  let j: TestJarvis;
  const chat = (prompt: string, headers: Record<string, string>, extra: Record<string, unknown> = {}) =>
    new ChatClient(j.url, { model: 'jarvis-sim', messages: user(prompt), ...extra }, headers);
  const waitForStreamEnd = (trace: string) => j.waitForLog((log) => logHas(log, 'stream_end', { trace }));
  const waitForFlushDone = (requestId: string) => j.waitForLog((log) => logHas(log, 'flush_done', { request_id: requestId }));

  beforeAll(async () => {
    j = await startJarvis({ simulator: { tokensPerSec: 200, ttftMs: 10 } });
  });
  afterEach(async () => {
    await waitForIdle(j.url, 5000, { subscribers: true });
  });
  afterAll(async () => {
    await j?.close();
  });

  it('cancel-previous: the log reads A start and flushes, B start, A cancelled and cleaned up, prev finished cleanly, then B', async () => {
    const session = `order-${uid()}`;
    const [traceA, traceB] = [`A-${uid()}`, `B-${uid()}`];
    const a = chat(LONG, { 'x-session-id': session, 'x-trace-id': traceA });
    await a.opened;
    await waitForFlushDone(a.requestId);
    const b = chat(SHORT, { 'x-session-id': session, 'x-trace-id': traceB });
    await Promise.all([a.ended, b.ended]);
    const lines = parseLog(await waitForStreamEnd(traceB));

    const A = ofStream(lines, traceA, a.requestId);
    const B = ofStream(lines, traceB, b.requestId);
    const at = (list: LogLine[], event: string) => {
      const found = list.filter((l) => l.event === event);
      expect(found, `exactly one ${event}`).toHaveLength(1);
      return found[0]!;
    };
    const aStart = at(A, 'stream_start');
    const bStart = at(B, 'stream_start');
    const prev = at(B, 'prev_stream_finished_cleanly');
    expect(aStart.f.stream_id).toBe(a.requestId);
    expect(bStart.f.stream_id).toBe(b.requestId);
    expect(prev.f.prev).toBe(a.requestId);
    expect(B.some((l) => l.event === 'prev_stream_wait_timeout')).toBe(false);

    // A: stream_start and its flushes, all before B's stream_start, with at least one complete flush.
    expect(aStart.index).toBeLessThan(bStart.index);
    const aBefore = A.filter((l) => l.index < bStart.index).map((l) => l.event);
    expect(aBefore[0]).toBe('stream_start');
    expect(aBefore.slice(1).every((e) => ['flush_scheduled', 'flush_start', 'flush_done'].includes(e)), aBefore.join(' ')).toBe(true);
    expect(aBefore).toContain('flush_done');

    // A's cancellation and its whole cleanup: after B's stream_start, before prev_stream_finished_cleanly, in order.
    const aAfter = A.filter((l) => l.index > bStart.index);
    expect(aAfter.map((l) => l.event).join(' ')).toMatch(/^stream_cancelled( cleanup_flush_task)?( flush_on_cleanup)? cleanup_buffer event_buffers_cleaned stream_end$/);
    for (const l of aAfter) expect(l.index, `${l.event} of A before prev_stream_finished_cleanly`).toBeLessThan(prev.index);
    expect(at(A, 'stream_cancelled').f).toMatchObject({ reason: 'superseded', request_id: a.requestId });
    expect(at(A, 'event_buffers_cleaned').f.trace).toBe(traceA);
    expect(at(A, 'stream_end').f).toMatchObject({ trace: traceA, cleanup_done: 'true', outcome: 'cancelled' });

    // B: nothing between its start and the wait's end; then its flushes, its cleanup, its end.
    const bEvents = B.map((l) => l.event);
    expect(bEvents.slice(0, 2)).toEqual(['stream_start', 'prev_stream_finished_cleanly']);
    expect(bEvents.slice(-2)).toEqual(['event_buffers_cleaned', 'stream_end']);
    const bFlushes = bEvents.slice(2, -2);
    expect(bFlushes).toContain('flush_scheduled');
    expect(bFlushes.every((e) => FLUSHES.has(e)), bFlushes.join(' ')).toBe(true);
    expect(at(B, 'stream_end').f).toMatchObject({ trace: traceB, cleanup_done: 'true', outcome: 'end' });

    // What the two clients saw.
    expect(a.finish?.reason).toBe('cancelled');
    expect(a.doneOrder).toBeGreaterThan(a.finish!.order);
    expect(simulatedAnswer(LONG).join('').startsWith(a.text)).toBe(true);
    expect(a.content.length).toBeLessThan(simulatedAnswer(LONG).length);
    expect(b.finish?.reason).toBe('stop');
    expect(b.doneOrder).toBeDefined();
    expect(b.text).toBe(simulatedAnswer(SHORT).join(''));
  });

  it('with the openai SDK: the superseded loop ends normally on finish_reason "cancelled"; B completes with "stop"', async () => {
    const client = new OpenAI({ baseURL: `${j.url}/v1`, apiKey: 'unused', maxRetries: 0 });
    const headers = { 'X-Session-Id': `sdk-${uid()}` };
    const collect = async (stream: AsyncIterable<ChatCompletionChunk>) => {
      const chunks: ChatCompletionChunk[] = [];
      for await (const chunk of stream) chunks.push(chunk);
      return chunks;
    };

    const streamA = await client.chat.completions.create({ model: 'jarvis-sim', messages: user(LONG), stream: true }, { headers });
    const aChunks: ChatCompletionChunk[] = [];
    let b: Promise<{ chunks?: ChatCompletionChunk[]; error?: unknown }> | undefined;
    // The loop itself is the assertion that cancellation is not an error: a throw here fails the test.
    for await (const chunk of streamA) {
      aChunks.push(chunk);
      if (!b && chunk.choices[0]?.delta.content) {
        b = client.chat.completions
          .create({ model: 'jarvis-sim', messages: user(SHORT), stream: true }, { headers })
          .then(collect)
          .then((chunks) => ({ chunks }), (error: unknown) => ({ error }));
      }
    }
    expect(b, 'A never produced content').toBeDefined();
    const withChoicesA = aChunks.filter((c) => c.choices.length > 0);
    expect(withChoicesA.at(-1)!.choices[0]!.finish_reason).toBe('cancelled');
    expect(withChoicesA.slice(0, -1).every((c) => c.choices[0]!.finish_reason === null)).toBe(true);
    expect(aChunks.filter((c) => c.choices[0]?.delta.content).length).toBeGreaterThan(0);

    const result = await b!;
    expect(result.error).toBeUndefined();
    const bChunks = result.chunks!;
    expect(bChunks.at(-1)!.choices[0]!.finish_reason).toBe('stop');
    expect(bChunks.map((c) => c.choices[0]?.delta.content ?? '').join('')).toBe(simulatedAnswer(SHORT).join(''));
  });

  it('reject: B gets 409 session_busy while A runs, and A runs on to "stop"', async () => {
    const session = `reject-${uid()}`;
    const traceA = `A-${uid()}`;
    const a = chat(LONG, { 'x-session-id': session, 'x-trace-id': traceA });
    await a.until(() => a.content.length > 0, 'A produced content');

    const res = await fetch(`${j.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-session-id': session, 'x-session-policy': 'reject' },
      body: JSON.stringify({ model: 'jarvis-sim', messages: user(SHORT), stream: true }),
    });
    expect(res.status).toBe(409);
    const body = (await res.json()) as { error: { code: string; type: string; param: string | null; message: string } };
    expect(body.error).toMatchObject({ code: 'session_busy', type: 'invalid_request_error', param: 'X-Session-Id' });
    expect(body.error.message).toContain(session);
    // A was still streaming when B was refused.
    expect(a.finish).toBeUndefined();

    await a.ended;
    expect(a.finish?.reason).toBe('stop');
    expect(a.text).toBe(simulatedAnswer(LONG).join(''));
    const log = await waitForStreamEnd(traceA);
    expect(logHas(log, 'stream_cancelled', { trace: traceA })).toBe(false);
    expect(logHas(log, 'stream_end', { trace: traceA, outcome: 'end', cleanup_done: 'true' })).toBe(true);
  });

  it('queue: B waits for A to finish normally, and its first token arrives only after A\'s finish', async () => {
    const session = `queue-${uid()}`;
    const [traceA, traceB] = [`A-${uid()}`, `B-${uid()}`];
    const a = chat(LONG, { 'x-session-id': session, 'x-trace-id': traceA });
    await a.until(() => a.content.length > 0, 'A produced content');
    const b = chat(SHORT, { 'x-session-id': session, 'x-trace-id': traceB, 'x-session-policy': 'queue' });
    await Promise.all([a.ended, b.ended]);

    expect(a.finish?.reason).toBe('stop');
    expect(a.text).toBe(simulatedAnswer(LONG).join(''));
    expect(b.finish?.reason).toBe('stop');
    expect(b.text).toBe(simulatedAnswer(SHORT).join(''));
    expect(b.content[0]!.order).toBeGreaterThan(a.finish!.order);

    const lines = parseLog(await waitForStreamEnd(traceB));
    // B really queued behind A (it did not merely arrive after A had ended).
    const prev = lines.find((l) => l.event === 'prev_stream_finished_cleanly' && l.f.trace === traceB);
    expect(prev?.f.prev).toBe(a.requestId);
    const aEnd = lines.find((l) => l.event === 'stream_end' && l.f.trace === traceA)!;
    expect(aEnd.f.outcome).toBe('end');
    expect(prev!.index).toBeGreaterThan(aEnd.index);
    expect(lines.some((l) => l.event === 'stream_cancelled' && l.f.trace === traceA)).toBe(false);
    const bFirstFlush = lines.find((l) => l.event === 'flush_scheduled' && l.f.request_id === b.requestId)!;
    expect(bFirstFlush.index).toBeGreaterThan(aEnd.index);
  });

  it('parallel: B runs alongside A without waiting or cancelling, and both complete', async () => {
    const session = `parallel-${uid()}`;
    const [traceA, traceB] = [`A-${uid()}`, `B-${uid()}`];
    const a = chat(LONG, { 'x-session-id': session, 'x-trace-id': traceA });
    await a.until(() => a.content.length > 0, 'A produced content');
    const b = chat(SHORT, { 'x-session-id': session, 'x-trace-id': traceB, 'x-session-policy': 'parallel' });
    await Promise.all([a.ended, b.ended]);

    expect(a.finish?.reason).toBe('stop');
    expect(a.text).toBe(simulatedAnswer(LONG).join(''));
    expect(b.finish?.reason).toBe('stop');
    expect(b.text).toBe(simulatedAnswer(SHORT).join(''));
    // B finished while A was still streaming.
    expect(b.finish!.order).toBeLessThan(a.finish!.order);

    const log = await waitForStreamEnd(traceA);
    await waitForStreamEnd(traceB);
    expect(logHas(log, 'stream_cancelled', { trace: traceA })).toBe(false);
    expect(logHas(log, 'prev_stream_finished_cleanly', { trace: traceB })).toBe(false);
    expect(logHas(log, 'prev_stream_wait_timeout', { trace: traceB })).toBe(false);
  });

  it('a client that disconnects: stream_cancelled reason=client_disconnected, then a complete cleanup', async () => {
    const session = `gone-${uid()}`;
    const trace = `A-${uid()}`;
    const a = chat(LONG, { 'x-session-id': session, 'x-trace-id': trace });
    await a.until(() => a.content.length >= 3, 'three tokens');
    a.controller.abort();
    await a.ended;
    expect(a.aborted).toBe(true);

    const lines = ofStream(parseLog(await waitForStreamEnd(trace)), trace, a.requestId);
    const events = lines.map((l) => l.event);
    expect(events.join(' ')).toMatch(/ stream_cancelled( cleanup_flush_task)?( flush_on_cleanup)? cleanup_buffer event_buffers_cleaned stream_end$/);
    expect(lines.find((l) => l.event === 'stream_cancelled')!.f.reason).toBe('client_disconnected');
    expect(lines.at(-1)!.f).toMatchObject({ cleanup_done: 'true', outcome: 'cancelled', stream_id: a.requestId });
  });

  it('events: A start, tokens, cancelled with what its client received; then B start, tokens, end; tokens batched', async () => {
    const session = `events-${uid()}`;
    const events = new EventsClient(j.url, session);
    try {
      await events.connected;
      const a = chat(LONG, { 'x-session-id': session });
      await a.opened;
      await waitForFlushDone(a.requestId);
      const b = chat(SHORT, { 'x-session-id': session });
      await Promise.all([a.ended, b.ended]);
      await b.opened;
      await events.until(() => events.events.some((e) => e.type === 'chat.end' && e.request_id === b.requestId), 'chat.end of B');

      const evs = events.events;
      expect(evs.every((e) => e.session_id === session)).toBe(true);
      expect(evs.map((e) => e.id)).toEqual([...evs.map((e) => e.id)].sort((x, y) => x - y));
      const summary = evs.map((e) => `${e.request_id === a.requestId ? 'A' : e.request_id === b.requestId ? 'B' : '?'}:${e.type}`).join(' ');
      expect(summary).toMatch(/^A:chat\.start( A:chat\.token)+ A:chat\.cancelled B:chat\.start( B:chat\.token)+ B:chat\.end$/);

      const tokensOf = (id: string) => evs.filter((e) => e.type === 'chat.token' && e.request_id === id);
      const sum = (list: BusEvent[], key: 'tokens') => list.reduce((n, e) => n + (e.data[key] as number), 0);
      const textOf = (list: BusEvent[]) => list.map((e) => e.data.text as string).join('');

      // A: the cancellation carries exactly what A's client received.
      const cancelled = evs.find((e) => e.type === 'chat.cancelled')!;
      expect(a.finish?.reason).toBe('cancelled');
      expect(cancelled.data).toMatchObject({
        reason: 'superseded',
        delivered_tokens: a.content.length,
        delivered_chars: a.text.length,
        generated_tokens: a.content.length,
      });
      expect(sum(tokensOf(a.requestId), 'tokens')).toBe(a.content.length);
      expect(textOf(tokensOf(a.requestId))).toBe(a.text);

      // B: the whole answer, end with counts.
      const end = evs.find((e) => e.type === 'chat.end')!;
      expect(end.data).toMatchObject({ finish_reason: 'stop', generated_tokens: b.content.length, delivered_tokens: b.content.length, delivered_chars: b.text.length });
      expect(textOf(tokensOf(b.requestId))).toBe(b.text);
      expect(sum(tokensOf(b.requestId), 'tokens')).toBe(b.content.length);

      // Batching: the HTTP clients got one chunk per token; subscribers got fewer, larger events.
      for (const [client, tokens] of [
        [a, tokensOf(a.requestId)],
        [b, tokensOf(b.requestId)],
      ] as const) {
        expect(tokens.length).toBeLessThan(client.content.length);
        expect(Math.max(...tokens.map((e) => e.data.tokens as number))).toBeGreaterThan(1);
      }
    } finally {
      await events.close();
    }
  });
});

// ===============================================================================================================

describe('barge-in through an upstream', () => {
  let mock: MockUpstream;
  let j: TestJarvis;

  beforeAll(async () => {
    mock = await startMockUpstream();
    j = await startJarvis({ upstreams: [{ name: 'mock', baseUrl: mock.url, models: ['mock-model'] }] });
  });
  afterEach(async () => {
    await waitForIdle(j.url, 5000, { subscribers: true });
  });
  afterAll(async () => {
    await j?.close();
    await mock?.close();
  });

  /** The upstream request whose first message was `prompt`. */
  const find = (prompt: string): RecordedRequest => {
    const rec = mock.requests.find((r) => (r.body as { messages?: { content?: unknown }[] }).messages?.[0]?.content === prompt);
    if (!rec) throw new Error(`no upstream request for ${prompt}`);
    return rec;
  };

  it.each<[string, MockKnobs, number]>([
    ['stalls', { tokens: 1000, stallAfter: 5 }, 5],
    ['is slow', { tokens: 100_000, delayMs: 20 }, 3],
  ])('the superseded stream\'s upstream request is closed by the time B has ended (upstream %s)', async (_kind, knobs, seen) => {
    const session = `up-${uid()}`;
    const [tagA, tagB, traceB] = [`A ${uid()} ${knobText(knobs)}`, `B ${uid()} tokens:5`, `B-${uid()}`];
    const a = new ChatClient(j.url, { model: 'mock-model', messages: user(tagA) }, { 'x-session-id': session });
    await a.until(() => a.content.length >= seen, `${seen} tokens through A`);
    const recA = find(tagA);
    expect(recA.clientClosed).toBe(false);

    const b = new ChatClient(j.url, { model: 'mock-model', messages: user(tagB) }, { 'x-session-id': session, 'x-trace-id': traceB });
    await Promise.all([a.ended, b.ended]);
    expect(b.finish?.reason).toBe('stop');
    expect(b.content).toHaveLength(5);

    // By now A's upstream request has been closed by Jarvis, not finished by the upstream.
    expect(recA.clientClosed).toBe(true);
    expect(recA.finished).toBe(false);
    expect(recA.tokensSent).toBeLessThan(knobs.tokens!);
    expect(find(tagB).finished).toBe(true);

    expect(a.finish?.reason).toBe('cancelled');
    expect(a.doneOrder).toBeDefined();
    const log = await j.waitForLog((text) => logHas(text, 'stream_end', { trace: traceB }));
    expect(logHas(log, 'prev_stream_finished_cleanly', { trace: traceB, prev: a.requestId })).toBe(true);
    expect(logHas(log, 'prev_stream_wait_timeout', { trace: traceB })).toBe(false);
  });
});
