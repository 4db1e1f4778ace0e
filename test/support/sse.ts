// Reading server-sent events in tests, one way everywhere: a body split into blocks as bytes arrive
// (forEachSseBlock), a block's fields as a client's SSE parser reads them (parseSseBlock), a whole text's events
// or data payloads (sseEvents, sseData, readSse), and a body read until something has arrived (SseReader).

/** One event as a client reads it: its fields (data lines joined with \n) and the comment lines that came with it. */
export interface SseEvent {
  event?: string;
  data?: string;
  id?: string;
  retry?: string;
  /** Comment lines, as written (`: ping`). */
  comments: string[];
  /** Lines that are neither a comment nor a field SSE defines: a well-formed stream has none. */
  other: string[];
}

/**
 * The fields of one block (the text between blank lines), as SSE defines them: `name: value` or `name:value`,
 * lines ended by \n, \r\n or \r, every `data:` line of the event joined with \n.
 */
export function parseSseBlock(block: string): SseEvent {
  const out: SseEvent = { comments: [], other: [] };
  const data: string[] = [];
  for (const line of block.split(/\r\n|\r|\n/)) {
    if (line === '') continue;
    if (line.startsWith(':')) {
      out.comments.push(line);
      continue;
    }
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(line[colon + 1] === ' ' ? colon + 2 : colon + 1);
    if (field === 'data') data.push(value);
    else if (field === 'event') out.event = value;
    else if (field === 'id') out.id = value;
    else if (field === 'retry') out.retry = value;
    else out.other.push(line);
  }
  if (data.length > 0) out.data = data.join('\n');
  return out;
}

/** The blocks of a whole SSE text (a last one not ended by a blank line included), without empty ones. */
export function sseBlocks(text: string): string[] {
  return text
    .replace(/\r\n?/g, '\n')
    .split('\n\n')
    .filter((b) => b.trim() !== '');
}

/** Every event of a whole SSE text, comment-only blocks included. */
export function sseEvents(text: string): SseEvent[] {
  return sseBlocks(text).map(parseSseBlock);
}

/** The data payloads of a whole SSE text, in order (`[DONE]` included). */
export function sseData(text: string): string[] {
  return sseEvents(text).flatMap((e) => (e.data === undefined ? [] : [e.data]));
}

/** Reads an SSE response body into its events' data payloads (and, when asked, their comment lines, in order). */
export async function readSse(res: Response, opts: { comments?: boolean } = {}): Promise<string[]> {
  const out: string[] = [];
  for (const e of sseEvents(await res.text())) {
    if (opts.comments) out.push(...e.comments);
    if (e.data !== undefined) out.push(e.data);
  }
  return out;
}

/**
 * Splits an SSE body into its blocks (the text between blank lines) as bytes arrive. `onText` sees each decoded
 * piece after its complete blocks were handed out, for callers that also keep the raw text or wake waiters.
 */
export async function forEachSseBlock(
  body: AsyncIterable<Uint8Array>,
  onBlock: (block: string) => void,
  onText?: (text: string) => void,
): Promise<void> {
  const decoder = new TextDecoder();
  let buf = '';
  for await (const chunk of body) {
    const text = decoder.decode(chunk, { stream: true });
    buf += text;
    for (let i = buf.indexOf('\n\n'); i >= 0; i = buf.indexOf('\n\n')) {
      onBlock(buf.slice(0, i));
      buf = buf.slice(i + 2);
    }
    onText?.(text);
  }
  buf += decoder.decode();
  if (buf.trim()) onBlock(buf);
}

/**
 * A streamed body read as it arrives: `until` reads until its text so far satisfies a condition (a first token,
 * both choices begun), `rest` reads it to the end; `text` is everything read, `data` its data payloads.
 */
export class SseReader {
  text = '';
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  readonly #decoder = new TextDecoder();

  constructor(body: ReadableStream<Uint8Array>) {
    this.#reader = body.getReader();
  }

  /** Reads until `ready(text)` holds; throws, naming `what`, if the body ends first. */
  async until(ready: (text: string) => boolean, what = 'the awaited text'): Promise<string> {
    while (!ready(this.text)) {
      const { done, value } = await this.#reader.read();
      if (done) throw new Error(`stream ended before ${what}: ${this.text}`);
      this.text += this.#decoder.decode(value, { stream: true });
    }
    return this.text;
  }

  /** Reads to the end of the body and returns the whole text. */
  async rest(): Promise<string> {
    for (;;) {
      const { done, value } = await this.#reader.read();
      if (done) break;
      this.text += this.#decoder.decode(value, { stream: true });
    }
    this.text += this.#decoder.decode();
    return this.text;
  }

  /** The data payloads of what was read so far. */
  get data(): string[] {
    return sseData(this.text);
  }
}
