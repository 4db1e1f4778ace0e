import type { FastifyReply } from 'fastify';
import { JarvisError, type CancelReason } from '../errors.js';
import type { ChatChunk, Delta } from '../providers/provider.js';
import { NativeTracker } from '../responses/native-tracker.js';
import { ResponseBuilder, type ResponseEvent, type ResponseHead } from '../responses/response-builder.js';
import type { Item } from '../responses/translate.js';
import { partsOf } from '../streams/parts.js';
import { AnswerBound, countDelivered, type StreamSink } from '../streams/stream-sink.js';
import { eventFrame } from './sse-frames.js';
import { JsonTransport } from './json-transport.js';
import { SseTransport, type SseFlow } from './sse-transport.js';

/** What becomes of a response once its stream is over: it is stored (or not) with what the client received. */
export type ResponseSettled = (response: Record<string, unknown>, builder: ResponseBuilder) => void;

export interface ResponsesSinkOptions {
  head: ResponseHead;
  requestId: string;
  maxBytes: number;
  onSettled: ResponseSettled;
}

/**
 * An event's SSE frame. Nearly every event is an output_text delta, written from its fields in the order
 * JSON.stringify writes them (the same bytes), without walking the object.
 */
function frame(e: ResponseEvent): string {
  if (e.type !== 'response.output_text.delta') return `event: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`;
  return `event: response.output_text.delta\ndata: {"type":"response.output_text.delta","sequence_number":${e.sequence_number as number},"item_id":${JSON.stringify(e.item_id)},"output_index":${e.output_index as number},"content_index":${e.content_index as number},"delta":${JSON.stringify(e.delta)},"logprobs":[]}\n\n`;
}

/** The Chat Completions chunks a stream yields, as a Response: counted, bounded, built (response-builder.ts). */
abstract class ResponsesSink implements StreamSink {
  // Built from Chat Completions chunks as they come (response-builder.ts), and from any other wire's parts.
  readonly wire = 'openai.chat' as const;
  readonly fromParts = true;
  readonly delivered = { tokens: 0, chars: 0 };
  protected readonly builder: ResponseBuilder;
  protected readonly opts: ResponsesSinkOptions;
  readonly #bound: AnswerBound;
  #opening: ResponseEvent[] | undefined;

  constructor(opts: ResponsesSinkOptions) {
    this.opts = opts;
    this.builder = new ResponseBuilder(opts.head);
    this.#bound = new AnswerBound(opts.maxBytes, 'into one response.');
  }

  /**
   * The events a response opens with (response.created, response.in_progress), built before any other event of it
   * whenever its transport sends them: they show the response as it began (no output yet), numbered first.
   */
  protected opening(): ResponseEvent[] {
    return (this.#opening ??= this.builder.start());
  }

  chunk(d: Delta): void {
    this.#bound.add(d);
    this.opening();
    const events = d.wire !== 'openai.chat' || d.parts ? this.builder.parts(partsOf(d)) : d.chunk ? this.builder.add(d.chunk) : this.builder.text(d.text);
    if (this.emit(events)) countDelivered(this.delivered, d);
  }

  served(target: { model: string }): void {
    this.builder.serve(target.model);
  }

  /** Sends the events; false when the client is not there to get them. */
  protected abstract emit(events: ResponseEvent[]): boolean;
  abstract flush(signal: AbortSignal): Promise<void> | undefined;
  protected abstract close(): void;

  end(): void {
    this.opening();
    this.emit(this.builder.end());
    this.#settle();
  }

  cancelled(reason: CancelReason): void {
    this.opening();
    this.emit(this.builder.incomplete(reason === 'steered' ? 'steered' : 'interrupted'));
    this.#settle();
  }

  fail(error: JarvisError): void {
    this.opening();
    this.emit(this.builder.failed({ code: error.code, message: error.message }));
    this.#settle();
  }

  #settle(): void {
    this.close();
    this.opts.onSettled(this.builder.response(), this.builder);
  }
}

export type ResponsesSseOptions = ResponsesSinkOptions & SseFlow;

/**
 * `stream: true`: the Responses API's semantic events over SSE (`event:` and `data:`), opened with
 * `response.created` at once, so the client knows the response's id before the first token.
 */
export class ResponsesSseSink extends ResponsesSink {
  readonly #sse: SseTransport;

  constructor(reply: FastifyReply, opts: ResponsesSseOptions) {
    super(opts);
    this.#sse = new SseTransport(reply, opts, () => this.opening().map(frame));
  }

  protected emit(events: ResponseEvent[]): boolean {
    this.#sse.open();
    let written = true;
    for (const e of events) written = this.#sse.write(frame(e)) && written;
    return written && events.length > 0;
  }

