import type { CancelReason, JarvisError } from '../errors.js';
import type { Delta } from '../providers/provider.js';

/**
 * Where a stream's answer goes: the HTTP layer implements it for SSE and for plain JSON. The stream module
 * decides what happens; the sink only knows the wire format.
 */
export interface StreamSink {
  /** One chunk of the answer. Throws a JarvisError when the answer cannot be delivered (too large to assemble). */
  chunk(delta: Delta): void;
  /**
   * A provider batch is done. A promise means the client is behind: the stream reads nothing more from its
   * upstream until it settles (it rejects with `signal`'s reason if the stream is cancelled meanwhile).
   */
  flush(signal: AbortSignal): Promise<void> | undefined;
  /** The answer is complete. */
  end(): void;
  /** The stream was cancelled; the client (if still there) gets a normal ending, not an error. */
  cancelled(reason: CancelReason): void;
  fail(error: JarvisError): void;
  /** What was actually written to the client (choice 0's text), so a caller can trim history to what was heard. */
  readonly delivered: { tokens: number; chars: number };
}
