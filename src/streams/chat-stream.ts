import type { Logger } from 'pino';
import type { SessionPolicy } from '../config.js';
import { JarvisError, StreamCancelled, cancelReasonOf, type CancelReason } from '../errors.js';
import type { EventBus } from '../events/event-bus.js';
import type { TokenBatcher } from '../events/token-batcher.js';
import type { StreamMeta } from '../events/types.js';
import { ContentExcerpt, excerpt } from '../observability/content-excerpt.js';
import { transcoderFor } from '../apis/transcoders.js';
import { lastUserText, promptText, type ChatRequest, type Delta, type Provider, type TokenUsage } from '../providers/provider.js';
import { partsOf } from './parts.js';
import type { Transcoder } from './transcode.js';
import type { SessionLease, SessionRegistry } from '../sessions/session-registry.js';
import type { LiveStreams } from './live-streams.js';
import type { StreamSink } from './stream-sink.js';

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
  upstream?: ((signal: AbortSignal) => AsyncIterable<Delta[]>) | undefined;
}

/** How a stream ended, with what it cost (usage), which upstream served it (route targets), and when. */
export type StreamOutcome = (
  | { kind: 'end'; finishReason: string }
  | { kind: 'cancelled'; reason: CancelReason }
  | { kind: 'error'; error: JarvisError }
  | { kind: 'rejected'; error: JarvisError }
) & {
  usage?: AnswerUsage | undefined;
  served?: { upstream: string; model: string } | undefined;
  timings?: { firstTokenMs: number | undefined; durationMs: number } | undefined;
};

function asJarvisError(err: unknown): JarvisError {
  if (err instanceof JarvisError) return err;
  return new JarvisError('JARVIS_ERR_INTERNAL', 'internal error while streaming', { cause: err });
}

/**
 * The life of one stream: stream_start, the session's barge-in policy, relaying deltas to the client and the
 * batcher, and a `finally` that cleans up on every exit path before the session is released.
 */
export class ChatStream {
  readonly requestId: string;
  readonly #controller = new AbortController();
  readonly #deps: StreamDeps;
  readonly #spec: StreamSpec;
  readonly #sink: StreamSink;

