import { isObject, type Obj } from '../../json.js';
import { newMessage } from './encoder.js';

/**
 * A Messages stream's events assembled into the Message a non-streaming client gets, as the Anthropic SDK's
 * MessageStream accumulates them: blocks by index, text, thinking and signatures joined, a tool_use block's
 * input_json_delta fragments parsed into its input when the block stops, the stop reason and usage from
 * message_delta.
 */
export class MessageAssembler {
  #message: Obj | undefined;
  readonly #content: Obj[] = [];
  readonly #json = new Map<number, string>();

  get started(): boolean {
    return this.#message !== undefined;
  }

  add(e: Obj): void {
    const index = typeof e.index === 'number' ? e.index : -1;
    switch (e.type) {
      case 'message_start':
        if (isObject(e.message)) this.#message = { ...e.message };
        return;
      case 'content_block_start':
        if (isObject(e.content_block) && index >= 0) this.#content[index] = { ...e.content_block };
        return;
      case 'content_block_delta': {
        const block = this.#content[index];
        const d = isObject(e.delta) ? e.delta : {};
        if (!block) return;
        if (d.type === 'text_delta' && typeof d.text === 'string') block.text = String(block.text ?? '') + d.text;
        else if (d.type === 'thinking_delta' && typeof d.thinking === 'string') block.thinking = String(block.thinking ?? '') + d.thinking;
        else if (d.type === 'signature_delta' && typeof d.signature === 'string') block.signature = d.signature;
        else if (d.type === 'input_json_delta' && typeof d.partial_json === 'string') this.#json.set(index, (this.#json.get(index) ?? '') + d.partial_json);
        else if (d.type === 'citations_delta' && d.citation !== undefined) block.citations = [...(Array.isArray(block.citations) ? block.citations : []), d.citation];
        return;
      }
      case 'content_block_stop':
        this.#parseInput(index);
        return;
      case 'message_delta':
        if (!this.#message) return;
        if (isObject(e.delta)) Object.assign(this.#message, e.delta);
        if (isObject(e.usage)) this.#message.usage = { ...(isObject(this.#message.usage) ? this.#message.usage : {}), ...e.usage };
        return;
    }
  }

  #parseInput(index: number): void {
    const json = this.#json.get(index);
    const block = this.#content[index];
    if (json === undefined || !block) return;
    this.#json.delete(index);
    try {
      block.input = json === '' ? {} : (JSON.parse(json) as unknown);
    } catch {
      // A call cut short (interrupted): its arguments as far as they came, where the SDK would fail to parse.
      block.input = {};
    }
  }

  /** The message so far; `stopReason` for one that did not end (interrupted). */
  message(fallback: { id: string; model: string; inputTokens: number }, stopReason?: string): Obj {
    for (const index of [...this.#json.keys()]) this.#parseInput(index);
    const m = this.#message ?? newMessage(fallback, { input: fallback.inputTokens, output: 0 });
    return { ...m, content: this.#content.filter(Boolean), stop_reason: m.stop_reason ?? stopReason ?? null, stop_sequence: m.stop_sequence ?? null };
  }
}
