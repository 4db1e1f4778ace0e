import { isObject, type Obj } from '../../json.js';
import { functionTools, given, invalid, maxTokensOf, num, positiveInt, refuseUnknown, refuseUnless, stopsOf, textPieces, toolCallOf, unsupportedBy } from '../chat-turn.js';
import { isGeminiSignature } from '../signed-thinking.js';

/**
 * Chat Completions → Anthropic Messages (https://docs.anthropic.com/en/api/messages): the body Jarvis sends an
 * Anthropic upstream for a turn, whose canonical form is a Chat Completions request body. Pure: no I/O.
 *
 * What cannot be honoured is refused with a 400 naming the parameter, never dropped: a client must not believe a
 * setting took effect when it did not. The one exception is `dropParams` (an upstream's configuration), which
 * leaves out the sampling parameters an anthropic-version no longer takes and reports them in `dropped`.
 */
export interface AnthropicRequestOptions {
  /** The model as the upstream knows it: the request's own `model` is the route's name for it, never sent. */
  model: string;
  /** The anthropic-version header sent with the request, e.g. '2023-06-01' or '2026-10-21'. */
  version: string;
  /** Leave out, instead of refusing, the sampling parameters `version` no longer accepts (temperature, top_p, top_k). */
  dropParams: boolean;
  /** `max_tokens` when the request asks none (Anthropic requires one). */
  defaultMaxTokens: number;
  /** Thinking budgets per `reasoning_effort`, instead of DEFAULT_THINKING_BUDGETS. */
  thinkingBudgets?: Record<ThinkingEffort, number>;
}

export type ThinkingEffort = 'minimal' | 'low' | 'medium' | 'high';

/** `reasoning_effort` as `thinking.budget_tokens` (Anthropic's minimum budget is 1024). */
export const DEFAULT_THINKING_BUDGETS: Readonly<Record<ThinkingEffort, number>> = { minimal: 1024, low: 2048, medium: 8192, high: 24576 };

/** From this anthropic-version on, Anthropic refuses `temperature`, `top_p` and `top_k`. */
export const SAMPLING_REFUSED_FROM_VERSION = '2026-10-21';

/** The media types Anthropic takes for a base64 image. */
const IMAGE_MEDIA_TYPES = new Set(['image/jpeg', 'image/png', 'image/gif', 'image/webp']);

/**
 * How each Chat Completions field reaches Anthropic, for docs/. `anthropic` is the Messages API field it becomes;
 * 'refused' is a 400 unsupported_value naming the field (under the condition in `note`), 'ignored' is accepted and
 * changes nothing about the answer.
 */
