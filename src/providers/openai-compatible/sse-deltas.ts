import { StringDecoder } from 'node:string_decoder';
import { createParser, type EventSourceMessage, type ParseError } from 'eventsource-parser';
import { JarvisError } from '../../errors.js';
import type { Delta, Usage } from '../provider.js';
import { tokenChunkText } from './token-chunk.js';

interface ChunkChoice {
  delta?: Record<string, unknown> & { content?: unknown; role?: unknown };
  finish_reason?: unknown;
}
interface Chunk {
  choices?: ChunkChoice[];
  usage?: Usage | null;
  error?: { message?: unknown; code?: unknown };
}

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
        if (text !== '') pending.push({ type: 'text', text });
        return;
      }
      let chunk: Chunk;
      try {
        chunk = JSON.parse(event.data) as Chunk;
      } catch {
        failure = new JarvisError('JARVIS_ERR_UPSTREAM_STREAM', 'upstream sent a malformed stream event');
        return;
      }
      // Valid JSON that is not a chunk object (null, a number, an array) is as malformed as invalid JSON.
      if (!isObject(chunk as unknown)) {
        failure = new JarvisError('JARVIS_ERR_UPSTREAM_STREAM', 'upstream sent a stream event that is not a JSON object');
        return;
      }
      collect(chunk, pending);
      if (chunk.error) {
        const msg = typeof chunk.error.message === 'string' ? chunk.error.message : 'upstream reported an error';
        failure = new JarvisError('JARVIS_ERR_UPSTREAM_STREAM', `upstream error: ${msg}`);
      }
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

/** Only the OpenAI chunk shape counts; anything else in the same place (a string delta, a null choice) is ignored. */
export function collect(chunk: Chunk, out: Delta[]): void {
  const choice = Array.isArray(chunk.choices) && isObject(chunk.choices[0]) ? chunk.choices[0] : undefined;
  if (isObject(choice?.delta)) {
    const { content, role: _role, ...rest } = choice.delta;
    if (typeof content === 'string' && content !== '') out.push({ type: 'text', text: content });
    for (const key in rest) {
      if (rest[key] !== null && rest[key] !== undefined) {
        out.push({ type: 'delta', delta: rest });
        break;
      }
    }
  }
  if (typeof choice?.finish_reason === 'string') out.push({ type: 'finish', reason: choice.finish_reason });
  if (isObject(chunk.usage) && typeof chunk.usage.completion_tokens === 'number') out.push({ type: 'usage', usage: chunk.usage });
}
