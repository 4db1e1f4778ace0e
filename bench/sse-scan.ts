// Cheap SSE scanning for the load client: the client must stay much faster than the gateway it measures, so it
// does not JSON-parse every chunk. It finds a few fixed patterns in each network chunk (decoded as latin1: the
// patterns are ASCII), carrying a short tail across chunk boundaries so a pattern split in two is still seen once.

const TAIL = 64;

/** Counts, in `text`, the matches of the global regex `re` that end after `from` (i.e. were not seen before). */
function eachNew(re: RegExp, text: string, from: number, fn: (m: RegExpExecArray) => void): void {
  re.lastIndex = 0;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    if (m.index + m[0].length > from) fn(m);
  }
}

/** The patterns that say, in one wire's stream, what the load client counts. All global regexes. */
export interface WirePatterns {
  /** A token: one per relayed piece of answer text. */
  token: RegExp;
  /** The stop reason, in its first group. */
  finish: RegExp;
  /** The stream is whole. */
  done: RegExp;
  error: RegExp;
}

const FRAME = /(?:^|\n)data:/g;

/** A chat completion stream (OpenAI chunk format): a content delta with at least one character is a token ("content":"" is the role chunk). Tolerates `": "` spacing. */
export const CHAT_STREAM: WirePatterns = {
  token: /"content":\s?"[^"]/g,
  finish: /"finish_reason":\s?"([A-Za-z_]+)"/g,
  done: /data: \[DONE\]/g,
  error: /"error":\s?\{/g,
};

/** Anthropic's Messages stream: a token is a text_delta; the stream is whole at message_stop. */
export const MESSAGES_STREAM: WirePatterns = {
  token: /"type":\s?"text_delta"/g,
  finish: /"stop_reason":\s?"([a-z_]+)"/g,
  done: /event: message_stop\n/g,
  error: /event: error\n/g,
};

/**
 * The Responses API's stream (`POST /v1/responses`, `stream: true`): a token is a `response.output_text.delta`
 * event; the stream is whole at its terminal event, `response.completed` (or `response.incomplete`, which a
 * max_output_tokens cut ends with: the warm-up's short answers). The finish is that event's name.
 */
export const RESPONSES_STREAM: WirePatterns = {
  token: /event: response\.output_text\.delta\n/g,
  finish: /event: response\.(completed|incomplete|failed)\n/g,
  done: /event: response\.(?:completed|incomplete)\n/g,
  error: /event: (?:error|response\.failed)\n/g,
};

/** One streamed answer as the load client sees it, in the wire `patterns` describe. */
export class StreamScanner {
  /** `data:` frames: every chunk or event, the ones that are not tokens included. */
  frames = 0;
  /** The relayed tokens. */
  tokens = 0;
  finishReason: string | undefined;
  done = false;
  error = false;
  #tail = '';
  readonly #p: WirePatterns;

  constructor(patterns: WirePatterns) {
    this.#p = patterns;
  }

  /** Feeds one network chunk; returns how many tokens it completed. */
  feed(chunk: Buffer): number {
    const text = this.#tail + chunk.toString('latin1');
    const from = this.#tail.length;
    let tokens = 0;
    eachNew(this.#p.token, text, from, () => tokens++);
    eachNew(FRAME, text, from, () => this.frames++);
    eachNew(this.#p.finish, text, from, (m) => (this.finishReason = m[1]));
    if (!this.done) eachNew(this.#p.done, text, from, () => (this.done = true));
    if (!this.error) eachNew(this.#p.error, text, from, () => (this.error = true));
    this.tokens += tokens;
    this.#tail = text.length > TAIL ? text.slice(-TAIL) : text;
    return tokens;
  }
}

const EVENT = /\nevent: ([a-z_.]+)\n/g;

/** A `/v1/events` SSE stream: counts events by type without parsing their JSON. */
export class EventStreamCounter {
  readonly byType = new Map<string, number>();
  total = 0;
  connected = false;
  #tail = '\n';

  feed(chunk: Buffer): void {
    const text = this.#tail + chunk.toString('latin1');
    const from = this.#tail.length;
    if (!this.connected && text.includes(': connected')) this.connected = true;
    eachNew(EVENT, text, from, (m) => {
      const type = m[1]!;
      this.byType.set(type, (this.byType.get(type) ?? 0) + 1);
      this.total++;
    });
    this.#tail = text.length > TAIL ? text.slice(-TAIL) : text;
  }
}
