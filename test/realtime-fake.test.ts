// The Realtime fake (fakes/realtime) speaks OpenAI's Realtime API as the `openai` SDK's GA client reads it:
// OpenAIRealtimeWS, over wss: with a certificate made for the test, gets session.created on open, a merged
// session.updated, conversation items, responses in GA order with audio and its transcript (or text alone),
// cancellation of a long answer (and the error when nothing is active), the 401 a bad key gets, an error event and
// a server close on request. Every event the fake sends reaches the SDK's listeners with the fields the SDK's
// types require, and no client-side error; every frame the fake receives is recorded byte for byte.
import { readFile } from 'node:fs/promises';
import OpenAI from 'openai';
import { OpenAIRealtimeWS } from 'openai/realtime/ws';
import type { OpenAIRealtimeError } from 'openai/realtime/internal-base';
import type { RealtimeClientEvent, RealtimeServerEvent } from 'openai/resources/realtime/realtime';
import WebSocket from 'ws';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ANSWER, AUDIO_CHUNK_MS, CLOSE_REASON, FAILED_ERROR, SCENARIO_ERROR, startRealtimeUpstream, type RealtimeConnectionRecord, type RealtimeUpstream } from '../fakes/realtime/index.js';
import { orFail } from './support/chat.js';
import { makeCertificate, type TestCertificate } from './support/tls.js';

const KEY = 'sk-proj-realtime-test-0123456789wxyz';
const MODEL = 'gpt-realtime';

type ServerEvent = RealtimeServerEvent;
type EventType = ServerEvent['type'];
type EventOf<T extends EventType> = Extract<ServerEvent, { type: T }>;
/** The fields of an SDK type that are not optional. */
type RequiredKeys<T> = { [K in keyof T]-?: undefined extends T[K] ? never : K }[keyof T];

/**
 * The fields the SDK's types require of each event the fake sends (the compiler checks that each name listed is
 * one of them, and the event types are the SDK's GA names).
 */
const REQUIRED: { [T in EventType]?: Array<RequiredKeys<EventOf<T>>> } = {
  error: ['type', 'event_id', 'error'],
  'session.created': ['type', 'event_id', 'session'],
  'session.updated': ['type', 'event_id', 'session'],
  'conversation.item.added': ['type', 'event_id', 'item'],
  'conversation.item.done': ['type', 'event_id', 'item'],
  'conversation.item.retrieved': ['type', 'event_id', 'item'],
  'conversation.item.deleted': ['type', 'event_id', 'item_id'],
  'input_audio_buffer.committed': ['type', 'event_id', 'item_id'],
  'input_audio_buffer.cleared': ['type', 'event_id'],
  'response.created': ['type', 'event_id', 'response'],
  'response.done': ['type', 'event_id', 'response'],
  'response.output_item.added': ['type', 'event_id', 'item', 'output_index', 'response_id'],
  'response.output_item.done': ['type', 'event_id', 'item', 'output_index', 'response_id'],
  'response.content_part.added': ['type', 'event_id', 'content_index', 'item_id', 'output_index', 'part', 'response_id'],
  'response.content_part.done': ['type', 'event_id', 'content_index', 'item_id', 'output_index', 'part', 'response_id'],
  'response.output_audio.delta': ['type', 'event_id', 'content_index', 'delta', 'item_id', 'output_index', 'response_id'],
  'response.output_audio.done': ['type', 'event_id', 'content_index', 'item_id', 'output_index', 'response_id'],
  'response.output_audio_transcript.delta': ['type', 'event_id', 'content_index', 'delta', 'item_id', 'output_index', 'response_id'],
  'response.output_audio_transcript.done': ['type', 'event_id', 'content_index', 'item_id', 'output_index', 'response_id', 'transcript'],
  'response.output_text.delta': ['type', 'event_id', 'content_index', 'delta', 'item_id', 'output_index', 'response_id'],
  'response.output_text.done': ['type', 'event_id', 'content_index', 'item_id', 'output_index', 'response_id', 'text'],
  'rate_limits.updated': ['type', 'event_id', 'rate_limits'],
};

