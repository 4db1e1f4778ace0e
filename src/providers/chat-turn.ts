import { JarvisError } from '../errors.js';
import { isObject, type Obj } from '../json.js';

/**
 * Reading a Chat Completions turn (the canonical turn, providers/provider.ts) for a provider that encodes it into
 * its own API: the checks every such encoder makes the same way, so a client gets the same 400 for the same
 * mistake whichever provider serves its model. null is as absent everywhere.
 */

export const given = (v: unknown): boolean => v !== undefined && v !== null;

export type Refusal = (param: string, why: string) => JarvisError;

/** A 400 invalid_value naming the parameter. */
export function invalid(param: string, why: string): JarvisError {
  return new JarvisError('JARVIS_ERR_INVALID_REQUEST', `Invalid value for '${param}': ${why}.`, { param });
}

/** The 400 unsupported_value of a provider's encoder, naming the parameter and the API that cannot honour it. */
export function unsupportedBy(api: string): Refusal {
  return (param, why) => new JarvisError('JARVIS_ERR_UNSUPPORTED_VALUE', `${why} (this model is served by ${api}).`, { param });
}

export function positiveInt(value: unknown, param: string): number {
  if (!Number.isInteger(value) || (value as number) < 1) throw invalid(param, 'must be a positive integer');
  return value as number;
}

export function num(value: unknown, param: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) throw invalid(param, 'must be a number');
  return value;
}

/** Refuses `key` unless its value is one that changes nothing. */
export function refuseUnless(chat: Obj, key: string, harmless: (v: unknown) => boolean, unsupported: Refusal, why: string): void {
  if (given(chat[key]) && !harmless(chat[key])) throw unsupported(key, why);
}

/** Refuses every top-level field the encoder does not know, and what no encoder can honour but OpenAI. */
export function refuseUnknown(chat: Obj, known: ReadonlySet<string>, unsupported: Refusal): void {
  for (const key of Object.keys(chat)) if (!known.has(key) && given(chat[key])) throw unsupported(key, `'${key}' is not supported`);
  if (given(chat.n) && positiveInt(chat.n, 'n') > 1) throw unsupported('n', 'Only n = 1 is supported');
  refuseUnless(chat, 'logprobs', (v) => v === false, unsupported, 'logprobs are not supported');
  refuseUnless(chat, 'top_logprobs', (v) => v === 0, unsupported, 'top_logprobs are not supported');
  refuseUnless(chat, 'logit_bias', (v) => isObject(v) && Object.keys(v).length === 0, unsupported, 'logit_bias is not supported');
  refuseUnless(chat, 'service_tier', (v) => v === 'auto' || v === 'default', unsupported, "Only service_tier 'auto' or 'default' is supported");
  if (given(chat.modalities)) {
    if (!Array.isArray(chat.modalities)) throw invalid('modalities', 'must be a list');
    if (chat.modalities.some((m) => m !== 'text')) throw unsupported('modalities', "Only the 'text' modality is supported");
  }
}

/** `max_completion_tokens`, else `max_tokens`, if either is given. */
export function maxTokensOf(chat: Obj): number | undefined {
  if (given(chat.max_completion_tokens)) return positiveInt(chat.max_completion_tokens, 'max_completion_tokens');
  return given(chat.max_tokens) ? positiveInt(chat.max_tokens, 'max_tokens') : undefined;
}

/** `stop` as a list. */
export function stopsOf(value: unknown): string[] {
  const stops = typeof value === 'string' ? [value] : value;
  if (!Array.isArray(stops) || stops.some((s) => typeof s !== 'string')) throw invalid('stop', 'must be a string or a list of strings');
  return stops as string[];
}

/** Text of system / developer / tool content: a string or text parts. */
export function textPieces(content: unknown, at: string, unsupported: Refusal): string[] {
  if (!given(content)) return [];
  if (typeof content === 'string') return [content];
  if (!Array.isArray(content)) throw invalid(`${at}.content`, 'must be a string or a list of content parts');
  return content.map((part, j) => {
    if (!isObject(part)) throw invalid(`${at}.content[${j}]`, 'must be an object');
    if (part.type !== 'text') throw unsupported(`${at}.content[${j}].type`, `Content part type '${String(part.type)}' is not supported here: only text`);
    if (typeof part.text !== 'string') throw invalid(`${at}.content[${j}].text`, 'must be a string');
    return part.text;
  });
}

/** An assistant message's tool call: its id, the function's name, and its arguments parsed (a JSON object; "" is {}). */
export function toolCallOf(call: unknown, param: string, unsupported: Refusal): { id: string; name: string; input: Obj } {
  if (!isObject(call)) throw invalid(param, 'must be an object');
  if (call.type !== undefined && call.type !== 'function') throw unsupported(`${param}.type`, `Tool call type '${String(call.type)}' is not supported: only function`);
  if (typeof call.id !== 'string' || call.id === '') throw invalid(`${param}.id`, 'must be a non-empty string');
  const fn = call.function;
  if (!isObject(fn) || typeof fn.name !== 'string') throw invalid(`${param}.function.name`, 'must be a string');
  const args = fn.arguments ?? '';
  if (typeof args !== 'string') throw invalid(`${param}.function.arguments`, 'must be a string');
  if (args.trim() === '') return { id: call.id, name: fn.name, input: {} };
  let input: unknown;
  try {
    input = JSON.parse(args);
  } catch {
    throw invalid(`${param}.function.arguments`, 'must be a JSON object');
  }
  if (!isObject(input)) throw invalid(`${param}.function.arguments`, 'must be a JSON object');
  return { id: call.id, name: fn.name, input };
}

/** The function tools of a turn: each one's name, description and parameters (a JSON Schema object, if given). */
export function functionTools(value: unknown, unsupported: Refusal): { name: string; description?: unknown; parameters?: Obj; strict?: boolean; at: string }[] {
  if (!Array.isArray(value)) throw invalid('tools', 'must be a list');
  return value.map((t, i) => {
    if (!isObject(t) || t.type !== 'function') throw unsupported(`tools[${i}].type`, `Tool type '${isObject(t) ? String(t.type) : typeof t}' is not supported: only function tools are`);
    const fn = t.function;
    if (!isObject(fn) || typeof fn.name !== 'string') throw invalid(`tools[${i}].function.name`, 'must be a string');
    if (given(fn.parameters) && !isObject(fn.parameters)) throw invalid(`tools[${i}].function.parameters`, 'must be a JSON Schema object');
    return {
      name: fn.name,
      at: `tools[${i}].function`,
      ...(given(fn.description) ? { description: fn.description } : {}),
      ...(isObject(fn.parameters) ? { parameters: fn.parameters } : {}),
      ...(typeof fn.strict === 'boolean' ? { strict: fn.strict } : {}),
    };
  });
}