  constructor(deps: StreamDeps, spec: StreamSpec, sink: StreamSink) {
    this.#deps = deps;
    this.#spec = spec;
    this.#sink = sink;
    this.requestId = spec.meta.request_id;
  }

  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  /** Idempotent. Logged here, synchronously, so the log shows the cancellation before the cleanup it causes. */
  cancel(reason: CancelReason): void {
    if (this.#controller.signal.aborted) return;
    this.#deps.log.info({ trace: this.#spec.meta.trace, reason, request_id: this.requestId }, 'stream_cancelled');
    this.#controller.abort(new StreamCancelled(reason));
  }

  async run(): Promise<StreamOutcome> {
    const { sessions, batcher, bus, live, log, observer } = this.#deps;
    const { meta, provider, request } = this.#spec;
    const signal = this.#controller.signal;
    const started = performance.now();
    let lease: SessionLease | undefined;
    let published = false;
    let generated = 0;
    let firstTokenMs: number | undefined;
    let usage: TokenUsage | undefined;
    let outcome: StreamOutcome;
    const sink = this.#sink;
    // Created on the first delta of another wire than the client's (an answer from an upstream of another API).
    let transcoder: Transcoder | undefined;
    const deliver = (d: Delta): void => {
      if (d.wire === sink.wire) return sink.chunk(d);
      transcoder ??= transcoderFor(sink.wire, { id: request.completionId, model: request.model, created: request.created, inputTokens: estimateInput(request) });
      for (const t of transcoder.delta(d)) sink.chunk(t);
    };

    // Only with logContent: conversations stay out of the logs by default.
    const completion = this.#deps.logContent ? new ContentExcerpt() : undefined;
    live.add(this);
    observer?.started();
    log.info(
      {
        trace: meta.trace,
        stream_id: meta.request_id,
        session: meta.session_id,
        model: request.model,
        policy: this.#spec.policy,
        ...(completion ? { prompt: excerpt(lastUserText(request.messages)) } : {}),
      },
      'stream_start',
    );
    try {
      try {
        lease = await sessions.acquire({
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
        outcome = { kind: 'rejected', error: asJarvisError(err) };
        log.info({ trace: meta.trace, code: outcome.error.code }, 'stream_rejected');
        this.#sink.fail(outcome.error);
        return outcome;
      }

      // A client that sent its request and left at once is gone before anything reaches the upstream: its
      // connection's end is read by the loop's next poll (not the one that read the request), so the upstream
      // is called only after that.
      await afterNextPoll();
      signal.throwIfAborted();

      bus.publish(meta, 'chat.start', { model: request.model });
      published = true;
      let finishReason = 'stop';
      const providerStarted = performance.now();
      for await (const batch of this.#spec.upstream?.(signal) ?? provider.stream(request, { signal })) {
        for (const d of batch) {
          // The client may be gone, or the session superseded: no more of the batch goes out.
          signal.throwIfAborted();
          if (d.text !== '' && generated === 0) {
            const received = performance.now();
            deliver(d);
            firstTokenMs = performance.now() - started;
            observer?.firstToken(firstTokenMs, received - providerStarted);
          } else {
            deliver(d);
          }
          // Only parsed deltas can report usage: the token path (unparsed) never looks.
          if (d.chunk !== undefined && (d.parts !== undefined || d.chunk.usage)) {
            for (const p of partsOf(d)) if (p.type === 'usage') usage = p.usage;
          }
          if (d.text !== '') {
            generated++;
            batcher.add(meta, d.text);
            completion?.add(d.text);
          }
          if (d.finish !== undefined) finishReason = d.finish;
        }
        // A client that is behind holds the stream here, so the upstream waits too instead of Jarvis buffering for it.
        const behind = this.#sink.flush(signal);
        if (behind) await behind;
      }
      // A provider that returns normally after an abort still counts as cancelled.
      signal.throwIfAborted();
      if (transcoder) for (const t of transcoder.end()) sink.chunk(t);
      batcher.end(meta.request_id);
      this.#sink.end();
      outcome = { kind: 'end', finishReason };
    } catch (err) {
      const reason = cancelReasonOf(signal);
      if (reason) {
        outcome = { kind: 'cancelled', reason };
        this.#sink.cancelled(reason);
      } else {
        outcome = { kind: 'error', error: asJarvisError(err) };
        if (outcome.error.status >= 500) log.warn({ trace: meta.trace, request_id: meta.request_id, code: outcome.error.code, err }, 'stream_error');
        else log.info({ trace: meta.trace, request_id: meta.request_id, code: outcome.error.code, status: outcome.error.status }, 'stream_error');
        batcher.end(meta.request_id);
        this.#sink.fail(outcome.error);
      }
    } finally {
      const durationMs = performance.now() - started;
      outcome!.usage = usage ? { ...usage, estimated: false } : published ? { input: estimateInput(request), output: generated, estimated: true } : undefined;
      outcome!.served = request.served;
      outcome!.timings = { firstTokenMs, durationMs };
      batcher.cleanupRequestBuffers(meta.request_id);
      log.info({ trace: meta.trace, request_id: meta.request_id }, 'event_buffers_cleaned');
      if (published) this.#publishFinal(outcome!, generated);
      live.delete(this);
      const duration_ms = Math.round(durationMs);
      observer?.ended(outcome!.kind, duration_ms, generated, outcome!.kind === 'cancelled' ? outcome!.reason : undefined);
      log.info(
        {
          trace: meta.trace,
          cleanup_done: true,
          stream_id: meta.request_id,
          outcome: outcome!.kind,
          duration_ms,
          tokens: generated,
          delivered_tokens: this.#sink.delivered.tokens,
          ...(outcome!.usage ? { input_tokens: outcome!.usage.input, output_tokens: outcome!.usage.output, usage_estimated: outcome!.usage.estimated } : {}),
          // The route's choice, when a route chose (the target that served, and its model).
          ...(request.served ? { upstream: request.served.upstream, upstream_model: request.served.model } : {}),
          ...(completion ? { completion: completion.text } : {}),
        },
        'stream_end',
      );
      // Released last: a stream waiting on this session proceeds only once all of the above is done.
      lease?.release();
    }
    return outcome;
  }

  #publishFinal(outcome: StreamOutcome, generated: number): void {
    const { meta, request } = this.#spec;
    const counts = { generated_tokens: generated, delivered_tokens: this.#sink.delivered.tokens, delivered_chars: this.#sink.delivered.chars };
    switch (outcome.kind) {
      case 'end':
        this.#deps.bus.publish(meta, 'chat.end', {
          finish_reason: outcome.finishReason,
          ...counts,
          ...(outcome.usage ? { usage: { input_tokens: outcome.usage.input, output_tokens: outcome.usage.output, estimated: outcome.usage.estimated } } : {}),
          ...(request.served ? { upstream: request.served.upstream, model: request.served.model } : {}),
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

/** Input tokens as Jarvis estimates them (four characters a token) for an upstream that reports none. */
function estimateInput(request: ChatRequest): number {
  return Math.max(1, Math.ceil(promptText(request.messages).length / 4));
}

/** Resolves in the check phase after the event loop's next poll phase: what a socket received meanwhile has been read. */
function afterNextPoll(): Promise<void> {
  return new Promise((resolve) => setImmediate(() => setImmediate(resolve)));
}
