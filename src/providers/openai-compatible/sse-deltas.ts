import { StringDecoder } from 'node:string_decoder';
import { createParser, type EventSourceMessage, type EventSourceParser, type ParseError } from 'eventsource-parser';
import { JarvisError } from '../../errors.js';
import type { ChatChunk, Delta, Finish } from '../provider.js';
import { tokenChunkText } from './token-chunk.js';
import { reportedError } from './upstream-errors.js';
import { isObject } from '../../json.js';

/**
 * The most text an upstream may send without completing an event. The parser holds an incomplete event in memory,
 * so without a bound a peer sending one endless line (or megabytes of non-SSE junk) would grow it forever. Real
 * chunks are a few hundred bytes; a whole answer in one chunk still fits.
 */
export const MAX_UPSTREAM_EVENT_CHARS = 1024 * 1024;

/** What one event of an upstream's stream is: a delta, nothing (a comment, `[DONE]`), or the end or a failure (set on `s`). */
export type OnEvent = (event: EventSourceMessage, s: ParseState) => Delta | undefined;

export interface ParseState {
  done: boolean;
  failure: JarvisError | undefined;
}

/** How one wire's stream is read: its events into deltas (a new one per stream when it keeps state), and what a cut-short stream is. */
export interface EventDecoder {
  readonly onEvent: OnEvent;
  /** The failure's message for a body that ended before the stream's end event. */
  readonly cutShort: string;
  /** For a wire with no end event (Gemini's), whether what came so far is a whole answer when the body ends. */
  readonly ended?: () => boolean;
}

/** An OpenAI chat stream's events: ends at `[DONE]`, fails on anything malformed and on an error event. */
const chatEvent: OnEvent = (event, s) => {
  if (event.data === '[DONE]') {
    s.done = true;
    return;
  }
  const text = tokenChunkText(event.data);
  if (text !== undefined) return { wire: 'openai.chat', data: event.data, chunk: undefined, text, finish: undefined };
  const chunk = parseObject(event.data, s);
  if (!chunk) return;
  // An `error` member that says something (an object, a message) is an error event; null, false or "" is not.
  if (chunk.error) {
    s.failure = reportedError(event.data, chunk.error);
    return;
  }
  return deltaOf(event.data, chunk);
};

/** The events that end a Responses API stream (it has no [DONE]). */
const RESPONSE_TERMINAL = new Set(['response.completed', 'response.incomplete', 'response.failed']);

/**
 * A Responses API stream's events (an upstream that speaks it natively): each event's data as sent, its text
 * when it is an output_text delta, and `finish` (the response's status) on the event that ends it. An `error`
 * event fails the stream with that event, to be relayed as it was sent.
 */
const responsesEvent: OnEvent = (event, s) => {
  const chunk = parseObject(event.data, s);
  if (!chunk) return;
  const type = chunk.type;
  if (type === 'error') {
    s.failure = reportedError(event.data, chunk);
    return;
  }
  const text = type === 'response.output_text.delta' && typeof chunk.delta === 'string' ? chunk.delta : '';
  const name = typeof type === 'string' ? type : undefined;
  if (name !== undefined && RESPONSE_TERMINAL.has(name)) {
    s.done = true;
    return { wire: 'openai.responses', event: name, data: event.data, chunk, text, finish: responseFinish(name, chunk.response) };
  }
  return { wire: 'openai.responses', event: name, data: event.data, chunk, text, finish: undefined };
};

/** A Responses API ending in the one finish vocabulary: completed is stop; incomplete says why; failed is an error. */
function responseFinish(type: string, response: unknown): Finish {
  if (type === 'response.completed') return 'stop';
  if (type === 'response.failed') return 'error';
  const reason = isObject(response) && isObject(response.incomplete_details) ? response.incomplete_details.reason : undefined;
  return reason === 'content_filter' ? 'content_filter' : 'length';
}

export const CHAT_EVENTS: EventDecoder = { onEvent: chatEvent, cutShort: 'upstream closed the stream before [DONE]' };
export const RESPONSES_EVENTS: EventDecoder = { onEvent: responsesEvent, cutShort: 'upstream closed the stream before the response ended' };

/** An event's data as a JSON object; anything else fails the stream (set on `s`). */
export function parseObject(data: string, s: ParseState): ChatChunk | undefined {
  let chunk: unknown;
  try {
    chunk = JSON.parse(data);
  } catch {
    s.failure = new JarvisError('JARVIS_ERR_UPSTREAM_STREAM', 'upstream sent a malformed stream event');
    return undefined;
  }
  // Valid JSON that is not an object (null, a number, an array) is as malformed as invalid JSON.
  if (!isObject(chunk)) {
    s.failure = new JarvisError('JARVIS_ERR_UPSTREAM_STREAM', 'upstream sent a stream event that is not a JSON object');
    return undefined;
  }
  return chunk;
}

/**
 * An upstream's SSE body, fed one network read at a time, as deltas: synchronous, so whoever reads the body
 * (undici's parser callbacks, or any async iterable of bytes) hands each read straight to it. Once `done` (the
 * stream's end event) or `failure` is set it reads nothing more; the deltas a read completed before either are
 * still returned by that read's `feed`.
 */
export class DeltaReader implements ParseState {
  done = false;
  failure: JarvisError | undefined = undefined;
  #pending: Delta[] = [];
  #started = false;
  // StringDecoder rather than TextDecoder: it keeps a character split across reads just the same, at a sixth of
  // the cost per read (TextDecoder's streaming mode was 6% of a flood's CPU). It does not drop a leading byte
  // order mark, which an event stream must ignore, so that is done here.
  readonly #decoder = new StringDecoder('utf8');
  readonly #parser: EventSourceParser;
  readonly #cutShort: string;
  readonly #ended: (() => boolean) | undefined;

  constructor(decoder: EventDecoder, maxEventChars = MAX_UPSTREAM_EVENT_CHARS) {
    const onEvent = decoder.onEvent;
    this.#cutShort = decoder.cutShort;
    this.#ended = decoder.ended;
    this.#parser = createParser({
      maxBufferSize: maxEventChars,
      onError: (error: ParseError) => {
        if (error.type === 'max-buffer-size-exceeded' && !this.failure) {
          this.failure = new JarvisError('JARVIS_ERR_UPSTREAM_STREAM', `upstream sent more than ${maxEventChars} characters without completing an event`);
        }
      },
      onEvent: (event: EventSourceMessage) => {
        if (this.done || this.failure) return;
        const delta = onEvent(event, this);
        if (delta) this.#pending.push(delta);
      },
    });
  }

  /** One network read: the deltas it completed (none: undefined). */
  feed(bytes: Buffer): Delta[] | undefined {
    if (this.done || this.failure) return undefined;
    let text = this.#decoder.write(bytes);
    if (!this.#started && text !== '') {
      this.#started = true;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    this.#parser.feed(text);
    if (this.#pending.length === 0) return undefined;
    const batch = this.#pending;
    this.#pending = [];
    return batch;
  }

  /** The body ended: a stream that had not reached its end event was cut short. */
  end(): void {
    if (this.done || this.failure) return;
    if (this.#ended?.()) this.done = true;
    else this.failure = new JarvisError('JARVIS_ERR_UPSTREAM_STREAM', this.#cutShort);
  }
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
  return { wire: 'openai.chat', data, chunk, text, finish };
}
