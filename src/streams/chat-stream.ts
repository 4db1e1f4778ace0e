import { channel } from 'node:diagnostics_channel';
import type { Logger } from 'pino';
import type { SessionPolicy } from '../config.js';
import { JarvisError, StreamCancelled, cancelReasonOf, type CancelReason } from '../errors.js';
import type { EventBus } from '../events/event-bus.js';
import type { TokenBatcher } from '../events/token-batcher.js';
import type { StreamMeta } from '../events/types.js';
import { ContentExcerpt, excerpt } from '../observability/content-excerpt.js';
import { chatUsageChunk } from '../apis/openai-chat/encoder.js';
import { transcoderFor } from '../apis/transcoders.js';
import { estimatedInputTokens, lastUserText, type ChatChunk, type ChatRequest, type Delta, type Provider, type StreamOptions, type TokenUsage } from '../providers/provider.js';
import { partsOf } from './parts.js';
import type { Transcoder } from './transcode.js';
import type { SessionLease, SessionRegistry } from '../sessions/session-registry.js';
import type { LiveStreams } from './live-streams.js';
import type { StreamSink } from './stream-sink.js';
import type { AttemptListener } from './attempts.js';

/** Hooks the metrics module implements; the stream calls them and knows nothing of Prometheus. */
export interface StreamObserver {
  started(): void;
  /** `totalMs` from stream_start to the first token written; `providerMs` the provider's own share of it. */
  firstToken(totalMs: number, providerMs: number): void;
  ended(outcome: StreamOutcome['kind'], durationMs: number, tokens: number, reason?: string): void;
}

/** Token counts of an answer: as its upstream reported them, or estimated by Jarvis (`estimated`) when it did not. */
export type AnswerUsage = TokenUsage & { estimated: boolean };

export interface StreamDeps {
  sessions: SessionRegistry;
  batcher: TokenBatcher;
  bus: EventBus;
  live: LiveStreams;
  log: Logger;
  observer?: StreamObserver | undefined;
  /** Put the prompt and the answer (cut short) into stream_start and stream_end. Off unless the operator opts in. */
  logContent?: boolean | undefined;
}

export interface StreamSpec {
  meta: StreamMeta;
  /** The session as the registry keys it (namespaced by API key), distinct from the client's session id. */
  sessionKey: string;
  policy: SessionPolicy;
  /** When the request arrived (epoch ms), and its X-Session-Seq: the order its session keeps (sessions/). */
  arrivedAt: number;
  seq?: number | undefined;
  provider: Provider;
  request: ChatRequest;
  /** Where the answer comes from when it is not `provider.stream(request)` (a native Responses upstream). */
  upstream?: ((opts: StreamOptions) => AsyncIterable<Delta[]>) | undefined;
  /** Told of a route's attempts (the ledger bills each, tracing gives each a span). */
  attempts?: AttemptListener | undefined;
}

/** How a stream ended, apart from what every outcome carries. */
export type StreamEnding =
  | { kind: 'end'; finishReason: string }
  | { kind: 'cancelled'; reason: CancelReason }
  | { kind: 'error'; error: JarvisError }
  | { kind: 'rejected'; error: JarvisError };

/**
 * How a stream ended, with what it cost (usage: none for a stream refused before it reached an upstream), which
 * upstream and model served it (a route's target; undefined when the provider is not a route), and its timings.
 */
export type StreamOutcome = StreamEnding & {
  usage: AnswerUsage | undefined;
  served: Served | undefined;
  timings: { firstTokenMs: number | undefined; durationMs: number };
  /** Answer text the upstream sent (deltas, characters), and what of it reached the client. */
  generated: { tokens: number; chars: number };
  delivered: { tokens: number; chars: number };
  /** The answer began: something came from the upstream (an answer that never began cost no output). */
  reached: boolean;
  /** The answer's text, cut short: only with logContent (tracing puts it in the span as the log does). */
  completion?: string | undefined;
};

export type Served = { upstream: string; model: string };

/**
 * The life of a stream, each state reached only from the one before it: `acquiring` its session (which may
 * refuse it, or cancel it while it waits), `streaming` from its upstream, then one of the endings.
 */
export type StreamState = 'created' | 'acquiring' | 'streaming' | 'ended' | 'cancelled' | 'failed' | 'rejected';

const NEXT: Record<StreamState, readonly StreamState[]> = {
  created: ['acquiring'],
  acquiring: ['streaming', 'rejected', 'cancelled', 'failed'],
  streaming: ['ended', 'cancelled', 'failed'],
  ended: [],
  cancelled: [],
  failed: [],
  rejected: [],
};

const STATE_OF: Record<StreamEnding['kind'], StreamState> = { end: 'ended', cancelled: 'cancelled', error: 'failed', rejected: 'rejected' };

