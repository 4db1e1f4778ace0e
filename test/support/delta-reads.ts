import type { JarvisError } from '../../src/errors.js';
import { CHAT_EVENTS, DeltaReader } from '../../src/providers/openai-compatible/sse-deltas.js';
import type { Delta } from '../../src/providers/provider.js';

/** Reads of a chat stream fed to a DeltaReader one by one, as undici hands them over: the deltas, and how it ended. */
export function readDeltas(reads: Buffer[]): { deltas: Delta[]; error?: JarvisError } {
  const reader = new DeltaReader(CHAT_EVENTS);
  const deltas: Delta[] = [];
  for (const bytes of reads) {
    deltas.push(...(reader.feed(bytes) ?? []));
    if (reader.failure) return { deltas, error: reader.failure };
    if (reader.done) return { deltas };
  }
  reader.end();
  return { deltas, error: reader.failure };
}
