import type { FastifyReply } from 'fastify';
import { JarvisError, type CancelReason } from '../errors.js';
import type { ChatChunk, Delta } from '../providers/provider.js';
import { AnswerBound, countDelivered, type StreamSink } from '../streams/stream-sink.js';
import { cancelledFrame, DONE_FRAME, errorFrame, relayFrame, type ChunkHead } from './chunk-frames.js';
import { CompletionAssembler } from './completion-assembler.js';
import { JsonTransport } from './json-transport.js';
import { SseTransport, type SseFlow } from './sse-transport.js';

export interface SinkOptions {
  /** What names an answer that sends no chunk of its own (cancelled before its first). */
  id: string;
  model: string;
  created: number;
  requestId: string;
}

export interface SseSinkOptions extends SinkOptions, SseFlow {
  includeUsage: boolean;
}

function headOf(d: Delta): ChunkHead {
  const c = d.chunk ?? (JSON.parse(d.data) as ChatChunk);
  return { id: c.id, created: c.created, model: c.model };
}

/**
 * `stream: true`: each chunk relayed as the provider got it (chunk-frames.ts says what changes). The response
 * opens on the first chunk, so an upstream that fails before it still gets a proper HTTP status instead of a
 * broken stream.
 */
export class SseChatSink implements StreamSink {
  readonly wire = 'openai.chat' as const;
  readonly delivered = { tokens: 0, chars: 0 };
  readonly #sse: SseTransport;
  readonly #opts: SseSinkOptions;
  #head: ChunkHead | undefined;
  /**
   * Choices that have a finish_reason, by index (true) or are still going (false): a cancellation ends the open
   * ones. Choice 0 is always there; the map exists only for a stream that mentions another (n > 1) or finishes.
   */
  #choices: Map<number, boolean> | undefined;

  constructor(reply: FastifyReply, opts: SseSinkOptions) {
    this.#opts = opts;
    this.#sse = new SseTransport(reply, opts);
  }

  chunk(d: Delta): void {
    this.#head ??= headOf(d);
    // A token chunk (not parsed) is choice 0 still going; only parsed chunks can begin or end choices.
    if (d.chunk && Array.isArray(d.chunk.choices)) {
      for (const c of d.chunk.choices as { index?: unknown; finish_reason?: unknown }[]) {
        const index = typeof c?.index === 'number' ? c.index : 0;
        const finished = typeof c?.finish_reason === 'string';
        if (index === 0 && !finished && !this.#choices) continue;
        this.#choices ??= new Map([[0, false]]);
        if (finished || !this.#choices.has(index)) this.#choices.set(index, finished);
      }
    }
    const frame = relayFrame(d, this.#opts.includeUsage);
    if (frame === undefined) return this.#sse.open();
    if (this.#sse.write(frame)) countDelivered(this.delivered, d);
  }

  flush(signal: AbortSignal): Promise<void> | undefined {
    return this.#sse.flush(signal);
  }

  end(): void {
    this.#sse.end(DONE_FRAME);
  }

  cancelled(reason: CancelReason): void {
    if (reason === 'client_backpressure') return this.#sse.drop();
    if (!this.#sse.writable) return this.#sse.close();
    const open = this.#choices ? [...this.#choices].filter(([, finished]) => !finished).map(([i]) => i).sort((a, b) => a - b) : [0];
    const head = this.#head ?? { id: this.#opts.id, created: this.#opts.created, model: this.#opts.model };
    // Every choice already finished (cancelled between the last chunk and [DONE]): nothing is left to end.
    if (open.length > 0) this.#sse.write(cancelledFrame(head, open));
    this.#sse.end(DONE_FRAME);
  }

  fail(error: JarvisError): void {
    // An upstream's error event before anything else still answers 200: the upstream opened its stream, and a
    // client that is told of the failure in the stream (rather than by a 502) does not retry it as a new request.
    if (error.event === undefined && this.#sse.refuse(error)) return;
    this.#sse.write(errorFrame(error));
    this.#sse.end(DONE_FRAME);
  }
}

/** `stream: false`: the same stream, assembled into one `chat.completion`, within `maxBytes` of chunks. */
export class JsonChatSink implements StreamSink {
  readonly wire = 'openai.chat' as const;
  readonly delivered = { tokens: 0, chars: 0 };
  readonly #json: JsonTransport;
  readonly #opts: SinkOptions & { maxBytes: number };
  readonly #answer = new CompletionAssembler();
  readonly #bound: AnswerBound;

  constructor(reply: FastifyReply, opts: SinkOptions & { maxBytes: number }) {
    this.#json = new JsonTransport(reply);
    this.#opts = opts;
    this.#bound = new AnswerBound(opts.maxBytes, 'for a non-streaming request; ask with stream: true.');
  }

  chunk(d: Delta): void {
    this.#bound.add(d);
    this.#answer.add(d.chunk ?? (JSON.parse(d.data) as ChatChunk));
    countDelivered(this.delivered, d);
  }

  flush(): undefined {
    return undefined;
  }

  #send(unfinished?: string): void {
    const { id, created, model } = this.#opts;
    // Nothing reached a client that was gone before the answer was.
    if (!this.#json.send(() => this.#answer.completion({ id, created, model }, unfinished))) this.delivered.tokens = this.delivered.chars = 0;
  }

  end(): void {
    this.#send();
  }

  cancelled(): void {
    this.#send('cancelled');
  }

  fail(error: JarvisError): void {
    this.delivered.tokens = this.delivered.chars = 0;
    this.#json.fail(error);
  }
}
