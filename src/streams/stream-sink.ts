import { JarvisError, type CancelReason } from '../errors.js';
import type { Delta, Wire } from '../providers/provider.js';

/**
 * Where a stream's answer goes: the HTTP layer implements it for SSE and for plain JSON. The stream module
 * decides what happens; the sink only knows the wire format.
 */
export interface StreamSink {
  /** The wire its client speaks: deltas of another are transcoded into it before they reach the sink. */
  readonly wire: Wire;
  /**
   * It builds its answer from parts (the Responses API's): deltas of another wire reach it as they are, to be
   * decoded (partsOf), rather than through a transcoder building its wire only to be read again.
   */
  readonly fromParts?: boolean;
  /** One chunk of the answer. Throws a JarvisError when the answer cannot be delivered (too large to assemble). */
  chunk(delta: Delta): void;
  /**
   * A provider batch is done. A promise means the client is behind: the stream reads nothing more from its
   * upstream until it settles (it rejects with `signal`'s reason if the stream is cancelled meanwhile).
   */
  flush(signal: AbortSignal): Promise<void> | undefined;
  /** A route chose the target that serves the answer: a wire whose answer names its model says that one. */
  served?(target: { upstream: string; model: string }): void;
  /** The answer is complete. */
  end(): void;
  /** The stream was cancelled; the client (if still there) gets a normal ending, not an error. */
  cancelled(reason: CancelReason): void;
  fail(error: JarvisError): void;
  /** What was actually written to the client (choice 0's text), so a caller can trim history to what was heard. */
  readonly delivered: { tokens: number; chars: number };
}

/** Counts a delta that reached the client: choice 0's text is what `delivered` follows. */
export function countDelivered(delivered: StreamSink['delivered'], d: Delta): void {
  if (d.text === '') return;
  delivered.tokens++;
  delivered.chars += d.text.length;
}

/**
 * The chunk bytes an answer held in memory may add up to (an assembled JSON answer, a response kept to be
 * stored); past `maxBytes` it is refused with 502 response_too_large, and the stream ends.
 */
export class AnswerBound {
  #bytes = 0;

  constructor(
    readonly maxBytes: number,
    /** What the answer becomes and what to do instead, for the message: "into one response.", ... */
    readonly what: string,
  ) {}

  add(d: Delta): void {
    this.#bytes += d.data.length;
    if (this.#bytes > this.maxBytes) throw new JarvisError('JARVIS_ERR_ANSWER_TOO_LARGE', `The answer is larger than ${this.maxBytes} bytes, the most Jarvis assembles ${this.what}`);
  }
}
