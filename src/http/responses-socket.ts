import type { FastifyRequest } from 'fastify';
import type { WebSocket } from 'ws';
import { checkModelAllowed } from '../access/keys.js';
import type { SessionPolicy } from '../config.js';
import type { JarvisContext } from '../context.js';
import { JarvisError, type CancelReason } from '../errors.js';
import { isObject, type Obj } from '../json.js';
import { conversationOf } from '../responses/conversation.js';
import { ResponseBuilder } from '../responses/response-builder.js';
import type { ResponseStore } from '../responses/response-store.js';
import { requiredInputOf, steeringItems, withSteering } from '../responses/steering.js';
import { inputItems, type Item } from '../responses/translate.js';
import { ResponsesNativeSink, ResponsesWsSink, wsNativeOut, type WsResponseOut } from './responses-sinks.js';
import { responsesPlan } from './responses-turn.js';
import { originOf, runTurn } from './stream-request.js';
import { WsConnection, type WsConnectionOptions } from './ws-connection.js';

/** Responses a connection remembers for `previous_response_id` (store: false or not): the newest, beyond what a tool loop needs. */
const REMEMBERED = 64;
/** Steering inputs one response may hold before it takes them (too_many_pending_steers past it). */
const MAX_PENDING_STEERS = 8;
/** A lane's name: it becomes part of a session id (`{session}:{stream_id}`). */
const STREAM_ID = /^[A-Za-z0-9._-]{1,64}$/;
/** The envelope of `response.create` over `POST /v1/responses`'s body. */
const ENVELOPE = new Set(['type', 'stream_id', 'stream', 'background', 'generate']);

/** A lane: the responses of one `stream_id` (or of none), FIFO, and one barge-in session (`{session}:{stream_id}`). */
interface Lane {
  streamId: string | undefined;
  sessionId: string;
  /** What each `response.create` of the lane waits for before it starts: the one before it has begun (FIFO). */
  tail: Promise<void>;
}

/** User input accepted by `response.steer`, held by its response until a successor (or a continuation) takes it. */
interface Steer {
  id: string;
  /** As the client sent it (returned in `response.steer.failed`), and as input items. */
  input: unknown;
  items: Item[];
  /** `response.steer.pending` went out for it. */
  pending: boolean;
}

type TurnState = 'starting' | 'active' | 'completed' | 'incomplete' | 'failed';

/** One response of the connection, from its `response.create` until the connection forgets it. */
interface Turn {
  /** Known from its `response.created` on. */
  id: string | undefined;
  lane: Lane;
  /** Its `response.create` without the envelope: the settings a steered successor inherits. */
  body: Obj;
  state: TurnState;
  /** Why it ended incomplete (`interrupted`, `steered`, `max_output_tokens`...). */
  incompleteReason: unknown;
  /** What `previous_response_id` continues from: its history, its input and what was delivered of it. */
  conversation: Item[] | undefined;
  /** The function calls it ended with, for the client to answer (`required_input` stubs). */
  requiredInput: Obj[];
  /** A later response continued from it. */
  continued: boolean;
  steers: Steer[];
  /** While its stream runs. */
  cancel: ((reason: CancelReason) => void) | undefined;
  /** Resolves once its stream is over and cleaned up (its session released). */
  settled: Promise<void>;
  resolveSettled: () => void;
  /** Steering it commits: told `response.steer.failed` if it cannot begin. */
  commits: Steer[];
}

export interface ResponsesSocketOptions extends WsConnectionOptions {
  store: ResponseStore;
  /** The upgrade: its key, its headers (session, policy, traceparent). */
  upgrade: FastifyRequest;
  policy: SessionPolicy;
  /** The connection's session (X-Session-Id); without one the connection is its own session. */
  sessionId: string | undefined;
  /** Validates a `response.create`'s body as `POST /v1/responses` does; the first problem, or undefined. */
  validate: (body: Obj) => JarvisError | undefined;
}

/**
 * One connection of the Responses API's WebSocket mode: each `response.create` a turn on the core of every
 * other API (runTurn), its events one message each; lanes; the connection's memory of its responses (for
 * `previous_response_id`, with store: false too); steering; and the connection's own life (heartbeat, idle
 * timeout, a client that stops reading, shutdown). See docs/streaming.md.
 */
