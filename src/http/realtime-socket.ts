import type { FastifyRequest } from 'fastify';
import type { WebSocket } from 'ws';
import type { SessionPolicy } from '../config.js';
import { JarvisError, type CancelReason } from '../errors.js';
import type { StreamMeta } from '../events/types.js';
import { isObject, type Obj } from '../json.js';
import { RealtimeAnswer, type RealtimeEnding, type RealtimeEvent } from '../apis/openai-realtime/answer.js';
import { itemFromClient, publicItem, responsesItems, textOfItem, textOnly, type RealtimeItem } from '../apis/openai-realtime/items.js';
import { partsOf } from '../streams/parts.js';
import { countDelivered, type StreamSink } from '../streams/stream-sink.js';
import { toChatBody } from '../responses/translate.js';
import { originOf, runTurn } from './stream-request.js';
import { WsConnection, type WsConnectionOptions } from './ws-connection.js';

/** Client events of audio, which a model served in text has no use for: each gets an `error` event. */
const AUDIO_EVENTS = new Set(['input_audio_buffer.append', 'input_audio_buffer.commit', 'input_audio_buffer.clear', 'output_audio_buffer.clear']);
/** What a session.update may set; audio settings are kept and shown, and change nothing. */
const SESSION_FIELDS = new Set(['type', 'instructions', 'tools', 'tool_choice', 'max_output_tokens', 'output_modalities', 'audio', 'include', 'tracing', 'truncation', 'prompt', 'model', 'parallel_tool_calls']);

export interface RealtimeSocketOptions extends WsConnectionOptions {
  upgrade: FastifyRequest;
  /** The model the connection serves (?model=), as resolved. */
  model: string;
  policy: SessionPolicy;
  /** X-Session-Id; without one the connection is a session of its own. */
  sessionId: string | undefined;
}

/** One response of the connection, from its `response.create` until its stream is over. */
interface Turn {
  answer: RealtimeAnswer;
  inConversation: boolean;
  cancel: ((reason: CancelReason) => void) | undefined;
  /** Cancelled before its stream began (waiting for the response before it): it ends at once when its turn comes. */
  cancelledEarly: boolean;
  /** Its stream's events' identity, once it runs (a truncate publishes under it). */
  meta: StreamMeta | undefined;
  settled: Promise<void>;
  resolveSettled: () => void;
}

/**
 * The Realtime API in text, in front of a model that does not speak it (any upstream, through the core: each
 * `response.create` a turn of runTurn): the session, the default conversation, responses in it or out of band,
 * barge-in (a response.create supersedes the active response under the default policy), response.cancel, and
 * conversation.item.truncate for what the person heard. The GA event names, in OpenAI's order. See docs/api.md.
 */
export class RealtimeSocket extends WsConnection {
  readonly #opts: RealtimeSocketOptions;
  readonly #sessionId: string;
  readonly #session: Obj;
  /** The default conversation, in order. */
  readonly #items: RealtimeItem[] = [];
  readonly #running = new Map<string, Turn>();
  /** The response of the default conversation that is generating (or the last one, settled). */
  #active: Turn | undefined;
  /** The default conversation's responses start one after another, each once the one before has begun. */
  #tail: Promise<void> = Promise.resolve();
  #responses = 0;

