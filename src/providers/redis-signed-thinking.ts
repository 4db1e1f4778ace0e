import type { RedisLink } from '../cluster/redis-link.js';
import type { Obj } from '../json.js';
import { SIGNED_THINKING_TTL_MS, SignedThinking, type SignatureMemory } from './signed-thinking.js';

/**
 * The signed thinking every instance of a cluster remembers, through Redis (`<prefix>thinking:<provider>:<tool
 * call id>`, with the memory's TTL): a tool loop whose client sends back only `tool_calls` continues on any
 * instance. This instance's own memory answers first; Redis is asked only for what it lacks, and written in the
 * background. While Redis is away, each instance has its own, as without a cluster.
 */
export class RedisSignedThinking implements SignatureMemory {
  readonly #link: RedisLink;
  readonly #kind: string;
  readonly #local = new SignedThinking();

  constructor(link: RedisLink, kind: string) {
    this.#link = link;
    this.#kind = kind;
  }

  #key(id: string): string {
    return this.#link.key('thinking', this.#kind, id);
  }

  remember(toolCallId: string, blocks: Obj[]): void {
    this.#local.remember(toolCallId, blocks);
    if (!this.#link.available) return;
    this.#link.cmd.set(this.#key(toolCallId), JSON.stringify(blocks), 'PX', SIGNED_THINKING_TTL_MS).catch((err: unknown) => this.#link.noteFailure(err));
  }

  get(toolCallId: string): Obj[] | undefined {
    return this.#local.get(toolCallId);
  }

  async recall(ids: readonly string[], signal: AbortSignal): Promise<void> {
    if (!this.#link.available || signal.aborted) return;
    let found: (string | null)[];
    try {
      // One GET each (auto-pipelined): on a cluster the ids are on several shards, which one MGET cannot span.
      found = await this.#link.within(Promise.all(ids.map((id) => this.#link.cmd.get(this.#key(id)))));
    } catch (err) {
      this.#link.noteFailure(err);
      return;
    }
    found.forEach((text, i) => {
      if (text === null) return;
      try {
        const blocks: unknown = JSON.parse(text);
        if (Array.isArray(blocks)) this.#local.remember(ids[i]!, blocks as Obj[]);
      } catch {
        // not what this memory writes: as if nothing were remembered
      }
    });
  }
}
