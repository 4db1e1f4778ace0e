/**
 * Event ids are numbers that order like Redis stream ids: (milliseconds since 2026-01-01) × 4096 + sequence.
 * Numbers keep `Last-Event-ID` simple for clients; counted from 2026 the encoding stays below 2^53 until 2095
 * and allows 4096 events per millisecond (entries past the 4096th in one millisecond share its last id, and
 * subscribers skip them as already delivered).
 */
const SEQ = 4096;
const EPOCH_MS = Date.UTC(2026, 0, 1);

export function idFromStreamId(streamId: string): number {
  const dash = streamId.indexOf('-');
  const ms = Number(streamId.slice(0, dash));
  const seq = Number(streamId.slice(dash + 1));
  return (ms - EPOCH_MS) * SEQ + Math.min(seq, SEQ - 1);
}

/** The Redis stream id at or just before `id`, for exclusive XRANGE starts. */
export function streamIdFromId(id: number): string {
  return `${Math.floor(id / SEQ) + EPOCH_MS}-${id % SEQ}`;
}

/** The next id for an event published without Redis: after `last`, and no earlier than now. */
export function nextLocalId(last: number, nowMs: number): number {
  return Math.max(last + 1, (nowMs - EPOCH_MS) * SEQ);
}
