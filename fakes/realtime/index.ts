// A real WebSocket server that speaks OpenAI's Realtime API (GA events, `GET /v1/realtime?model=NAME`), for tests
// that hold a relay to being faithful to such an upstream, and for driving one with the `openai` SDK's
// OpenAIRealtimeWS. Over plain HTTP (ws://) by default, or TLS (wss://) with a certificate: the SDK connects only
// over wss:.
//
// What it does, event for event:
//  - the upgrade: with `apiKey` set, a missing or wrong key (`Authorization: Bearer`, or the browser's
//    `openai-insecure-api-key.<key>` subprotocol) is refused with HTTP 401 and OpenAI's error JSON (or, with
//    `refuseKeyWith: 'close'`, in the socket: an error event, then close 3000); a path other than /v1/realtime
//    with 404, a missing `model` with 400. Every HTTP refusal is in `refused`;
//  - on connection: `session.created`, a GA session (type realtime, id sess_..., the model asked for, audio out);
//  - `session.update` → `session.updated` with the whole merged session (an update without `session.type`, the
//    beta shape, gets the error GA answers it with);
//  - `conversation.item.create` → `conversation.item.added` then `conversation.item.done`, with previous_item_id;
//  - `input_audio_buffer.append` → nothing; `.commit` → `input_audio_buffer.committed` and the user audio item
//    (added, done), or the error for less than 100 ms of audio; `.clear` → `input_audio_buffer.cleared`;
//  - `response.create` → an answer, audio with its transcript, or text when the session's or the request's
//    output_modalities is ["text"] (order: responseEventTypes below); knobs in the last user text steer it
//    (./knobs.ts: tokens, delay, scenario:error|close|failed, close:<code>, close-after:<n>, fail-after:<n>);
//    one response at a time in the default conversation, as OpenAI allows (`conversation: "none"` runs beside it);
//  - `response.cancel` → the active response ends (`.done` events, then `response.done` cancelled,
//    client_cancelled); with none active, the `response_cancel_not_active` error;
//  - `conversation.item.retrieve|delete|truncate` → `.retrieved|.deleted|.truncated`; anything else: an error event.
// Every frame received (text or binary, byte for byte) and sent (unless `recordSent: false`) is recorded, with the
// close and who began it.
//
// It has no voice activity detection: the session says server_vad (OpenAI's default), but audio is only committed
// when the client commits it, and a response only starts on `response.create`.
import * as http from 'node:http';
import * as https from 'node:https';
import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { hash32, listen, sendJson } from '../http.js';
import { knobsIn, type RealtimeKnobs } from './knobs.js';
import { AUDIO_CHUNK_MS, HTTP_ERRORS, audioChunk, audioMs, defaultSession, errorBody, idSource, merged, sendableCloseCode, type Json, type RealtimeErrorBody } from './wire.js';

export { ANSWER, counted, knobsIn, type RealtimeKnobs } from './knobs.js';
export { AUDIO_CHUNK_MS, DEFAULT_INSTRUCTIONS, DEFAULT_VOICE, audioChunk, defaultSession, errorBody, maskedKey, type Json, type RealtimeErrorBody } from './wire.js';

/**
 * The types of the server events of a completed response of `words` words, in the order the fake sends them:
 * each word one transcript delta and one audio delta (with audio), or one text delta; rate_limits.updated follows
 * response.done, as it does from OpenAI. Out of band (`conversation: "none"`), without the conversation.item events.
 */
export function responseEventTypes(words: number, audio: boolean, inConversation = true): string[] {
  const deltas = audio ? ['response.output_audio_transcript.delta', 'response.output_audio.delta'] : ['response.output_text.delta'];
  const ends = audio ? ['response.output_audio.done', 'response.output_audio_transcript.done'] : ['response.output_text.done'];
  return [
    'response.created',
    'response.output_item.added',
    ...(inConversation ? ['conversation.item.added'] : []),
    'response.content_part.added',
    ...Array.from({ length: words }, () => deltas).flat(),
    ...ends,
    'response.content_part.done',
    'response.output_item.done',
    ...(inConversation ? ['conversation.item.done'] : []),
    'response.done',
    'rate_limits.updated',
  ];
}

