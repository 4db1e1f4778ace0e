import { JarvisError } from '../../errors.js';
import { isObject, type Obj } from '../../json.js';

/**
 * Anthropic Messages → Chat Completions: a request of a client of the Anthropic Messages API
 * (https://docs.anthropic.com/en/api/messages) as the Chat Completions body an OpenAI-compatible upstream gets.
 * Pure: no I/O. The inverse of src/providers/anthropic/request.ts.
 *
 * | Messages API                               | Chat Completions                                                    |
 * |--------------------------------------------|---------------------------------------------------------------------|
 * | model                                      | model                                                               |
 * | system (string or text blocks)             | a first system message (one text → string content, else text parts) |
 * | user text blocks                           | text parts; a single text → string content                          |
 * | assistant text blocks                      | string content, texts joined (as src/responses/translate.ts)        |
 * | image block (base64 / url source)          | image_url part (data:<media_type>;base64,<data> / the url)          |
 * | assistant tool_use blocks                  | tool_calls (arguments = JSON.stringify(input))                      |
 * | user tool_result blocks                    | tool messages, before the rest of that user turn                    |
 * | tool_result is_error: true                 | the tool message's content prefixed with "Error: "                  |
 * | assistant thinking blocks                  | reasoning_content (texts joined) + thinking_blocks (with signature) |
 * | assistant redacted_thinking blocks         | thinking_blocks                                                     |
 * | tools ({name, description, input_schema})  | function tools (strict kept); server tools (a `type`) refused       |
 * | tool_choice auto / any / tool / none       | auto / required / {type:'function'} / none                          |
 * | tool_choice.disable_parallel_tool_use      | parallel_tool_calls: false                                          |
 * | max_tokens                                 | max_completion_tokens                                               |
 * | temperature, top_p                         | temperature, top_p                                                  |
 * | stop_sequences (at most 4)                 | stop                                                                |
 * | metadata.user_id                           | user                                                                |
 * | thinking enabled + budget_tokens           | reasoning_effort by nearest budget (THINKING_EFFORT_THRESHOLDS)     |
 * | thinking disabled / adaptive               | no reasoning_effort (the upstream's default for adaptive)           |
 * | output_config.effort low / medium / high   | reasoning_effort, when thinking gives none                          |
 * | stream: true                               | stream: true, stream_options: {include_usage: true}                 |
 * | cache_control (top level and on blocks)    | ignored: a caching hint, changes nothing about the answer           |
 * | service_tier 'auto'                        | ignored: the default                                                |
 *
 * Order lost on the way: an assistant turn's text is one string before its tool calls, and a user turn's tool
 * results come before its other content (as Chat Completions requires them to follow the assistant's calls).
 *
 * Refused with a 400 unsupported_value naming the field: top_k (OpenAI has none), more than 4 stop_sequences,
 * container, mcp_servers, service_tier other than 'auto', output_config.format, server tools, document / file
 * content, server tool blocks, images in tool results, and any other top-level field: a client must not believe
 * a setting took effect when it did not.
 */

/**
 * `thinking.budget_tokens` → `reasoning_effort`: the first row whose `below` the budget is under, the nearest of
 * the budgets request.ts sends (minimal 1024, low 2048, medium 8192, high 24576): the thresholds are their midpoints.
 */
export const THINKING_EFFORT_THRESHOLDS: readonly { below: number; effort: 'minimal' | 'low' | 'medium' | 'high' }[] = [
  { below: 1536, effort: 'minimal' },
  { below: 5120, effort: 'low' },
  { below: 16384, effort: 'medium' },
  { below: Infinity, effort: 'high' },
];

/** Top-level fields this translation knows (some only to refuse them). null is as absent everywhere. */
const KNOWN = new Set([
  'model', 'messages', 'system', 'max_tokens', 'temperature', 'top_p', 'top_k', 'stop_sequences', 'metadata', 'stream',
  'tools', 'tool_choice', 'thinking', 'output_config', 'cache_control', 'service_tier', 'container', 'mcp_servers',
]);

function unsupported(param: string, why: string): JarvisError {
  return new JarvisError('JARVIS_ERR_UNSUPPORTED_VALUE', `${why} (Jarvis serves this model through Chat Completions).`, { param });
}

function invalid(param: string, why: string): JarvisError {
  return new JarvisError('JARVIS_ERR_INVALID_REQUEST', `Invalid value for '${param}': ${why}.`, { param });
}

const given = (v: unknown): boolean => v !== undefined && v !== null;

type Part = Obj & { type: string };

function textOf(block: Obj, param: string): string {
  if (typeof block.text !== 'string') throw invalid(`${param}.text`, 'must be a string');
  return block.text;
}

/** Parts as message content: a single text part as a string. */
function asContent(parts: Part[]): string | Part[] {
  return parts.length === 1 && parts[0]?.type === 'text' ? (parts[0].text as string) : parts;
}