export class ResponsesSocket extends WsConnection {
  readonly #opts: ResponsesSocketOptions;
  readonly #sessionId: string;
  readonly #lanes = new Map<string, Lane>();
  /** Responses by id, oldest first. */
  readonly #memory = new Map<string, Turn>();
  /** Turns from their `response.create` until their stream is over. */
  readonly #running = new Set<Turn>();
  #steerSeq = 0;
  #responses = 0;

  constructor(socket: WebSocket, opts: ResponsesSocketOptions) {
    super(socket, opts);
    this.#opts = opts;
    this.#sessionId = opts.sessionId ?? this.id;
    opts.ctx.log.info({ connection: this.id, session: this.#sessionId, policy: opts.policy, path: '/v1/responses' }, 'ws_open');
  }

  protected get inFlight(): number {
    return this.#running.size;
  }

  protected refuse(error: JarvisError): void {
    this.#error(error, undefined);
  }

  protected onEvent(msg: Obj & { type: string }, arrivedAt: number): void {
    if (msg.type === 'response.create') this.#create(msg, arrivedAt);
    else if (msg.type === 'response.steer') this.#steer(msg);
    else this.#error(new JarvisError('JARVIS_ERR_INVALID_REQUEST', `Unknown message type '${msg.type.slice(0, 64)}': this socket takes response.create and response.steer.`, { param: 'type' }), undefined);
  }

  #create(msg: Obj, arrivedAt: number): void {
    const streamId = msg.stream_id;
    if (streamId !== undefined && (typeof streamId !== 'string' || !STREAM_ID.test(streamId))) {
      this.#error(new JarvisError('JARVIS_ERR_INVALID_REQUEST', 'stream_id must be 1-64 characters of A-Z, a-z, 0-9, ".", "_" or "-".', { param: 'stream_id' }), undefined);
      return;
    }
    const lane = this.#lane(streamId);
    const body: Obj = {};
    for (const [k, v] of Object.entries(msg)) if (!ENVELOPE.has(k)) body[k] = v;
    const refusal = this.#refusalOf(msg, body);
    if (refusal) {
      this.#error(refusal, lane.streamId);
      return;
    }
    this.#begin(lane, body, arrivedAt, msg.generate === false, []);
  }

  /** Why a `response.create` is refused before it is queued, if it is. */
  #refusalOf(msg: Obj, body: Obj): JarvisError | undefined {
    if (this.isClosing) return new JarvisError('JARVIS_ERR_SHUTTING_DOWN', 'Jarvis is shutting down; open a new connection to another instance.');
    if (msg.background === true) return new JarvisError('JARVIS_ERR_UNSUPPORTED_VALUE', 'background is not supported over WebSocket.', { param: 'background' });
    if (msg.generate !== undefined && typeof msg.generate !== 'boolean') return new JarvisError('JARVIS_ERR_INVALID_REQUEST', 'generate must be a boolean.', { param: 'generate' });
    const invalid = this.#opts.validate(body);
    if (invalid) return invalid;
    const max = this.#opts.ctx.config.websocket.maxResponsesInFlight;
    if (this.#running.size >= max) {
      return new JarvisError('JARVIS_ERR_TOO_MANY_IN_FLIGHT', `This connection already has ${max} responses in flight, its limit; wait for one to finish.`);
    }
    return undefined;
  }

  #lane(streamId: string | undefined): Lane {
    const name = streamId ?? '';
    let lane = this.#lanes.get(name);
    if (!lane) {
      lane = { streamId, sessionId: streamId === undefined ? this.#sessionId : `${this.#sessionId}:${streamId}`, tail: Promise.resolve() };
      this.#lanes.set(name, lane);
    }
    return lane;
  }

  /** Queues a turn on its lane: it starts once the lane's previous turn has begun. */
  #begin(lane: Lane, body: Obj, arrivedAt: number, prepareOnly: boolean, commits: Steer[]): void {
    let resolveSettled!: () => void;
    const settled = new Promise<void>((r) => (resolveSettled = r));
    const turn: Turn = { id: undefined, lane, body, state: 'starting', incompleteReason: undefined, conversation: undefined, requiredInput: [], continued: false, steers: [], cancel: undefined, settled, resolveSettled, commits };
    this.#running.add(turn);
    lane.tail = lane.tail
      .then(() => this.#start(turn, arrivedAt, prepareOnly))
      .catch((err: unknown) => {
        // #start handles its own failures; should one escape, the lane must not stall behind it.
        this.#refused(turn, err);
        this.#finished(turn);
      });
  }