  constructor(socket: WebSocket, opts: RealtimeSocketOptions) {
    super(socket, opts);
    this.#opts = opts;
    this.#sessionId = opts.sessionId ?? this.id;
    this.#session = {
      type: 'realtime',
      object: 'realtime.session',
      id: `sess_${this.ctx.ids.hex(12)}`,
      model: opts.model,
      output_modalities: ['text'],
      instructions: '',
      tools: [],
      tool_choice: 'auto',
      max_output_tokens: 'inf',
    };
    this.ctx.log.info({ connection: this.id, session: this.#sessionId, policy: opts.policy, path: '/v1/realtime', mode: 'text', model: opts.model }, 'ws_open');
    this.#emit({ type: 'session.created', session: { ...this.#session } });
  }

  protected get inFlight(): number {
    return this.#running.size;
  }

  protected cancelAll(reason: CancelReason): void {
    for (const turn of this.#running.values()) turn.cancel?.(reason);
  }

  protected onClosed(code: number): void {
    this.ctx.log.info({ connection: this.id, code, responses: this.#responses }, 'ws_close');
  }

  protected refuse(error: JarvisError): void {
    this.#error(error, undefined);
  }

  protected onEvent(msg: Obj & { type: string }, arrivedAt: number): void {
    const eventId = typeof msg.event_id === 'string' ? msg.event_id : undefined;
    try {
      this.#dispatch(msg, arrivedAt);
    } catch (err) {
      this.#error(err instanceof JarvisError ? err : new JarvisError('JARVIS_ERR_INTERNAL', 'internal error', { cause: err }), eventId);
    }
  }

  #dispatch(msg: Obj, arrivedAt: number): void {
    const type = msg.type as string;
    if (AUDIO_EVENTS.has(type)) throw textOnly(type, 'type');
    switch (type) {
      case 'session.update':
        return this.#update(msg.session);
      case 'conversation.item.create':
        return this.#createItem(msg);
      case 'conversation.item.delete': {
        const at = this.#indexOf(msg.item_id);
        const [item] = this.#items.splice(at, 1);
        this.#emit({ type: 'conversation.item.deleted', item_id: item!.id });
        return;
      }
      case 'conversation.item.retrieve':
        this.#emit({ type: 'conversation.item.retrieved', item: publicItem(this.#items[this.#indexOf(msg.item_id)]!) });
        return;
      case 'conversation.item.truncate':
        return this.#truncate(msg);
      case 'response.create':
        if (msg.response !== undefined && !isObject(msg.response)) throw new JarvisError('JARVIS_ERR_INVALID_REQUEST', "Invalid 'response': must be an object.", { param: 'response' });
        return this.#respond(msg.response ?? {}, arrivedAt, typeof msg.event_id === 'string' ? msg.event_id : undefined);
      case 'response.cancel':
        if (msg.response_id !== undefined && typeof msg.response_id !== 'string') throw new JarvisError('JARVIS_ERR_INVALID_REQUEST', "Invalid 'response_id': must be a string.", { param: 'response_id' });
        return this.#cancelResponse(msg.response_id);
      default:
        throw new JarvisError('JARVIS_ERR_INVALID_REQUEST', `Unknown event type '${type.slice(0, 64)}'.`, { param: 'type' });
    }
  }

  #update(session: unknown): void {
    if (!isObject(session)) throw new JarvisError('JARVIS_ERR_INVALID_REQUEST', "Invalid 'session': must be an object.", { param: 'session' });
    const next: Obj = { ...this.#session };
    for (const [key, value] of Object.entries(session)) {
      if (!SESSION_FIELDS.has(key)) throw new JarvisError('JARVIS_ERR_UNSUPPORTED_VALUE', `session.${key} is not supported.`, { param: `session.${key}` });
      switch (key) {
        case 'type':
          if (value !== 'realtime') throw new JarvisError('JARVIS_ERR_UNSUPPORTED_VALUE', "session.type: this endpoint serves 'realtime' sessions.", { param: 'session.type' });
          break;
        case 'model':
          // The model is the connection's (?model=): a session.update may name it again, not change it.
          if (value !== this.#opts.model) throw new JarvisError('JARVIS_ERR_UNSUPPORTED_VALUE', `session.model: this connection serves ${this.#opts.model}; connect with ?model= to use another.`, { param: 'session.model' });
          break;
        case 'output_modalities':
          checkModalities(value, 'session.output_modalities');
          break;
        case 'instructions':
          if (typeof value !== 'string') throw new JarvisError('JARVIS_ERR_INVALID_REQUEST', "Invalid 'session.instructions': must be a string.", { param: 'session.instructions' });
          break;
        case 'max_output_tokens':
          checkMaxTokens(value, 'session.max_output_tokens');
          break;
        default:
          break;
      }
      next[key] = value;
    }
    // Tools and tool_choice are checked as a turn takes them (responses/translate.ts), before they are kept.
    toChatBody({ input: 'check', tools: next.tools, tool_choice: next.tool_choice }, []);
    Object.assign(this.#session, next);
    this.#emit({ type: 'session.updated', session: { ...this.#session } });
  }

  #createItem(msg: Obj): void {
    const item = itemFromClient(msg.item, 'item', () => this.#itemId());
    if (this.#items.some((i) => i.id === item.id)) throw new JarvisError('JARVIS_ERR_INVALID_REQUEST', `An item with id '${item.id}' already exists.`, { param: 'item.id' });
    const previous = msg.previous_item_id;
    let at = this.#items.length;
    if (previous === 'root') at = 0;
    else if (previous !== undefined && previous !== null) at = this.#indexOf(previous, 'previous_item_id') + 1;
    this.#items.splice(at, 0, item);
    const previousId = at === 0 ? null : this.#items[at - 1]!.id;
    this.#emit({ type: 'conversation.item.added', previous_item_id: previousId, item: publicItem(item) });
    this.#emit({ type: 'conversation.item.done', previous_item_id: previousId, item: publicItem(item) });
  }

  #indexOf(id: unknown, param = 'item_id'): number {
    const at = typeof id === 'string' ? this.#items.findIndex((i) => i.id === id) : -1;
    if (at < 0) throw new JarvisError('JARVIS_ERR_ITEM_NOT_FOUND', `Item with item_id not found: ${String(id).slice(0, 64)}`, { param });
    return at;
  }

  /**
   * What the person heard of an assistant message: its text cut at `heard_chars` (Jarvis's own field) or at
   * `audio_end_ms` read at the configured speaking rate, marked interrupted for the model's next turn. A message
   * still being said stops there: its response is cancelled first.
   */
  #truncate(msg: Obj): void {
    const item = this.#items[this.#indexOf(msg.item_id)]!;
    if (item.type !== 'message' || item.role !== 'assistant') throw new JarvisError('JARVIS_ERR_INVALID_REQUEST', 'Only an assistant message can be truncated.', { param: 'item_id' });
    if (msg.content_index !== undefined && msg.content_index !== 0) throw new JarvisError('JARVIS_ERR_INVALID_REQUEST', 'content_index must be 0: a text message has one content part.', { param: 'content_index' });
    const heard = msg.heard_chars;
    const audioEndMs = msg.audio_end_ms;
    if (heard !== undefined && (!Number.isInteger(heard) || (heard as number) < 0)) throw new JarvisError('JARVIS_ERR_INVALID_REQUEST', 'heard_chars must be a non-negative integer.', { param: 'heard_chars' });
    if (!Number.isInteger(audioEndMs) || (audioEndMs as number) < 0) {
      if (heard === undefined) throw new JarvisError('JARVIS_ERR_INVALID_REQUEST', 'audio_end_ms must be a non-negative integer (or send heard_chars).', { param: 'audio_end_ms' });
    }
    const owner = [...this.#running.values()].find((t) => t.answer.message === item);
    owner?.cancel?.('client_cancelled');
    const chars = heard !== undefined ? (heard as number) : Math.round(((audioEndMs as number) / 1000) * this.ctx.config.realtime.charsPerSecond);
    const text = textOfItem(item);
    if (chars < text.length) {
      let end = chars;
      const code = text.charCodeAt(end - 1);
      if (end > 0 && code >= 0xd800 && code <= 0xdbff) end--;
      item.content = [{ type: 'output_text', text: text.slice(0, end) }];
      item.interrupted = true;
      item.status = 'incomplete';
      const meta = owner?.meta ?? this.#metaOf(item);
      if (meta) {
        this.ctx.bus.publish(meta, 'chat.truncated', { item_id: item.id, heard_chars: end, delivered_chars: text.length });
        this.ctx.ledger?.heard(meta.request_id, end);
      }
    }
    this.#emit({ type: 'conversation.item.truncated', item_id: item.id, content_index: 0, audio_end_ms: Number.isInteger(audioEndMs) ? audioEndMs : 0 });
  }

  readonly #metas = new WeakMap<RealtimeItem, StreamMeta>();

  #metaOf(item: RealtimeItem): StreamMeta | undefined {
    return this.#metas.get(item);
  }

  #cancelResponse(responseId: unknown): void {
    // Without an id: the conversation's response that is generating, else the one waiting its turn.
    const waiting = this.#active && this.#running.has(this.#active.answer.id) ? this.#active : undefined;
    const generating = [...this.#running.values()].find((t) => t.inConversation && t.cancel !== undefined);
    const turn = typeof responseId === 'string' ? this.#running.get(responseId) : (generating ?? waiting);
    if (!turn) throw new JarvisError('JARVIS_ERR_CANCEL_NOT_ACTIVE', 'Cancellation failed: no active response found.');
    if (turn.cancel) turn.cancel('client_cancelled');
    else turn.cancelledEarly = true;
  }

  #respond(params: Obj, arrivedAt: number, eventId: string | undefined): void {
    if (this.isClosing) throw new JarvisError('JARVIS_ERR_SHUTTING_DOWN', 'Jarvis is shutting down; connect to another instance.');
    if (params.output_modalities !== undefined) checkModalities(params.output_modalities, 'response.output_modalities');
    if (params.max_output_tokens !== undefined) checkMaxTokens(params.max_output_tokens, 'response.max_output_tokens');
    const conversation = params.conversation ?? 'auto';
    if (conversation !== 'auto' && conversation !== 'none') throw new JarvisError('JARVIS_ERR_UNSUPPORTED_VALUE', "response.conversation must be 'auto' or 'none'.", { param: 'response.conversation' });
    const max = this.ctx.config.websocket.maxResponsesInFlight;
    if (this.#running.size >= max) throw new JarvisError('JARVIS_ERR_TOO_MANY_IN_FLIGHT', `This connection already has ${max} responses in flight, its limit.`);
    // `input` is checked now, so a bad one is an error of this event, not of a response that began.
    if (params.input !== undefined && !Array.isArray(params.input)) throw new JarvisError('JARVIS_ERR_INVALID_REQUEST', "Invalid 'response.input': must be a list of items.", { param: 'response.input' });
    const input = Array.isArray(params.input) ? params.input.map((raw, i) => this.#inputItem(raw, i)) : undefined;
    const inConversation = conversation === 'auto';
    const answer = new RealtimeAnswer({
      id: `resp_${this.ctx.ids.hex(12)}`,
      inConversation,
      conversationId: inConversation ? `conv_${this.#session.id as string}` : null,
      metadata: params.metadata,
      maxOutputTokens: (params.max_output_tokens ?? this.#session.max_output_tokens) as number | 'inf',
      newItemId: () => this.#itemId(),
      insert: (item) => {
        const previous = this.#items.at(-1)?.id ?? null;
        this.#items.push(item);
        return previous;
      },
    });
    let resolveSettled!: () => void;
    const turn: Turn = { answer, inConversation, cancel: undefined, cancelledEarly: false, meta: undefined, settled: new Promise<void>((r) => (resolveSettled = r)), resolveSettled };
    this.#running.set(answer.id, turn);
    if (!inConversation) {
      void this.#start(turn, params, input, arrivedAt, eventId);
      return;
    }
    const previous = this.#active;
    this.#active = turn;
    this.#tail = this.#tail.then(async () => {
      if (previous && this.#running.has(previous.answer.id)) {
        const policy = this.#opts.policy;
        if (policy === 'reject') {
          this.#finished(turn);
          this.#error(new JarvisError('JARVIS_ERR_ACTIVE_RESPONSE', `Conversation already has an active response in progress: ${previous.answer.id}. Wait until the response is finished before creating a new one.`), eventId);
          if (this.#active === turn) this.#active = previous;
          return;
        }
        // Barge-in: the new response starts from what was said of the old one, once it has stopped.
        if (policy === 'cancel-previous') previous.cancel?.('superseded');
        if (policy !== 'parallel') await previous.settled;
      }
      await this.#start(turn, params, input, arrivedAt, eventId);
    });
  }

  #inputItem(raw: unknown, i: number): RealtimeItem {
    // An item_reference names an item of the default conversation.
    if (isObject(raw) && raw.type === 'item_reference') return this.#items[this.#indexOf(raw.id, `response.input[${i}].id`)]!;
    return itemFromClient(raw, `response.input[${i}]`, () => this.#itemId());
  }

  /** Resolves once the turn's stream has begun (or the turn is over). */
  async #start(turn: Turn, params: Obj, input: RealtimeItem[] | undefined, arrivedAt: number, eventId: string | undefined): Promise<void> {
    const { ctx } = this;
    const { answer, inConversation } = turn;
    let begun!: () => void;
    const started = new Promise<void>((r) => (begun = r));
    if (turn.cancelledEarly) {
      this.#emitAll([...answer.created(), ...answer.end({ status: 'cancelled', reason: 'client_cancelled' })]);
      this.#finished(turn);
      return;
    }
    try {
      if (this.isClosed) throw new JarvisError('JARVIS_ERR_INVALID_REQUEST', 'The connection closed.');
      const session = this.#session;
      const context = input ?? this.#items;
      const { chat, messages } = toChatBody(
        {
          model: this.#opts.model,
          instructions: params.instructions ?? session.instructions,
          input: responsesItems(context),
          tools: params.tools ?? session.tools,
          tool_choice: params.tool_choice ?? session.tool_choice,
          parallel_tool_calls: params.parallel_tool_calls ?? session.parallel_tool_calls,
          max_output_tokens: typeof answer.maxOutputTokens === 'number' ? answer.maxOutputTokens : undefined,
        },
        [],
      );
      const requestId = `req_${ctx.ids.hex(12)}`;
      const base = originOf(ctx, this.#opts.upgrade, requestId);
      // The default conversation is the connection's session; an out-of-band response runs beside it.
      const sessionId = inConversation ? this.#sessionId : `${this.#sessionId}:none`;
      const origin = {
        ...base,
        header: (name: string) =>
          name === 'x-session-id' ? sessionId : name === 'x-session-seq' ? undefined : name === 'x-session-policy' ? (inConversation ? this.#opts.policy : 'parallel') : base.header(name),
      };
      this.#responses++;
      runTurn(
        ctx,
        origin,
        {
          api: 'realtime',
          arrivedAt,
          model: this.#opts.model,
          messages,
          body: chat,
          sink: ({ meta }) => {
            turn.meta = meta;
            return new RealtimeSink(answer, {
              send: (events) => this.#emitAll(events),
              flush: (signal) => this.flush(signal),
              remember: (item) => this.#metas.set(item, meta),
            });
          },
        },
        {
          watch: (cancel) => {
            turn.cancel = cancel;
            this.#emitAll(answer.created());
            if (this.isClosed) cancel('client_disconnected');
            begun();
            return () => (turn.cancel = undefined);
          },
        },
      )
        .catch((err: unknown) => this.#error(err instanceof JarvisError ? err : new JarvisError('JARVIS_ERR_INTERNAL', 'internal error', { cause: err }), eventId))
        .finally(() => {
          begun();
          this.#finished(turn);
        });
    } catch (err) {
      this.#finished(turn);
      this.#error(err instanceof JarvisError ? err : new JarvisError('JARVIS_ERR_INTERNAL', 'internal error', { cause: err }), eventId);
      return;
    }
    await started;
  }

  #finished(turn: Turn): void {
    if (!this.#running.delete(turn.answer.id)) return;
    turn.resolveSettled();
    this.settled();
  }

  #itemId(): string {
    return `item_${this.ctx.ids.hex(12)}`;
  }

  /** An error event, naming the client event it answers (`event_id`), in the Realtime API's shape. */
  #error(error: JarvisError, clientEventId: string | undefined): void {
    const body = error.toJSON().error;
    this.#emit({ type: 'error', error: { type: body.type, code: body.code, message: body.message, param: body.param, event_id: clientEventId ?? null } });
  }

  #emit(event: RealtimeEvent): boolean {
    return this.send(JSON.stringify({ event_id: `event_${this.ctx.ids.hex(12)}`, ...event }));
  }

  #emitAll(events: readonly RealtimeEvent[]): boolean {
    let sent = true;
    for (const e of events) sent = this.#emit(e) && sent;
    return sent;
  }
}

function checkModalities(value: unknown, param: string): void {
  if (!Array.isArray(value) || value.length === 0 || value.some((m) => m !== 'text' && m !== 'audio')) {
    throw new JarvisError('JARVIS_ERR_INVALID_REQUEST', `Invalid '${param}': must be ["text"] or ["audio"].`, { param });
  }
  if (value.includes('audio')) throw textOnly(`${param} ["audio"]`, param);
}

function checkMaxTokens(value: unknown, param: string): void {
  if (value !== 'inf' && !(Number.isInteger(value) && (value as number) >= 1 && (value as number) <= 4096)) {
    throw new JarvisError('JARVIS_ERR_INVALID_REQUEST', `Invalid '${param}': must be an integer from 1 to 4096, or "inf".`, { param });
  }
}

interface RealtimeOut {
  send(events: readonly RealtimeEvent[]): boolean;
  flush(signal: AbortSignal): Promise<void> | undefined;
  /** The assistant message the answer says belongs to this stream (a later truncate publishes under it). */
  remember(item: RealtimeItem): void;
}

/** A stream's answer as a Realtime response's events, from any wire's parts. */
class RealtimeSink implements StreamSink {
  readonly wire = 'openai.chat' as const;
  readonly fromParts = true;
  readonly delivered = { tokens: 0, chars: 0 };
  readonly #answer: RealtimeAnswer;
  readonly #out: RealtimeOut;

  constructor(answer: RealtimeAnswer, out: RealtimeOut) {
    this.#answer = answer;
    this.#out = out;
  }

  chunk(d: Parameters<StreamSink['chunk']>[0]): void {
    const events = this.#answer.parts(partsOf(d));
    const message = this.#answer.message;
    if (message) this.#out.remember(message);
    if (this.#out.send(events) && events.length > 0) countDelivered(this.delivered, d);
  }

  flush(signal: AbortSignal): Promise<void> | undefined {
    return this.#out.flush(signal);
  }

  end(): void {
    this.#out.send(this.#answer.end(this.#answer.ending()));
  }

  cancelled(reason: CancelReason): void {
    const ending: RealtimeEnding = { status: 'cancelled', reason: reason === 'superseded' ? 'turn_detected' : 'client_cancelled' };
    this.#out.send(this.#answer.end(ending));
  }

  fail(error: JarvisError): void {
    const body = error.toJSON().error;
    this.#out.send(this.#answer.end({ status: 'failed', error: { type: body.type, code: body.code, message: body.message } }));
  }
}
