/** Bytes of an answer's end kept to find its usage: a usage object is small, and comes last. */
const TAIL = 2048;
const USAGE = /"usage"\s*:\s*(\{[^{}]*(?:\{[^{}]*\}[^{}]*)*\})/g;

/**
 * The token counts of a relayed answer (completions, embeddings), read from its last bytes as they pass: the
 * upstream's `usage` when it sent one, else Jarvis's estimate (the prompt's characters / 4; a streamed answer's
 * events one token each).
 */
export class RelayMeter {
  #tail = '';
  #events = 0;
  #bytes = 0;
  readonly #promptChars: number;

  constructor(body: Record<string, unknown>) {
    this.#promptChars = charsOf(body.prompt) + charsOf(body.input);
  }

  observe(chunk: Buffer | string): void {
    const text = typeof chunk === 'string' ? chunk : chunk.toString('utf8');
    this.#bytes += text.length;
    for (let i = text.indexOf('data: '); i >= 0; i = text.indexOf('data: ', i + 6)) this.#events++;
    this.#tail = (this.#tail + text).slice(-TAIL);
  }

  get reached(): boolean {
    return this.#bytes > 0;
  }

  usage(): { input: number; output: number; estimated: boolean } {
    let last: string | undefined;
    for (const m of this.#tail.matchAll(USAGE)) last = m[1];
    if (last) {
      try {
        const u = JSON.parse(last) as { prompt_tokens?: unknown; completion_tokens?: unknown };
        if (typeof u.prompt_tokens === 'number') return { input: u.prompt_tokens, output: typeof u.completion_tokens === 'number' ? u.completion_tokens : 0, estimated: false };
      } catch {
        // Cut mid-object: estimated below.
      }
    }
    // A streamed answer ends with a [DONE] event that is not a token.
    return { input: Math.ceil(this.#promptChars / 4), output: Math.max(0, this.#events - 1), estimated: true };
  }
}

function charsOf(v: unknown): number {
  if (typeof v === 'string') return v.length;
  if (Array.isArray(v)) return v.reduce((n: number, x) => n + (typeof x === 'string' ? x.length : Array.isArray(x) ? x.length : 0), 0);
  return 0;
}