  /** Resolves once the turn's stream has begun (its session claimed, in the lane's order) or the turn is over. */
  async #start(turn: Turn, arrivedAt: number, prepareOnly: boolean): Promise<void> {
    const { ctx } = this;
    const { store, upgrade } = this.#opts;
    const owner = upgrade.apiKey?.id ?? null;
    let history: Item[];
    try {
      history = await this.#historyOf(turn);
      // The client left while the turn waited: nothing to start.
      if (this.isClosed) return this.#finished(turn);
      if (prepareOnly) return this.#prepared(turn, history);
    } catch (err) {
      this.#refused(turn, err);
      this.#finished(turn);
      return;
    }
    const { body, lane } = turn;
    const requestId = `req_${ctx.ids.hex(12)}`;
    const out: WsResponseOut = {
      send: (json) => this.#sendOf(turn, json),
      refuse: (error) => this.#refused(turn, error),
      flush: (signal) => this.flush(signal),
    };
    let begun!: () => void;
    const started = new Promise<void>((r) => (begun = r));
    try {
      const plan = responsesPlan(
        ctx,
        body,
        history,
        (response, output, input) => {
          turn.state = response.status === 'completed' ? 'completed' : response.status === 'incomplete' ? 'incomplete' : 'failed';
          turn.incompleteReason = isObject(response.incomplete_details) ? response.incomplete_details.reason : undefined;
          turn.conversation = conversationOf(history, input, response, output);
          turn.requiredInput = turn.state === 'completed' ? requiredInputOf(output) : [];
          if (body.store === false) return;
          store.put({ id: response.id as string, owner, requestId, response, conversation: turn.conversation }).catch((err: unknown) => ctx.log.warn({ request_id: requestId, err }, 'response_store_failed'));
        },
        { built: (opts) => new ResponsesWsSink(out, opts), native: (opts) => new ResponsesNativeSink(wsNativeOut(out), opts) },
      );
      const base = originOf(ctx, upgrade, requestId);
      const origin = {
        ...base,
        // The lane is the session; a sequence number belongs to one HTTP request, not to a connection's turns.
        header: (name: string) => (name === 'x-session-id' ? lane.sessionId : name === 'x-session-seq' ? undefined : base.header(name)),
      };
      const model = typeof body.model === 'string' ? body.model : undefined;
      turn.state = 'active';
      runTurn(ctx, origin, { arrivedAt, model, ...plan }, {
        watch: (cancel) => {
          turn.cancel = cancel;
          if (this.isClosed) cancel('client_disconnected');
          // The stream claims its session as soon as it runs, in this turn of the loop: the lane's next turn
          // starts after that, so the registry sees them in the lane's order.
          begun();
          return () => (turn.cancel = undefined);
        },
      })
        .catch((err: unknown) => this.#refused(turn, err))
        .finally(() => {
          begun();
          this.#finished(turn);
        });
    } catch (err) {
      this.#refused(turn, err);
      this.#finished(turn);
      return;
    }
    await started;
  }

  /**
   * The conversation a turn continues: a response of this connection (waiting for it if it is still running, or
   * superseding it, in its own lane, under the default policy), else a stored one, as over HTTP.
   */
  async #historyOf(turn: Turn): Promise<Item[]> {
    const previous = turn.body.previous_response_id;
    if (typeof previous !== 'string') return [];
    const mine = this.#memory.get(previous);
    if (mine) {
      if (mine.state === 'starting' || mine.state === 'active') {
        if (mine.lane === turn.lane && this.#opts.policy === 'reject') throw activeResponse();
        if (mine.lane === turn.lane && this.#opts.policy === 'cancel-previous') mine.cancel?.('superseded');
        await mine.settled;
      }
      if (mine.conversation) {
        mine.continued = true;
        // Steering a response that waited for tool output held: it goes in with that output.
        const held = mine.steers.splice(0);
        if (held.length > 0) turn.body = { ...turn.body, input: withSteering(inputItems(turn.body.input), held.flatMap((s) => s.items)) };
        return mine.conversation;
      }
    }
    const stored = await this.#opts.store.get(previous, this.#opts.upgrade.apiKey?.id ?? null);
    if (!stored) throw new JarvisError('JARVIS_ERR_PREVIOUS_RESPONSE_NOT_FOUND', `Previous response with id '${previous}' not found.`, { param: 'previous_response_id' });
    return stored.conversation;
  }

  /** `generate: false`: the turn is remembered (and stored) as a response without output, and no model is asked. */
  #prepared(turn: Turn, history: Item[]): void {
    const { ctx } = this;
    const { upgrade, store } = this.#opts;
    const { model } = ctx.providers.resolve(typeof turn.body.model === 'string' ? turn.body.model : undefined);
    checkModelAllowed(upgrade.apiKey, model);
    const input = inputItems(turn.body.input);
    const builder = new ResponseBuilder({ id: `resp_${ctx.ids.hex(12)}`, created_at: Math.floor(Date.now() / 1000), model, request: turn.body });
    const events = [...builder.start(), ...builder.parts([{ type: 'usage', usage: { input: 0, output: 0 } }]), ...builder.end()];
    for (const e of events) this.#sendOf(turn, JSON.stringify(e));
    const response = builder.response();
    turn.state = 'completed';
    turn.conversation = conversationOf(history, input, response, []);
    if (turn.body.store !== false) {
      store.put({ id: response.id as string, owner: upgrade.apiKey?.id ?? null, response, conversation: turn.conversation }).catch((err: unknown) => ctx.log.warn({ err }, 'response_store_failed'));
    }
    this.#finished(turn);
  }