function imagePart(block: Obj, param: string): Part {
  const source = block.source;
  if (!isObject(source)) throw invalid(`${param}.source`, 'must be an object');
  if (source.type === 'base64') {
    if (typeof source.media_type !== 'string' || typeof source.data !== 'string') throw invalid(`${param}.source`, 'a base64 source needs media_type and data');
    return { type: 'image_url', image_url: { url: `data:${source.media_type};base64,${source.data}` } };
  }
  if (source.type === 'url') {
    if (typeof source.url !== 'string') throw invalid(`${param}.source.url`, 'must be a string');
    return { type: 'image_url', image_url: { url: source.url } };
  }
  throw unsupported(`${param}.source.type`, `Image source type '${String(source.type)}' is not supported: only base64 and url`);
}

/** `system` as the content of a system message, or none when empty. */
function systemContent(system: unknown): string | Part[] | undefined {
  if (typeof system === 'string') return system === '' ? undefined : system;
  if (!Array.isArray(system)) throw invalid('system', 'must be a string or a list of text blocks');
  const parts = system.map((b, i): Part => {
    if (!isObject(b) || b.type !== 'text') throw unsupported(`system[${i}].type`, 'Only text blocks are supported in system');
    return { type: 'text', text: textOf(b, `system[${i}]`) };
  });
  return parts.length === 0 ? undefined : asContent(parts);
}

/** A tool_result block as a tool message. */
function toolMessage(block: Obj, param: string): Obj {
  if (typeof block.tool_use_id !== 'string' || block.tool_use_id === '') throw invalid(`${param}.tool_use_id`, 'must be a non-empty string');
  let texts: string[];
  if (!given(block.content)) texts = [];
  else if (typeof block.content === 'string') texts = [block.content];
  else if (Array.isArray(block.content)) {
    texts = block.content.map((c, k) => {
      if (!isObject(c) || c.type !== 'text') throw unsupported(`${param}.content[${k}].type`, `Content type '${isObject(c) ? String(c.type) : typeof c}' is not supported in a tool result: only text`);
      return textOf(c, `${param}.content[${k}]`);
    });
  } else throw invalid(`${param}.content`, 'must be a string or a list of blocks');
  // An error result reads as one: Chat Completions has no flag for it.
  if (block.is_error === true) texts = texts.length === 0 ? ['Error'] : [`Error: ${texts[0]}`, ...texts.slice(1)];
  const content = texts.length <= 1 ? (texts[0] ?? '') : texts.map((text) => ({ type: 'text', text }));
  return { role: 'tool', tool_call_id: block.tool_use_id, content };
}

function userMessages(content: unknown[], at: string): Obj[] {
  const tools: Obj[] = [];
  const parts: Part[] = [];
  content.forEach((block, j) => {
    const param = `${at}.content[${j}]`;
    if (!isObject(block)) throw invalid(param, 'must be an object');
    switch (block.type) {
      case 'text':
        parts.push({ type: 'text', text: textOf(block, param) });
        return;
      case 'image':
        parts.push(imagePart(block, param));
        return;
      case 'tool_result':
        tools.push(toolMessage(block, param));
        return;
      case 'tool_use':
      case 'thinking':
      case 'redacted_thinking':
        throw invalid(`${param}.type`, `a '${block.type}' block belongs in an assistant message`);
      default:
        throw unsupported(`${param}.type`, `Content block type '${String(block.type)}' is not supported`);
    }
  });
  return parts.length > 0 ? [...tools, { role: 'user', content: asContent(parts) }] : tools;
}

function assistantMessage(content: unknown[], at: string): Obj {
  const parts: Part[] = [];
  const calls: Obj[] = [];
  const thinking: Obj[] = [];
  const reasoning: string[] = [];
  content.forEach((block, j) => {
    const param = `${at}.content[${j}]`;
    if (!isObject(block)) throw invalid(param, 'must be an object');
    switch (block.type) {
      case 'text':
        parts.push({ type: 'text', text: textOf(block, param) });
        return;
      case 'tool_use': {
        if (typeof block.id !== 'string' || block.id === '') throw invalid(`${param}.id`, 'must be a non-empty string');
        if (typeof block.name !== 'string') throw invalid(`${param}.name`, 'must be a string');
        calls.push({ id: block.id, type: 'function', function: { name: block.name, arguments: JSON.stringify(block.input ?? {}) } });
        return;
      }
      case 'thinking': {
        if (typeof block.thinking !== 'string') throw invalid(`${param}.thinking`, 'must be a string');
        if (typeof block.signature !== 'string') throw invalid(`${param}.signature`, 'must be a string');
        reasoning.push(block.thinking);
        thinking.push({ type: 'thinking', thinking: block.thinking, signature: block.signature });
        return;
      }
      case 'redacted_thinking':
        if (typeof block.data !== 'string') throw invalid(`${param}.data`, 'must be a string');
        thinking.push({ type: 'redacted_thinking', data: block.data });
        return;
      case 'image':
      case 'tool_result':
        throw invalid(`${param}.type`, `a '${block.type}' block belongs in a user message`);
      default:
        throw unsupported(`${param}.type`, `Content block type '${String(block.type)}' is not supported`);
    }
  });
  // Chat Completions takes an assistant's text as a string on every server.
  const text = parts.map((p) => p.text as string).join('');
  const message: Obj = { role: 'assistant', content: text === '' && calls.length > 0 ? null : text };
  if (calls.length > 0) message.tool_calls = calls;
  if (reasoning.length > 0) message.reasoning_content = reasoning.join('');
  if (thinking.length > 0) message.thinking_blocks = thinking;
  return message;
}

