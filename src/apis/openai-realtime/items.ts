import { JarvisError } from '../../errors.js';
import { isObject, type Obj } from '../../json.js';
import type { Item } from '../../responses/translate.js';

/** A conversation item as the Realtime API shows it (`object: "realtime.item"`), with Jarvis's own marks. */
export interface RealtimeItem extends Obj {
  id: string;
  type: 'message' | 'function_call' | 'function_call_output';
  object: 'realtime.item';
  status: 'completed' | 'incomplete' | 'in_progress';
}

function invalid(param: string, why: string): JarvisError {
  return new JarvisError('JARVIS_ERR_INVALID_REQUEST', `Invalid '${param}': ${why}.`, { param });
}

/** Audio in or out: this model is served in text (the Realtime API in front of a model that is not a speech model). */
export function textOnly(what: string, param: string): JarvisError {
  return new JarvisError('JARVIS_ERR_UNSUPPORTED_VALUE', `${what}: this model is served in text only (no audio in or out); send text, and output_modalities ["text"].`, { param });
}

const USER_PARTS = new Set(['input_text', 'input_image']);
const ASSISTANT_PARTS = new Set(['output_text', 'text']);

/**
 * A client's item (`conversation.item.create`, `response.create`'s `input`) checked and given an id: messages
 * of text (and, from the user, images), function calls and their outputs. Audio content is refused: text only.
 */
export function itemFromClient(raw: unknown, where: string, newId: () => string): RealtimeItem {
  if (!isObject(raw)) throw invalid(where, 'must be an object');
  const id = typeof raw.id === 'string' && /^[\w.-]{1,64}$/.test(raw.id) ? raw.id : newId();
  if (raw.id !== undefined && raw.id !== id) throw invalid(`${where}.id`, 'must be 1-64 characters of A-Z, a-z, 0-9, "_", "." or "-"');
  const base = { id, object: 'realtime.item' as const, status: 'completed' as const };
  switch (raw.type) {
    case 'message': {
      const role = raw.role;
      if (role !== 'user' && role !== 'assistant' && role !== 'system') throw invalid(`${where}.role`, "must be 'user', 'assistant' or 'system'");
      if (!Array.isArray(raw.content)) throw invalid(`${where}.content`, 'must be a list of content parts');
      const allowed = role === 'assistant' ? ASSISTANT_PARTS : role === 'user' ? USER_PARTS : new Set(['input_text']);
      const content = raw.content.map((p, j) => {
        const at = `${where}.content[${j}]`;
        if (!isObject(p)) throw invalid(at, 'must be an object');
        if (p.type === 'input_audio' || p.type === 'output_audio' || p.type === 'audio') throw textOnly(`An ${String(p.type)} content part`, `${at}.type`);
        if (!allowed.has(p.type as string)) throw invalid(`${at}.type`, `'${String(p.type)}' is not a content part of a ${role} message`);
        if (p.type === 'input_image') {
          if (typeof p.image_url !== 'string') throw invalid(`${at}.image_url`, 'must be a string');
          return { type: 'input_image', image_url: p.image_url, ...(typeof p.detail === 'string' ? { detail: p.detail } : {}) };
        }
        if (typeof p.text !== 'string') throw invalid(`${at}.text`, 'must be a string');
        return { type: role === 'assistant' ? 'output_text' : 'input_text', text: p.text };
      });
      return { ...base, type: 'message', role, content };
    }
    case 'function_call':
      if (typeof raw.call_id !== 'string' || typeof raw.name !== 'string') throw invalid(where, 'a function_call needs call_id and name');
      return { ...base, type: 'function_call', call_id: raw.call_id, name: raw.name, arguments: typeof raw.arguments === 'string' ? raw.arguments : '' };
    case 'function_call_output':
      if (typeof raw.call_id !== 'string' || typeof raw.output !== 'string') throw invalid(where, 'a function_call_output needs call_id and output (a string)');
      return { ...base, type: 'function_call_output', call_id: raw.call_id, output: raw.output };
    default:
      throw invalid(`${where}.type`, `'${String(raw.type)}' is not an item type this model takes (message, function_call, function_call_output)`);
  }
}

/** Items as the Responses API's input items, which responses/translate.ts turns into a canonical turn. */
export function responsesItems(items: readonly RealtimeItem[]): Item[] {
  return items.map((item) => {
    switch (item.type) {
      case 'message':
        return { type: 'message', role: item.role, content: item.content, ...(item.interrupted === true ? { interrupted: true } : {}) } as Item;
      case 'function_call':
        return { type: 'function_call', call_id: item.call_id, name: item.name, arguments: item.arguments } as Item;
      case 'function_call_output':
        return { type: 'function_call_output', call_id: item.call_id, output: item.output } as Item;
    }
  });
}

/** An assistant message's text: what truncating cuts. */
export function textOfItem(item: RealtimeItem): string {
  const parts = Array.isArray(item.content) ? (item.content as Obj[]) : [];
  return parts.map((p) => (typeof p.text === 'string' ? p.text : '')).join('');
}

/** The item as a client sees it, without Jarvis's own marks. */
export function publicItem(item: RealtimeItem): Obj {
  const { interrupted: _, ...rest } = item;
  return rest;
}
