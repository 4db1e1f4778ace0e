import type { FastifyReply } from 'fastify';
import type { JarvisError } from '../errors.js';
import { sendError } from './errors.js';
import type { Heartbeat } from './heartbeat.js';
import { SseWriter } from './sse-writer.js';

/** How an SSE answer keeps up with its client: the heartbeat, and when a client is behind or gone. */
export interface SseFlow {
  heartbeat: Heartbeat;
  /** Unread bytes past which the stream stops reading its upstream until the client catches up. */
  maxBufferedBytes: number;
  /** How long a client that is behind may take nothing at all before it counts as gone (`onStall`). */
  stallMs: number;
  onStall: () => void;
}

/**
 * The SSE transport of an answer, whatever its API: the response opens on its first frame (so an upstream that
 * fails before it still gets a proper HTTP status), a heartbeat pings a slow start, a client that is behind
 * holds the stream (`flush`) until it reads or stalls, and one that stopped reading has its socket freed. The
 * encoder of each API (the sinks) writes frames; none of this is written again per API.
 */
export class SseTransport {
  readonly #reply: FastifyReply;
  readonly #writer: SseWriter;
  readonly #flow: SseFlow;
  readonly #requestId: string;
  readonly #opening: (() => string[]) | undefined;

  /** `opening`: the frames an answer begins with as soon as it opens (the Responses API's response.created). */
  constructor(reply: FastifyReply, flow: SseFlow & { requestId: string }, opening?: () => string[]) {
    this.#reply = reply;
    this.#flow = flow;
    this.#requestId = flow.requestId;
    this.#opening = opening;
    this.#writer = new SseWriter(reply.raw, { heartbeat: flow.heartbeat, openForPing: () => this.open() });
  }

  get opened(): boolean {
    return this.#writer.opened;
  }

  get writable(): boolean {
    return this.#writer.writable;
  }

  open(): void {
    if (this.#writer.opened) return;
    this.#reply.hijack();
    this.#writer.open({ 'x-request-id': this.#requestId });
    if (this.#opening) for (const frame of this.#opening()) this.#writer.write(frame);
  }

  /** Opens the response if it is not yet; false when the client is not there to get the frame. */
  write(frame: string): boolean {
    this.open();
    return this.#writer.write(frame);
  }

  /** A promise while the client is behind (StreamSink.flush). */
  flush(signal: AbortSignal): Promise<void> | undefined {
    if (this.#writer.unsent <= this.#flow.maxBufferedBytes) return undefined;
    return this.#writer.drained(this.#flow.maxBufferedBytes, this.#flow.stallMs, this.#flow.onStall, signal);
  }

  /** Ends the response (opened or not: an answer with nothing to say still opens and ends properly). */
  end(frame?: string): void {
    this.open();
    this.#writer.end(frame);
  }

  /** Leaves without another byte: the stream ends, and the response too if it opened. */
  close(): void {
    this.#writer.end();
  }

  /** A client that stopped reading: a goodbye would only join its unread bytes, so its socket is freed now. */
  drop(): void {
    this.#writer.end();
    this.#reply.raw.destroy();
  }

  /** An error before anything was sent is a plain HTTP error in the route's API shape; true when that is what happened. */
  refuse(error: JarvisError): boolean {
    if (this.#writer.opened) return false;
    this.#writer.end();
    sendError(this.#reply, error);
    return true;
  }
}
