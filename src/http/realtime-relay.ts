import type { FastifyRequest } from 'fastify';
import { WebSocket, type RawData } from 'ws';
import type { JarvisContext } from '../context.js';
import { JarvisError } from '../errors.js';
import type { SubscriberSlot } from '../events/subscriber-slots.js';
import type { StreamMeta } from '../events/types.js';
import type { StreamEnding } from '../streams/chat-stream.js';
import { relayedOutcome } from '../ledger/record.js';
import type { Provider } from '../providers/provider.js';

/** A frame's event type, read from its start without parsing it (an audio delta is large and never parsed). */
const TYPE = /"type"\s*:\s*"([\w.]+)"/;
/** The events a relay reads for the session's chat.* events and its log; every other frame passes unread. */
const FOLLOWED = new Set(['response.created', 'response.output_text.delta', 'response.output_audio_transcript.delta', 'response.done']);

/** Close codes a peer may not send (RFC 6455 §7.4.1): what the other side gets instead. */
function sendable(code: number): number {
  if (code === 1005) return 1000;
  if (code === 1006 || code === 1015) return 1011;
  return code;
}

/** An upstream socket opened for a client's upgrade, with what it sent before the client's side was ready. */
export interface OpenedUpstream {
  socket: WebSocket;
  held: { data: RawData; isBinary: boolean }[];
  /** Detaches the listener that held frames (the relay takes over). */
  release(): void;
}

/**
 * Opens the upstream's Realtime socket for a client's upgrade, before the client's is accepted: a refused upstream
 * upgrade is then the client's refused upgrade, with the same status (401 and 403 are Jarvis's key, not the
 * client's: 502 upstream_auth_failed, as on every route).
 */
export function openUpstream(target: NonNullable<Provider['realtime']>, model: string, offered: string | undefined, timeoutMs: number): Promise<OpenedUpstream> {
  const url = `${target.url}?model=${encodeURIComponent(model)}`;
  // The client's own key (a header, or a subprotocol) never reaches the upstream: Jarvis's does.
  const protocols = offered?.split(',').map((p) => p.trim()).includes('realtime') ? ['realtime'] : [];
  const socket = new WebSocket(url, protocols, { headers: target.headers, handshakeTimeout: timeoutMs, perMessageDeflate: false, maxPayload: 0 });
  // Errors are read below while it opens, and by the relay after; an error nobody reads (a socket cut off while it
  // was still connecting) would otherwise bring the process down.
  socket.on('error', () => {});
  const held: OpenedUpstream['held'] = [];
  const hold = (data: RawData, isBinary: boolean) => held.push({ data, isBinary });
  socket.on('message', hold);
  return new Promise((resolve, reject) => {
    const cleanup = () => {
      socket.off('open', onOpen);
      socket.off('unexpected-response', onRefused);
      socket.off('error', onError);
    };
    const onOpen = () => {
      cleanup();
      resolve({ socket, held, release: () => socket.off('message', hold) });
    };
    const onRefused = (_req: unknown, res: import('node:http').IncomingMessage) => {
      cleanup();
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body = (body + chunk).slice(0, 64 * 1024)));
      res.on('end', () => {
        socket.terminate();
        reject(refusal(res.statusCode ?? 502, body));
      });
      res.on('error', () => reject(refusal(502, '')));
    };
    const onError = (err: Error) => {
      cleanup();
      socket.terminate();
      reject(new JarvisError('JARVIS_ERR_UPSTREAM_UNREACHABLE', `The upstream's Realtime socket could not be opened: ${err.message}`, { cause: err }));
    };
    socket.once('open', onOpen);
    socket.once('unexpected-response', onRefused);
    socket.once('error', onError);
  });
}

function refusal(status: number, body: string): JarvisError {
  let parsed: Record<string, unknown> | undefined;
  try {
    const json: unknown = JSON.parse(body);
    if (json && typeof json === 'object' && 'error' in json) parsed = json as Record<string, unknown>;
  } catch {
    parsed = undefined;
  }
  if (status === 401 || status === 403) return new JarvisError('JARVIS_ERR_UPSTREAM_AUTH', `The upstream refused Jarvis's key for its Realtime socket (${status}).`);
  const message = parsed && typeof (parsed.error as Record<string, unknown>).message === 'string' ? ((parsed.error as Record<string, unknown>).message as string) : `The upstream refused the Realtime socket (${status}).`;
  return new JarvisError('JARVIS_ERR_UPSTREAM_STATUS', message, { status, ...(parsed ? { body: parsed } : {}) });
}

export interface RealtimeRelayOptions {
  ctx: JarvisContext;
  upgrade: FastifyRequest;
  slot: SubscriberSlot;
  model: string;
  sessionId: string | undefined;
  upstream: OpenedUpstream;
  onClosed?: () => void;
  /** The upstream relayed to: what each response's ledger line names. */
  served?: { name: string; provider: string } | undefined;
}