  /** A turn's event out: the first, `response.created`, names the response, which the connection remembers from then on. */
  #sendOf(turn: Turn, json: string): boolean {
    if (turn.id === undefined && json.includes('"response.created"')) {
      const event = JSON.parse(json) as Obj;
      if (event.type === 'response.created' && isObject(event.response) && typeof event.response.id === 'string') this.#remember(turn, event.response.id);
    }
    return this.#send(json, turn.lane.streamId);
  }

  #remember(turn: Turn, id: string): void {
    turn.id = id;
    this.#responses++;
    this.#memory.set(id, turn);
    if (this.#memory.size <= REMEMBERED) return;
    for (const [old, t] of this.#memory) {
      if (this.#memory.size <= REMEMBERED) break;
      if (!this.#running.has(t)) this.#memory.delete(old);
    }
  }

  /** A turn refused before anything of it was sent: the `error` event (or, for a successor, its steering returned). */
  #refused(turn: Turn, err: unknown): void {
    const error = err instanceof JarvisError ? (err.jarvisCode === 'JARVIS_ERR_SESSION_BUSY' ? activeResponse() : err) : internal(err, this.ctx);
    if (turn.commits.length > 0) {
      for (const s of turn.commits.splice(0)) this.#steerFailed(s.input, turn.body.previous_response_id as string, 'successor_creation_failed', error.message, turn.lane.streamId, s.id);
      return;
    }
    this.#error(error, turn.lane.streamId);
  }

  #finished(turn: Turn): void {
    if (!this.#running.delete(turn)) return;
    if (turn.state === 'starting' || turn.state === 'active') turn.state = 'failed';
    turn.resolveSettled();
    this.#afterSteering(turn);
    this.settled();
  }

  /**
   * A steered turn is over: its successor begins at once with the steering input (the commit point is its
   * `response.created`); or, when the turn waits for the client's tool output, the input stays queued
   * (`response.steer.pending`) for the request that brings that output; or, cut short by something else, it fails.
   */
  #afterSteering(turn: Turn): void {
    if (turn.steers.length === 0 || this.isClosed) return;
    const previous = turn.id!;
    if (turn.state === 'completed' && turn.requiredInput.length > 0) {
      for (const s of turn.steers) this.#pending(turn, s);
      return;
    }
    const steers = turn.steers.splice(0);
    if (turn.state === 'failed' || (turn.state === 'incomplete' && turn.incompleteReason === 'interrupted') || this.isClosing) {
      for (const s of steers) this.#steerFailed(s.input, previous, 'response_not_active', 'The response ended before it could take the steering input.', turn.lane.streamId, s.id);
      return;
    }
    turn.continued = true;
    const { input: _, ...settings } = turn.body;
    const body = { ...settings, previous_response_id: previous, input: steers.flatMap((s) => s.items) };
    this.#begin(turn.lane, body, performance.timeOrigin + performance.now(), false, steers);
  }

  #steer(msg: Obj): void {
    const previous = msg.previous_response_id;
    const input = msg.input;
    const unknown = Object.keys(msg).find((k) => k !== 'type' && k !== 'previous_response_id' && k !== 'input');
    if (typeof previous !== 'string' || previous === '') {
      this.#steerFailed(input, previous, 'invalid_input', 'previous_response_id must name the response to steer.', undefined);
      return;
    }
    const turn = this.#memory.get(previous);
    const items = unknown === undefined ? steeringItems(input) : `response.steer takes only type, previous_response_id and input, not ${unknown}.`;
    if (typeof items === 'string') {
      this.#steerFailed(input, previous, 'invalid_input', items, turn?.lane.streamId);
      return;
    }
    if (!turn) {
      this.#steerFailed(input, previous, 'response_not_found', `No response with id '${previous}' on this connection.`, undefined);
      return;
    }
    const streamId = turn.lane.streamId;
    const waitsForTools = turn.state === 'completed' && !turn.continued && turn.requiredInput.length > 0;
    if (turn.state !== 'active' && !waitsForTools) {
      // It ended by itself (completed, or at its token limit) and nothing continued it yet: already completed.
      const ended = turn.state === 'completed' || (turn.state === 'incomplete' && turn.incompleteReason !== 'interrupted' && turn.incompleteReason !== 'steered');
      if (ended && !turn.continued) this.#steerFailed(input, previous, 'response_already_completed', 'The response has completed.', streamId);
      else this.#steerFailed(input, previous, 'response_not_active', 'The response no longer takes steering input.', streamId);
      return;
    }
    if (turn.steers.length >= MAX_PENDING_STEERS) {
      this.#steerFailed(input, previous, 'too_many_pending_steers', `The response already holds ${MAX_PENDING_STEERS} steering inputs.`, streamId);
      return;
    }
    const steer: Steer = { id: `steer_${this.ctx.ids.hex(12)}`, input, items, pending: false };
    turn.steers.push(steer);
    this.#sendEvent({ type: 'response.steer.accepted', sequence_number: this.#steerSeq++, steer: { id: steer.id, previous_response_id: previous } }, streamId);
    if (waitsForTools) this.#pending(turn, steer);
    // Under policy queue the response finishes first; otherwise it ends here, at what was delivered.
    else if (this.#opts.policy !== 'queue') turn.cancel?.('steered');
  }

  #pending(turn: Turn, steer: Steer): void {
    if (steer.pending) return;
    steer.pending = true;
    this.#sendEvent(
      { type: 'response.steer.pending', sequence_number: this.#steerSeq++, reason: 'waiting_for_required_input', required_input: turn.requiredInput, steer: { id: steer.id, previous_response_id: turn.id } },
      turn.lane.streamId,
    );
  }

  #steerFailed(input: unknown, previous: unknown, code: string, message: string, streamId: string | undefined, id?: string): void {
    const steer = { ...(id ? { id } : {}), previous_response_id: typeof previous === 'string' ? previous : '', input: input ?? null };
    this.#sendEvent({ type: 'response.steer.failed', sequence_number: this.#steerSeq++, error: { type: 'invalid_request_error', code, message }, steer }, streamId);
  }

  /** An error of the connection or of a response that never began: the API's `error` event, with its HTTP status. */
  #error(error: JarvisError, streamId: string | undefined): void {
    const body = error.toJSON().error;
    this.#sendEvent({ type: 'error', status: error.status, error: { type: body.type, code: body.code, message: body.message, param: body.param } }, streamId);
  }

  #sendEvent(event: Obj, streamId: string | undefined): void {
    this.#send(JSON.stringify(event), streamId);
  }

  /** One message; `stream_id` is added to an event of a lane that has one. */
  #send(json: string, streamId: string | undefined): boolean {
    const end = json.lastIndexOf('}');
    return this.send(streamId === undefined || end < 0 ? json : `${json.slice(0, end)},"stream_id":${JSON.stringify(streamId)}}`);
  }

  protected cancelAll(reason: CancelReason): void {
    for (const turn of this.#running) turn.cancel?.(reason);
  }

  protected onClosed(code: number): void {
    this.ctx.log.info({ connection: this.id, code, responses: this.#responses }, 'ws_close');
  }
}

function activeResponse(): JarvisError {
  return new JarvisError('JARVIS_ERR_ACTIVE_RESPONSE', 'This lane already has an active response in progress (X-Session-Policy: reject).');
}

function internal(err: unknown, ctx: JarvisContext): JarvisError {
  ctx.log.warn({ err }, 'stream_error');
  return new JarvisError('JARVIS_ERR_INTERNAL', 'internal error', { cause: err });
}
