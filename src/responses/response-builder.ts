import { chatUsageOf } from '../apis/openai-chat/encoder.js';
import type { ChatChunk, Part } from '../providers/provider.js';
import type { Item } from './translate.js';
import { encodeSignedThinking } from './signed-reasoning.js';
import { isObject, type Obj } from '../json.js';

/** A Responses stream event, before its `sequence_number`. */
export type ResponseEvent = Obj & { type: string };

/** Why a response is not complete: the upstream's limit, its filter, or Jarvis's own (barge-in, a client gone). */
export type IncompleteReason = 'max_output_tokens' | 'content_filter' | 'interrupted' | 'steered';

/** The request's own members a Response echoes back. */
export interface ResponseHead {
  id: string;
  created_at: number;
  model: string;
  request: Obj;
}

interface OpenText {
  index: number;
  item: Obj;
  text: string;
}

function usageOf(u: Obj): Obj {
  const num = (v: unknown) => (typeof v === 'number' ? v : 0);
  const prompt = isObject(u.prompt_tokens_details) ? u.prompt_tokens_details : {};
  const completion = isObject(u.completion_tokens_details) ? u.completion_tokens_details : {};
  return {
    input_tokens: num(u.prompt_tokens),
    input_tokens_details: { cached_tokens: num(prompt.cached_tokens) },
    output_tokens: num(u.completion_tokens),
    output_tokens_details: { reasoning_tokens: num(completion.reasoning_tokens) },
    total_tokens: num(u.total_tokens),
    ...(u.estimated === true ? { estimated: true } : {}),
  };
}

/** A message's content part as the Responses API writes it. */
function partOf(kind: 'output_text' | 'refusal', text: string): Obj {
  return kind === 'output_text' ? { type: 'output_text', text, annotations: [], logprobs: [] } : { type: 'refusal', refusal: text };
}

/**
 * A Chat Completions stream, chunk by chunk, as the Responses API's semantic events and the Response they build:
 * choice 0's reasoning, text and tool calls become output items (reasoning, message, function_call) in the order
 * they begin, each opened (`output_item.added`), filled (`*.delta`) and closed (`*.done`, `output_item.done`);
 * the stream ends `response.completed`, or `response.incomplete` with its reason. Every event gets the next
 * `sequence_number`. Ids are Jarvis's (`msg_`, `fc_`, `rs_` from the response id): chunks carry none to keep.
 */
export class ResponseBuilder {
  readonly #head: ResponseHead;
  readonly #output: Obj[] = [];
  #seq = 0;
  #message: { index: number; item: Obj; parts: { kind: 'output_text' | 'refusal'; text: string }[] } | undefined;
  #reasoning: OpenText | undefined;
  /** Signed thinking blocks of the reasoning item (signed-reasoning.ts). */
  readonly #signed: Obj[] = [];
  readonly #calls = new Map<number, OpenText>();
  /** Reasoning text since the last signature: what a signed thinking block built from parts holds. */
  #thinking = '';
  #usage: Obj | null = null;
  #status: 'in_progress' | 'completed' | 'incomplete' | 'failed' = 'in_progress';
  #incomplete: IncompleteReason | undefined;
  #error: Obj | null = null;
  #finish: string | undefined;
  #ids = 0;
  #model: string;

  constructor(head: ResponseHead) {
    this.#head = head;
    this.#model = head.model;
  }

  /** The model that serves the answer, when a route chose one of its targets: what the Response says from then on. */
  serve(model: string): void {
    this.#model = model;
  }

  #event(type: string, fields: Obj): ResponseEvent {
    return { type, sequence_number: this.#seq++, ...fields };
  }