/** Where every stream's outcome is published, off the hot path, for whoever subscribes (a usage ledger, tracing). */
export const STREAM_END_CHANNEL = 'jarvis:stream:end';

function asJarvisError(err: unknown): JarvisError {
  if (err instanceof JarvisError) return err;
  return new JarvisError('JARVIS_ERR_INTERNAL', 'internal error while streaming', { cause: err });
}

/**
 * The life of one stream as an explicit state machine (StreamState): stream_start, the session's barge-in
 * policy, relaying deltas to the client (transcoded into its wire when the upstream speaks another) and to the
 * batcher, and a `finally` that cleans up on every exit path before the session is released. Its outcome is
 * published on STREAM_END_CHANNEL.
 */
export class ChatStream {
  readonly requestId: string;
  readonly #controller = new AbortController();
  readonly #deps: StreamDeps;
  readonly #spec: StreamSpec;
  readonly #sink: StreamSink;
  #state: StreamState = 'created';
  #lease: SessionLease | undefined;
  /** chat.start went out: the stream's final event must follow. */
  #published = false;
  #generated = 0;
  /** Answer text as it came from the upstream, before the client got it: a batch cut short by a barge-in was generated all the same. */
  #received = { tokens: 0, chars: 0 };
  #reached = false;
  #startedAt = 0;
  #firstTokenMs: number | undefined;
  #usage: TokenUsage | undefined;
  #served: Served | undefined;
  #finishReason = 'stop';
  /** Created on the first delta of another wire than the client's (an answer from an upstream of another API). */
  #transcoder: Transcoder | undefined;
  /** The last parsed chunk a Chat Completions client got as the upstream sent it: what an estimated usage chunk is named after. */
  #lastChatChunk: ChatChunk | undefined;
  /** Only with logContent: conversations stay out of the logs by default. */
  readonly #completion: ContentExcerpt | undefined;

  constructor(deps: StreamDeps, spec: StreamSpec, sink: StreamSink) {
    this.#deps = deps;
    this.#spec = spec;
    this.#sink = sink;
    this.requestId = spec.meta.request_id;
    this.#completion = deps.logContent ? new ContentExcerpt() : undefined;
  }

  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  get state(): StreamState {
    return this.#state;
  }

