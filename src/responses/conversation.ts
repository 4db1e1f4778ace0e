import { isObject, type Obj } from '../json.js';
import { decodeSignedThinking } from './signed-reasoning.js';
import type { Item } from './translate.js';

/**
 * The conversation a stored response ends: its history, its input, and what it answered, as delivered. An
 * interrupted answer's message is marked so (a chained request tells the model); its unfinished function calls,
 * which no one can answer, and reasoning (never sent back upstream) stay out.
 */
export function conversationOf(history: Item[], input: Item[], response: Obj, output: Item[]): Item[] {
  const reason = isObject(response.incomplete_details) ? response.incomplete_details.reason : undefined;
  // Cut short while it was said (a barge-in, steering): the model is told, next time, that it was not all heard.
  const interrupted = reason === 'interrupted' || reason === 'steered';
  const kept: Item[] = [];
  for (const item of output) {
    // Reasoning is not sent back upstream, but for an Anthropic upstream's signed thinking, which must be.
    if (item.type === 'reasoning' && !decodeSignedThinking(item.encrypted_content)) continue;
    if (item.type === 'function_call' && item.status !== 'completed') continue;
    kept.push(item.type === 'message' && interrupted ? { ...item, interrupted: true } : item);
  }
  return [...history, ...input, ...kept];
}

/**
 * The last message item's text cut to `chars` (UTF-16 units, as delivered_chars counts; never inside a pair),
 * with `mark` added to the item that was cut.
 */
export function cutMessage(items: Item[], chars: number, mark: Obj = {}): { items: Item[]; cut: boolean } {
  const at = items.findLastIndex((i) => i.type === 'message' && i.role === 'assistant');
  if (at < 0) return { items, cut: false };
  const item = items[at]!;
  const parts = Array.isArray(item.content) ? (item.content as Obj[]) : [];
  const text = parts.map((p) => (typeof p.text === 'string' ? p.text : '')).join('');
  if (chars >= text.length) return { items, cut: false };
  let end = chars;
  const code = text.charCodeAt(end - 1);
  if (end > 0 && code >= 0xd800 && code <= 0xdbff) end--;
  const heard = text.slice(0, end);
  const next = [...items];
  next[at] = { ...item, ...mark, status: 'incomplete', content: [{ ...(parts[0] ?? { type: 'output_text', annotations: [], logprobs: [] }), text: heard }] };
  return { items: next, cut: true };
}