export const CHAT_TO_ANTHROPIC: readonly { chat: string; anthropic: string; note: string }[] = [
  { chat: 'model', anthropic: 'model', note: "the upstream's model name for the route, not the request's" },
  { chat: 'messages[] system / developer', anthropic: 'system', note: 'wherever they are, in order: a string when one text, else text blocks' },
  { chat: 'messages[] user / assistant', anthropic: 'messages[]', note: 'content as blocks; consecutive same-role turns merged (Anthropic requires alternation); turns with no content left out; `name` ignored' },
  { chat: 'text part / string content', anthropic: 'text block', note: 'empty texts left out (Anthropic refuses empty text blocks); an assistant refusal part is text' },
  { chat: 'image_url part', anthropic: 'image block', note: 'data:<image/jpeg|png|gif|webp>;base64 → base64 source, https → url source, else refused; `detail` ignored' },
  { chat: 'other content parts (input_audio, file, …)', anthropic: 'refused', note: '' },
  { chat: 'assistant tool_calls', anthropic: 'tool_use blocks', note: 'input = JSON.parse(arguments) ("" → {}); not a JSON object → 400 invalid_value' },
  { chat: 'assistant thinking_blocks', anthropic: 'thinking / redacted_thinking blocks', note: "first in the turn (a Gemini signature's left out); else the blocks `signatures` returns for the turn's first tool call id" },
  { chat: 'assistant reasoning_content', anthropic: 'ignored', note: 'Anthropic takes back only signed thinking blocks' },
  { chat: 'tool messages', anthropic: 'tool_result blocks', note: 'consecutive ones in one user turn, before any other content of that turn' },
  { chat: 'tools (function)', anthropic: 'tools[] {name, description, input_schema, strict}', note: 'parameters default {type:"object",properties:{}}; other tool types refused' },
  { chat: 'tool_choice', anthropic: 'tool_choice', note: "auto → auto, none → none, required → any, {function} → {tool}; left out with no tools when 'auto'/'none'" },
  { chat: 'parallel_tool_calls: false', anthropic: 'tool_choice.disable_parallel_tool_use: true', note: "on tool_choice auto when none given; nothing with tool_choice 'none'" },
  { chat: 'max_completion_tokens ?? max_tokens', anthropic: 'max_tokens', note: 'defaultMaxTokens when neither; raised to budget + asked when thinking would not fit' },
  { chat: 'reasoning_effort', anthropic: 'thinking {type:"enabled", budget_tokens}', note: "minimal 1024, low 2048, medium 8192, high 24576 (configurable); 'none' → no thinking" },
  { chat: 'temperature', anthropic: 'temperature', note: `0..1 (above 1 refused); with thinking only 1; refused from anthropic-version ${SAMPLING_REFUSED_FROM_VERSION} unless dropParams` },
  { chat: 'top_p', anthropic: 'top_p', note: `with thinking only 0.95..1; refused from anthropic-version ${SAMPLING_REFUSED_FROM_VERSION} unless dropParams` },
  { chat: 'top_k (extension)', anthropic: 'top_k', note: `refused with thinking; refused from anthropic-version ${SAMPLING_REFUSED_FROM_VERSION} unless dropParams` },
  { chat: 'stop', anthropic: 'stop_sequences', note: 'a string or a list; whitespace-only sequences refused (Anthropic does)' },
  { chat: 'user', anthropic: 'metadata.user_id', note: '' },
  { chat: 'safety_identifier', anthropic: 'metadata.user_id', note: 'when `user` is absent' },
  { chat: 'service_tier', anthropic: 'service_tier', note: "'auto' → left out (Anthropic's default), 'default' → 'standard_only', others refused" },
  { chat: 'stream', anthropic: 'stream: true', note: 'Jarvis always streams from upstreams' },
  { chat: 'stream_options, store, metadata, prompt_cache_key', anthropic: 'ignored', note: 'change nothing about the answer (usage is always reported; nothing is stored)' },
  { chat: 'n', anthropic: 'ignored when 1', note: 'above 1 refused' },
  { chat: 'logprobs, top_logprobs', anthropic: 'refused', note: 'unless false / 0' },
  { chat: 'response_format', anthropic: 'refused', note: "unless {type:'text'}" },
  { chat: 'presence_penalty, frequency_penalty', anthropic: 'refused', note: 'unless 0' },
  { chat: 'logit_bias', anthropic: 'refused', note: 'unless empty' },
  { chat: 'modalities', anthropic: 'refused', note: "unless text only" },
  { chat: 'seed, audio, prediction, web_search_options, any other field', anthropic: 'refused', note: '' },
];

/** Top-level fields this translation knows; anything else is refused. null is as absent everywhere. */
const KNOWN = new Set([
  'model', 'messages', 'stream', 'stream_options', 'max_tokens', 'max_completion_tokens', 'temperature', 'top_p', 'top_k',
  'stop', 'tools', 'tool_choice', 'parallel_tool_calls', 'reasoning_effort', 'user', 'safety_identifier', 'n', 'store',
  'metadata', 'service_tier', 'prompt_cache_key', 'logprobs', 'top_logprobs', 'response_format', 'presence_penalty',
  'frequency_penalty', 'logit_bias', 'modalities',
]);

const unsupported = unsupportedBy("Anthropic's Messages API");

type Block = Obj & { type: string };

/** A text block, or none for an empty text (Anthropic refuses empty text blocks). */
function textBlocks(text: string): Block[] {
  return text === '' ? [] : [{ type: 'text', text }];
}

