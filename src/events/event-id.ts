/**
 * Event ids are numbers that order like Redis stream ids: milliseconds × 4096 + sequence. Numbers keep
 * `Last-Event-ID` simple for clients; the encoding stays below 2^53 until the year 2248 and allows 4096 events
 * per millisecond (a busier millisecond shares its last id, which only makes replay re-send a few events).
 */
const SEQ = 4096;

export function idFromStreamId(streamId: string): number {
  const dash = streamId.indexOf('-');
  const ms = Number(streamId.slice(0, dash));
  const seq = Number(streamId.slice(dash + 1));
  return ms * SEQ + Math.min(seq, SEQ - 1);
}

/** The Redis stream id at or just before `id`, for exclusive XRANGE starts. */
export function streamIdFromId(id: number): string {
  return `${Math.floor(id / SEQ)}-${id % SEQ}`;
}

/** The next id for an event published without Redis: after `last`, and no earlier than now. */
export function nextLocalId(last: number, nowMs: number): number {
  return Math.max(last + 1, nowMs * SEQ);
}