function messages(value: unknown): Obj[] {
  if (!Array.isArray(value)) throw invalid('messages', 'must be a list of messages');
  return value.flatMap((m, i): Obj[] => {
    const at = `messages[${i}]`;
    if (!isObject(m)) throw invalid(at, 'must be an object');
    if (m.role !== 'user' && m.role !== 'assistant') throw invalid(`${at}.role`, "must be 'user' or 'assistant'");
    if (typeof m.content === 'string') return [{ role: m.role, content: m.content }];
    if (!Array.isArray(m.content)) throw invalid(`${at}.content`, 'must be a string or a list of content blocks');
    return m.role === 'user' ? userMessages(m.content, at) : [assistantMessage(m.content, at)];
  });
}

function tools(value: unknown): Obj[] {
  if (!Array.isArray(value)) throw invalid('tools', 'must be a list');
  return value.map((t, i) => {
    if (!isObject(t)) throw invalid(`tools[${i}]`, 'must be an object');
    if (given(t.type) && t.type !== 'custom') throw unsupported(`tools[${i}].type`, `Tool type '${String(t.type)}' is not supported: only client tools (name, description, input_schema) are`);
    if (typeof t.name !== 'string') throw invalid(`tools[${i}].name`, 'must be a string');
    if (!isObject(t.input_schema)) throw invalid(`tools[${i}].input_schema`, 'must be a JSON Schema object');
    const fn: Obj = { name: t.name };
    if (given(t.description)) fn.description = t.description;
    fn.parameters = t.input_schema;
    if (typeof t.strict === 'boolean') fn.strict = t.strict;
    return { type: 'function', function: fn };
  });
}

/** `tool_choice` as Chat Completions' tool_choice and parallel_tool_calls. */
function toolChoice(value: unknown): { choice: unknown; parallel?: false } {
  if (!isObject(value)) throw invalid('tool_choice', 'must be an object');
  const parallel = value.disable_parallel_tool_use === true ? { parallel: false as const } : {};
  switch (value.type) {
    case 'auto':
      return { choice: 'auto', ...parallel };
    case 'any':
      return { choice: 'required', ...parallel };
    case 'none':
      return { choice: 'none' };
    case 'tool':
      if (typeof value.name !== 'string') throw invalid('tool_choice.name', 'must be a string');
      return { choice: { type: 'function', function: { name: value.name } }, ...parallel };
    default:
      throw unsupported('tool_choice.type', `tool_choice type '${String(value.type)}' is not supported`);
  }
}

/** `thinking` as a reasoning_effort, or none. */
function effortOfThinking(thinking: unknown): string | undefined {
  if (!isObject(thinking)) throw invalid('thinking', 'must be an object');
  switch (thinking.type) {
    case 'disabled':
      return undefined;
    case 'adaptive':
      // The model decides how much to think: what an upstream does without reasoning_effort.
      return undefined;
    case 'enabled': {
      const budget = thinking.budget_tokens;
      if (!Number.isInteger(budget) || (budget as number) < 1) throw invalid('thinking.budget_tokens', 'must be a positive integer');
      return THINKING_EFFORT_THRESHOLDS.find((row) => (budget as number) < row.below)?.effort;
    }
    default:
      throw invalid('thinking.type', "must be 'enabled', 'disabled' or 'adaptive'");
  }
}

function effortOfOutputConfig(config: unknown): string | undefined {
  if (!isObject(config)) throw invalid('output_config', 'must be an object');
  for (const key of Object.keys(config)) {
    if (key !== 'effort' && given(config[key])) throw unsupported(`output_config.${key}`, `'output_config.${key}' is not supported`);
  }
  const effort = config.effort;
  if (!given(effort)) return undefined;
  if (effort === 'low' || effort === 'medium' || effort === 'high') return effort;
  throw unsupported('output_config.effort', "output_config.effort is served as 'low', 'medium' or 'high'");
}

