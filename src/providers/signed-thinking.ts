import { isObject, type Obj } from '../json.js';
import type { Delta } from './provider.js';

/** How many tool calls' thinking blocks are kept, and for how long: a tool loop's next turn comes within seconds. */
const MAX_ENTRIES = 10_000;
export const SIGNED_THINKING_TTL_MS = 60 * 60 * 1000;

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
 * `tool_calls`. A client that sends the `thinking_blocks` it got needs none of this.
 */
export interface SignatureMemory {
  /** Never waits: a shared store is written in the background. */
  remember(toolCallId: string, blocks: Obj[]): void;
  /** What this instance holds. */
  get(toolCallId: string): Obj[] | undefined;
  /** Brings in what other instances remembered of `ids` (a memory shared through Redis); resolves, never rejects. */
  recall?(ids: readonly string[], signal: AbortSignal): Promise<void>;
}

/** The first tool call id of each assistant message that carries no `thinking_blocks`: the turns a provider looks up. */
export function unsignedToolCalls(messages: unknown): string[] {
  const ids: string[] = [];
  if (!Array.isArray(messages)) return ids;
  for (const m of messages) {
    if (!isObject(m) || m.role !== 'assistant' || m.thinking_blocks !== undefined || !Array.isArray(m.tool_calls)) continue;
    const first: unknown = m.tool_calls[0];
    if (isObject(first) && typeof first.id === 'string') ids.push(first.id);
  }
  return ids;
}

/**
 * `open()`, once what other instances remember of the turn's unsigned tool calls is here: at once when this
 * instance knows them all, or the memory is its own only (nothing to wait for on the token path then).
 */
export function withRecalled(memory: SignatureMemory, messages: unknown, signal: AbortSignal, open: () => AsyncIterable<Delta[]>): AsyncIterable<Delta[]> {
  const missing = memory.recall ? unsignedToolCalls(messages).filter((id) => memory.get(id) === undefined) : [];
  if (missing.length === 0) return open();
  return (async function* recalled() {
    await memory.recall!(missing, signal);
    yield* open();
  })();
}

/** Within one instance: oldest first out, bounded. */
export class SignedThinking implements SignatureMemory {
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
    if (this.#now() - entry.at > SIGNED_THINKING_TTL_MS) {
      this.#byCall.delete(toolCallId);
      return undefined;
    }
    return entry.blocks;
  }
}