/**
 * The Realtime API relayed to an upstream that speaks it: every frame passes both ways unchanged, audio included;
 * either side closing closes the other with the same code. Text and transcript deltas are published as the
 * session's chat.* events (each response a stream of events), and the connection's life is logged: stream_start,
 * realtime_response for each response, stream_end with cleanup_done=true.
 */
export class RealtimeRelay {
  readonly id: string;
  readonly closed: Promise<void>;
  readonly #opts: RealtimeRelayOptions;
  readonly #client: WebSocket;
  readonly #upstream: WebSocket;
  readonly #sessionId: string;
  readonly #trace: string;
  readonly #startedAt = performance.now();
  /** Responses in progress, by id: their events' identity. */
  readonly #responses = new Map<string, StreamMeta>();
  /** Each response's text (or transcript) characters, and when it began: its ledger line. */
  readonly #said = new Map<string, { chars: number; deltas: number; startedAt: number }>();
  #count = 0;
  #frames = { in: 0, out: 0 };
  #done = false;

  constructor(client: WebSocket, opts: RealtimeRelayOptions) {
    this.#opts = opts;
    this.#client = client;
    this.#upstream = opts.upstream.socket;
    const { ctx } = opts;
    this.id = `ws_${ctx.ids.hex(8)}`;
    this.#sessionId = opts.sessionId ?? this.id;
    this.#trace = ctx.ids.hex(6);
    ctx.log.info({ trace: this.#trace, stream_id: this.id, session: this.#sessionId, model: opts.model, policy: 'relay' }, 'stream_start');
    let resolve!: () => void;
    this.closed = new Promise<void>((r) => (resolve = r));
    this.#resolveClosed = resolve;
    opts.upstream.release();
    for (const f of opts.upstream.held) this.#fromUpstream(f.data, f.isBinary);
    this.#upstream.on('message', this.#fromUpstream);
    client.on('message', this.#fromClient);
    client.on('error', () => {});
    client.once('close', this.#clientClosed);
    this.#upstream.once('close', this.#upstreamClosed);
  }

  readonly #resolveClosed: () => void;

  /** Shutdown: a relayed conversation has no answer of Jarvis's to wait for; both sides close with 1001. */
  drain(): void {
    if (this.#client.readyState === WebSocket.OPEN) this.#client.close(1001, 'server_shutting_down');
    if (this.#upstream.readyState === WebSocket.OPEN) this.#upstream.close(1001, 'going away');
  }

  readonly #fromClient = (data: RawData, isBinary: boolean) => {
    this.#frames.in++;
    if (this.#upstream.readyState === WebSocket.OPEN) this.#upstream.send(data, { binary: isBinary });
  };

  readonly #fromUpstream = (data: RawData, isBinary: boolean) => {
    this.#frames.out++;
    if (this.#client.readyState === WebSocket.OPEN) this.#client.send(data, { binary: isBinary });
    if (!isBinary) this.#follow(data);
  };

  /** Reads the few events the session's chat.* events and the log need; the frame has gone out already. */
  #follow(data: RawData): void {
    // The type from the frame's first bytes: an audio delta (kilobytes of base64) is never decoded whole.
    const head = Buffer.isBuffer(data) ? data.toString('utf8', 0, 200) : String(data).slice(0, 200);
    const type = TYPE.exec(head)?.[1];
    if (type === undefined || !FOLLOWED.has(type)) return;
    let event: Record<string, unknown>;
    try {
      event = JSON.parse(String(data)) as Record<string, unknown>;
    } catch {
      return;
    }
    const { ctx } = this.#opts;
    if (type === 'response.created') {
      const id = responseIdOf(event);
      if (!id) return;
      const meta: StreamMeta = { request_id: id, session_id: this.#sessionId, trace: this.#trace, owner: this.#opts.upgrade.apiKey?.id ?? null };
      this.#responses.set(id, meta);
      this.#said.set(id, { chars: 0, deltas: 0, startedAt: performance.now() });
      this.#count++;
      ctx.bus.publish(meta, 'chat.start', { model: this.#opts.model });
      return;
    }
    if (type === 'response.done') {
      const id = responseIdOf(event);
      const meta = id ? this.#responses.get(id) : undefined;
      if (!meta) return;
      this.#responses.delete(id!);
      this.#ended(meta, event.response as Record<string, unknown>);
      return;
    }
    const meta = typeof event.response_id === 'string' ? this.#responses.get(event.response_id) : undefined;
    if (meta && typeof event.delta === 'string' && event.delta !== '') {
      ctx.batcher.add(meta, event.delta);
      const said = this.#said.get(meta.request_id);
      if (said) {
        said.chars += event.delta.length;
        said.deltas++;
      }
    }
  }

  #ended(meta: StreamMeta, response: Record<string, unknown> | undefined): void {
    const { ctx } = this.#opts;
    ctx.batcher.end(meta.request_id);
    const status = typeof response?.status === 'string' ? response.status : 'completed';
    const usage = response?.usage as Record<string, unknown> | undefined;
    ctx.log.info({ trace: meta.trace, stream_id: this.id, response_id: meta.request_id, status, ...(usage ? { input_tokens: usage.input_tokens, output_tokens: usage.output_tokens } : {}) }, 'realtime_response');
    if (status === 'cancelled') ctx.bus.publish(meta, 'chat.cancelled', { reason: 'client_cancelled' });
    else if (status === 'failed') ctx.bus.publish(meta, 'chat.error', { code: 'upstream_error', message: 'The upstream response failed.', status: 502 });
    else ctx.bus.publish(meta, 'chat.end', { finish_reason: status === 'incomplete' ? 'length' : 'stop', ...(usage ? { usage: { input_tokens: usage.input_tokens, output_tokens: usage.output_tokens, estimated: false } } : {}) });
    ctx.batcher.cleanupRequestBuffers(meta.request_id);
    this.#bill(meta, status, usage);
  }

  /** Each relayed response is a ledger line: the upstream's own usage (audio tokens included in its counts). */
  #bill(meta: StreamMeta, status: string, usage: Record<string, unknown> | undefined): void {
    const said = this.#said.get(meta.request_id);
    this.#said.delete(meta.request_id);
    const { ctx } = this.#opts;
    if (!ctx.ledger) return;
    const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
    const details = (usage?.input_token_details ?? {}) as Record<string, unknown>;
    const reported = usage !== undefined && typeof usage.output_tokens === 'number';
    const text = { tokens: said?.deltas ?? 0, chars: said?.chars ?? 0 };
    const durationMs = performance.now() - (said?.startedAt ?? this.#startedAt);
    const ending: StreamEnding =
      status === 'cancelled'
        ? { kind: 'cancelled', reason: 'client_cancelled' }
        : status === 'failed'
          ? { kind: 'error', error: new JarvisError('JARVIS_ERR_UPSTREAM_REPORTED', 'The upstream response failed.') }
          : { kind: 'end', finishReason: status === 'incomplete' ? 'length' : 'stop' };
    const outcome = relayedOutcome(ending, {
      usage: reported ? { input: num(usage.input_tokens), output: num(usage.output_tokens), cacheRead: num(details.cached_tokens), estimated: false } : undefined,
      text,
      durationMs,
      reached: true,
    });
    ctx.ledger.turn({
      requestId: meta.request_id,
      key: meta.owner,
      session: this.#opts.sessionId ?? null,
      api: 'realtime',
      model: this.#opts.model,
      upstream: this.#opts.served,
      outcome,
      inputEstimate: 0,
      attempts: [],
    });
  }

  readonly #clientClosed = (code: number, reason: Buffer) => {
    // The client left: the upstream socket closes now (and is cut off if it does not answer promptly).
    if (this.#upstream.readyState === WebSocket.OPEN || this.#upstream.readyState === WebSocket.CONNECTING) {
      this.#upstream.close(sendable(code), reason.toString().slice(0, 120));
      setTimeout(() => this.#upstream.terminate(), 1000).unref();
    }
    this.#finish(code);
  };

  readonly #upstreamClosed = (code: number, reason: Buffer) => {
    // The upstream ended the conversation: the client hears it with the same code and reason.
    if (this.#client.readyState === WebSocket.OPEN) {
      this.#client.close(sendable(code), reason.toString().slice(0, 120));
      setTimeout(() => this.#client.terminate(), 1000).unref();
    }
    this.#finish(code);
  };

  #finish(code: number): void {
    if (this.#done) return;
    this.#done = true;
    const { ctx } = this.#opts;
    this.#upstream.off('message', this.#fromUpstream);
    this.#client.off('message', this.#fromClient);
    for (const meta of this.#responses.values()) {
      ctx.bus.publish(meta, 'chat.cancelled', { reason: 'client_disconnected' });
      ctx.batcher.cleanupRequestBuffers(meta.request_id);
    }
    this.#responses.clear();
    this.#opts.slot.release();
    ctx.log.info({ trace: this.#trace, cleanup_done: true, stream_id: this.id, outcome: 'end', duration_ms: Math.round(performance.now() - this.#startedAt), code, responses: this.#count, frames_in: this.#frames.in, frames_out: this.#frames.out }, 'stream_end');
    this.#opts.onClosed?.();
    this.#resolveClosed();
  }
}

function responseIdOf(event: Record<string, unknown>): string | undefined {
  const r = event.response as Record<string, unknown> | undefined;
  return r && typeof r.id === 'string' ? r.id : undefined;
}