  /** Idempotent. Logged here, synchronously, so the log shows the cancellation before the cleanup it causes. */
  cancel(reason: CancelReason): void {
    if (this.#controller.signal.aborted) return;
    this.#deps.log.info({ trace: this.#spec.meta.trace, reason, request_id: this.requestId }, 'stream_cancelled');
    this.#controller.abort(new StreamCancelled(reason));
  }

  #to(next: StreamState): void {
    if (!NEXT[this.#state].includes(next)) throw new Error(`stream ${this.requestId}: ${this.#state} -> ${next} is not a transition`);
    this.#state = next;
  }

  async run(): Promise<StreamOutcome> {
    this.#begin();
    let ending: StreamEnding | undefined;
    let outcome: StreamOutcome;
    try {
      ending = await this.#live();
    } catch (err) {
      ending = this.#stopped(err);
    } finally {
      // Cleanup runs whatever happened above, even if telling the sink threw.
      ending ??= { kind: 'error', error: asJarvisError(undefined) };
      this.#to(STATE_OF[ending.kind]);
      outcome = this.#cleanup(ending);
    }
    return outcome;
  }

  #begin(): void {
    const { meta, request } = this.#spec;
    this.#to('acquiring');
    this.#startedAt = performance.now();
    this.#deps.live.add(this);
    this.#deps.observer?.started();
    this.#deps.log.info(
      {
        trace: meta.trace,
        stream_id: meta.request_id,
        session: meta.session_id,
        model: request.model,
        policy: this.#spec.policy,
        ...(this.#completion ? { prompt: excerpt(lastUserText(request.messages)) } : {}),
      },
      'stream_start',
    );
  }

  /** Acquiring the session, then streaming: how it ended, unless it threw (cancelled, failed). */
  async #live(): Promise<StreamEnding> {
    const { sessions, batcher, bus, log, observer } = this.#deps;
    const { meta, provider, request } = this.#spec;
    const signal = this.#controller.signal;
    try {
      this.#lease = await sessions.acquire({
        sessionKey: this.#spec.sessionKey,
        sessionId: meta.session_id,
        requestId: meta.request_id,
        trace: meta.trace,
        policy: this.#spec.policy,
        arrivedAt: this.#spec.arrivedAt,
        seq: this.#spec.seq,
        cancel: (reason) => this.cancel(reason),
        signal,
        log,
      });
    } catch (err) {
      if (cancelReasonOf(signal)) throw err;
      const error = asJarvisError(err);
      log.info({ trace: meta.trace, code: error.code }, 'stream_rejected');
      this.#sink.fail(error);
      return { kind: 'rejected', error };
    }

    // A client that sent its request and left at once is gone before anything reaches the upstream: its
    // connection's end is read by the loop's next poll (not the one that read the request), so the upstream
    // is called only after that.
    await afterNextPoll();
    signal.throwIfAborted();
    this.#to('streaming');

    bus.publish(meta, 'chat.start', { model: request.model });
    this.#published = true;
    const providerStarted = performance.now();
    const opts: StreamOptions = {
      signal,
      served: (target: Served) => {
        this.#served = target;
        this.#sink.served?.(target);
      },
      attempts: this.#spec.attempts,
    };
    const received = this.#received;
    for await (const batch of this.#spec.upstream?.(opts) ?? provider.stream(request, opts)) {
      this.#reached = true;
      for (const d of batch) {
        if (d.text !== '') {
          received.tokens++;
          received.chars += d.text.length;
        }
      }
      for (const d of batch) {
        // The client may be gone, or the session superseded: no more of the batch goes out.
        signal.throwIfAborted();
        if (d.text !== '' && this.#generated === 0) {
          const received = performance.now();
          this.#deliver(d);
          this.#firstTokenMs = performance.now() - this.#startedAt;
          observer?.firstToken(this.#firstTokenMs, received - providerStarted);
        } else {
          this.#deliver(d);
        }
        // Only parsed deltas can report usage: the token path (unparsed) never looks. A stream says it in a chunk of
        // its own (Chat Completions), or on the piece that ends it (a Responses stream's last event).
        if (d.chunk !== undefined && (d.parts !== undefined || d.chunk.usage || d.finish !== undefined)) {
          for (const p of partsOf(d)) if (p.type === 'usage') this.#usage = p.usage;
        }
        if (d.text !== '') {
          this.#generated++;
          batcher.add(meta, d.text);
          this.#completion?.add(d.text);
        }
        if (d.finish !== undefined) this.#finishReason = d.finish;
      }
      // A client that is behind holds the stream here, so the upstream waits too instead of Jarvis buffering for it.
      const behind = this.#sink.flush(signal);
      if (behind) await behind;
    }
    // A provider that returns normally after an abort still counts as cancelled.
    signal.throwIfAborted();
    if (!this.#usage) this.#estimateUsage();
    if (this.#transcoder) for (const t of this.#transcoder.end()) this.#sink.chunk(t);
    batcher.end(meta.request_id);
    this.#sink.end();
    return { kind: 'end', finishReason: this.#finishReason };
  }

  /** A delta to the client: as it is when the client speaks its wire, else transcoded into the client's. */
  #deliver(d: Delta): void {
    if (d.wire === this.#sink.wire) {
      if (d.chunk !== undefined && d.wire === 'openai.chat') this.#lastChatChunk = d.chunk;
      return this.#sink.chunk(d);
    }
    if (this.#sink.fromParts) return this.#sink.chunk(d);
    const { request } = this.#spec;
    this.#transcoder ??= transcoderFor(this.#sink.wire, { id: request.completionId, model: request.model, created: request.created, inputTokens: estimatedInputTokens(request) });
    for (const t of this.#transcoder.delta(d)) this.#sink.chunk(t);
  }

  /**
   * The upstream reported no usage: the client's API reports some all the same (a Messages or Responses answer
   * always does), counted by Jarvis and marked `estimated`. A client's own wire relayed as it came gets it in that
   * wire when it is Chat Completions' (the chunk a client that asked include_usage waits for).
   */
  #estimateUsage(): void {
    const { request } = this.#spec;
    const usage: TokenUsage = { input: estimatedInputTokens(request), output: this.#generated, estimated: true };
    this.#usage = usage;
    const estimate: Delta = { wire: this.#sink.wire, data: '', chunk: {}, text: '', finish: undefined, parts: [{ type: 'usage', usage }] };
    if (this.#transcoder) {
      for (const t of this.#transcoder.delta(estimate)) this.#sink.chunk(t);
    } else if (this.#sink.fromParts) {
      this.#sink.chunk(estimate);
    } else if (this.#sink.wire === 'openai.chat') {
      const top = this.#lastChatChunk;
      this.#sink.chunk(
        chatUsageChunk(
          {
            id: typeof top?.id === 'string' ? top.id : request.completionId,
            object: 'chat.completion.chunk',
            created: typeof top?.created === 'number' ? top.created : request.created,
            model: typeof top?.model === 'string' ? top.model : request.model,
          },
          usage,
        ),
      );
    }
  }

  /** The stream stopped by a throw: cancelled (its signal says why) or failed. */
  #stopped(err: unknown): StreamEnding {
    const { log, batcher } = this.#deps;
    const { meta } = this.#spec;
    const reason = cancelReasonOf(this.#controller.signal);
    if (reason) {
      this.#sink.cancelled(reason);
      return { kind: 'cancelled', reason };
    }
    const error = asJarvisError(err);
    if (error.status >= 500) log.warn({ trace: meta.trace, request_id: meta.request_id, code: error.code, err }, 'stream_error');
    else log.info({ trace: meta.trace, request_id: meta.request_id, code: error.code, status: error.status }, 'stream_error');
    batcher.end(meta.request_id);
    this.#sink.fail(error);
    return { kind: 'error', error };
  }

  /** Every exit path ends here: buffers cleaned, the final event, stream_end, and last the session released. */
  #cleanup(ending: StreamEnding): StreamOutcome {
    const { batcher, live, log, observer } = this.#deps;
    const { meta, request } = this.#spec;
    const durationMs = performance.now() - this.#startedAt;
    const outcome: StreamOutcome = {
      ...ending,
      usage: this.#usage ? { estimated: false, ...this.#usage } : this.#published ? { input: estimatedInputTokens(request), output: this.#received.tokens, estimated: true } : undefined,
      served: this.#served,
      timings: { firstTokenMs: this.#firstTokenMs, durationMs },
      generated: { ...this.#received },
      delivered: { tokens: this.#sink.delivered.tokens, chars: this.#sink.delivered.chars },
      reached: this.#reached,
      ...(this.#completion ? { completion: this.#completion.text } : {}),
    };
    try {
      batcher.cleanupRequestBuffers(meta.request_id);
      log.info({ trace: meta.trace, request_id: meta.request_id }, 'event_buffers_cleaned');
      if (this.#published) this.#publishFinal(outcome);
      live.delete(this);
      const duration_ms = Math.round(durationMs);
      observer?.ended(outcome.kind, duration_ms, this.#generated, outcome.kind === 'cancelled' ? outcome.reason : undefined);
      log.info(
        {
          trace: meta.trace,
          cleanup_done: true,
          stream_id: meta.request_id,
          outcome: outcome.kind,
          duration_ms,
          tokens: this.#generated,
          delivered_tokens: this.#sink.delivered.tokens,
          ...(outcome.usage ? { input_tokens: outcome.usage.input, output_tokens: outcome.usage.output, usage_estimated: outcome.usage.estimated } : {}),
          // The route's choice, when a route chose (the target that served, and its model).
          ...(outcome.served ? { upstream: outcome.served.upstream, upstream_model: outcome.served.model } : {}),
          ...(this.#completion ? { completion: this.#completion.text } : {}),
        },
        'stream_end',
      );
      if (endChannel.hasSubscribers) endChannel.publish({ meta, model: request.model, outcome, delivered: { ...this.#sink.delivered } });
    } finally {
      // Released last: a stream waiting on this session proceeds only once all of the above is done.
      this.#lease?.release();
    }
    return outcome;
  }

  #publishFinal(outcome: StreamOutcome): void {
    const { meta } = this.#spec;
    const counts = { generated_tokens: this.#generated, delivered_tokens: this.#sink.delivered.tokens, delivered_chars: this.#sink.delivered.chars };
    switch (outcome.kind) {
      case 'end':
        this.#deps.bus.publish(meta, 'chat.end', {
          finish_reason: outcome.finishReason,
          ...counts,
          ...(outcome.usage ? { usage: { input_tokens: outcome.usage.input, output_tokens: outcome.usage.output, estimated: outcome.usage.estimated } } : {}),
          ...(outcome.served ? { upstream: outcome.served.upstream, model: outcome.served.model } : {}),
        });
        break;
      case 'cancelled':
        // Heard: what the person can have heard, as far as Jarvis knows, which is what reached the client. A speech
        // client that played less says so (POST /v1/responses/{id}/truncate).
        this.#deps.bus.publish(meta, 'chat.cancelled', { reason: outcome.reason, ...counts, heard_chars: counts.delivered_chars });
        break;
      case 'error':
      case 'rejected':
        this.#deps.bus.publish(meta, 'chat.error', { code: outcome.error.code, message: outcome.error.message, status: outcome.error.status, ...counts });
        break;
    }
  }
}

/** The channel stream outcomes go to: a diagnostics channel costs nothing while no one subscribes. */
const endChannel = channel(STREAM_END_CHANNEL);

/** Resolves in the check phase after the event loop's next poll phase: what a socket received meanwhile has been read. */
function afterNextPoll(): Promise<void> {
  return new Promise((resolve) => setImmediate(() => setImmediate(resolve)));
}
