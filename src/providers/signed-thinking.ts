import type { Obj } from '../json.js';

/** How many tool calls' thinking blocks are kept, and for how long: a tool loop's next turn comes within seconds. */
const MAX_ENTRIES = 10_000;
const TTL_MS = 60 * 60 * 1000;

/**
 * Marks a Gemini thought signature in a thinking block (`signature`), where it travels as Anthropic's do: each
 * provider takes back only its own, so a conversation that moves between them (a route's failover) is not
 * refused for the other's signature.
 */
export const GEMINI_SIGNATURE_PREFIX = 'gemini:';

export const isGeminiSignature = (signature: unknown): signature is string => typeof signature === 'string' && signature.startsWith(GEMINI_SIGNATURE_PREFIX);

/**
 * The signed thinking that preceded each tool call a provider made, by tool call id: Anthropic and Gemini refuse
 * the next turn of a tool loop unless the assistant turn carries it back, and most OpenAI clients send back only
 * `tool_calls`. A client that sends the `thinking_blocks` it got needs none of this (and that is what works across
 * instances); this covers the rest within one instance. Oldest first out, bounded.
 */
export class SignedThinking {
  readonly #byCall = new Map<string, { blocks: Obj[]; at: number }>();
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  remember(toolCallId: string, blocks: Obj[]): void {
    this.#byCall.delete(toolCallId);
    this.#byCall.set(toolCallId, { blocks, at: this.#now() });
    if (this.#byCall.size > MAX_ENTRIES) this.#byCall.delete(this.#byCall.keys().next().value!);
  }

  get(toolCallId: string): Obj[] | undefined {
    const entry = this.#byCall.get(toolCallId);
    if (!entry) return undefined;
    if (this.#now() - entry.at > TTL_MS) {
      this.#byCall.delete(toolCallId);
      return undefined;
    }
    return entry.blocks;
  }
}
