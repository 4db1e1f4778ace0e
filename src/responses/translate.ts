import { JarvisError } from '../errors.js';
import type { ChatMessage } from '../providers/provider.js';
import { isObject, type Obj } from '../json.js';
import { decodeSignedThinking } from './signed-reasoning.js';

/** A conversation as the Responses API keeps it: input items and output items, in order. */
export type Item = Obj & { type?: string };

/**
 * How an assistant turn the person did not hear to its end reaches the model in a chained request: its text as
 * far as it was heard, then this, so the model knows it was cut off there (docs/streaming.md, voice assistants).
 */
export const INTERRUPTED_MARK = ' [interrupted by the user]';

/**
 * The Responses request fields the translation to Chat Completions serves. Anything else is refused with a 400
 * naming it, never dropped: a client must not believe a setting took effect when it did not.
 */
const SERVED = new Set([
  'model', 'input', 'instructions', 'tools', 'tool_choice', 'max_output_tokens', 'text', 'reasoning', 'store',
  'previous_response_id', 'metadata', 'stream', 'temperature', 'top_p', 'parallel_tool_calls', 'user',
  'service_tier', 'include', 'truncation', 'stream_options', 'safety_identifier', 'prompt_cache_key',
]);

function unsupported(param: string, why: string): JarvisError {
  return new JarvisError('JARVIS_ERR_UNSUPPORTED_VALUE', `${why} (Jarvis serves this model through Chat Completions; see docs/api.md).`, { param });
}

function invalid(param: string, why: string): JarvisError {
  return new JarvisError('JARVIS_ERR_INVALID_REQUEST', `Invalid value for '${param}': ${why}.`, { param });
}

/** `input` as items: a string is one user message. */
export function inputItems(input: unknown): Item[] {
  if (typeof input === 'string') return [{ type: 'message', role: 'user', content: input }];
  if (!Array.isArray(input)) throw invalid('input', 'must be a string or a list of items');
  return input.map((item, i) => {
    if (!isObject(item)) throw invalid(`input[${i}]`, 'must be an object');
    // An item without a type with a role is a message (the shorthand both SDKs send).
    return item.type === undefined && typeof item.role === 'string' ? { ...item, type: 'message' } : (item as Item);
  });
}

/** A message item's content as Chat Completions content: a string, or text parts. */
function messageContent(content: unknown, where: string): string | { type: string; text?: string; [k: string]: unknown }[] {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) throw invalid(`${where}.content`, 'must be a string or a list of content parts');
  return content.map((part, j) => {
    if (!isObject(part)) throw invalid(`${where}.content[${j}]`, 'must be an object');
    switch (part.type) {
      case 'input_text':
      case 'output_text':
      case 'text':
        return { type: 'text', text: typeof part.text === 'string' ? part.text : '' };
      case 'input_image': {
        const url = typeof part.image_url === 'string' ? part.image_url : undefined;
        if (!url) throw unsupported(`${where}.content[${j}]`, 'An input_image is served only with image_url');
        return { type: 'image_url', image_url: { url, ...(typeof part.detail === 'string' ? { detail: part.detail } : {}) } };
      }
      case 'refusal':
        return { type: 'text', text: typeof part.refusal === 'string' ? part.refusal : '' };
      default:
        throw unsupported(`${where}.content[${j}].type`, `Content part type '${String(part.type)}' is not supported`);
    }
  });
}

