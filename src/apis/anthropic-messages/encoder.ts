import type { Delta, Finish, Part, TokenUsage } from '../../providers/provider.js';
import { partsOf } from '../../streams/parts.js';
import type { Transcoder } from '../../streams/transcode.js';
import { FINISH_OF_STOP_REASON } from '../../providers/anthropic/stream.js';

/** An answer's id as Anthropic names messages: Jarvis's own (chatcmpl-...) under Anthropic's prefix. */
export function messageIdOf(completionId: string): string {
  return completionId.replace(/^chatcmpl-/, 'msg_');
}

/** The one finish vocabulary as Anthropic's stop reasons (the inverse of providers/anthropic/stream.ts). */
export const STOP_REASON_OF_FINISH: Record<string, string> = {
  stop: 'end_turn',
  length: 'max_tokens',
  tool_calls: 'tool_use',
  function_call: 'tool_use',
  content_filter: 'refusal',
  cancelled: 'end_turn',
};

export function stopReasonOf(finish: Finish): string {
  return STOP_REASON_OF_FINISH[finish] ?? 'end_turn';
}

/** Neutral usage as Anthropic reports it: input_tokens leaves out what the cache read and wrote. */
export function anthropicUsageOf(u: TokenUsage): Record<string, number | boolean> {
  const read = u.cacheRead ?? 0;
  const write = u.cacheWrite ?? 0;
  return { input_tokens: Math.max(0, u.input - read - write), cache_creation_input_tokens: write, cache_read_input_tokens: read, output_tokens: u.output, ...(u.estimated ? { estimated: true } : {}) };
}

export interface MessagesHead {
  id: string;
  model: string;
  /** Input tokens as estimated before the upstream says: message_start must carry a count, and a translated upstream reports its own only at the end. */
  inputTokens: number;
}

/** A Message as it begins: no content, no stop reason, its usage so far (the input, reported or estimated). */
export function newMessage(head: { id: string; model: string }, usage: TokenUsage): Record<string, unknown> {
  return { id: head.id, type: 'message', role: 'assistant', model: head.model, content: [], stop_reason: null, stop_sequence: null, usage: anthropicUsageOf({ ...usage, output: 0 }) };
}

/** The message_start of an answer. */
export function messageStart(head: { id: string; model: string }, usage: TokenUsage): Delta {
  return messagesEvent('message_start', { message: newMessage(head, usage) });
}

/** An Anthropic event as a delta of its wire. */
export function messagesEvent(type: string, body: Record<string, unknown>, text = '', finish?: Finish): Delta {
  const chunk = { type, ...body };
  return { wire: 'anthropic.messages', event: type, data: JSON.stringify(chunk), chunk, text, finish };
}

/**
 * Another wire's answer as Anthropic Messages events: message_start on the first part, one content block per
 * text, thinking or tool call (closed when the next begins), and at the end the last block's stop, a
 * message_delta with the stop reason and the whole usage, and message_stop. The stop reason and usage are held
 * to the end because an OpenAI upstream reports usage after its finish.
 */
export class MessagesTranscoder implements Transcoder {
  readonly wire = 'anthropic.messages' as const;
  readonly #head: MessagesHead;
  #started = false;
  /** The open block: its index and kind (a tool call's: 'tool:<upstream index>'). */
  #open: { index: number; kind: string } | undefined;
  #blocks = 0;
  readonly #tools = new Map<number, number>();
  #finish: (Part & { type: 'finish' }) | undefined;
  #usage: TokenUsage | undefined;
  /** The answer was a refusal (Chat Completions' `refusal`): Anthropic says so in its stop reason. */
  #refused = false;

  constructor(head: MessagesHead) {
    this.#head = { ...head };
  }

  delta(d: Delta): Delta[] {
    const out: Delta[] = [];
    for (const p of partsOf(d)) this.#part(p, out);
    return out;
  }