let cert: TestCertificate;
let fake: RealtimeUpstream;
beforeAll(async () => {
  cert = await makeCertificate();
  fake = await startRealtimeUpstream({ apiKey: KEY, tls: { cert: cert.cert, key: await readFile(cert.keyFile) } });
});
afterAll(async () => {
  await fake?.close();
  await cert?.remove();
});

/** An OpenAIRealtimeWS on the fake, trusting its certificate, with every event and error it got kept in order. */
class Client {
  readonly rt: OpenAIRealtimeWS;
  readonly events: ServerEvent[] = [];
  readonly errors: OpenAIRealtimeError[] = [];
  readonly opened: Promise<void>;
  readonly closed: Promise<{ code: number; reason: string }>;
  readonly #waiters = new Set<() => void>();

  constructor(opts: { key?: string; model?: string } = {}) {
    this.rt = new OpenAIRealtimeWS({ model: opts.model ?? MODEL, options: { ca: cert.cert } }, new OpenAI({ apiKey: opts.key ?? KEY, baseURL: fake.baseURL }));
    this.rt.on('event', (e) => {
      this.events.push(e);
      this.#notify();
    });
    this.rt.on('error', (err) => {
      this.errors.push(err);
      this.#notify();
    });
    this.opened = new Promise((resolve) => this.rt.socket.once('open', () => resolve()));
    this.closed = new Promise((resolve) => this.rt.socket.once('close', (code: number, reason: Buffer) => resolve({ code, reason: reason.toString() })));
  }

