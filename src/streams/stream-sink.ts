import type { CancelReason, JarvisError } from '../errors.js';
import type { Usage } from '../providers/provider.js';

/**
 * Where a stream's answer goes: the HTTP layer implements it for SSE and for plain JSON. The stream module
 * decides what happens; the sink only knows the wire format.
 */
export interface StreamSink {
  text(text: string): void;
  delta(delta: Record<string, unknown>): void;
  finish(reason: string, usage: Usage): void;
  /** The stream was cancelled; the client (if still there) gets a normal ending, not an error. */
  cancelled(reason: CancelReason): void;
  fail(error: JarvisError): void;
  /** What was actually written to the client, so a caller can trim history to what was heard. */
  readonly delivered: { tokens: number; chars: number };
}