  #start(out: Delta[]): void {
    if (this.#started) return;
    this.#started = true;
    out.push(messageStart(this.#head, this.#usage ?? { input: this.#head.inputTokens, output: 0 }));
  }

  /** The block `kind` is open: the one open already, or a new one (the previous closed). */
  #block(kind: string, start: Record<string, unknown>, out: Delta[]): number {
    this.#start(out);
    if (this.#open?.kind === kind) return this.#open.index;
    this.#close(out);
    const index = this.#blocks++;
    this.#open = { index, kind };
    out.push(messagesEvent('content_block_start', { index, content_block: start }));
    return index;
  }

  #close(out: Delta[]): void {
    if (!this.#open) return;
    out.push(messagesEvent('content_block_stop', { index: this.#open.index }));
    this.#open = undefined;
  }

  #part(p: Part, out: Delta[]): void {
    switch (p.type) {
      case 'start':
        if (!this.#started) {
          if (p.model) this.#head.model = p.model;
          if (p.usage) this.#usage = { ...p.usage };
        }
        return this.#start(out);
      case 'text':
      case 'refusal': {
        if (p.type === 'refusal') this.#refused = true;
        const index = this.#block('text', { type: 'text', text: '' }, out);
        out.push(messagesEvent('content_block_delta', { index, delta: { type: 'text_delta', text: p.text } }, p.type === 'text' ? p.text : ''));
        return;
      }
      case 'reasoning': {
        const index = this.#block('thinking', { type: 'thinking', thinking: '', signature: '' }, out);
        out.push(messagesEvent('content_block_delta', { index, delta: { type: 'thinking_delta', thinking: p.text } }));
        return;
      }
      case 'reasoning_signature': {
        const index = this.#block('thinking', { type: 'thinking', thinking: '', signature: '' }, out);
        out.push(messagesEvent('content_block_delta', { index, delta: { type: 'signature_delta', signature: p.signature } }));
        // A signature ends its block: more thinking after it is another block.
        this.#close(out);
        return;
      }
      case 'reasoning_redacted':
        this.#block(`redacted:${this.#blocks}`, { type: 'redacted_thinking', data: p.data }, out);
        this.#close(out);
        return;
      case 'tool_call': {
        let block = this.#tools.get(p.index);
        if (block === undefined) {
          block = this.#block(`tool:${p.index}`, { type: 'tool_use', id: p.id ?? `toolu_${p.index}`, name: p.name ?? '', input: {} }, out);
          this.#tools.set(p.index, block);
        } else if (this.#open?.kind !== `tool:${p.index}`) {
          // A fragment of a call whose block was closed (calls interleaved): its index still names it.
          this.#start(out);
        }
        if (p.arguments !== '') out.push(messagesEvent('content_block_delta', { index: block, delta: { type: 'input_json_delta', partial_json: p.arguments } }));
        return;
      }
      case 'finish':
        this.#start(out);
        this.#finish = p;
        return;
      case 'usage':
        this.#usage = { ...this.#usage, ...p.usage };
        return;
    }
  }

  end(): Delta[] {
    const out: Delta[] = [];
    this.#start(out);
    this.#close(out);
    // An Anthropic upstream's own stop reason goes out as it was; any other is mapped from the finish.
    let reason = this.#finish ? (Object.hasOwn(FINISH_OF_STOP_REASON, this.#finish.native) ? this.#finish.native : stopReasonOf(this.#finish.reason)) : 'end_turn';
    if (this.#refused && reason === 'end_turn') reason = 'refusal';
    const usage = anthropicUsageOf(this.#usage ?? { input: this.#head.inputTokens, output: 0 });
    out.push(messagesEvent('message_delta', { delta: { stop_reason: reason, stop_sequence: this.#finish?.stopSequence ?? null }, usage }, '', this.#finish?.reason ?? 'stop'));
    out.push(messagesEvent('message_stop', {}));
    return out;
  }
}