  #notify() {
    for (const w of [...this.#waiters]) w();
  }

  /** Resolves once `test` holds, checked now and after each event and error. */
  until(test: () => boolean, what: string): Promise<void> {
    return orFail(
      new Promise<void>((resolve) => {
        if (test()) return resolve();
        const check = () => {
          if (!test()) return;
          this.#waiters.delete(check);
          resolve();
        };
        this.#waiters.add(check);
      }),
      what,
    );
  }

  /** The first event of `type` from index `from` on. */
  async next<T extends EventType>(type: T, from = 0): Promise<EventOf<T>> {
    const find = () => this.events.slice(from).find((e): e is EventOf<T> => e.type === type);
    await this.until(() => find() !== undefined, `${type} (from event ${from})`);
    return find()!;
  }

  /** Sends `event` and waits for the first event of `type` it brings. */
  async ask<T extends EventType>(event: RealtimeClientEvent, type: T): Promise<EventOf<T>> {
    const from = this.events.length;
    this.rt.send(event);
    return this.next(type, from);
  }

  /** The event types from index `from` on, each run of one delta type counted once per word. */
  types(from = 0): string[] {
    return this.events.slice(from).map((e) => e.type);
  }

  /** The fake's record of this connection (found by the session's id). */
  async record(): Promise<RealtimeConnectionRecord> {
    const created = await this.next('session.created');
    const id = (created.session as { id?: string }).id;
    const record = fake.connections.find((c) => c.session.id === id);
    expect(record).toBeDefined();
    return record!;
  }

  /** Says something and asks for an answer: the index of the first event after response.create, and the answer's end. */
  async turn(text: string, response: Extract<RealtimeClientEvent, { type: 'response.create' }>['response'] = {}) {
    await this.ask({ type: 'conversation.item.create', item: { type: 'message', role: 'user', content: [{ type: 'input_text', text }] } }, 'conversation.item.done');
    const from = this.events.length;
    this.rt.send({ type: 'response.create', response });
    const done = await this.next('response.done', from);
    await this.next('rate_limits.updated', from);
    return { from, done };
  }
}

/** A server event's id (the SDK's type for one SIP event has none, so the union does not promise it). */
const eventIdOf = (e: ServerEvent) => (e as { event_id?: string }).event_id;

const clients: Client[] = [];
const connect = async (opts: { key?: string; model?: string } = {}) => {
  const c = new Client(opts);
  clients.push(c);
  await orFail(c.opened, 'the socket opening');
  await c.next('session.created');
  return c;
};

// After each test: every event the SDK got has the fields its type requires, it got everything the fake sent, in
// order, and the only errors it raised are the error events the fake sent (none about a frame it could not read).
afterEach(async () => {
  for (const c of clients.splice(0)) {
    for (const e of c.events) {
      const fields = REQUIRED[e.type] as string[] | undefined;
      expect(fields, `an event the test does not know: ${e.type}`).toBeDefined();
      for (const f of fields!) expect(e, `${e.type}.${f}`).toHaveProperty(f);
    }
    expect(c.errors.map((err) => err.error?.code)).toEqual(c.events.filter((e) => e.type === 'error').map((e) => (e as EventOf<'error'>).error.code));
    if (c.events.length > 0) {
      const record = await c.record();
      await c.until(() => c.events.length === record.sent.length, 'every event the fake sent reaching the SDK');
      expect(c.events.map(eventIdOf)).toEqual(record.sentEvents().map((e) => e.event_id));
    }
    c.rt.close();
  }
});

/** The events of a response with `n` words: each word one transcript and one audio delta (or one text delta). */
function responseOrder(n: number, audio: boolean): string[] {
  const deltas = audio ? ['response.output_audio_transcript.delta', 'response.output_audio.delta'] : ['response.output_text.delta'];
  const ends = audio ? ['response.output_audio.done', 'response.output_audio_transcript.done'] : ['response.output_text.done'];
  return [
    'response.created',
    'response.output_item.added',
    'conversation.item.added',
    'response.content_part.added',
    ...Array.from({ length: n }, () => deltas).flat(),
    ...ends,
    'response.content_part.done',
    'response.output_item.done',
    'conversation.item.done',
    'response.done',
    'rate_limits.updated',
  ];
}

describe('the connection', () => {
  it('opens with session.created: a GA realtime session for the model asked, after the key was checked', async () => {
    const c = await connect({ model: 'gpt-realtime-2025-08-28' });
    const { session } = await c.next('session.created');
    expect(session).toMatchObject({
      type: 'realtime',
      object: 'realtime.session',
      model: 'gpt-realtime-2025-08-28',
      output_modalities: ['audio'],
      instructions: expect.any(String),
      tools: [],
      tool_choice: 'auto',
      max_output_tokens: 'inf',
      audio: {
        input: { format: { type: 'audio/pcm', rate: 24000 }, turn_detection: { type: 'server_vad' } },
        output: { format: { type: 'audio/pcm', rate: 24000 }, voice: 'marin' },
      },
    });
    expect((session as { id?: string }).id).toMatch(/^sess_[A-Za-z0-9]{21}$/);
    expect(c.events[0]!.type).toBe('session.created');
    expect(eventIdOf(c.events[0]!)).toMatch(/^event_[A-Za-z0-9]{21}$/);

    // What the SDK sent: GET /v1/realtime?model=..., the key as a bearer token, over TLS.
    expect(c.rt.url.href).toBe(`${fake.url}/realtime?model=gpt-realtime-2025-08-28`);
    expect(c.rt.url.protocol).toBe('wss:');
    const record = await c.record();
    expect(record.path).toBe('/v1/realtime?model=gpt-realtime-2025-08-28');
    expect(record.model).toBe('gpt-realtime-2025-08-28');
    expect(record.headers.authorization).toBe(`Bearer ${KEY}`);
    expect(record.headers['user-agent']).toMatch(/^OpenAI\/JS /);
  });

  it('answers session.update with the whole merged session, and a beta-shaped update (no session.type) with an error', async () => {
    const c = await connect();
    const updated = await c.ask({ type: 'session.update', session: { type: 'realtime', instructions: 'Be brief.', audio: { output: { voice: 'cedar' } } } }, 'session.updated');
    expect(updated.session).toMatchObject({
      type: 'realtime',
      model: MODEL,
      instructions: 'Be brief.',
      audio: { input: { turn_detection: { type: 'server_vad' } }, output: { voice: 'cedar', format: { type: 'audio/pcm', rate: 24000 } } },
    });
    expect((await c.record()).session).toMatchObject({ instructions: 'Be brief.' });

    const beta = { type: 'session.update', event_id: 'evt_beta', session: { modalities: ['text'] } } as unknown as RealtimeClientEvent;
    const error = await c.ask(beta, 'error');
    expect(error.error).toMatchObject({ type: 'invalid_request_error', code: 'missing_required_parameter', param: 'session.type', event_id: 'evt_beta' });
    expect(c.errors.at(-1)?.error?.code).toBe('missing_required_parameter');
  });


  it('serves plain ws:// without TLS (what a relay reaches), taking a browser\'s key from its subprotocols', async () => {
    const plain = await startRealtimeUpstream({ apiKey: KEY, recordSent: false });
    try {
      expect(plain.url).toMatch(/^ws:\/\/127\.0\.0\.1:\d+\/v1$/);
      const ws = new WebSocket(`${plain.url}/realtime?model=${MODEL}`, ['realtime', `openai-insecure-api-key.${KEY}`]);
      const events: Array<{ type: string; [k: string]: unknown }> = [];
      const ended = new Promise<void>((resolve) => ws.on('message', (d: Buffer) => {
        const e = JSON.parse(d.toString()) as { type: string };
        events.push(e);
        if (e.type === 'rate_limits.updated') resolve();
      }));
      await orFail(new Promise((resolve) => ws.once('open', resolve)), 'the socket opening');
      expect(ws.protocol).toBe('realtime');
      ws.send(JSON.stringify({ type: 'conversation.item.create', item: { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'Hi. tokens:2' }] } }));
      ws.send(JSON.stringify({ type: 'response.create', response: { output_modalities: ['text'] } }));
      await orFail(ended, 'the answer');
      expect(events.map((e) => e.type)).toEqual(['session.created', 'conversation.item.added', 'conversation.item.done', ...responseOrder(2, false)]);
      const record = await plain.connection(0);
      expect(record.key).toBe(KEY);
      expect(record.sent).toEqual([]);
      expect(record.sentCount).toBe(events.length);
      ws.close();
    } finally {
      await plain.close();
    }
  });
});