  flush(signal: AbortSignal): Promise<void> | undefined {
    return this.#sse.flush(signal);
  }

  protected close(): void {
    this.#sse.close();
  }

  override fail(error: JarvisError): void {
    // Refused before anything was sent (an upstream's 4xx, a session busy): a plain HTTP error, as for chat.
    if (error.event === undefined && this.#sse.refuse(error)) {
      this.opts.onSettled(this.builder.response(), this.builder);
      return;
    }
    super.fail(error);
  }
}

/** `stream: false`: the Response object once the answer is complete (or cut short). */
export class ResponsesJsonSink extends ResponsesSink {
  readonly #json: JsonTransport;
  #failed: JarvisError | undefined;

  constructor(reply: FastifyReply, opts: ResponsesSinkOptions) {
    super(opts);
    this.#json = new JsonTransport(reply);
  }

  protected emit(): boolean {
    return !this.#json.gone;
  }

  flush(): undefined {
    return undefined;
  }

  override fail(error: JarvisError): void {
    this.#failed = error;
    super.fail(error);
  }

  protected close(): void {
    if (this.#failed) this.#json.fail(this.#failed);
    else this.#json.send(() => this.builder.response());
  }
}

/** What becomes of a natively relayed response once its stream is over: the response, and its output as delivered. */
export type NativeSettled = (response: Record<string, unknown>, output: Item[]) => void;

export interface NativeSinkOptions {
  requestId: string;
  maxBytes: number;
  onSettled: NativeSettled;
}

/**
 * A native Responses upstream's stream, relayed: `stream: true` gets each event as the upstream sent it; a
 * response Jarvis cuts short (barge-in, shutdown) ends with its own `response.incomplete`, numbered after the
 * upstream's last event; `stream: false` gets the response the upstream ended with (or that one).
 */
export class ResponsesNativeSink implements StreamSink {
  readonly wire = 'openai.responses' as const;
  readonly delivered = { tokens: 0, chars: 0 };
  readonly #opts: NativeSinkOptions;
  /** `stream: true`: SSE; else JSON. One of the two. */
  readonly #sse: SseTransport | undefined;
  readonly #json: JsonTransport | undefined;
  readonly #tracker = new NativeTracker();
  readonly #bound: AnswerBound;
  #failed: JarvisError | undefined;

  constructor(reply: FastifyReply, opts: NativeSinkOptions, sse?: SseFlow) {
    this.#opts = opts;
    this.#bound = new AnswerBound(opts.maxBytes, 'into one response.');
    this.#sse = sse ? new SseTransport(reply, { ...sse, requestId: opts.requestId }) : undefined;
    this.#json = sse ? undefined : new JsonTransport(reply);
  }

  chunk(d: Delta): void {
    // The tracker keeps the stream's items and text (to end an interrupted response, to store it), streaming or
    // not: bounded as the other sinks bound what they keep, before any of it is kept or relayed.
    this.#bound.add(d);
    const event = d.chunk ?? (JSON.parse(d.data) as ChatChunk);
    this.#tracker.add(event);
    const written = this.#sse ? this.#sse.write(eventFrame(String(event.type), d.data)) : !this.#json!.gone;
    if (written) countDelivered(this.delivered, d);
  }

  flush(signal: AbortSignal): Promise<void> | undefined {
    return this.#sse?.flush(signal);
  }

  end(): void {
    this.#finish(this.#tracker.final ?? this.#tracker.interrupted().response);
  }

  cancelled(reason: CancelReason): void {
    const { event, response } = this.#tracker.interrupted(reason === 'steered' ? 'steered' : 'interrupted');
    if (this.#sse?.opened) this.#sse.write(frame(event as ResponseEvent));
    this.#finish(response);
  }

  fail(error: JarvisError): void {
    this.#failed = error;
    if (this.#sse?.opened) {
      // The upstream's own error event as it sent it, else one of Jarvis's in the Responses API's shape.
      const body = error.toJSON().error;
      this.#sse.write(eventFrame('error', error.event ?? JSON.stringify({ type: 'error', code: body.code, message: body.message, param: body.param })));
    }
    this.#finish(undefined);
  }

  #finish(response: Record<string, unknown> | undefined): void {
    if (this.#sse) {
      if (!(this.#failed && this.#sse.refuse(this.#failed))) this.#sse.close();
    } else if (this.#failed) {
      this.#json!.fail(this.#failed);
    } else if (response) {
      this.#json!.send(() => response);
    }
    if (response && this.#tracker.id) this.#opts.onSettled(response, this.#tracker.output());
  }
}