/** The error `scenario:error` answers `response.create` with. */
export const SCENARIO_ERROR = { type: 'invalid_request_error', code: 'invalid_value', message: 'The fake upstream was asked to refuse this response (scenario:error).', param: null };
/** The reason the server gives when it closes the socket (scenario:close, close:<code>, close-after:<n>). */
export const CLOSE_REASON = 'The server had an error while processing your request.';
/** What a failed response (scenario:failed) reports in status_details.error. */
export const FAILED_ERROR = { type: 'server_error', message: 'The server had an error while processing your request. Sorry about that!' };

/** One WebSocket message, as it was on the wire. */
export interface RealtimeFrame {
  /** performance.now() when it was received (or sent). */
  at: number;
  binary: boolean;
  /** The payload, byte for byte. */
  readonly data: Buffer;
  /** The payload as UTF-8. */
  readonly text: string;
  /** The payload parsed, when it is a JSON object. */
  readonly event: Json | undefined;
}

export interface RealtimeClose {
  code: number;
  reason: string;
  /** Who sent the first close frame (or cut the connection): the fake (a scenario, or `close()`), or its client. */
  by: 'client' | 'server';
  at: number;
}

/** One accepted upgrade. */
export interface RealtimeConnectionRecord {
  /** 0 for the first connection the fake accepted, then 1, 2, ... */
  index: number;
  /** The request's path and query, as sent. */
  path: string;
  model: string;
  headers: http.IncomingHttpHeaders;
  /** The key it presented, if any (bearer, or subprotocol). */
  key: string | undefined;
  openedAt: number;
  /** Every message the client sent, in order. */
  received: RealtimeFrame[];
  /** Every message the fake sent, in order (unless `recordSent` is false). */
  sent: RealtimeFrame[];
  /** How many messages the fake sent that `sent` does not hold (`recordSent: false`). */
  sentCount: number;
  /** The events among `received` (of `type`, when given). */
  receivedEvents(type?: string): Json[];
  /** The events among `sent` (of `type`, when given). */
  sentEvents(type?: string): Json[];
  /** The session as the fake holds it now. */
  readonly session: Json;
  /** Set when the socket has closed. */
  close: RealtimeClose | undefined;
  /** Resolves when the socket has closed. */
  closed: Promise<RealtimeClose>;
  /** Resolves once `test` holds of this record, checked now and after each frame and the close. */
  until(test: (c: RealtimeConnectionRecord) => boolean): Promise<void>;
}

/** One upgrade the fake refused, with the HTTP answer it gave. */
export interface RefusedUpgrade {
  at: number;
  path: string;
  headers: http.IncomingHttpHeaders;
  status: number;
  body: Json;
}

export interface RealtimeUpstream {
  /** Where a relay connects, without /realtime: `ws://127.0.0.1:PORT/v1`, or `wss://` with TLS. */
  url: string;
  /** The same as an OpenAI client's `baseURL` (http: or https:); OpenAIRealtimeWS makes it wss://.../v1/realtime. */
  baseURL: string;
  connections: RealtimeConnectionRecord[];
  refused: RefusedUpgrade[];
  /** The `index`-th connection (0-based), once it is accepted. */
  connection(index: number): Promise<RealtimeConnectionRecord>;
  /** The connections that received `text` in any frame. */
  connectionsWith(text: string): RealtimeConnectionRecord[];
  /** Stops listening and cuts every connection. */
  close(): Promise<void>;
}

export interface RealtimeUpstreamOptions {
  /** When set, an upgrade with any other key gets 401. */
  apiKey?: string;
  /** Serve TLS (wss://) with this certificate and key (PEM). */
  tls?: { cert: string | Buffer; key: string | Buffer };
  /**
   * Keep every frame sent in `sent` (default), or only count them in `sentCount`: a flood of audio (tokens:100000
   * with no delay sends 100,000 deltas of 6.4 kB) is then not held in memory.
   */
  recordSent?: boolean;
  /**
   * How a wrong or missing key is refused: 'http' (default) answers the upgrade with 401 and the error JSON;
   * 'close' accepts it, sends an `error` event (invalid_api_key) and closes with 3000
   * `invalid_request_error.invalid_api_key`, as OpenAI's Realtime API has been seen to do.
   */
  refuseKeyWith?: 'http' | 'close';
}

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/** A frame of `payload`: bytes received, or the text the fake sent (kept once, as text). */
function frameOf(payload: Buffer | string, binary: boolean, at = performance.now()): RealtimeFrame {
  let parsed: Json | undefined | null = null;
  const text = () => (typeof payload === 'string' ? payload : payload.toString('utf8'));
  return {
    at,
    binary,
    get data() {
      return typeof payload === 'string' ? Buffer.from(payload) : payload;
    },
    get text() {
      return text();
    },
    get event() {
      if (parsed === null) {
        try {
          const v: unknown = JSON.parse(text());
          parsed = isObject(v) ? v : undefined;
        } catch {
          parsed = undefined;
        }
      }
      return parsed;
    },
  };
}

