import type { Obj } from '../../json.js';
import type { Part, TokenUsage } from '../../providers/provider.js';
import { publicItem, type RealtimeItem } from './items.js';

/** A Realtime server event before its `event_id`. */
export type RealtimeEvent = Obj & { type: string };

/** How a response ended, as `response.done` says it (`status`, `status_details`). */
export type RealtimeEnding =
  | { status: 'completed' }
  | { status: 'incomplete'; reason: 'max_output_tokens' | 'content_filter' }
  | { status: 'cancelled'; reason: 'turn_detected' | 'client_cancelled' }
  | { status: 'failed'; error: { type: string; code: string | null; message: string } };

export interface RealtimeAnswerOptions {
  id: string;
  /** `auto`: its items join the default conversation (conversation.item.added / .done); `none`: out of band. */
  inConversation: boolean;
  conversationId: string | null;
  metadata: unknown;
  maxOutputTokens: number | 'inf';
  newItemId: () => string;
  /** Where an output item goes in the default conversation: it is inserted there, and its predecessor's id is told. */
  insert: (item: RealtimeItem) => string | null;
}

interface OpenCall {
  item: RealtimeItem;
  index: number;
}

/**
 * One response of the Realtime API, built from an answer's neutral parts (any upstream's wire), as the GA
 * events OpenAI sends in that order: response.created; for a text answer response.output_item.added,
 * conversation.item.added, response.content_part.added, response.output_text.delta..., .done,
 * response.content_part.done, response.output_item.done, conversation.item.done; a function call's
 * response.function_call_arguments.delta / .done; response.done with status, status_details, usage and output.
 * Reasoning has no place in it and is left out.
 */
export class RealtimeAnswer {
  readonly #opts: RealtimeAnswerOptions;
  readonly #output: RealtimeItem[] = [];
  #message: { item: RealtimeItem; index: number; text: string } | undefined;
  readonly #calls = new Map<number, OpenCall>();
  #finish: string | undefined;
  #usage: TokenUsage | undefined;

  constructor(opts: RealtimeAnswerOptions) {
    this.#opts = opts;
  }

  get id(): string {
    return this.#opts.id;
  }

  get maxOutputTokens(): number | 'inf' {
    return this.#opts.maxOutputTokens;
  }

  /** The assistant message it is saying, if any: what a truncate cuts. */
  get message(): RealtimeItem | undefined {
    return this.#message?.item;
  }