  #id(prefix: string): string {
    return `${prefix}_${this.#head.id.slice(5)}${(this.#ids++).toString(16).padStart(2, '0')}`;
  }

  /** `response.created` and `response.in_progress`. */
  start(): ResponseEvent[] {
    return [this.#event('response.created', { response: this.response() }), this.#event('response.in_progress', { response: this.response() })];
  }

  /**
   * The events a chunk of exactly the token-chunk shape makes (token-chunk.ts; the stream passes it unparsed): what
   * add() makes of it, without parsing it again, since that shape carries choice 0's text and nothing else.
   */
  text(text: string): ResponseEvent[] {
    return text === '' ? [] : this.#messageDelta('output_text', text);
  }

  /**
   * The events an answer's neutral parts make (any upstream's wire, streams/parts.ts): what add() makes of the
   * Chat Completions chunks another wire would be transcoded into, without building them.
   */
  parts(parts: readonly Part[]): ResponseEvent[] {
    const out: ResponseEvent[] = [];
    for (const p of parts) {
      switch (p.type) {
        case 'text':
        case 'refusal':
          if (p.text !== '') out.push(...this.#messageDelta(p.type === 'text' ? 'output_text' : 'refusal', p.text));
          break;
        case 'reasoning':
          if (p.text === '') break;
          this.#thinking += p.text;
          out.push(...this.#reasoningDelta(p.text));
          break;
        case 'reasoning_signature':
        case 'reasoning_redacted':
          // A signature may come with no reasoning text to show (Gemini without thought summaries): its item opens empty.
          if (!this.#reasoning) out.push(...this.#openReasoning());
          this.#signed.push(p.type === 'reasoning_signature' ? { type: 'thinking', thinking: this.#thinking, signature: p.signature } : { type: 'redacted_thinking', data: p.data });
          this.#thinking = '';
          this.#reasoning!.item.encrypted_content = encodeSignedThinking(this.#signed);
          break;
        case 'tool_call':
          out.push(...this.#callDelta({ index: p.index, ...(p.id !== undefined ? { id: p.id } : {}), function: { ...(p.name !== undefined ? { name: p.name } : {}), arguments: p.arguments } }));
          break;
        case 'finish':
          this.#finish = p.reason;
          break;
        case 'usage':
          this.#usage = usageOf(chatUsageOf(p.usage));
          break;
        case 'start':
          break;
      }
    }
    return out;
  }

  /** The events one chunk makes. */
  add(chunk: ChatChunk): ResponseEvent[] {
    const out: ResponseEvent[] = [];
    if (isObject(chunk.usage)) this.#usage = usageOf(chunk.usage);
    const choice = Array.isArray(chunk.choices) ? (chunk.choices as unknown[]).find((c) => isObject(c) && (c.index ?? 0) === 0) : undefined;
    if (!isObject(choice)) return out;
    const delta = isObject(choice.delta) ? choice.delta : {};
    const reasoning = typeof delta.reasoning_content === 'string' ? delta.reasoning_content : typeof delta.reasoning === 'string' ? delta.reasoning : '';
    if (reasoning !== '') out.push(...this.#reasoningDelta(reasoning));
    if (Array.isArray(delta.thinking_blocks) && this.#reasoning) {
      // An upstream's signed thinking (Anthropic), whole once signed: kept in the reasoning item for the next turn.
      this.#signed.push(...(delta.thinking_blocks as unknown[]).filter(isObject));
      this.#reasoning.item.encrypted_content = encodeSignedThinking(this.#signed);
    }
    if (typeof delta.content === 'string' && delta.content !== '') out.push(...this.#messageDelta('output_text', delta.content));
    if (typeof delta.refusal === 'string' && delta.refusal !== '') out.push(...this.#messageDelta('refusal', delta.refusal));
    if (Array.isArray(delta.tool_calls)) for (const call of delta.tool_calls) if (isObject(call)) out.push(...this.#callDelta(call));
    if (typeof choice.finish_reason === 'string') this.#finish = choice.finish_reason;
    return out;
  }

  #openReasoning(): ResponseEvent[] {
    const item = { id: this.#id('rs'), type: 'reasoning', summary: [], content: [{ type: 'reasoning_text', text: '' }], status: 'in_progress' };
    this.#reasoning = { index: this.#output.length, item, text: '' };
    this.#output.push(item);
    return [
      this.#event('response.output_item.added', { output_index: this.#reasoning.index, item: { ...item, content: [] } }),
      this.#event('response.content_part.added', { item_id: item.id, output_index: this.#reasoning.index, content_index: 0, part: { type: 'reasoning_text', text: '' } }),
    ];
  }

  #reasoningDelta(text: string): ResponseEvent[] {
    const out = this.#reasoning ? [] : this.#openReasoning();
    const r = this.#reasoning!;
    r.text += text;
    out.push(this.#event('response.reasoning_text.delta', { item_id: r.item.id, output_index: r.index, content_index: 0, delta: text }));
    return out;
  }

  /** Text or refusal into the message (opened on the first), each its own content part, in the order they began. */
  #messageDelta(kind: 'output_text' | 'refusal', text: string): ResponseEvent[] {
    // The token path: the message's last part takes more text. One event, nothing else allocated but its object.
    const open = this.#message;
    const last = open?.parts.at(-1);
    if (last?.kind === kind && open!.item.status === 'in_progress' && this.#reasoning?.item.status !== 'in_progress') {
      const at = open!.parts.length - 1;
      last.text += text;
      (open!.item.content as Obj[])[at]![kind === 'output_text' ? 'text' : 'refusal'] = last.text;
      return [
        kind === 'output_text'
          ? { type: 'response.output_text.delta', sequence_number: this.#seq++, item_id: open!.item.id, output_index: open!.index, content_index: at, delta: text, logprobs: [] }
          : { type: 'response.refusal.delta', sequence_number: this.#seq++, item_id: open!.item.id, output_index: open!.index, content_index: at, delta: text },
      ];
    }
    const out: ResponseEvent[] = this.#closeReasoning();
    if (!this.#message) {
      const item = { id: this.#id('msg'), type: 'message', status: 'in_progress', role: 'assistant', content: [] as Obj[] };
      this.#message = { index: this.#output.length, item, parts: [] };
      this.#output.push(item);
      out.push(this.#event('response.output_item.added', { output_index: this.#message.index, item: { ...item, content: [] } }));
    }
    const m = this.#message;
    let at = m.parts.findIndex((p) => p.kind === kind);
    if (at < 0) {
      at = m.parts.push({ kind, text: '' }) - 1;
      (m.item.content as Obj[]).push(partOf(kind, ''));
      out.push(this.#event('response.content_part.added', { item_id: m.item.id, output_index: m.index, content_index: at, part: partOf(kind, '') }));
    }
    const part = m.parts[at]!;
    part.text += text;
    (m.item.content as Obj[])[at] = partOf(kind, part.text);
    const fields = { item_id: m.item.id, output_index: m.index, content_index: at, delta: text };
    out.push(kind === 'output_text' ? this.#event('response.output_text.delta', { ...fields, logprobs: [] }) : this.#event('response.refusal.delta', fields));
    return out;
  }

  #callDelta(call: Obj): ResponseEvent[] {
    const out: ResponseEvent[] = [...this.#closeReasoning()];
    const at = typeof call.index === 'number' ? call.index : 0;
    const fn = isObject(call.function) ? call.function : {};
    let open = this.#calls.get(at);
    if (!open) {
      const item = { id: this.#id('fc'), type: 'function_call', status: 'in_progress', call_id: typeof call.id === 'string' ? call.id : this.#id('call'), name: typeof fn.name === 'string' ? fn.name : '', arguments: '' };
      open = { index: this.#output.length, item, text: '' };
      this.#calls.set(at, open);
      this.#output.push(item);
      out.push(this.#event('response.output_item.added', { output_index: open.index, item: { ...item } }));
    }
    if (typeof fn.arguments === 'string' && fn.arguments !== '') {
      open.text += fn.arguments;
      open.item.arguments = open.text;
      out.push(this.#event('response.function_call_arguments.delta', { item_id: open.item.id, output_index: open.index, delta: fn.arguments }));
    }
    return out;
  }

  #closeReasoning(): ResponseEvent[] {
    const r = this.#reasoning;
    if (!r || r.item.status !== 'in_progress') return [];
    r.item.status = 'completed';
    r.item.content = [{ type: 'reasoning_text', text: r.text }];
    return [
      this.#event('response.reasoning_text.done', { item_id: r.item.id, output_index: r.index, content_index: 0, text: r.text }),
      this.#event('response.content_part.done', { item_id: r.item.id, output_index: r.index, content_index: 0, part: { type: 'reasoning_text', text: r.text } }),
      this.#event('response.output_item.done', { output_index: r.index, item: { ...r.item } }),
    ];
  }

  /** Closes every open item with `status` (`completed`, or `incomplete` when the answer was cut short). */
  #closeAll(status: 'completed' | 'incomplete'): ResponseEvent[] {
    const out = this.#closeReasoning();
    const m = this.#message;
    if (m && m.item.status === 'in_progress') {
      m.item.status = status;
      m.parts.forEach((p, at) => {
        const fields = { item_id: m.item.id, output_index: m.index, content_index: at };
        out.push(p.kind === 'output_text' ? this.#event('response.output_text.done', { ...fields, text: p.text, logprobs: [] }) : this.#event('response.refusal.done', { ...fields, refusal: p.text }));
        out.push(this.#event('response.content_part.done', { ...fields, part: partOf(p.kind, p.text) }));
      });
      out.push(this.#event('response.output_item.done', { output_index: m.index, item: { ...m.item } }));
    }
    for (const c of this.#calls.values()) {
      if (c.item.status !== 'in_progress') continue;
      c.item.status = status;
      out.push(this.#event('response.function_call_arguments.done', { item_id: c.item.id, output_index: c.index, name: c.item.name, arguments: c.text }));
      out.push(this.#event('response.output_item.done', { output_index: c.index, item: { ...c.item } }));
    }
    return out;
  }

  /** The upstream's answer ended: complete, or incomplete by its finish_reason (length, content_filter). */
  end(): ResponseEvent[] {
    const reason: IncompleteReason | undefined = this.#finish === 'length' ? 'max_output_tokens' : this.#finish === 'content_filter' ? 'content_filter' : undefined;
    return reason ? this.incomplete(reason) : this.#terminal('completed');
  }

  /** Cut short: by the upstream's limit or filter, or `interrupted` (barge-in, shutdown, a client gone). */
  incomplete(reason: IncompleteReason): ResponseEvent[] {
    this.#incomplete = reason;
    return this.#terminal('incomplete');
  }

  /** The upstream failed mid-answer: `response.failed`, carrying the error. */
  failed(error: { code: string | null; message: string }): ResponseEvent[] {
    this.#error = { code: error.code, message: error.message };
    return this.#terminal('failed');
  }

  #terminal(status: 'completed' | 'incomplete' | 'failed'): ResponseEvent[] {
    const out = this.#closeAll(status === 'completed' ? 'completed' : 'incomplete');
    this.#status = status;
    out.push(this.#event(`response.${status}`, { response: this.response() }));
    return out;
  }

  get status(): string {
    return this.#status;
  }

  /** The output items so far: what a stored response keeps, and a chained request sends back. */
  get output(): Item[] {
    return this.#output.map((item) => ({ ...item }) as Item);
  }

  /** The Response object as it stands. */
  response(): Obj {
    const r = this.#head.request;
    return {
      id: this.#head.id,
      object: 'response',
      created_at: this.#head.created_at,
      status: this.#status,
      background: false,
      error: this.#error,
      incomplete_details: this.#incomplete ? { reason: this.#incomplete } : null,
      instructions: r.instructions ?? null,
      max_output_tokens: r.max_output_tokens ?? null,
      model: this.#model,
      output: this.output,
      parallel_tool_calls: r.parallel_tool_calls ?? true,
      previous_response_id: r.previous_response_id ?? null,
      reasoning: { effort: isObject(r.reasoning) ? (r.reasoning.effort ?? null) : null, summary: null },
      store: r.store !== false,
      temperature: r.temperature ?? 1,
      text: isObject(r.text) && isObject(r.text.format) ? { format: r.text.format } : { format: { type: 'text' } },
      tool_choice: r.tool_choice ?? 'auto',
      tools: Array.isArray(r.tools) ? r.tools : [],
      top_p: r.top_p ?? 1,
      truncation: 'disabled',
      usage: this.#status === 'in_progress' ? null : this.#usage,
      user: r.user ?? null,
      metadata: isObject(r.metadata) ? r.metadata : {},
    };
  }
}