/** A Messages API request body as a Chat Completions request body. */
export function messagesToChat(body: Obj): Obj {
  for (const key of Object.keys(body)) if (!KNOWN.has(key) && given(body[key])) throw unsupported(key, `'${key}' is not supported`);
  if (given(body.top_k)) throw unsupported('top_k', 'top_k is not supported: Chat Completions has no top_k');
  if (given(body.container)) throw unsupported('container', 'Containers (code execution, skills) are not supported');
  if (given(body.mcp_servers)) throw unsupported('mcp_servers', 'MCP servers are not supported');
  if (given(body.service_tier) && body.service_tier !== 'auto') throw unsupported('service_tier', "Only service_tier 'auto' is supported");

  const out: Obj = {};
  if (given(body.model)) out.model = body.model;
  const list: Obj[] = [];
  if (given(body.system)) {
    const content = systemContent(body.system);
    if (content !== undefined) list.push({ role: 'system', content });
  }
  const conversation = messages(body.messages);
  if (conversation.length === 0) throw invalid('messages', 'the conversation is empty');
  list.push(...conversation);
  out.messages = list;

  if (given(body.tools)) {
    const fns = tools(body.tools);
    if (fns.length > 0) out.tools = fns;
  }
  if (given(body.tool_choice)) {
    const { choice, parallel } = toolChoice(body.tool_choice);
    out.tool_choice = choice;
    if (parallel === false) out.parallel_tool_calls = false;
  }
  if (given(body.max_tokens)) {
    if (!Number.isInteger(body.max_tokens) || (body.max_tokens as number) < 1) throw invalid('max_tokens', 'must be a positive integer');
    out.max_completion_tokens = body.max_tokens;
  }
  for (const key of ['temperature', 'top_p'] as const) {
    if (!given(body[key])) continue;
    const v = body[key];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > 1) throw invalid(key, 'must be a number from 0 to 1');
    out[key] = v;
  }
  if (given(body.stop_sequences)) {
    const stops = body.stop_sequences;
    if (!Array.isArray(stops) || stops.some((s) => typeof s !== 'string')) throw invalid('stop_sequences', 'must be a list of strings');
    if (stops.length > 4) throw unsupported('stop_sequences', 'At most 4 stop_sequences are supported');
    if (stops.length > 0) out.stop = stops;
  }
  if (given(body.metadata)) {
    if (!isObject(body.metadata)) throw invalid('metadata', 'must be an object');
    const user = body.metadata.user_id;
    if (given(user)) {
      if (typeof user !== 'string') throw invalid('metadata.user_id', 'must be a string');
      out.user = user;
    }
  }
  // An explicit thinking budget says more than output_config's effort; both are checked.
  const thinkingEffort = given(body.thinking) ? effortOfThinking(body.thinking) : undefined;
  const configEffort = given(body.output_config) ? effortOfOutputConfig(body.output_config) : undefined;
  const effort = thinkingEffort ?? configEffort;
  if (effort !== undefined) out.reasoning_effort = effort;
  if (given(body.stream)) {
    if (typeof body.stream !== 'boolean') throw invalid('stream', 'must be a boolean');
    out.stream = body.stream;
    if (body.stream) out.stream_options = { include_usage: true };
  }
  return out;
}

/** Characters of the text a block carries (text, tool input, tool result, thinking); images count none. */
function blockChars(block: unknown): number {
  if (typeof block === 'string') return block.length;
  if (!isObject(block)) return 0;
  let n = 0;
  if (typeof block.text === 'string') n += block.text.length;
  if (typeof block.thinking === 'string') n += block.thinking.length;
  if (block.type === 'tool_use') n += (typeof block.name === 'string' ? block.name.length : 0) + JSON.stringify(block.input ?? {}).length;
  if (block.type === 'tool_result') n += Array.isArray(block.content) ? block.content.reduce((s: number, c) => s + blockChars(c), 0) : blockChars(block.content);
  return n;
}

/**
 * An estimate of a Messages request's input tokens, for count_tokens when the upstream cannot count: characters
 * / 4, rounded up, over the system prompt, the messages' text (tool inputs and results, thinking included; images
 * count nothing) and the tool definitions as JSON. At least 1. Tolerates any shape: it never throws.
 */
export function estimateInputTokens(body: Obj): number {
  let chars = 0;
  const content = (c: unknown): number => (Array.isArray(c) ? c.reduce((s: number, b) => s + blockChars(b), 0) : blockChars(c));
  chars += content(body.system);
  if (Array.isArray(body.messages)) for (const m of body.messages) if (isObject(m)) chars += content(m.content);
  if (Array.isArray(body.tools) && body.tools.length > 0) chars += JSON.stringify(body.tools).length;
  return Math.max(1, Math.ceil(chars / 4));
}