  response(status: string, details: Obj | null): Obj {
    const o = this.#opts;
    return {
      object: 'realtime.response',
      id: o.id,
      status,
      status_details: details,
      output: this.#output.map(publicItem),
      conversation_id: o.conversationId,
      output_modalities: ['text'],
      max_output_tokens: o.maxOutputTokens,
      audio: null,
      usage: status === 'in_progress' ? null : usageOf(this.#usage),
      metadata: o.metadata ?? null,
    };
  }

  created(): RealtimeEvent[] {
    return [{ type: 'response.created', response: this.response('in_progress', null) }];
  }

  parts(parts: readonly Part[]): RealtimeEvent[] {
    const out: RealtimeEvent[] = [];
    for (const p of parts) {
      switch (p.type) {
        case 'text':
        case 'refusal':
          if (p.text !== '') this.#text(p.text, out);
          break;
        case 'tool_call':
          this.#toolCall(p, out);
          break;
        case 'finish':
          this.#finish = p.reason;
          break;
        case 'usage':
          this.#usage = p.usage;
          break;
        default:
          break;
      }
    }
    return out;
  }

  #added(item: RealtimeItem, index: number, out: RealtimeEvent[]): void {
    this.#output.push(item);
    out.push({ type: 'response.output_item.added', response_id: this.#opts.id, output_index: index, item: publicItem(item) });
    if (this.#opts.inConversation) out.push({ type: 'conversation.item.added', previous_item_id: this.#opts.insert(item), item: publicItem(item) });
  }

  #text(text: string, out: RealtimeEvent[]): void {
    if (!this.#message) {
      const item: RealtimeItem = { id: this.#opts.newItemId(), object: 'realtime.item', type: 'message', status: 'in_progress', role: 'assistant', content: [] };
      this.#message = { item, index: this.#output.length, text: '' };
      this.#added(item, this.#message.index, out);
      item.content = [{ type: 'output_text', text: '' }];
      out.push({ type: 'response.content_part.added', response_id: this.#opts.id, item_id: item.id, output_index: this.#message.index, content_index: 0, part: { type: 'text', text: '' } });
    }
    const m = this.#message;
    m.text += text;
    (m.item.content as Obj[])[0] = { type: 'output_text', text: m.text };
    out.push({ type: 'response.output_text.delta', response_id: this.#opts.id, item_id: m.item.id, output_index: m.index, content_index: 0, delta: text });
  }

  #toolCall(p: Extract<Part, { type: 'tool_call' }>, out: RealtimeEvent[]): void {
    let call = this.#calls.get(p.index);
    if (!call) {
      const item: RealtimeItem = { id: this.#opts.newItemId(), object: 'realtime.item', type: 'function_call', status: 'in_progress', call_id: p.id ?? `call_${this.#opts.newItemId()}`, name: p.name ?? '', arguments: '' };
      call = { item, index: this.#output.length };
      this.#calls.set(p.index, call);
      this.#added(item, call.index, out);
    }
    if (p.name && !call.item.name) call.item.name = p.name;
    if (p.arguments !== '') {
      call.item.arguments = `${call.item.arguments as string}${p.arguments}`;
      out.push({ type: 'response.function_call_arguments.delta', response_id: this.#opts.id, item_id: call.item.id, output_index: call.index, call_id: call.item.call_id, delta: p.arguments });
    }
  }

  /** How the answer ended by itself: completed, or incomplete by its upstream's limit or filter. */
  ending(): RealtimeEnding {
    if (this.#finish === 'length') return { status: 'incomplete', reason: 'max_output_tokens' };
    if (this.#finish === 'content_filter') return { status: 'incomplete', reason: 'content_filter' };
    return { status: 'completed' };
  }

  /** Every open item closed (incomplete unless the response completed), then response.done. */
  end(ending: RealtimeEnding): RealtimeEvent[] {
    const out: RealtimeEvent[] = [];
    const itemStatus = ending.status === 'completed' ? 'completed' : 'incomplete';
    const id = this.#opts.id;
    const done = (item: RealtimeItem, index: number) => {
      item.status = itemStatus;
      out.push({ type: 'response.output_item.done', response_id: id, output_index: index, item: publicItem(item) });
      if (this.#opts.inConversation) out.push({ type: 'conversation.item.done', previous_item_id: null, item: publicItem(item) });
    };
    const m = this.#message;
    if (m) {
      // Cut short while it was said: the model is told, next turn, that it was not all heard.
      if (ending.status === 'cancelled') m.item.interrupted = true;
      out.push({ type: 'response.output_text.done', response_id: id, item_id: m.item.id, output_index: m.index, content_index: 0, text: m.text });
      out.push({ type: 'response.content_part.done', response_id: id, item_id: m.item.id, output_index: m.index, content_index: 0, part: { type: 'text', text: m.text } });
      done(m.item, m.index);
    }
    for (const c of this.#calls.values()) {
      out.push({ type: 'response.function_call_arguments.done', response_id: id, item_id: c.item.id, output_index: c.index, call_id: c.item.call_id, name: c.item.name, arguments: c.item.arguments });
      done(c.item, c.index);
    }
    const details =
      ending.status === 'completed'
        ? null
        : ending.status === 'failed'
          ? { type: 'failed', error: ending.error }
          : { type: ending.status, reason: ending.reason };
    out.push({ type: 'response.done', response: this.response(ending.status, details) });
    return out;
  }
}

/** Usage as the Realtime API reports it: text tokens only. */
function usageOf(u: TokenUsage | undefined): Obj | null {
  if (!u) return null;
  const cached = u.cacheRead ?? 0;
  return {
    total_tokens: u.input + u.output,
    input_tokens: u.input,
    output_tokens: u.output,
    input_token_details: { text_tokens: u.input, audio_tokens: 0, image_tokens: 0, cached_tokens: cached, cached_tokens_details: { text_tokens: cached, audio_tokens: 0, image_tokens: 0 } },
    output_token_details: { text_tokens: u.output, audio_tokens: 0 },
  };
}
