/** How much of a prompt or an answer `JARVIS_LOG_CONTENT=1` puts into a log line. */
export const LOG_CONTENT_CHARS = 2000;

/** `text` cut to `max` characters, with "…" marking that something was cut. */
export function excerpt(text: string, max = LOG_CONTENT_CHARS): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

/**
 * The start of a streamed answer, for the log: keeps at most `max` characters however long the answer grows, so
 * logging content never holds a whole essay per stream.
 */
export class ContentExcerpt {
  #text = '';
  #cut = false;

  constructor(readonly max = LOG_CONTENT_CHARS) {}

  add(text: string): void {
    const room = this.max - this.#text.length;
    if (text.length > room) this.#cut = true;
    if (room > 0) this.#text += text.slice(0, room);
  }

  get text(): string {
    return this.#cut ? `${this.#text}…` : this.#text;
  }
}
