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
 * Where a natively relayed response goes: each event as it comes (SSE, a WebSocket), or the response once it is
 * over (JSON).
 */
export interface NativeOut {
  /** Something was sent: a failure now is an event of the stream, not a refusal. */
  readonly opened: boolean;
  /** One event as the upstream sent it (`data`, its JSON); false when the client is not there to get it. */
  event(type: string, data: string): boolean;
  flush(signal: AbortSignal): Promise<void> | undefined;
  /** The response is over: as it ended, or failed (`failed`), in which case an opened stream has had its error event. */
  finish(response: Record<string, unknown> | undefined, failed: JarvisError | undefined): void;
}

/** `stream: true`: each event as the upstream sent it, over SSE; a failure before the first is a plain HTTP error. */
export function sseNativeOut(reply: FastifyReply, flow: SseFlow & { requestId: string }): NativeOut {
  const sse = new SseTransport(reply, flow);
  return {
    get opened() {
      return sse.opened;
    },
    event: (type, data) => sse.write(eventFrame(type, data)),
    flush: (signal) => sse.flush(signal),
    finish: (_response, failed) => {
      if (!(failed && sse.refuse(failed))) sse.close();
    },
  };
}

/** `stream: false`: the response the upstream ended with (or Jarvis, cutting it short), as one JSON body. */
export function jsonNativeOut(reply: FastifyReply): NativeOut {
  const json = new JsonTransport(reply);
  return {
    opened: false,
    event: () => !json.gone,
    flush: () => undefined,
    finish: (response, failed) => {
      if (failed) json.fail(failed);
      else if (response) json.send(() => response);
    },
  };
}

/**
 * A native Responses upstream's stream, relayed: each event as the upstream sent it, or the response it ended
 * with (NativeOut); a response Jarvis cuts short (barge-in, steering, shutdown) ends with its own
 * `response.incomplete`, numbered after the upstream's last event.
 */
export class ResponsesNativeSink implements StreamSink {
  readonly wire = 'openai.responses' as const;
  readonly delivered = { tokens: 0, chars: 0 };
  readonly #opts: NativeSinkOptions;
  readonly #out: NativeOut;
  readonly #tracker = new NativeTracker();
  readonly #bound: AnswerBound;
  #failed: JarvisError | undefined;

  constructor(out: NativeOut, opts: NativeSinkOptions) {
    this.#opts = opts;
    this.#out = out;
    this.#bound = new AnswerBound(opts.maxBytes, 'into one response.');
  }

  chunk(d: Delta): void {
    // The tracker keeps the stream's items and text (to end an interrupted response, to store it), streaming or
    // not: bounded as the other sinks bound what they keep, before any of it is kept or relayed.
    this.#bound.add(d);
    const event = d.chunk ?? (JSON.parse(d.data) as ChatChunk);
    this.#tracker.add(event);
    if (this.#out.event(String(event.type), d.data)) countDelivered(this.delivered, d);
  }

  flush(signal: AbortSignal): Promise<void> | undefined {
    return this.#out.flush(signal);
  }

  end(): void {
    this.#finish(this.#tracker.final ?? this.#tracker.interrupted().response);
  }

  cancelled(reason: CancelReason): void {
    const { event, response } = this.#tracker.interrupted(reason === 'steered' ? 'steered' : 'interrupted');
    if (this.#out.opened) this.#out.event(String(event.type), JSON.stringify(event));
    this.#finish(response);
  }

  fail(error: JarvisError): void {
    this.#failed = error;
    if (this.#out.opened) {
      // The upstream's own error event as it sent it, else one of Jarvis's in the Responses API's shape.
      const body = error.toJSON().error;
      this.#out.event('error', error.event ?? JSON.stringify({ type: 'error', code: body.code, message: body.message, param: body.param }));
    }
    this.#finish(undefined);
  }

  #finish(response: Record<string, unknown> | undefined): void {
    this.#out.finish(response, this.#failed);
    if (response && this.#tracker.id) this.#opts.onSettled(response, this.#tracker.output());
  }
}

/**
 * A response's events on a WebSocket: one JSON message each, on the lane of its `response.create` (whose
 * `stream_id` each gets), with the socket's backpressure (http/responses-socket.ts).
 */
export interface WsResponseOut {
  /** One event's JSON text; false when the socket is gone. */
  send(json: string): boolean;
  /** An error that stopped the response before anything of it was sent: the API's `error` event, with its status. */
  refuse(error: JarvisError): void;
  flush(signal: AbortSignal): Promise<void> | undefined;
}

/** A response Jarvis builds, over a WebSocket: the SSE route's events, one message each. */
export class ResponsesWsSink extends ResponsesSink {
  readonly #out: WsResponseOut;
  #opened = false;

  constructor(out: WsResponseOut, opts: ResponsesSinkOptions) {
    super(opts);
    this.#out = out;
  }

  protected emit(events: ResponseEvent[]): boolean {
    let written = true;
    if (!this.#opened) {
      this.#opened = true;
      for (const e of this.opening()) written = this.#out.send(JSON.stringify(e)) && written;
    }
    for (const e of events) written = this.#out.send(JSON.stringify(e)) && written;
    return written && events.length > 0;
  }

  flush(signal: AbortSignal): Promise<void> | undefined {
    return this.#out.flush(signal);
  }

  protected close(): void {}

  override fail(error: JarvisError): void {
    if (this.#opened || error.event !== undefined) return super.fail(error);
    this.#out.refuse(error);
    this.opts.onSettled(this.builder.response(), this.builder);
  }
}

/** A native Responses upstream's events over a WebSocket, one message each. */
export function wsNativeOut(out: WsResponseOut): NativeOut {
  let opened = false;
  return {
    get opened() {
      return opened;
    },
    event: (_type, data) => {
      opened = true;
      return out.send(data);
    },
    flush: (signal) => out.flush(signal),
    finish: (_response, failed) => {
      if (failed && !opened) out.refuse(failed);
    },
  };
}