describe('a response', () => {
  it('streams audio and its transcript in GA order, then response.done with usage', async () => {
    const c = await connect();
    const added = await c.ask({ type: 'conversation.item.create', item: { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'Hello there!' }] } }, 'conversation.item.added');
    const userItem = await c.next('conversation.item.done');
    expect(added.previous_item_id).toBeNull();
    expect(userItem.item).toMatchObject({ type: 'message', role: 'user', status: 'completed', content: [{ type: 'input_text', text: 'Hello there!' }] });
    const userId = userItem.item.id!;
    expect(userId).toMatch(/^item_/);

    const transcript: string[] = [];
    const audio: Buffer[] = [];
    c.rt.on('response.output_audio_transcript.delta', (e) => transcript.push(e.delta));
    c.rt.on('response.output_audio.delta', (e) => audio.push(Buffer.from(e.delta, 'base64')));
    const from = c.events.length;
    c.rt.send({ type: 'response.create', response: { metadata: { turn: 'first' } } });
    const done = await c.next('response.done', from);
    await c.next('rate_limits.updated', from);

    expect(c.types(from)).toEqual(responseOrder(ANSWER.length, true));
    expect(transcript).toEqual(ANSWER);
    // PCM16 at 24 kHz: 48 bytes a millisecond.
    expect(audio.map((a) => a.length)).toEqual(ANSWER.map(() => AUDIO_CHUNK_MS * 48));

    const created = await c.next('response.created', from);
    expect(created.response).toMatchObject({ object: 'realtime.response', status: 'in_progress', output: [], output_modalities: ['audio'], metadata: { turn: 'first' } });
    const responseId = created.response.id!;
    expect(responseId).toMatch(/^resp_/);
    const itemAdded = await c.next('conversation.item.added', from);
    expect(itemAdded.previous_item_id).toBe(userId);
    expect(itemAdded.item).toMatchObject({ type: 'message', role: 'assistant', status: 'in_progress', content: [] });
    const part = await c.next('response.content_part.added', from);
    expect(part).toMatchObject({ response_id: responseId, item_id: itemAdded.item.id, output_index: 0, content_index: 0, part: { type: 'audio', transcript: '' } });
    expect((await c.next('response.output_audio_transcript.done', from)).transcript).toBe(ANSWER.join(''));
    expect((await c.next('response.content_part.done', from)).part).toEqual({ type: 'audio', transcript: ANSWER.join('') });
    const item = { id: itemAdded.item.id, type: 'message', role: 'assistant', status: 'completed', content: [{ type: 'output_audio', transcript: ANSWER.join('') }] };
    expect((await c.next('response.output_item.done', from)).item).toMatchObject(item);
    const itemDone = await c.next('conversation.item.done', from);
    expect(itemDone.previous_item_id).toBe(userId);
    expect(itemDone.item).toMatchObject(item);

    expect(done.response).toMatchObject({ id: responseId, status: 'completed', status_details: null, output: [item], metadata: { turn: 'first' } });
    const usage = done.response.usage!;
    expect(usage.output_token_details).toEqual({ text_tokens: ANSWER.length, audio_tokens: ANSWER.length * (AUDIO_CHUNK_MS / 50) });
    expect(usage.output_tokens).toBe(ANSWER.length * (1 + AUDIO_CHUNK_MS / 50));
    expect(usage.input_tokens).toBeGreaterThan(0);
    expect(usage.total_tokens).toBe(usage.input_tokens! + usage.output_tokens!);
    expect(usage.input_token_details).toMatchObject({ text_tokens: usage.input_tokens, audio_tokens: 0, cached_tokens: 0 });
  });

  it('answers with tokens:<n> words, and a second turn follows the first in the conversation', async () => {
    const c = await connect();
    const first = await c.turn('Count for me. tokens:5');
    expect(c.types(first.from)).toEqual(responseOrder(5, true));
    expect(first.done.response.output?.[0]).toMatchObject({ content: [{ transcript: 't0 t1 t2 t3 t4 ' }] });

    const second = await c.turn('And now? tokens:2');
    expect(c.types(second.from)).toEqual(responseOrder(2, true));
    // The second answer's input counts the whole conversation so far.
    expect(second.done.response.usage!.input_tokens).toBeGreaterThan(first.done.response.usage!.input_tokens!);
  });

  it('is text alone when the session asks for ["text"], or the request does', async () => {
    const c = await connect();
    const text: string[] = [];
    c.rt.on('response.output_text.delta', (e) => text.push(e.delta));
    await c.ask({ type: 'session.update', session: { type: 'realtime', output_modalities: ['text'] } }, 'session.updated');
    const { from, done } = await c.turn('Write it. tokens:4');
    expect(c.types(from)).toEqual(responseOrder(4, false));
    expect(text).toEqual(['t0 ', 't1 ', 't2 ', 't3 ']);
    expect((await c.next('response.content_part.added', from)).part).toEqual({ type: 'text', text: '' });
    expect((await c.next('response.output_text.done', from)).text).toBe('t0 t1 t2 t3 ');
    expect(done.response).toMatchObject({ status: 'completed', output_modalities: ['text'], output: [{ content: [{ type: 'output_text', text: 't0 t1 t2 t3 ' }] }] });
    expect(done.response.usage!.output_token_details).toEqual({ text_tokens: 4, audio_tokens: 0 });

    const d = await connect();
    const perRequest = await d.turn('Write it. tokens:3', { output_modalities: ['text'] });
    expect(d.types(perRequest.from)).toEqual(responseOrder(3, false));
    const audio = await d.turn('Say it. tokens:3');
    expect(d.types(audio.from)).toEqual(responseOrder(3, true));
  });

  it('runs out of band (conversation: "none") beside the conversation\'s response, without conversation items', async () => {
    const c = await connect();
    await c.ask({ type: 'conversation.item.create', item: { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'Talk slowly. tokens:100000 delay:20' }] } }, 'conversation.item.done');
    c.rt.send({ type: 'response.create' });
    const inConversation = await c.next('response.created');
    const from = c.events.length;
    c.rt.send({
      type: 'response.create',
      response: { conversation: 'none', output_modalities: ['text'], metadata: { purpose: 'summary' }, input: [{ type: 'message', role: 'user', content: [{ type: 'input_text', text: 'Summarise. tokens:3' }] }] },
    });
    const summary = () => c.events.find((e): e is EventOf<'response.done'> => e.type === 'response.done' && e.response.metadata?.purpose === 'summary');
    await c.until(() => summary() !== undefined, 'the out-of-band response');
    const done = summary()!;
    expect(done.response).toMatchObject({ status: 'completed', conversation_id: null, output_modalities: ['text'], output: [{ content: [{ type: 'output_text', text: 't0 t1 t2 ' }] }] });
    const ownId = done.response.id;
    const own = c.events.slice(from).filter((e) => 'response_id' in e ? e.response_id === ownId : 'response' in e ? e.response.id === ownId : false);
    expect(own.map((e) => e.type)).toEqual(responseOrder(3, false).filter((t) => !t.startsWith('conversation.') && t !== 'rate_limits.updated'));

    c.rt.send({ type: 'response.cancel', response_id: inConversation.response.id! });
    expect((await c.next('response.done', c.events.indexOf(done) + 1)).response).toMatchObject({ id: inConversation.response.id, status: 'cancelled' });
  });

  it('stops at max_output_tokens: incomplete', async () => {
    const c = await connect();
    const { done } = await c.turn('Go on. tokens:50', { max_output_tokens: 10 });
    // Each word costs 1 text token and 2 audio tokens: 3 words fit in 10.
    expect(done.response).toMatchObject({ status: 'incomplete', status_details: { type: 'incomplete', reason: 'max_output_tokens' }, output: [{ status: 'incomplete' }] });
    expect(done.response.usage!.output_tokens).toBe(9);
  });
});