/** The key an upgrade presents: a bearer token, else the browser's `openai-insecure-api-key.<key>` subprotocol. */
function keyOf(headers: http.IncomingHttpHeaders): string | undefined {
  const bearer = /^Bearer\s+(.+)$/i.exec(headers.authorization ?? '')?.[1];
  if (bearer !== undefined) return bearer.trim();
  const protocols = String(headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim());
  return protocols.find((p) => p.startsWith('openai-insecure-api-key.'))?.slice('openai-insecure-api-key.'.length);
}

/** The text of an item's content (its text parts, or its audio's transcript). */
function textOf(item: Json | undefined): string {
  const content = Array.isArray(item?.content) ? (item.content as unknown[]) : [];
  return content
    .filter(isObject)
    .map((p) => str(p.text) ?? str(p.transcript) ?? '')
    .join('');
}

const wordCount = (text: string) => text.split(/\s+/).filter(Boolean).length;

/** An item as events show it: everything but audio data. */
function shown(item: Json): Json {
  if (!Array.isArray(item.content)) return { ...item };
  return { ...item, content: (item.content as unknown[]).map((p) => (isObject(p) ? Object.fromEntries(Object.entries(p).filter(([k]) => k !== 'audio')) : p)) };
}

interface Stored {
  item: Json;
  /** Milliseconds of user audio it holds (for usage). */
  audioMs: number;
}

interface Generation {
  id: string;
  inConversation: boolean;
  /** Ends it now, with `status` (cancelled, failed, incomplete, completed). */
  finish(status: string, details: Json | null): void;
  /** Stops it without another event (the socket is gone). */
  stop(): void;
}

/** One connection's state: its session, its conversation, its audio buffer, its responses. */
class Connection {
  private session: Json;
  private readonly items: Stored[] = [];
  private bufferBytes = 0;
  private readonly active = new Map<string, Generation>();
  private readonly conversationId: string;
  private serverClosing = false;
  private readonly waiters = new Set<() => void>();
  readonly record: RealtimeConnectionRecord;

  constructor(
    private readonly ws: WebSocket,
    index: number,
    req: http.IncomingMessage,
    model: string,
    key: string | undefined,
    private readonly recordSent: boolean,
    refusal: RealtimeErrorBody | undefined,
    private readonly id = idSource(`${index}:${model}`),
  ) {
    this.session = defaultSession(id('sess'), model);
    this.conversationId = id('conv');
    let closed!: (c: RealtimeClose) => void;
    const events = (frames: RealtimeFrame[], type?: string) => frames.map((f) => f.event).filter((e): e is Json => e !== undefined && (type === undefined || e.type === type));
    const record: RealtimeConnectionRecord = {
      index,
      path: req.url ?? '',
      model,
      headers: req.headers,
      key,
      openedAt: performance.now(),
      received: [],
      sent: [],
      sentCount: 0,
      receivedEvents: (type) => events(record.received, type),
      sentEvents: (type) => events(record.sent, type),
      session: {},
      close: undefined,
      closed: new Promise((resolve) => (closed = resolve)),
      until: (test) =>
        new Promise<void>((resolve) => {
          if (test(record)) return resolve();
          const check = () => {
            if (!test(record)) return;
            this.waiters.delete(check);
            resolve();
          };
          this.waiters.add(check);
        }),
    };
    Object.defineProperty(record, 'session', { enumerable: true, get: () => structuredClone(this.session) });
    this.record = record;
    ws.on('message', (data: RawData, binary: boolean) => {
      const bytes = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
      const frame = frameOf(bytes, binary);
      this.record.received.push(frame);
      this.handle(frame);
      this.notify();
    });
    ws.on('close', (code: number, reason: Buffer) => {
      for (const g of this.active.values()) g.stop();
      this.active.clear();
      this.record.close = { code, reason: reason.toString('utf8'), by: this.serverClosing ? 'server' : 'client', at: performance.now() };
      closed(this.record.close);
      this.notify();
    });
    ws.on('error', () => {
      // A client that breaks the protocol: `close` follows, with the code ws gives it.
    });
    if (refusal) {
      this.error(refusal);
      this.serverClose(3000, `${refusal.type}.${refusal.code}`);
      return;
    }
    this.send('session.created', { session: structuredClone(this.session) });
  }