function image(part: Obj, param: string): Block {
  const url = isObject(part.image_url) ? part.image_url.url : part.image_url;
  if (typeof url !== 'string') throw invalid(`${param}.image_url.url`, 'must be a string');
  const data = /^data:([^;,]+);base64,(.*)$/s.exec(url);
  if (data) {
    const mediaType = (data[1] ?? '').toLowerCase();
    if (!IMAGE_MEDIA_TYPES.has(mediaType)) throw unsupported(`${param}.image_url.url`, `Image media type '${mediaType}' is not supported: only image/jpeg, image/png, image/gif and image/webp`);
    return { type: 'image', source: { type: 'base64', media_type: mediaType, data: data[2] ?? '' } };
  }
  if (/^https:\/\//i.test(url)) return { type: 'image', source: { type: 'url', url } };
  throw unsupported(`${param}.image_url.url`, 'An image is served only as a base64 data URL or an https URL');
}

/** User or assistant content as blocks. */
function contentBlocks(content: unknown, at: string, role: 'user' | 'assistant'): Block[] {
  if (content === undefined || content === null) return [];
  if (typeof content === 'string') return textBlocks(content);
  if (!Array.isArray(content)) throw invalid(`${at}.content`, 'must be a string or a list of content parts');
  return content.flatMap((part, j): Block[] => {
    const param = `${at}.content[${j}]`;
    if (!isObject(part)) throw invalid(param, 'must be an object');
    if (part.type === 'text') {
      if (typeof part.text !== 'string') throw invalid(`${param}.text`, 'must be a string');
      return textBlocks(part.text);
    }
    if (part.type === 'refusal' && role === 'assistant') return textBlocks(typeof part.refusal === 'string' ? part.refusal : '');
    if (part.type === 'image_url' && role === 'user') return [image(part, param)];
    throw unsupported(`${param}.type`, `Content part type '${String(part.type)}' is not supported in a ${role} message`);
  });
}

function toolUse(call: unknown, param: string): Block {
  const { id, name, input } = toolCallOf(call, param, unsupported);
  return { type: 'tool_use', id, name, input };
}

/** LiteLLM's `thinking_blocks` of an assistant message, as Anthropic takes them back. */
function thinkingBlocks(value: unknown, at: string): Block[] {
  if (!Array.isArray(value)) throw invalid(`${at}.thinking_blocks`, 'must be a list');
  return value.map((b, k) => {
    const param = `${at}.thinking_blocks[${k}]`;
    if (isObject(b) && b.type === 'thinking' && typeof b.thinking === 'string' && typeof b.signature === 'string') {
      return { type: 'thinking', thinking: b.thinking, signature: b.signature };
    }
    if (isObject(b) && b.type === 'redacted_thinking' && typeof b.data === 'string') return { type: 'redacted_thinking', data: b.data };
    throw invalid(param, "must be {type:'thinking', thinking, signature} or {type:'redacted_thinking', data}");
  });
}

interface Turn {
  role: 'user' | 'assistant';
  content: Block[];
}

/** Adds a turn, merged into the one before when of the same role; a user turn's tool results stay first. */
function push(turns: Turn[], turn: Turn): void {
  if (turn.content.length === 0) return;
  const last = turns.at(-1);
  if (last?.role !== turn.role) {
    turns.push(turn);
    return;
  }
  const all = [...last.content, ...turn.content];
  last.content = turn.role === 'user' ? [...all.filter((b) => b.type === 'tool_result'), ...all.filter((b) => b.type !== 'tool_result')] : all;
}

function messages(value: unknown, signatures: ((toolCallId: string) => Obj[] | undefined) | undefined): { system: string[]; turns: Turn[] } {
  if (!Array.isArray(value)) throw invalid('messages', 'must be a list of messages');
  const system: string[] = [];
  const turns: Turn[] = [];
  value.forEach((m, i) => {
    const at = `messages[${i}]`;
    if (!isObject(m)) throw invalid(at, 'must be an object');
    switch (m.role) {
      case 'system':
      case 'developer':
        system.push(...textPieces(m.content, at, unsupported).filter((t) => t !== ''));
        return;
      case 'user':
        push(turns, { role: 'user', content: contentBlocks(m.content, at, 'user') });
        return;
      case 'assistant': {
        const content = contentBlocks(m.content, at, 'assistant');
        if (given(m.tool_calls)) {
          if (!Array.isArray(m.tool_calls)) throw invalid(`${at}.tool_calls`, 'must be a list');
          content.push(...m.tool_calls.map((c, j) => toolUse(c, `${at}.tool_calls[${j}]`)));
        }
        // Gemini's signatures (a route that moved between providers) mean nothing to Anthropic, which would refuse them.
        let thinking: Block[] = [];
        if (given(m.thinking_blocks)) thinking = thinkingBlocks(m.thinking_blocks, at).filter((b) => !isGeminiSignature(b.signature));
        else {
          const first = content.find((b) => b.type === 'tool_use');
          const signed = first && signatures ? signatures(first.id as string) : undefined;
          if (signed) thinking = thinkingBlocks(signed, at);
        }
        push(turns, { role: 'assistant', content: [...thinking, ...content] });
        return;
      }
      case 'tool': {
        if (typeof m.tool_call_id !== 'string' || m.tool_call_id === '') throw invalid(`${at}.tool_call_id`, 'must be a non-empty string');
        const pieces = textPieces(m.content, at, unsupported).filter((t) => t !== '');
        const result: Block = { type: 'tool_result', tool_use_id: m.tool_call_id };
        if (typeof m.content === 'string') {
          if (m.content !== '') result.content = m.content;
        } else if (pieces.length > 0) result.content = pieces.map((text) => ({ type: 'text', text }));
        push(turns, { role: 'user', content: [result] });
        return;
      }
      case 'function':
        throw unsupported(`${at}.role`, "The deprecated 'function' role is not supported: use tool messages");
      default:
        throw invalid(`${at}.role`, "must be 'system', 'developer', 'user', 'assistant' or 'tool'");
    }
  });
  return { system, turns };
}

function tools(value: unknown): Obj[] {
  return functionTools(value, unsupported).map((fn) => ({
    name: fn.name,
    ...(fn.description !== undefined ? { description: fn.description } : {}),
    input_schema: fn.parameters ?? { type: 'object', properties: {} },
    ...(fn.strict !== undefined ? { strict: fn.strict } : {}),
  }));
}

function toolChoice(value: unknown): Obj {
  if (value === 'auto') return { type: 'auto' };
  if (value === 'none') return { type: 'none' };
  if (value === 'required') return { type: 'any' };
  if (isObject(value) && value.type === 'function' && isObject(value.function) && typeof value.function.name === 'string') return { type: 'tool', name: value.function.name };
  throw unsupported('tool_choice', "tool_choice is served as 'auto', 'none', 'required' or a function");
}

/**
 * A Chat Completions body as the Messages API body for an Anthropic upstream (always streamed), and the names of
 * the parameters left out under `opts.dropParams`. `signatures` gives the thinking blocks Anthropic signed for
 * the turn that made a tool call, when the client did not send them back itself (as `thinking_blocks`).
 */
export function toAnthropicRequest(
  chat: Obj,
  opts: AnthropicRequestOptions,
  signatures?: (toolCallId: string) => Obj[] | undefined,
): { body: Obj; dropped: string[] } {
  refuseUnknown(chat, KNOWN, unsupported);
  // What Anthropic has no way to honour.
  refuseUnless(chat, 'response_format', (v) => isObject(v) && v.type === 'text', unsupported, "Only response_format {type: 'text'} is supported");
  refuseUnless(chat, 'presence_penalty', (v) => v === 0, unsupported, 'presence_penalty is not supported');
  refuseUnless(chat, 'frequency_penalty', (v) => v === 0, unsupported, 'frequency_penalty is not supported');
  const tier = chat.service_tier;

  const { system, turns } = messages(chat.messages, signatures);
  if (turns.length === 0) throw invalid('messages', 'the conversation has no user or assistant message with content');

  const body: Obj = { model: opts.model };
  const asked = maxTokensOf(chat) ?? opts.defaultMaxTokens;
  body.max_tokens = asked;
  body.messages = turns;
  if (system.length === 1) body.system = system[0];
  else if (system.length > 1) body.system = system.map((text) => ({ type: 'text', text }));

  // Tools.
  const toolList = given(chat.tools) ? tools(chat.tools) : [];
  if (toolList.length > 0) body.tools = toolList;
  let choice = given(chat.tool_choice) ? toolChoice(chat.tool_choice) : undefined;
  if (choice && toolList.length === 0) {
    // As OpenAI: a tool cannot be required when there is none; 'auto' and 'none' then mean what no tools mean.
    if (choice.type === 'any' || choice.type === 'tool') throw invalid('tool_choice', 'a tool is required but no tools are given');
    choice = undefined;
  }
  if (given(chat.parallel_tool_calls)) {
    if (typeof chat.parallel_tool_calls !== 'boolean') throw invalid('parallel_tool_calls', 'must be a boolean');
    if (!chat.parallel_tool_calls && toolList.length > 0) {
      choice ??= { type: 'auto' };
      if (choice.type !== 'none') choice.disable_parallel_tool_use = true;
    }
  }

  // Thinking.
  const effort = chat.reasoning_effort;
  let budget: number | undefined;
  if (given(effort) && effort !== 'none') {
    if (effort !== 'minimal' && effort !== 'low' && effort !== 'medium' && effort !== 'high') {
      throw unsupported('reasoning_effort', "reasoning_effort is served as 'none', 'minimal', 'low', 'medium' or 'high'");
    }
    budget = (opts.thinkingBudgets ?? DEFAULT_THINKING_BUDGETS)[effort];
    body.thinking = { type: 'enabled', budget_tokens: budget };
    // Anthropic requires max_tokens > budget_tokens: the answer gets what was asked on top of the thinking.
    if (asked <= budget) body.max_tokens = budget + asked;
    if (choice && (choice.type === 'any' || choice.type === 'tool')) {
      throw unsupported('tool_choice', "With reasoning_effort, tool_choice can only be 'auto' or 'none' (Anthropic does not force tool use while thinking)");
    }
  }
  if (choice) body.tool_choice = choice;

  // Sampling.
  const dropped: string[] = [];
  const refusesSampling = opts.version >= SAMPLING_REFUSED_FROM_VERSION;
  for (const key of ['temperature', 'top_p', 'top_k'] as const) {
    if (!given(chat[key])) continue;
    if (refusesSampling) {
      if (!opts.dropParams) throw unsupported(key, `'${key}' is not accepted from anthropic-version ${SAMPLING_REFUSED_FROM_VERSION}`);
      dropped.push(key);
      continue;
    }
    const value = num(chat[key], key);
    if (key === 'temperature') {
      if (value < 0) throw invalid(key, 'must be at least 0');
      if (value > 1) throw unsupported(key, 'temperature above 1 is not supported: Anthropic takes 0 to 1');
      if (budget !== undefined && value !== 1) throw unsupported(key, 'With reasoning_effort, temperature can only be 1');
    } else if (key === 'top_p') {
      if (value < 0 || value > 1) throw invalid(key, 'must be between 0 and 1');
      if (budget !== undefined && value < 0.95) throw unsupported(key, 'With reasoning_effort, top_p can only be between 0.95 and 1');
    } else {
      positiveInt(value, key);
      if (budget !== undefined) throw unsupported(key, 'With reasoning_effort, top_k is not supported');
    }
    body[key] = value;
  }

  if (given(chat.stop)) {
    const stops = stopsOf(chat.stop);
    if (stops.some((s) => s.trim() === '')) throw unsupported('stop', 'A stop sequence made only of whitespace is not supported');
    if (stops.length > 0) body.stop_sequences = stops;
  }

  const userId = given(chat.user) ? chat.user : chat.safety_identifier;
  if (given(userId)) {
    if (typeof userId !== 'string') throw invalid(given(chat.user) ? 'user' : 'safety_identifier', 'must be a string');
    if (userId !== '') body.metadata = { user_id: userId };
  }
  if (tier === 'default') body.service_tier = 'standard_only';
  body.stream = true;
  return { body, dropped };
}
