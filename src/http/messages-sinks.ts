import type { FastifyReply } from 'fastify';
import { messageStart, messagesEvent } from '../apis/anthropic-messages/encoder.js';
import { MessageAssembler } from '../apis/anthropic-messages/assembler.js';
import { messagesErrorEvent } from '../apis/anthropic-messages/errors.js';
import type { CancelReason, JarvisError } from '../errors.js';
import { isObject } from '../json.js';
import type { Delta } from '../providers/provider.js';
import { AnswerBound, countDelivered, type StreamSink } from '../streams/stream-sink.js';
import { eventFrame } from './sse-frames.js';
import { JsonTransport } from './json-transport.js';
import { SseTransport, type SseFlow } from './sse-transport.js';

/**
 * The stop reason of a Messages answer Jarvis cut short (barge-in, the client's backpressure, shutdown). Anthropic
 * has none for it; `end_turn` is the one every client of the Messages API handles (strictly typed ones refuse an
 * unknown value). `chat.cancelled` says it was an interruption, with what was heard (docs/providers.md).
 */
export const INTERRUPTED_STOP_REASON = 'end_turn';

export interface MessagesSinkOptions {
  /** What names an answer that sends no event of its own (cancelled before its first). */
  id: string;
  model: string;
  requestId: string;
  /** The input tokens Jarvis estimates, for a message_start it must make itself (cancelled before the upstream's). */
  inputTokens: number;
}


/**
 * `stream: true`: Anthropic's events, relayed as an Anthropic upstream sent them or built by the encoder from
 * another wire. An answer Jarvis cuts short still ends as Anthropic ends a stream: its open blocks stopped, a
 * message_delta (INTERRUPTED_STOP_REASON), message_stop.
 */
export class MessagesSseSink implements StreamSink {
  readonly wire = 'anthropic.messages' as const;
  readonly delivered = { tokens: 0, chars: 0 };
  readonly #sse: SseTransport;
  readonly #opts: MessagesSinkOptions & SseFlow;
  #started = false;
  #stopped = false;
  readonly #open = new Set<number>();

  constructor(reply: FastifyReply, opts: MessagesSinkOptions & SseFlow) {
    this.#opts = opts;
    this.#sse = new SseTransport(reply, opts);
  }

  chunk(d: Delta): void {
    const e = d.chunk;
    if (e) {
      switch (e.type) {
        case 'message_start':
          this.#started = true;
          break;
        case 'content_block_start':
          if (typeof e.index === 'number') this.#open.add(e.index);
          break;
        case 'content_block_stop':
          if (typeof e.index === 'number') this.#open.delete(e.index);
          break;
        case 'message_delta':
        case 'message_stop':
          this.#stopped = true;
          break;
      }
    }
    // A text delta recognised unparsed (providers/anthropic/stream.ts) is compact JSON: one line, framed as it is.
    const frame = e === undefined && d.event !== undefined ? `event: ${d.event}\ndata: ${d.data}\n\n` : eventFrame(d.event ?? String(e?.type ?? 'message'), d.data);
    if (this.#sse.write(frame)) countDelivered(this.delivered, d);
  }

  flush(signal: AbortSignal): Promise<void> | undefined {
    return this.#sse.flush(signal);
  }

  end(): void {
    this.#sse.end();
  }

  cancelled(reason: CancelReason): void {
    if (reason === 'client_backpressure') return this.#sse.drop();
    if (!this.#sse.writable) return this.#sse.close();
    const out: Delta[] = [];
    if (!this.#started) {
      out.push(messageStart(this.#opts, { input: this.#opts.inputTokens, output: 0 }));
    }
    for (const index of [...this.#open].sort((a, b) => a - b)) out.push(messagesEvent('content_block_stop', { index }));
    if (!this.#stopped) out.push(messagesEvent('message_delta', { delta: { stop_reason: INTERRUPTED_STOP_REASON, stop_sequence: null }, usage: { output_tokens: this.delivered.tokens } }));
    out.push(messagesEvent('message_stop', {}));
    for (const d of out) this.#sse.write(eventFrame(d.event!, d.data));
    this.#sse.end();
  }

  fail(error: JarvisError): void {
    // An upstream's error event before anything else still answers 200, as for chat (chat-sinks.ts).
    if (error.native?.event === undefined && error.event === undefined && this.#sse.refuse(error)) return;
    this.#sse.write(eventFrame('error', messagesErrorEvent(error)));
    this.#sse.end();
  }
}

/** `stream: false`: the same events assembled into one Message, within `maxBytes`. */
export class MessagesJsonSink implements StreamSink {
  readonly wire = 'anthropic.messages' as const;
  readonly delivered = { tokens: 0, chars: 0 };
  readonly #json: JsonTransport;
  readonly #opts: MessagesSinkOptions;
  readonly #answer = new MessageAssembler();
  readonly #bound: AnswerBound;
  #stopped = false;

  constructor(reply: FastifyReply, opts: MessagesSinkOptions & { maxBytes: number }) {
    this.#json = new JsonTransport(reply);
    this.#opts = opts;
    this.#bound = new AnswerBound(opts.maxBytes, 'for a non-streaming request; ask with stream: true.');
  }

  chunk(d: Delta): void {
    this.#bound.add(d);
    const e = d.chunk ?? (JSON.parse(d.data) as Record<string, unknown>);
    if (isObject(e)) {
      this.#answer.add(e);
      if (e.type === 'message_delta') this.#stopped = true;
    }
    countDelivered(this.delivered, d);
  }

  flush(): undefined {
    return undefined;
  }

  #send(stopReason?: string): void {
    if (!this.#json.send(() => this.#answer.message(this.#opts, stopReason))) this.delivered.tokens = this.delivered.chars = 0;
  }

  end(): void {
    this.#send();
  }

  cancelled(): void {
    // Cut before its message_delta: the usage says what was delivered, as an interrupted stream's ending does.
    if (!this.#stopped) this.#answer.add({ type: 'message_delta', delta: {}, usage: { output_tokens: this.delivered.tokens } });
    this.#send(INTERRUPTED_STOP_REASON);
  }

  fail(error: JarvisError): void {
    this.delivered.tokens = this.delivered.chars = 0;
    this.#json.fail(error);
  }
}
