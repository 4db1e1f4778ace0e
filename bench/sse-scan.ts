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

/** What the load client reads of one streamed answer, whatever its wire. */
export interface StreamScanner {
  frames: number;
  tokens: number;
  finishReason: string | undefined;
  done: boolean;
  error: boolean;
  /** Feeds one network chunk; returns how many tokens it completed. */
  feed(chunk: Buffer): number;
}

// A content delta with at least one character ("content":"" is the role chunk). Tolerates `": "` spacing.
const CONTENT = /"content":\s?"[^"]/g;
const FRAME = /(?:^|\n)data:/g;
const FINISH = /"finish_reason":\s?"([A-Za-z_]+)"/g;
const DONE = /data: \[DONE\]/g;
const ERROR = /"error":\s?\{/g;

/** One chat completion stream (OpenAI chunk format) as the client sees it. */
export class ChatStreamScanner implements StreamScanner {
  /** `data:` frames, including role, finish, usage and [DONE]. */
  frames = 0;
  /** Frames with non-empty `delta.content`: the relayed tokens. */
  tokens = 0;
  finishReason: string | undefined;
  done = false;
  error = false;
  #tail = '';

  /** Feeds one network chunk; returns how many tokens it completed. */
  feed(chunk: Buffer): number {
    const text = this.#tail + chunk.toString('latin1');
    const from = this.#tail.length;
    let tokens = 0;
    eachNew(CONTENT, text, from, () => tokens++);
    eachNew(FRAME, text, from, () => this.frames++);
    eachNew(FINISH, text, from, (m) => (this.finishReason = m[1]));
    if (!this.done) eachNew(DONE, text, from, () => (this.done = true));
    if (!this.error) eachNew(ERROR, text, from, () => (this.error = true));
    this.tokens += tokens;
    this.#tail = text.length > TAIL ? text.slice(-TAIL) : text;
    return tokens;
  }
}

// Anthropic's Messages stream: a token is a text_delta; the stream is whole at message_stop.
const TEXT_DELTA = /"type":\s?"text_delta"/g;
const STOP_REASON = /"stop_reason":\s?"([a-z_]+)"/g;
const MESSAGE_STOP = /event: message_stop\n/g;
const ERROR_EVENT = /event: error\n/g;

/** One Anthropic Messages stream as the client sees it: text_delta events are the tokens. */
export class MessagesStreamScanner implements StreamScanner {
  /** `data:` lines: every event (message_start, blocks, pings, message_delta, message_stop). */
  frames = 0;
  /** text_delta events: the relayed tokens. */
  tokens = 0;
  /** message_delta's stop_reason. */
  finishReason: string | undefined;
  done = false;
  error = false;
  #tail = '';

  feed(chunk: Buffer): number {
    const text = this.#tail + chunk.toString('latin1');
    const from = this.#tail.length;
    let tokens = 0;
    eachNew(TEXT_DELTA, text, from, () => tokens++);
    eachNew(FRAME, text, from, () => this.frames++);
    eachNew(STOP_REASON, text, from, (m) => (this.finishReason = m[1]));
    if (!this.done) eachNew(MESSAGE_STOP, text, from, () => (this.done = true));
    if (!this.error) eachNew(ERROR_EVENT, text, from, () => (this.error = true));
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