  private notify(): void {
    for (const check of [...this.waiters]) check();
  }

  /** Sends a server event; `done` runs once it is handed to the socket (backpressure for a flood). */
  private send(type: string, fields: Json, done?: () => void): void {
    if (this.ws.readyState !== this.ws.OPEN) return;
    const text = JSON.stringify({ type, event_id: this.id('event'), ...fields });
    if (this.recordSent) this.record.sent.push(frameOf(text, false));
    else this.record.sentCount++;
    this.ws.send(text, done && (() => done()));
    this.notify();
  }

  private error(body: RealtimeErrorBody): void {
    this.send('error', { error: body });
  }

  /** Closes the socket from the server side, as a failing upstream does. */
  serverClose(code: number, reason: string): void {
    if (this.serverClosing) return;
    this.serverClosing = true;
    for (const g of this.active.values()) g.stop();
    this.active.clear();
    this.ws.close(sendableCloseCode(code) ? code : 1011, reason);
  }

  /** Cuts the connection at once (the fake is closing). */
  terminate(): void {
    this.serverClosing = true;
    this.ws.terminate();
  }

  private handle(frame: RealtimeFrame): void {
    let event: unknown;
    try {
      event = JSON.parse(frame.text);
    } catch (err) {
      return this.error(errorBody('invalid_request_error', 'invalid_json', `Invalid JSON in the event: ${(err as Error).message}`));
    }
    if (!isObject(event)) return this.error(errorBody('invalid_request_error', 'invalid_json', 'An event must be a JSON object.'));
    const eventId = str(event.event_id) ?? null;
    const type = event.type;
    if (typeof type !== 'string') return this.error(errorBody('invalid_request_error', 'invalid_event', "The 'type' field is missing.", null, eventId));
    switch (type) {
      case 'session.update':
        return this.sessionUpdate(event, eventId);
      case 'conversation.item.create':
        return this.itemCreate(event, eventId);
      case 'conversation.item.retrieve':
      case 'conversation.item.delete':
      case 'conversation.item.truncate':
        return this.itemOp(type, event, eventId);
      case 'input_audio_buffer.append': {
        const audio = str(event.audio);
        if (audio === undefined) return this.error(errorBody('invalid_request_error', 'missing_required_parameter', "Missing required parameter: 'audio'.", 'audio', eventId));
        this.bufferBytes += Buffer.from(audio, 'base64').length;
        return;
      }
      case 'input_audio_buffer.commit':
        return this.commit(eventId);
      case 'input_audio_buffer.clear':
        this.bufferBytes = 0;
        return this.send('input_audio_buffer.cleared', {});
      case 'response.create':
        return this.respond(isObject(event.response) ? event.response : {}, eventId);
      case 'response.cancel':
        return this.cancel(str(event.response_id), eventId);
      default:
        return this.error(
          errorBody(
            'invalid_request_error',
            'invalid_value',
            `Invalid value: '${type}'. Supported values are: 'session.update', 'input_audio_buffer.append', 'input_audio_buffer.commit', 'input_audio_buffer.clear', 'conversation.item.create', 'conversation.item.retrieve', 'conversation.item.truncate', 'conversation.item.delete', 'response.create', and 'response.cancel'.`,
            'type',
            eventId,
          ),
        );
    }
  }

  private sessionUpdate(event: Json, eventId: string | null): void {
    const update = event.session;
    if (!isObject(update)) return this.error(errorBody('invalid_request_error', 'missing_required_parameter', "Missing required parameter: 'session'.", 'session', eventId));
    if (update.type === undefined) return this.error(errorBody('invalid_request_error', 'missing_required_parameter', "Missing required parameter: 'session.type'.", 'session.type', eventId));
    if (update.type !== 'realtime') {
      return this.error(errorBody('invalid_request_error', 'invalid_value', `Invalid value: '${String(update.type)}'. This session is of type 'realtime'.`, 'session.type', eventId));
    }
    const { id: _id, object: _object, ...fields } = update;
    this.session = merged(this.session, fields);
    this.send('session.updated', { session: structuredClone(this.session) });
  }

