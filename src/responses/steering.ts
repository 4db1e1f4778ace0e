import { isObject, type Obj } from '../json.js';
import type { Item } from './translate.js';

const PART_TYPES = new Set(['input_text', 'input_image', 'input_file']);
const MESSAGE_KEYS = new Set(['type', 'role', 'content']);

/**
 * `response.steer`'s input as items: a string, or a non-empty list of user messages (each only `type`, `role` and
 * `content`, the content a string or input_text, input_image and input_file parts), as OpenAI documents it.
 * Anything else: what is wrong with it.
 */
export function steeringItems(input: unknown): Item[] | string {
  if (typeof input === 'string') return input === '' ? 'input must not be empty.' : [{ type: 'message', role: 'user', content: input }];
  if (!Array.isArray(input) || input.length === 0) return 'input must be a string or a non-empty list of user messages.';
  const items: Item[] = [];
  for (const [i, m] of input.entries()) {
    if (!isObject(m)) return `input[${i}] must be a message object.`;
    const extra = Object.keys(m).find((k) => !MESSAGE_KEYS.has(k));
    if (extra !== undefined) return `input[${i}] may hold only type, role and content, not ${extra}.`;
    if (m.type !== undefined && m.type !== 'message') return `input[${i}].type must be message: steering takes user messages only.`;
    if (m.role !== 'user') return `input[${i}].role must be user: steering takes user messages only.`;
    const content = m.content;
    if (typeof content !== 'string' && !(Array.isArray(content) && content.length > 0 && content.every((p) => isObject(p) && PART_TYPES.has(p.type as string)))) {
      return `input[${i}].content must be a string or a list of input_text, input_image and input_file parts.`;
    }
    items.push({ type: 'message', role: 'user', content });
  }
  return items;
}

/**
 * A continuation's input with held steering input put in: before the rest of it, as OpenAI documents, but after
 * the tool outputs that open it, since a model's API takes those only right after the calls they answer.
 */
export function withSteering(input: Item[], steering: Item[]): Item[] {
  let at = 0;
  while (at < input.length && input[at]!.type === 'function_call_output') at++;
  return [...input.slice(0, at), ...steering, ...input.slice(at)];
}

/** The stubs of the tool output a response waits for (`required_input`): its function calls. */
export function requiredInputOf(output: Item[]): Obj[] {
  return output.filter((i) => i.type === 'function_call' && i.status === 'completed').map((i) => ({ type: 'function_call_output', call_id: i.call_id, name: i.name }));
}
