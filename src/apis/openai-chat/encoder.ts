import type { Delta, Part, TokenUsage } from '../../providers/provider.js';
import { partsOf } from '../../streams/parts.js';
import type { Transcoder } from '../../streams/transcode.js';

/** Neutral usage as Chat Completions reports it. */
export function chatUsageOf(u: TokenUsage): Record<string, unknown> {
  return {
    prompt_tokens: u.input,
    completion_tokens: u.output,
    total_tokens: u.input + u.output,
    prompt_tokens_details: { cached_tokens: u.cacheRead ?? 0, ...(u.cacheWrite ? { cache_creation_tokens: u.cacheWrite } : {}) },
    completion_tokens_details: { reasoning_tokens: u.reasoning ?? 0 },
    ...(u.estimated ? { estimated: true } : {}),
  };
}

/** The chunk that reports usage, last and with no choices, as OpenAI sends it with include_usage. */
export function chatUsageChunk(top: { id: string; object: string; created: number; model: string }, usage: TokenUsage): Delta {
  const chunk = { ...top, choices: [], usage: chatUsageOf(usage) };
  return { wire: 'openai.chat', data: JSON.stringify(chunk), chunk, text: '', finish: undefined };
}

export interface ChatHead {
  /** The answer's id and model until the upstream names its own (its start part). */
  id: string;
  model: string;
  created: number;
}

/**
 * Another wire's answer as `chat.completion.chunk`s, one chunk per part. Token chunks have exactly the shape
 * token-chunk.ts recognises and go out unparsed, as an OpenAI upstream's would. A signed reasoning block ends
 * with a `thinking_blocks` delta holding the block whole (reasoning text and signature, LiteLLM's field), which
 * a client sends back on the assistant message so the next turn of a tool loop is accepted.
 */
export class ChatTranscoder implements Transcoder {
  readonly wire = 'openai.chat' as const;
  #head: string;
  #top: { id: string; object: string; created: number; model: string };
  #started = false;
  #thinking = '';
  #usage: TokenUsage | undefined;
  #finish: string | undefined;
  /** The upstream's tool call indexes (Anthropic's block indexes) as the 0, 1, 2... of Chat Completions. */
  readonly #tools = new Map<number, number>();

  constructor(head: ChatHead) {
    this.#top = { id: head.id, object: 'chat.completion.chunk', created: head.created, model: head.model };
    this.#head = this.#headOf();
  }

  #headOf(): string {
    return `${JSON.stringify(this.#top).slice(0, -1)},"choices":`;
  }

  #chunk(delta: Record<string, unknown>, finish: string | null = null, text = ''): Delta {
    const data = `${this.#head}[{"index":0,"delta":${JSON.stringify(delta)},"logprobs":null,"finish_reason":${finish === null ? 'null' : JSON.stringify(finish)}}]}`;
    return { wire: 'openai.chat', data, chunk: finish === null && text !== '' ? undefined : (JSON.parse(data) as Record<string, unknown>), text, finish: finish ?? undefined };
  }

  #role(out: Delta[]): void {
    if (this.#started) return;
    this.#started = true;
    out.push(this.#chunk({ role: 'assistant', content: '' }));
  }

  delta(d: Delta): Delta[] {
    const out: Delta[] = [];
    for (const p of partsOf(d)) this.#part(p, out);
    return out;
  }

  #part(p: Part, out: Delta[]): void {
    switch (p.type) {
      case 'start':
        if (!this.#started) {
          if (p.id) this.#top.id = p.id;
          if (p.model) this.#top.model = p.model;
          this.#head = this.#headOf();
        }
        if (p.usage) this.#usage = { ...p.usage };
        return this.#role(out);
      case 'text':
        this.#role(out);
        out.push(this.#chunk({ content: p.text }, null, p.text));
        return;
      case 'refusal':
        this.#role(out);
        out.push(this.#chunk({ refusal: p.text }));
        return;
      case 'reasoning':
        this.#role(out);
        this.#thinking += p.text;
        out.push(this.#chunk({ reasoning_content: p.text }));
        return;
      case 'reasoning_signature':
      case 'reasoning_redacted': {
        this.#role(out);
        const block = p.type === 'reasoning_signature' ? { type: 'thinking', thinking: this.#thinking, signature: p.signature } : { type: 'redacted_thinking', data: p.data };
        this.#thinking = '';
        out.push(this.#chunk({ thinking_blocks: [block] }));
        return;
      }
      case 'tool_call': {
        this.#role(out);
        let index = this.#tools.get(p.index);
        if (index === undefined) {
          index = this.#tools.size;
          this.#tools.set(p.index, index);
        }
        const call: Record<string, unknown> = { index };
        if (p.id !== undefined) call.id = p.id;
        if (p.id !== undefined || p.name !== undefined) call.type = 'function';
        call.function = p.name !== undefined ? { name: p.name, arguments: p.arguments } : { arguments: p.arguments };
        out.push(this.#chunk({ tool_calls: [call] }));
        return;
      }
      case 'finish':
        this.#role(out);
        this.#finish = p.reason;
        out.push(this.#chunk({}, p.reason));
        return;
      case 'usage':
        this.#usage = { ...this.#usage, ...p.usage };
        return;
    }
  }

  /** Usage goes out last, in a chunk of its own with no choices, as OpenAI sends it with include_usage. */
  end(): Delta[] {
    const out: Delta[] = [];
    if (this.#finish === undefined) {
      this.#role(out);
      out.push(this.#chunk({}, 'stop'));
    }
    if (this.#usage) out.push(chatUsageChunk(this.#top, this.#usage));
    return out;
  }
}