describe('cancelling', () => {
  it('response.cancel ends a long, slow answer with response.done cancelled; with nothing active it is an error', async () => {
    const c = await connect();
    const transcript: string[] = [];
    c.rt.on('response.output_audio_transcript.delta', (e) => transcript.push(e.delta));
    await c.ask({ type: 'conversation.item.create', item: { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'Talk for a long time. tokens:100000 delay:20' }] } }, 'conversation.item.done');
    const from = c.events.length;
    c.rt.send({ type: 'response.create' });
    await c.next('response.output_audio.delta', from);

    // A second response while this one runs is refused, as OpenAI refuses it.
    const busy = await c.ask({ type: 'response.create', event_id: 'evt_second' }, 'error');
    expect(busy.error).toMatchObject({ code: 'conversation_already_has_active_response', event_id: 'evt_second' });

    c.rt.send({ type: 'response.cancel' });
    const done = await c.next('response.done', from);
    expect(done.response).toMatchObject({ status: 'cancelled', status_details: { type: 'cancelled', reason: 'client_cancelled' } });
    const said = transcript.join('');
    expect(transcript.length).toBeGreaterThan(0);
    expect(transcript.length).toBeLessThan(100000);
    expect((await c.next('response.output_audio_transcript.done', from)).transcript).toBe(said);
    expect((await c.next('response.output_item.done', from)).item).toMatchObject({ status: 'incomplete', content: [{ type: 'output_audio', transcript: said }] });
    expect(done.response.usage!.output_token_details!.text_tokens).toBe(transcript.length);
    // The .done events close what was open, in the order a completed response has them.
    const after = c.types(from).filter((t) => !t.endsWith('.delta') && t !== 'error');
    expect(after).toEqual(responseOrder(0, true));

    const error = await c.ask({ type: 'response.cancel', event_id: 'evt_cancel' }, 'error');
    expect(error.error).toEqual({ type: 'invalid_request_error', code: 'response_cancel_not_active', message: 'Cancellation failed: no active response found', param: null, event_id: 'evt_cancel' });
    expect(c.errors.at(-1)!.error?.code).toBe('response_cancel_not_active');
    expect(c.errors.at(-1)!.message).toContain('code=response_cancel_not_active');

    // The session goes on.
    const next = await c.turn('Short now. tokens:1');
    expect(next.done.response.status).toBe('completed');
  });
});