/** Items as Chat Completions messages: consecutive function calls become one assistant message's tool calls. */
export function itemsToMessages(items: Item[], where = 'input'): ChatMessage[] {
  const out: ChatMessage[] = [];
  // Signed thinking of a reasoning item (signed-reasoning.ts) goes with the assistant turn after it, as Anthropic needs it.
  let signed: Obj[] | undefined;
  const withSigned = (m: ChatMessage): ChatMessage => {
    if (!signed) return m;
    const out = { ...m, thinking_blocks: signed };
    signed = undefined;
    return out;
  };
  items.forEach((item, i) => {
    const at = `${where}[${i}]`;
    switch (item.type) {
      case 'message': {
        const role = item.role;
        if (role !== 'user' && role !== 'assistant' && role !== 'system' && role !== 'developer') throw invalid(`${at}.role`, "must be 'user', 'assistant', 'system' or 'developer'");
        const content = messageContent(item.content, at);
        if (role !== 'assistant') {
          out.push({ role, content });
          return;
        }
        // An assistant turn goes back as plain text: Chat Completions takes no parts there on every server.
        const text = Array.isArray(content) ? content.map((p) => p.text ?? '').join('') : content;
        out.push(withSigned({ role, content: item.interrupted === true ? text + INTERRUPTED_MARK : text }));
        return;
      }
      case 'function_call': {
        if (typeof item.call_id !== 'string' || typeof item.name !== 'string') throw invalid(at, 'a function_call needs call_id and name');
        const call = { id: item.call_id, type: 'function', function: { name: item.name, arguments: typeof item.arguments === 'string' ? item.arguments : '' } };
        const last = out.at(-1);
        if (last?.role === 'assistant' && Array.isArray(last.tool_calls)) (last.tool_calls as unknown[]).push(call);
        else out.push(withSigned({ role: 'assistant', content: null, tool_calls: [call] }));
        return;
      }
      case 'function_call_output': {
        if (typeof item.call_id !== 'string') throw invalid(at, 'a function_call_output needs call_id');
        const output = typeof item.output === 'string' ? item.output : JSON.stringify(item.output ?? '');
        out.push({ role: 'tool', tool_call_id: item.call_id, content: output });
        return;
      }
      case 'reasoning':
        // Reasoning a model produced earlier is not sent back to a Chat Completions upstream, which takes none; an
        // Anthropic upstream's signed thinking is (on the assistant turn it preceded, as `thinking_blocks`).
        signed = decodeSignedThinking(item.encrypted_content) ?? signed;
        return;
      default:
        throw unsupported(`${at}.type`, `Input item type '${String(item.type)}' is not supported`);
    }
  });
  return out;
}

function tools(value: unknown): Obj[] {
  if (!Array.isArray(value)) throw invalid('tools', 'must be a list');
  return value.map((t, i) => {
    if (!isObject(t) || t.type !== 'function') throw unsupported(`tools[${i}].type`, `Tool type '${isObject(t) ? String(t.type) : typeof t}' is not supported: only function tools are`);
    if (typeof t.name !== 'string') throw invalid(`tools[${i}].name`, 'must be a string');
    const fn: Obj = { name: t.name };
    if (t.description !== undefined) fn.description = t.description;
    if (t.parameters !== undefined) fn.parameters = t.parameters;
    if (t.strict !== undefined && t.strict !== null) fn.strict = t.strict;
    return { type: 'function', function: fn };
  });
}

function toolChoice(value: unknown): unknown {
  if (value === 'auto' || value === 'none' || value === 'required') return value;
  if (isObject(value) && value.type === 'function' && typeof value.name === 'string') return { type: 'function', function: { name: value.name } };
  throw unsupported('tool_choice', "tool_choice is served as 'auto', 'none', 'required' or a function");
}

function responseFormat(text: unknown): Obj | undefined {
  if (!isObject(text)) throw invalid('text', 'must be an object');
  const format = text.format;
  if (format === undefined || format === null) return undefined;
  if (!isObject(format)) throw invalid('text.format', 'must be an object');
  switch (format.type) {
    case 'text':
      return undefined;
    case 'json_object':
      return { type: 'json_object' };
    case 'json_schema': {
      const schema: Obj = { name: format.name ?? 'response', schema: format.schema };
      if (format.strict !== undefined && format.strict !== null) schema.strict = format.strict;
      if (format.description !== undefined) schema.description = format.description;
      return { type: 'json_schema', json_schema: schema };
    }
    default:
      throw unsupported('text.format.type', `text.format type '${String(format.type)}' is not supported`);
  }
}

/**
 * A Responses request as the Chat Completions body a chat upstream (or the simulator) gets: `history` (the
 * conversation before it, from `previous_response_id`) and `input` as messages, `instructions` first.
 */