  /** Where an item goes: after `previous` ('root': first; undefined: last); -1 when `previous` is unknown. */
  private insertionIndex(previous: string | undefined): number {
    if (previous === undefined) return this.items.length;
    if (previous === 'root') return 0;
    const at = this.items.findIndex((s) => s.item.id === previous);
    return at < 0 ? -1 : at + 1;
  }

  private insert(stored: Stored, at: number): string | null {
    this.items.splice(at, 0, stored);
    return at === 0 ? null : (str(this.items[at - 1]!.item.id) ?? null);
  }

  private itemCreate(event: Json, eventId: string | null): void {
    const item = event.item;
    if (!isObject(item)) return this.error(errorBody('invalid_request_error', 'missing_required_parameter', "Missing required parameter: 'item'.", 'item', eventId));
    if (typeof item.type !== 'string') return this.error(errorBody('invalid_request_error', 'missing_required_parameter', "Missing required parameter: 'item.type'.", 'item.type', eventId));
    const previous = str(event.previous_item_id);
    const at = this.insertionIndex(previous);
    if (at < 0) return this.error(errorBody('invalid_request_error', 'invalid_value', `Invalid value: '${previous}'. No item with that id in the conversation.`, 'previous_item_id', eventId));
    const id = str(item.id) ?? this.id('item');
    if (this.items.some((s) => s.item.id === id)) return this.error(errorBody('invalid_request_error', 'invalid_value', `Item with id '${id}' already exists.`, 'item.id', eventId));
    const stored: Json = { id, type: item.type, status: 'completed', ...item, object: 'realtime.item' };
    stored.id = id;
    const audio = Array.isArray(item.content) ? (item.content as unknown[]).filter(isObject).map((p) => str(p.audio) ?? '').join('') : '';
    const previousId = this.insert({ item: stored, audioMs: audioMs(this.inputFormat(), Buffer.from(audio, 'base64').length) }, at);
    this.send('conversation.item.added', { previous_item_id: previousId, item: shown(stored) });
    this.send('conversation.item.done', { previous_item_id: previousId, item: shown(stored) });
  }

  private itemOp(type: string, event: Json, eventId: string | null): void {
    const itemId = str(event.item_id);
    const at = this.items.findIndex((s) => s.item.id === itemId);
    if (at < 0) return this.error(errorBody('invalid_request_error', 'invalid_value', `Invalid value: '${itemId}'. No item with that id in the conversation.`, 'item_id', eventId));
    if (type === 'conversation.item.retrieve') return this.send('conversation.item.retrieved', { item: structuredClone(this.items[at]!.item) });
    if (type === 'conversation.item.delete') {
      this.items.splice(at, 1);
      return this.send('conversation.item.deleted', { item_id: itemId });
    }
    this.send('conversation.item.truncated', { item_id: itemId, content_index: event.content_index ?? 0, audio_end_ms: event.audio_end_ms ?? 0 });
  }

  /** The session's `audio.<direction>` settings. */
  private audioOf(direction: 'input' | 'output'): Json {
    const audio = this.session.audio;
    const settings = isObject(audio) ? audio[direction] : undefined;
    return isObject(settings) ? settings : {};
  }

  private inputFormat(): string {
    const format = this.audioOf('input').format;
    return (isObject(format) ? str(format.type) : undefined) ?? 'audio/pcm';
  }

  private commit(eventId: string | null): void {
    const ms = audioMs(this.inputFormat(), this.bufferBytes);
    if (ms < 100) {
      return this.error(
        errorBody(
          'invalid_request_error',
          'input_audio_buffer_commit_empty',
          `Error committing input audio buffer: buffer too small. Expected at least 100ms of audio, but buffer only has ${ms.toFixed(2)}ms of audio.`,
          null,
          eventId,
        ),
      );
    }
    this.bufferBytes = 0;
    const item: Json = { id: this.id('item'), type: 'message', status: 'completed', role: 'user', content: [{ type: 'input_audio', transcript: null }], object: 'realtime.item' };
    const previousId = this.insert({ item, audioMs: ms }, this.items.length);
    this.send('input_audio_buffer.committed', { previous_item_id: previousId, item_id: item.id });
    this.send('conversation.item.added', { previous_item_id: previousId, item: shown(item) });
    this.send('conversation.item.done', { previous_item_id: previousId, item: shown(item) });
  }