describe('audio in', () => {
  it('commits appended audio as a user item; an empty buffer is an error; clear empties it', async () => {
    const c = await connect();
    const empty = await c.ask({ type: 'input_audio_buffer.commit' }, 'error');
    expect(empty.error.code).toBe('input_audio_buffer_commit_empty');

    const pcm = Buffer.alloc(4800, 1); // 100 ms of PCM16 at 24 kHz
    for (let i = 0; i < 3; i++) c.rt.send({ type: 'input_audio_buffer.append', audio: pcm.toString('base64') });
    const committed = await c.ask({ type: 'input_audio_buffer.commit' }, 'input_audio_buffer.committed');
    const done = await c.next('conversation.item.done', c.events.indexOf(committed));
    expect(done.item).toMatchObject({ id: committed.item_id, type: 'message', role: 'user', content: [{ type: 'input_audio', transcript: null }] });
    expect(committed.previous_item_id).toBeNull();

    c.rt.send({ type: 'input_audio_buffer.append', audio: pcm.toString('base64') });
    await c.ask({ type: 'input_audio_buffer.clear' }, 'input_audio_buffer.cleared');
    expect((await c.ask({ type: 'input_audio_buffer.commit' }, 'error')).error.code).toBe('input_audio_buffer_commit_empty');

    // An answer to audio alone, steered by the session's instructions; its input counts the audio.
    await c.ask({ type: 'session.update', session: { type: 'realtime', instructions: 'Answer briefly. tokens:2' } }, 'session.updated');
    const from = c.events.length;
    c.rt.send({ type: 'response.create' });
    const answer = await c.next('response.done', from);
    expect(answer.response.output?.[0]).toMatchObject({ content: [{ transcript: 't0 t1 ' }] });
    expect(answer.response.usage!.input_token_details!.audio_tokens).toBe(3);

    const record = await c.record();
    expect(record.receivedEvents('input_audio_buffer.append').map((e) => e.audio)).toEqual([0, 1, 2, 3].map(() => pcm.toString('base64')));
  });

  it('records every frame it receives byte for byte, binary included, in order', async () => {
    const c = await connect();
    const record = await c.record();
    const before = record.received.length;
    const odd = '{ "type" : "input_audio_buffer.clear",\n  "event_id": "evt_ünïcode" }';
    const binary = Buffer.from([0x00, 0xff, 0x10, 0x80, 0x7f]);
    c.rt.socket.send(odd);
    c.rt.socket.send(binary);
    await c.next('input_audio_buffer.cleared');
    await record.until((r) => r.received.length === before + 2);
    expect(record.received.slice(before).map((f) => [f.binary, f.data])).toEqual([
      [false, Buffer.from(odd)],
      [true, binary],
    ]);
    expect(record.received[before]!.event).toEqual({ type: 'input_audio_buffer.clear', event_id: 'evt_ünïcode' });
    // What is not JSON gets an error event, as OpenAI answers it; the session goes on.
    expect((await c.next('error')).error.code).toBe('invalid_json');
  });
});