export function toChatBody(body: Obj, history: Item[]): { chat: Obj; messages: ChatMessage[]; input: Item[] } {
  for (const key of Object.keys(body)) if (!SERVED.has(key)) throw unsupported(key, `'${key}' is not supported`);
  if (body.include !== undefined && body.include !== null && (!Array.isArray(body.include) || body.include.length > 0)) {
    throw unsupported('include', "'include' is not supported");
  }
  if (body.truncation !== undefined && body.truncation !== null && body.truncation !== 'disabled') throw unsupported('truncation', "Only truncation 'disabled' is supported");
  const input = inputItems(body.input);
  const messages: ChatMessage[] = [];
  if (typeof body.instructions === 'string' && body.instructions !== '') messages.push({ role: 'system', content: body.instructions });
  messages.push(...itemsToMessages(history, 'previous_response_id'), ...itemsToMessages(input));
  if (messages.length === 0) throw invalid('input', 'the conversation is empty');

  const chat: Obj = { messages };
  if (typeof body.model === 'string') chat.model = body.model;
  if (body.tools !== undefined && body.tools !== null) {
    const list = tools(body.tools);
    if (list.length > 0) chat.tools = list;
  }
  if (body.tool_choice !== undefined && body.tool_choice !== null) chat.tool_choice = toolChoice(body.tool_choice);
  if (body.parallel_tool_calls !== undefined && body.parallel_tool_calls !== null) chat.parallel_tool_calls = body.parallel_tool_calls;
  if (body.max_output_tokens !== undefined && body.max_output_tokens !== null) {
    if (!Number.isInteger(body.max_output_tokens) || (body.max_output_tokens as number) < 1) throw invalid('max_output_tokens', 'must be a positive integer');
    chat.max_tokens = body.max_output_tokens;
  }
  for (const key of ['temperature', 'top_p', 'user', 'service_tier', 'safety_identifier', 'prompt_cache_key'] as const) if (body[key] !== undefined && body[key] !== null) chat[key] = body[key];
  if (body.text !== undefined && body.text !== null) {
    const format = responseFormat(body.text);
    if (format) chat.response_format = format;
  }
  if (isObject(body.reasoning) && typeof body.reasoning.effort === 'string') chat.reasoning_effort = body.reasoning.effort;
  return { chat, messages, input };
}

/** The text of a message item's content, parts joined. */
function textOf(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content.map((p) => (isObject(p) && typeof p.text === 'string' ? p.text : '')).join('');
}

/**
 * Items as a native Responses upstream gets them (it stores nothing: Jarvis sends the whole conversation): an
 * interrupted assistant turn cut and marked as for a chat upstream; Jarvis's own `interrupted` flag not sent.
 */
export function itemsForNative(items: Item[]): Item[] {
  // Anthropic's signed thinking means nothing to OpenAI, which would refuse it as its own encrypted reasoning.
  return items.filter((item) => !(item.type === 'reasoning' && decodeSignedThinking(item.encrypted_content))).map((item) => {
    if (item.interrupted !== true) return item;
    const { interrupted: _, ...rest } = item;
    return { ...rest, content: [{ type: 'output_text', text: textOf(item.content) + INTERRUPTED_MARK, annotations: [] }] };
  });
}

/** The messages of a conversation as plain text: what limits and content logging read of a native request. */
export function plainMessages(instructions: unknown, items: Item[]): ChatMessage[] {
  const out: ChatMessage[] = typeof instructions === 'string' && instructions !== '' ? [{ role: 'system', content: instructions }] : [];
  for (const item of items) {
    if (item.type === 'message' && typeof item.role === 'string') out.push({ role: item.role as ChatMessage['role'], content: textOf(item.content) });
    else if (item.type === 'function_call_output') out.push({ role: 'tool', content: typeof item.output === 'string' ? item.output : JSON.stringify(item.output ?? '') });
  }
  return out.length > 0 ? out : [{ role: 'user', content: '' }];
}