  private cancel(responseId: string | undefined, eventId: string | null): void {
    const g = responseId !== undefined ? this.active.get(responseId) : [...this.active.values()].find((a) => a.inConversation);
    if (!g) return this.error(errorBody('invalid_request_error', 'response_cancel_not_active', 'Cancellation failed: no active response found', null, eventId));
    g.finish('cancelled', { type: 'cancelled', reason: 'client_cancelled' });
  }

  /** The items a response reads: its own `input` (references resolved), else the conversation. */
  private inputOf(params: Json): Stored[] {
    if (!Array.isArray(params.input)) return this.items;
    return (params.input as unknown[]).filter(isObject).map((i) => {
      if (i.type === 'item_reference') return this.items.find((s) => s.item.id === i.id) ?? { item: {}, audioMs: 0 };
      return { item: i, audioMs: 0 };
    });
  }

  private respond(params: Json, eventId: string | null): void {
    const inConversation = params.conversation !== 'none';
    const busy = [...this.active.values()].find((a) => a.inConversation);
    if (inConversation && busy) {
      return this.error(
        errorBody(
          'invalid_request_error',
          'conversation_already_has_active_response',
          `Conversation already has an active response in progress: ${busy.id}. Wait until the response is finished before creating a new one.`,
          null,
          eventId,
        ),
      );
    }
    const input = this.inputOf(params);
    const lastUser = [...input].reverse().find((s) => s.item.type === 'message' && s.item.role === 'user');
    const instructions = str(params.instructions) ?? str(this.session.instructions) ?? '';
    const knobs = knobsIn(`${textOf(lastUser?.item)}\n${instructions}`);
    if (knobs.scenario === 'error') return this.error({ ...SCENARIO_ERROR, event_id: eventId });
    if (knobs.closeCode !== undefined && knobs.closeAfter === undefined) return this.serverClose(knobs.closeCode, CLOSE_REASON);
    this.generate(params, inConversation, input, instructions, knobs);
  }

