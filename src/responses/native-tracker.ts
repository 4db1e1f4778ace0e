import type { ChatChunk } from '../providers/provider.js';
import type { Item } from './translate.js';
import { isObject, type Obj } from '../json.js';

/**
 * Follows a native Responses stream (an upstream's own events, relayed as sent) to know what Jarvis itself needs:
 * the response as it stands, each output item, and the text of each message as far as it reached the client, so
 * that an interrupted response can be ended (`response.incomplete`, numbered after the upstream's last event)
 * and stored with what was delivered. It keeps what it is given: its sink (ResponsesNativeSink) bounds that, every
 * event counted against JARVIS_MAX_ANSWER_BYTES before it gets here, streaming or not.
 */
export class NativeTracker {
  #snapshot: Obj | undefined;
  #final: Obj | undefined;
  #lastSeq = -1;
  readonly #items = new Map<number, Obj>();
  readonly #texts = new Map<number, string>();

  add(event: ChatChunk): void {
    if (typeof event.sequence_number === 'number') this.#lastSeq = Math.max(this.#lastSeq, event.sequence_number);
    const index = typeof event.output_index === 'number' ? event.output_index : -1;
    switch (event.type) {
      case 'response.created':
      case 'response.in_progress':
        if (isObject(event.response)) this.#snapshot = event.response;
        return;
      case 'response.output_item.added':
      case 'response.output_item.done':
        if (isObject(event.item)) this.#items.set(index, event.item);
        return;
      case 'response.output_text.delta':
        if (typeof event.delta === 'string') this.#texts.set(index, (this.#texts.get(index) ?? '') + event.delta);
        return;
      case 'response.completed':
      case 'response.incomplete':
      case 'response.failed':
        if (isObject(event.response)) this.#final = event.response;
        return;
    }
  }

  /** The upstream's response id, once it has said it. */
  get id(): string | undefined {
    const id = (this.#final ?? this.#snapshot)?.id;
    return typeof id === 'string' ? id : undefined;
  }

  /** The response as the upstream ended it; undefined if it did not. */
  get final(): Obj | undefined {
    return this.#final;
  }

  /** The output items as the client has them: an unfinished message holds the text delivered so far. */
  output(): Item[] {
    const out: Item[] = [];
    for (const index of [...this.#items.keys()].sort((a, b) => a - b)) {
      const item = this.#items.get(index)!;
      if (item.status !== 'in_progress') {
        out.push(item as Item);
        continue;
      }
      if (item.type === 'message') {
        const text = this.#texts.get(index) ?? '';
        out.push({ ...item, status: 'incomplete', content: [{ type: 'output_text', text, annotations: [], logprobs: [] }] } as Item);
      } else {
        out.push({ ...item, status: 'incomplete' } as Item);
      }
    }
    return out;
  }

  /** The terminal event Jarvis sends for a response it cut short, and the response it ends as. */
  interrupted(reason: 'interrupted' | 'steered' = 'interrupted'): { event: Obj; response: Obj } {
    const response = { ...(this.#snapshot ?? { object: 'response' }), status: 'incomplete', incomplete_details: { reason }, output: this.output(), usage: null };
    return { event: { type: 'response.incomplete', sequence_number: this.#lastSeq + 1, response }, response };
  }
}
