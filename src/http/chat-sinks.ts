import type { FastifyReply } from 'fastify';
import type { CancelReason, JarvisError } from '../errors.js';
import type { Usage } from '../providers/provider.js';
import type { StreamSink } from '../streams/stream-sink.js';
import { sendError } from './errors.js';
import type { Heartbeat } from './heartbeat.js';
import { ChunkFrames, DONE_FRAME } from './openai-frames.js';
import { SseWriter } from './sse-writer.js';

export interface SinkOptions {
  id: string;
  model: string;
  created: number;
  requestId: string;
}

/**
 * `stream: true`: SSE in the OpenAI chunk format. The response opens on the first output, so an upstream
 * that fails before its first token still gets a proper HTTP status instead of a broken stream.
 */
export class SseChatSink implements StreamSink {
  readonly delivered = { tokens: 0, chars: 0 };
  readonly #reply: FastifyReply;
  readonly #writer: SseWriter;
  readonly #frames: ChunkFrames;
  readonly #includeUsage: boolean;
  readonly #requestId: string;

  constructor(reply: FastifyReply, opts: SinkOptions & { includeUsage: boolean; heartbeat: Heartbeat; maxBufferedBytes: number; onOverflow: () => void }) {
    this.#reply = reply;
    this.#frames = new ChunkFrames(opts.id, opts.model, opts.created);
    this.#includeUsage = opts.includeUsage;
    this.#requestId = opts.requestId;
    this.#writer = new SseWriter(reply.raw, { ...opts, openForPing: () => this.#open() });
  }

  #open(): void {
    if (this.#writer.opened) return;
    this.#reply.hijack();
    this.#writer.open({ 'x-request-id': this.#requestId });
    this.#writer.write(this.#frames.role());
  }

  text(text: string): void {
    this.#open();
    if (this.#writer.write(this.#frames.text(text))) {
      this.delivered.tokens++;
      this.delivered.chars += text.length;
    }
  }

  delta(delta: Record<string, unknown>): void {
    this.#open();
    this.#writer.write(this.#frames.delta(delta));
  }

  finish(reason: string, usage: Usage): void {
    this.#open();
    this.#writer.write(this.#frames.finish(reason));
    if (this.#includeUsage) this.#writer.write(this.#frames.usage(usage));
    this.#writer.end(DONE_FRAME);
  }

  cancelled(reason: CancelReason): void {
    if (reason === 'client_backpressure') {
      // It is not reading: a goodbye would only join the unread bytes. Free the socket now.
      this.#writer.end();
      this.#reply.raw.destroy();
      return;
    }
    if (!this.#writer.writable) return this.#writer.end();
    this.#open();
    this.#writer.write(this.#frames.finish('cancelled'));
    this.#writer.end(DONE_FRAME);
  }

  fail(error: JarvisError): void {
    if (!this.#writer.opened) {
      this.#writer.end();
      return sendError(this.#reply, error);
    }
    this.#writer.write(ChunkFrames.error(error));
    this.#writer.end(DONE_FRAME);
  }
}

/** `stream: false`: the same stream, collected into one `chat.completion`. */
export class JsonChatSink implements StreamSink {
  readonly delivered = { tokens: 0, chars: 0 };
  readonly #reply: FastifyReply;
  readonly #opts: SinkOptions;
  #content = '';
  #tokens = 0;

  constructor(reply: FastifyReply, opts: SinkOptions) {
    this.#reply = reply;
    this.#opts = opts;
  }

  text(text: string): void {
    this.#content += text;
    this.#tokens++;
  }

  delta(): void {
    // Non-text deltas (tool calls) are only relayed on streams; see docs/api.md.
  }

  #send(finishReason: string, usage: Usage | undefined): void {
    if (this.#reply.sent || this.#reply.raw.destroyed) return;
    this.delivered.tokens = this.#tokens;
    this.delivered.chars = this.#content.length;
    void this.#reply.send({
      id: this.#opts.id,
      object: 'chat.completion',
      created: this.#opts.created,
      model: this.#opts.model,
      choices: [{ index: 0, message: { role: 'assistant', content: this.#content }, finish_reason: finishReason, logprobs: null }],
      ...(usage ? { usage } : {}),
    });
  }

  finish(reason: string, usage: Usage): void {
    this.#send(reason, usage);
  }

  cancelled(): void {
    this.#send('cancelled', undefined);
  }

  fail(error: JarvisError): void {
    if (!this.#reply.sent && !this.#reply.raw.destroyed) sendError(this.#reply, error);
  }
}