  private generate(params: Json, inConversation: boolean, input: Stored[], instructions: string, knobs: RealtimeKnobs): void {
    const session = this.session;
    const modalities = (Array.isArray(params.output_modalities) ? params.output_modalities : session.output_modalities) as unknown[];
    const audio = !(modalities.length > 0 && modalities.every((m) => m === 'text'));
    const sessionOut = this.audioOf('output');
    const requestOut = isObject(params.audio) && isObject(params.audio.output) ? params.audio.output : {};
    const format: Json = isObject(requestOut.format) ? requestOut.format : isObject(sessionOut.format) ? sessionOut.format : { type: 'audio/pcm', rate: 24000 };
    const formatType = str(format.type) ?? 'audio/pcm';
    const voice = requestOut.voice ?? sessionOut.voice;
    const maxTokens = params.max_output_tokens ?? session.max_output_tokens ?? 'inf';
    const id = this.id('resp');
    const itemId = this.id('item');
    const ids = { response_id: id, item_id: itemId, output_index: 0, content_index: 0 };
    const words = knobs.words;
    // Each word costs a text token and, with audio, the audio tokens of its chunk (1 token per 50 ms).
    const cost = 1 + (audio ? AUDIO_CHUNK_MS / 50 : 0);
    const budget = typeof maxTokens === 'number' ? Math.floor(maxTokens / cost) : Infinity;
    let emitted = 0;
    let timer: NodeJS.Timeout | undefined;
    let over = false;

    const inputText = input.reduce((n, s) => n + wordCount(textOf(s.item)), 0) + wordCount(instructions);
    const inputAudio = input.reduce((n, s) => n + Math.ceil(s.audioMs / 100), 0);
    const usage = () => {
      const outText = emitted;
      const outAudio = audio ? emitted * (AUDIO_CHUNK_MS / 50) : 0;
      return {
        total_tokens: inputText + inputAudio + outText + outAudio,
        input_tokens: inputText + inputAudio,
        output_tokens: outText + outAudio,
        input_token_details: {
          text_tokens: inputText,
          audio_tokens: inputAudio,
          image_tokens: 0,
          cached_tokens: 0,
          cached_tokens_details: { text_tokens: 0, audio_tokens: 0, image_tokens: 0 },
        },
        output_token_details: { text_tokens: outText, audio_tokens: outAudio },
      };
    };
    const response = (status: string, details: Json | null, output: Json[], withUsage: boolean) => ({
      object: 'realtime.response',
      id,
      status,
      status_details: details,
      output,
      conversation_id: inConversation ? this.conversationId : null,
      output_modalities: [audio ? 'audio' : 'text'],
      max_output_tokens: maxTokens,
      audio: { output: { format, voice } },
      usage: withUsage ? usage() : null,
      metadata: params.metadata ?? null,
    });
    const item = (status: string, content: Json[]): Json => ({ id: itemId, type: 'message', status, role: 'assistant', content, object: 'realtime.item' });

    const stop = () => {
      over = true;
      clearTimeout(timer);
      this.active.delete(id);
    };
    let previousId: string | null = null;
    let stored: Stored | undefined;
    const finish = (status: string, details: Json | null) => {
      if (over) return;
      stop();
      const said = words.slice(0, emitted).join('');
      if (audio) {
        this.send('response.output_audio.done', ids);
        this.send('response.output_audio_transcript.done', { ...ids, transcript: said });
      } else this.send('response.output_text.done', { ...ids, text: said });
      const part = audio ? { type: 'audio', transcript: said } : { type: 'text', text: said };
      this.send('response.content_part.done', { ...ids, part });
      const done = item(status === 'completed' ? 'completed' : 'incomplete', [audio ? { type: 'output_audio', transcript: said } : { type: 'output_text', text: said }]);
      this.send('response.output_item.done', { response_id: id, output_index: 0, item: done });
      if (stored) {
        stored.item = done;
        this.send('conversation.item.done', { previous_item_id: previousId, item: done });
      }
      this.send('response.done', { response: response(status, details, [done], true) });
      const tokens = usage().total_tokens;
      this.send('rate_limits.updated', {
        rate_limits: [
          { name: 'requests', limit: 5000, remaining: 4999, reset_seconds: 0.012 },
          { name: 'tokens', limit: 40000, remaining: 40000 - tokens, reset_seconds: Number((tokens * 0.0015).toFixed(3)) },
        ],
      });
    };
    /** Sends word `i`'s deltas; false when the response ended there (or before). */
    const step = (then?: () => void): boolean => {
      if (over) return false;
      if (knobs.closeAfter !== undefined && emitted >= knobs.closeAfter) {
        this.serverClose(knobs.closeCode ?? 1011, CLOSE_REASON);
        return false;
      }
      if (knobs.failAfter !== undefined && emitted >= knobs.failAfter) {
        finish('failed', { type: 'failed', error: FAILED_ERROR });
        return false;
      }
      if (emitted >= words.length) {
        finish('completed', null);
        return false;
      }
      if (emitted >= budget) {
        finish('incomplete', { type: 'incomplete', reason: 'max_output_tokens' });
        return false;
      }
      const i = emitted++;
      if (audio) {
        this.send('response.output_audio_transcript.delta', { ...ids, delta: words[i] });
        this.send('response.output_audio.delta', { ...ids, delta: audioChunk(formatType, i) }, then);
      } else this.send('response.output_text.delta', { ...ids, delta: words[i] }, then);
      return true;
    };
    // Paced: one word per `delay` ms. Unpaced: batches of words, the next once the last is handed to the socket,
    // so a reader that does not keep up slows the answer down instead of filling the fake's memory.
    const run = () => {
      if (knobs.delayMs > 0) {
        timer = setTimeout(() => {
          if (step()) run();
        }, knobs.delayMs);
        return;
      }
      for (let n = 0; n < 31; n++) if (!step()) return;
      step(() => setImmediate(run));
    };

    this.active.set(id, { id, inConversation, finish, stop });
    this.send('response.created', { response: response('in_progress', null, [], false) });
    const started = item('in_progress', []);
    this.send('response.output_item.added', { response_id: id, output_index: 0, item: started });
    if (inConversation) {
      stored = { item: started, audioMs: 0 };
      previousId = this.insert(stored, this.items.length);
      this.send('conversation.item.added', { previous_item_id: previousId, item: started });
    }
    this.send('response.content_part.added', { ...ids, part: audio ? { type: 'audio', transcript: '' } : { type: 'text', text: '' } });
    if (knobs.delayMs > 0) run();
    else setImmediate(run);
  }
}