describe('refusals and failures', () => {
  it('refuses a wrong key with HTTP 401 and OpenAI error JSON: the SDK reports it', async () => {
    const c = new Client({ key: 'sk-wrong-key-000000000000abcd' });
    const refusedBefore = fake.refused.length;
    await c.until(() => c.errors.length > 0, 'the SDK reporting the refusal');
    expect(c.errors[0]!.message).toBe('Unexpected server response: 401');
    expect(c.errors[0]!.error).toBeUndefined();
    expect(c.events).toEqual([]);
    await c.closed;
    const refused = fake.refused.slice(refusedBefore);
    expect(refused).toHaveLength(1);
    expect(refused[0]).toMatchObject({ status: 401, path: `/v1/realtime?model=${MODEL}`, body: { error: { type: 'invalid_request_error', code: 'invalid_api_key', param: null } } });
    expect(JSON.stringify(refused[0]!.body)).not.toContain('sk-wrong-key-000000000000abcd');

    // The body as a client that reads it sees it (ws's unexpected-response), and no key at all.
    const body = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const ws = new WebSocket(`${fake.url}/realtime?model=${MODEL}`, { ca: cert.cert });
      ws.on('unexpected-response', (_req, res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      });
      ws.on('error', reject);
    });
    expect(body.status).toBe(401);
    expect(JSON.parse(body.body)).toMatchObject({ error: { type: 'invalid_request_error', code: null, message: expect.stringContaining("You didn't provide an API key") } });
  });

  it('with refuseKeyWith: "close", accepts the upgrade, then sends invalid_api_key and closes with 3000', async () => {
    const other = await startRealtimeUpstream({ apiKey: KEY, refuseKeyWith: 'close', tls: { cert: cert.cert, key: await readFile(cert.keyFile) } });
    try {
      const rt = new OpenAIRealtimeWS({ model: MODEL, options: { ca: cert.cert } }, new OpenAI({ apiKey: 'sk-wrong-key-000000000000abcd', baseURL: other.baseURL }));
      const errors: OpenAIRealtimeError[] = [];
      rt.on('error', (err) => errors.push(err));
      const closed = new Promise<{ code: number; reason: string }>((resolve) => rt.socket.once('close', (code: number, reason: Buffer) => resolve({ code, reason: reason.toString() })));
      expect(await orFail(closed, 'the close')).toEqual({ code: 3000, reason: 'invalid_request_error.invalid_api_key' });
      expect(errors.map((e) => e.error)).toEqual([{ type: 'invalid_request_error', code: 'invalid_api_key', message: expect.stringMatching(/^Incorrect API key provided: sk-\*+abcd\./), param: null, event_id: null }]);
      expect(other.refused).toEqual([]);
      expect(other.connections[0]!.sentEvents().map((e) => e.type)).toEqual(['error']);
    } finally {
      await other.close();
    }
  });

  it('scenario:error answers response.create with an error event, no response; the session goes on', async () => {
    const c = await connect();
    await c.ask({ type: 'conversation.item.create', item: { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'Fail this. scenario:error' }] } }, 'conversation.item.done');
    const from = c.events.length;
    const error = await c.ask({ type: 'response.create', event_id: 'evt_resp' }, 'error');
    expect(error.error).toEqual({ ...SCENARIO_ERROR, event_id: 'evt_resp' });
    expect(c.errors.at(-1)!.error).toEqual(error.error);
    expect(c.types(from)).toEqual(['error']);
    const next = await c.turn('Fine now. tokens:1');
    expect(next.done.response.status).toBe('completed');
  });

  it('scenario:failed ends the response with status failed', async () => {
    const c = await connect();
    const { from, done } = await c.turn('Break. scenario:failed fail-after:2 tokens:5');
    expect(done.response).toMatchObject({ status: 'failed', status_details: { type: 'failed', error: FAILED_ERROR }, output: [{ status: 'incomplete', content: [{ transcript: 't0 t1 ' }] }] });
    expect(c.types(from)).toEqual(responseOrder(2, true));
  });

  it('scenario:close closes the socket with 1011, close:<code> with that code, close-after:<n> in the middle of an answer', async () => {
    const c = await connect();
    const record = await c.record();
    c.rt.send({ type: 'conversation.item.create', item: { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'Go away. scenario:close' }] } });
    c.rt.send({ type: 'response.create' });
    expect(await orFail(c.closed, 'the close')).toEqual({ code: 1011, reason: CLOSE_REASON });
    expect(await record.closed).toMatchObject({ code: 1011, reason: CLOSE_REASON, by: 'server' });
    expect(c.types()).not.toContain('response.created');

    const d = await connect();
    d.rt.send({ type: 'conversation.item.create', item: { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'Go away. close:4000' }] } });
    d.rt.send({ type: 'response.create' });
    expect((await orFail(d.closed, 'the close')).code).toBe(4000);

    const e = await connect();
    e.rt.send({ type: 'conversation.item.create', item: { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'Start then die. tokens:10 close-after:3 close:1012' }] } });
    const from = e.events.length;
    e.rt.send({ type: 'response.create' });
    expect((await orFail(e.closed, 'the close')).code).toBe(1012);
    const types = e.types(from);
    expect(types.filter((t) => t === 'response.output_audio_transcript.delta')).toHaveLength(3);
    expect(types).not.toContain('response.done');
  });

  it('records a close the client begins, with its code', async () => {
    const c = await connect();
    const record = await c.record();
    c.rt.close({ code: 4321, reason: 'bye' });
    expect(await orFail(record.closed, 'the close')).toMatchObject({ code: 4321, reason: 'bye', by: 'client' });
  });
});
