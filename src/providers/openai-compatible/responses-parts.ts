import { isObject } from '../../json.js';
import type { Delta, Part } from '../provider.js';
import { chatUsage } from './chat-parts.js';

/**
 * A native Responses API event as parts: its text, reasoning and function-call fragments by output index, its
 * ending and usage. What a route or an encoder of another wire needs from a native Responses upstream.
 */
export function responsesParts(d: Delta): Part[] {
  const e = d.chunk ?? (JSON.parse(d.data) as Record<string, unknown>);
  const index = typeof e.output_index === 'number' ? e.output_index : 0;
  switch (e.type) {
    case 'response.created':
      return isObject(e.response) ? [{ type: 'start', id: String(e.response.id ?? ''), model: typeof e.response.model === 'string' ? e.response.model : undefined }] : [];
    case 'response.output_text.delta':
      return typeof e.delta === 'string' && e.delta !== '' ? [{ type: 'text', text: e.delta }] : [];
    case 'response.reasoning_summary_text.delta':
    case 'response.reasoning_text.delta':
      return typeof e.delta === 'string' && e.delta !== '' ? [{ type: 'reasoning', text: e.delta }] : [];
    case 'response.output_item.added':
      if (isObject(e.item) && e.item.type === 'function_call') {
        return [{ type: 'tool_call', index, id: String(e.item.call_id ?? e.item.id ?? ''), name: String(e.item.name ?? ''), arguments: '' }];
      }
      return [];
    case 'response.function_call_arguments.delta':
      return typeof e.delta === 'string' ? [{ type: 'tool_call', index, arguments: e.delta }] : [];
    case 'response.completed':
    case 'response.incomplete': {
      const out: Part[] = [{ type: 'finish', reason: d.finish ?? 'stop', native: String(e.type).slice('response.'.length) }];
      const usage = isObject(e.response) && isObject(e.response.usage) ? e.response.usage : undefined;
      if (usage) out.push({ type: 'usage', usage: chatUsage({ prompt_tokens: usage.input_tokens, completion_tokens: usage.output_tokens, prompt_tokens_details: usage.input_tokens_details, completion_tokens_details: usage.output_tokens_details }) });
      return out;
    }
    default:
      return [];
  }
}