/** Writes an HTTP answer on a socket whose upgrade is refused, then closes it. */
function refuse(socket: Duplex, status: number, body: Json, requestId: string): void {
  const text = JSON.stringify(body);
  socket.end(
    `HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? ''}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(text)}\r\nx-request-id: ${requestId}\r\nconnection: close\r\n\r\n${text}`,
  );
}

export async function startRealtimeUpstream(opts: RealtimeUpstreamOptions = {}): Promise<RealtimeUpstream> {
  const connections: RealtimeConnectionRecord[] = [];
  const live = new Set<Connection>();
  const refused: RefusedUpgrade[] = [];
  const waiting = new Set<{ index: number; resolve: (c: RealtimeConnectionRecord) => void }>();
  let upgrades = 0;

  const onRequest = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const { status, error } = HTTP_ERRORS.notFound(new URL(req.url ?? '/', 'http://fake').pathname);
    sendJson(res, status, { error });
  };
  const server = opts.tls ? https.createServer({ cert: opts.tls.cert, key: opts.tls.key }, onRequest) : http.createServer(onRequest);
  // OpenAI answers the browser's subprotocols with `realtime`; a client that offers none gets none.
  const wss = new WebSocketServer({ noServer: true, handleProtocols: (protocols) => (protocols.has('realtime') ? 'realtime' : false) });

  // The 101 carries an x-request-id, as every answer of OpenAI's API does.
  const requestIds = new WeakMap<http.IncomingMessage, string>();
  wss.on('headers', (headers, req) => headers.push(`x-request-id: ${requestIds.get(req) ?? 'req_unknown'}`));

  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => {});
    const n = upgrades++;
    const requestId = `req_${hash32(`${n}:${req.url}`).toString(16).padStart(8, '0')}${hash32(`${req.url}:${n}`).toString(16).padStart(8, '0')}`;
    const url = new URL(req.url ?? '/', 'http://fake');
    const no = ({ status, error }: { status: number; error: Json }) => {
      refused.push({ at: performance.now(), path: req.url ?? '', headers: req.headers, status, body: { error } });
      refuse(socket, status, { error }, requestId);
    };
    if (url.pathname !== '/v1/realtime') return no(HTTP_ERRORS.notFound(url.pathname));
    const key = keyOf(req.headers);
    const keyError = opts.apiKey === undefined || key === opts.apiKey ? undefined : key === undefined || key === '' ? HTTP_ERRORS.missingKey() : HTTP_ERRORS.badKey(key);
    if (keyError && opts.refuseKeyWith !== 'close') return no(keyError);
    const model = url.searchParams.get('model');
    if (!model) return no(HTTP_ERRORS.missingModel());
    const refusal = keyError && errorBody(keyError.error.type, keyError.error.code, keyError.error.message);
    requestIds.set(req, requestId);
    wss.handleUpgrade(req, socket, head, (ws) => {
      const conn = new Connection(ws, connections.length, req, model, key, opts.recordSent ?? true, refusal);
      live.add(conn);
      ws.on('close', () => live.delete(conn));
      connections.push(conn.record);
      for (const w of [...waiting]) {
        if (connections[w.index]) {
          waiting.delete(w);
          w.resolve(connections[w.index]!);
        }
      }
    });
  });

  const { port, close } = await listen(server as unknown as http.Server);
  const scheme = opts.tls ? 'https' : 'http';
  return {
    url: `${opts.tls ? 'wss' : 'ws'}://127.0.0.1:${port}/v1`,
    baseURL: `${scheme}://127.0.0.1:${port}/v1`,
    connections,
    refused,
    connection: (index) =>
      connections[index] ? Promise.resolve(connections[index]) : new Promise((resolve) => waiting.add({ index, resolve })),
    connectionsWith: (text) => connections.filter((c) => c.received.some((f) => f.text.includes(text))),
    close: async () => {
      for (const c of live) c.terminate();
      wss.close();
      await close();
    },
  };
}
