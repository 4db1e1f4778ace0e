import type { Delta, Wire } from '../providers/provider.js';

/**
 * Builds one wire's deltas from another's parts (apis/<api>/encoder.ts): what lets any client API take any
 * upstream's answer. Keeps the state a wire needs across deltas (open blocks, tool call indexes, usage to
 * report at the end).
 */
export interface Transcoder {
  readonly wire: Wire;
  /** The deltas of this wire that say what `d` said. */
  delta(d: Delta): Delta[];
  /** The answer ended normally: what this wire still owes its client (closing events, usage held back). */
  end(): Delta[];
}
