import { StringDecoder } from 'node:string_decoder';
import { createParser, type EventSourceMessage, type ParseError } from 'eventsource-parser';
import { JarvisError } from '../../errors.js';
import type { ChatChunk, Delta } from '../provider.js';
import { tokenChunkText } from './token-chunk.js';
import { reportedError } from './upstream-errors.js';

/**
 * The most text an upstream may send without completing an event. The parser holds an incomplete event in memory,
 * so without a bound a peer sending one endless line (or megabytes of non-SSE junk) would grow it forever. Real
 * chunks are a few hundred bytes; a whole answer in one chunk still fits.
 */
export const MAX_UPSTREAM_EVENT_CHARS = 1024 * 1024;

/**
 * Turns an upstream's OpenAI SSE body into deltas, one batch per network read; ends at `[DONE]` and fails on
 * anything malformed or missing.
 */
export async function* parseUpstreamStream(body: AsyncIterable<Buffer>, signal: AbortSignal, maxEventChars = MAX_UPSTREAM_EVENT_CHARS): AsyncGenerator<Delta[]> {
  let pending: Delta[] = [];
  let done = false;
  let failure: JarvisError | undefined;
  const parser = createParser({
    maxBufferSize: maxEventChars,
    onError(error: ParseError) {
      if (error.type === 'max-buffer-size-exceeded' && !failure) {
        failure = new JarvisError('JARVIS_ERR_UPSTREAM_STREAM', `upstream sent more than ${maxEventChars} characters without completing an event`);
      }
    },
    onEvent(event: EventSourceMessage) {
      if (done || failure) return;
      if (event.data === '[DONE]') {
        done = true;
        return;
      }
      const text = tokenChunkText(event.data);
      if (text !== undefined) {
        pending.push({ data: event.data, chunk: undefined, text, finish: undefined });
        return;
      }
      let chunk: unknown;
      try {
        chunk = JSON.parse(event.data);
      } catch {
        failure = new JarvisError('JARVIS_ERR_UPSTREAM_STREAM', 'upstream sent a malformed stream event');
        return;
      }
      // Valid JSON that is not a chunk object (null, a number, an array) is as malformed as invalid JSON.
      if (!isObject(chunk)) {
        failure = new JarvisError('JARVIS_ERR_UPSTREAM_STREAM', 'upstream sent a stream event that is not a JSON object');
        return;
      }
      // An `error` member that says something (an object, a message) is an error event; null, false or "" is not.
      if (chunk.error) {
        failure = reportedError(event.data, chunk.error);
        return;
      }
      pending.push(deltaOf(event.data, chunk));
    },
  });
  // StringDecoder rather than TextDecoder: it keeps a character split across reads just the same, at a sixth of
  // the cost per read (TextDecoder's streaming mode was 6% of a flood's CPU). It does not drop a leading byte
  // order mark, which an event stream must ignore, so that is done here.
  const decoder = new StringDecoder('utf8');
  let started = false;
  // Iterated by hand: leaving a for-await early destroys the body, which builds an AbortError (stack and all) on
  // every stream. The caller decides instead: drain the body after [DONE], destroy it on any other way out.
  const chunks = body[Symbol.asyncIterator]();
  for (let next = await chunks.next(); !next.done; next = await chunks.next()) {
    let text = decoder.write(next.value);
    if (!started && text !== '') {
      started = true;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    parser.feed(text);
    if (pending.length > 0) {
      const batch = pending;
      pending = [];
      yield batch;
    }
    if (failure) throw failure;
    if (done) return;
    signal.throwIfAborted();
  }
  throw new JarvisError('JARVIS_ERR_UPSTREAM_STREAM', 'upstream closed the stream before [DONE]');
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Choice 0's text and finish_reason in a parsed chunk: what events and barge-in follow (see Delta). */
export function deltaOf(data: string, chunk: ChatChunk): Delta {
  let text = '';
  let finish: string | undefined;
  if (Array.isArray(chunk.choices)) {
    for (const choice of chunk.choices as unknown[]) {
      // A choice without an index is the only one there is (some servers leave it out).
      if (!isObject(choice) || (choice.index ?? 0) !== 0) continue;
      const content = isObject(choice.delta) ? choice.delta.content : undefined;
      if (typeof content === 'string') text += content;
      if (typeof choice.finish_reason === 'string') finish = choice.finish_reason;
    }
  }
  return { data, chunk, text, finish };
}
