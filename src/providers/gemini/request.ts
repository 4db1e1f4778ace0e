import { isObject, type Obj } from '../../json.js';
import { functionTools, given, invalid, maxTokensOf, num, positiveInt, refuseUnknown, refuseUnless, stopsOf, textPieces, toolCallOf, unsupportedBy } from '../chat-turn.js';
import { GEMINI_SIGNATURE_PREFIX, isGeminiSignature } from '../signed-thinking.js';
import { toGeminiSchema } from './schema.js';

/**
 * Chat Completions → Gemini (https://ai.google.dev/api/generate-content): the body Jarvis sends a Gemini upstream
 * for a turn, whose canonical form is a Chat Completions request body. Pure: no I/O. The model is not in the body
 * (it is in the URL). What cannot be honoured is refused with a 400 naming the parameter, never dropped.
 */
export interface GeminiRequestOptions {
  /** The model as the upstream knows it (the request's own `model` is the route's name for it). */
  model: string;
  /** The thought signature Gemini gave with a tool call, by its id, when the client did not send it back itself. */
  signatureOf?: ((toolCallId: string) => string | undefined) | undefined;
}

/**
 * What Gemini takes in place of a thought signature that is lost (a client that kept only `tool_calls`, on another
 * instance than the one that remembers): Google documents it for function calls that did not come from the model
 * in this conversation. Only models that check signatures (Gemini 3 on) get it.
 */
export const SKIP_THOUGHT_SIGNATURE = 'skip_thought_signature_validator';

/** `reasoning_effort` as thinkingBudget, for the Gemini 2.x models whose thinking is set by a budget. */
const GEMINI_THINKING_BUDGETS: Readonly<Record<string, number>> = { none: 0, minimal: 512, low: 1024, medium: 8192, high: 24576, xhigh: 32768 };
/** `reasoning_effort` as thinkingLevel, for Gemini 3 on (`none` is the least thinking there is). */
const GEMINI_THINKING_LEVELS: Readonly<Record<string, string>> = { none: 'minimal', minimal: 'minimal', low: 'low', medium: 'medium', high: 'high', xhigh: 'xhigh' };

/**
 * Models that think by default (Gemini 2.5 on, and the -latest aliases that point to them): they get thoughts
 * included unasked. Among them, those whose thinking is set by a budget (2.x); the others (Gemini 3 on) take a
 * level and check thought signatures. Any other model (Gemini 2.0, Gemma, a tuned model) gets neither.
 */
const THINKING_MODELS = /^(models\/)?gemini-(2\.5|[3-9]|(pro|flash|flash-lite)-latest)/;
const BUDGET_MODELS = /^(models\/)?gemini-2\./;

/**
 * How each Chat Completions field reaches Gemini, for docs/providers.md (a test keeps them in step). 'refused' is
 * a 400 unsupported_value naming the field; 'ignored' is accepted and changes nothing about the answer.
 */
export const CHAT_TO_GEMINI: readonly { chat: string; gemini: string; note: string }[] = [
  { chat: 'model', gemini: 'the URL: models/{model}:streamGenerateContent', note: "the upstream's model name for the route" },
  { chat: 'messages[] system / developer', gemini: 'systemInstruction.parts[]', note: 'wherever they are, in order' },
  { chat: 'messages[] user / assistant', gemini: 'contents[] role user / model', note: 'consecutive same-role turns merged; turns with no content left out; `name` ignored' },
  { chat: 'text part / string content', gemini: 'text part', note: 'empty texts left out; an assistant refusal part is text' },
  { chat: 'image_url part', gemini: 'inlineData / fileData', note: 'a data: URL → inlineData {mimeType, data}; any other URL → fileData {fileUri} (mimeType from its extension when known); `detail` ignored' },
  { chat: 'input_audio part', gemini: 'inlineData', note: 'wav → audio/wav, mp3 → audio/mp3' },
  { chat: 'file part', gemini: 'inlineData / fileData', note: 'file_data (a data: URL) → inlineData; file_id (a URI, e.g. a Files API file) → fileData' },
  { chat: 'assistant tool_calls', gemini: 'functionCall parts {name, args}', note: 'args = JSON.parse(arguments) ("" → {}); not a JSON object → 400 invalid_value' },
  { chat: 'assistant thinking_blocks (a Gemini signature)', gemini: 'thoughtSignature of the first functionCall part', note: `else the one remembered for the turn's first tool call; else, for gemini-3 on, '${SKIP_THOUGHT_SIGNATURE}'` },
  { chat: 'assistant reasoning_content', gemini: 'ignored', note: 'Gemini takes back only thought signatures' },
  { chat: 'tool messages', gemini: 'functionResponse parts {name, response}', note: 'the name is the one the tool_call_id was called with in this conversation; content that is a JSON object is the response, else {result: content}; consecutive ones in one user turn' },
  { chat: 'tools (function)', gemini: 'tools[0].functionDeclarations[] {name, description, parameters}', note: 'parameters converted as the schema rules below; none (or no properties) → no parameters; other tool types refused' },
  { chat: 'tool_choice', gemini: 'toolConfig.functionCallingConfig', note: 'auto → AUTO, none → NONE, required → ANY, {function} → ANY with allowedFunctionNames [name], {allowed_tools} → AUTO/ANY with their names' },
  { chat: 'parallel_tool_calls', gemini: 'refused when false', note: 'Gemini has no way to make one call at a time' },
  { chat: 'max_completion_tokens ?? max_tokens', gemini: 'generationConfig.maxOutputTokens', note: '' },
  { chat: 'temperature, top_p, top_k (extension), seed', gemini: 'generationConfig.temperature, topP, topK, seed', note: 'temperature 0..2' },
  { chat: 'presence_penalty, frequency_penalty', gemini: 'generationConfig.presencePenalty, frequencyPenalty', note: '' },
  { chat: 'stop', gemini: 'generationConfig.stopSequences', note: 'a string or a list' },
  { chat: 'response_format', gemini: 'generationConfig.responseMimeType (+ responseJsonSchema)', note: "text → nothing; json_object → application/json; json_schema → application/json with its schema" },
  { chat: 'reasoning_effort', gemini: 'generationConfig.thinkingConfig', note: 'Gemini 2.x: thinkingBudget (none 0, minimal 512, low 1024, medium 8192, high 24576, xhigh 32768); Gemini 3 on: thinkingLevel of the same name (none → minimal). includeThoughts: true unless none' },
  { chat: '(no reasoning_effort)', gemini: 'thinkingConfig.includeThoughts: true', note: 'for models that think by default (gemini-2.5 on, the -latest aliases), so their reasoning reaches the client; nothing for others (gemini-2.0, Gemma)' },
  { chat: 'n', gemini: 'ignored when 1', note: 'above 1 refused' },
  { chat: 'stream, stream_options, store, metadata, user, safety_identifier, prompt_cache_key', gemini: 'ignored', note: 'change nothing about the answer (usage is always reported; nothing is stored)' },
  { chat: 'service_tier', gemini: 'ignored', note: "'auto' or 'default'; others refused" },
  { chat: 'logprobs, top_logprobs', gemini: 'refused', note: 'unless false / 0' },
  { chat: 'logit_bias', gemini: 'refused', note: 'unless empty' },
  { chat: 'modalities', gemini: 'refused', note: 'unless text only' },
  { chat: 'audio, prediction, web_search_options, any other field', gemini: 'refused', note: '' },
];

const KNOWN = new Set([
  'model', 'messages', 'stream', 'stream_options', 'max_tokens', 'max_completion_tokens', 'temperature', 'top_p', 'top_k',
  'seed', 'presence_penalty', 'frequency_penalty', 'stop', 'tools', 'tool_choice', 'parallel_tool_calls', 'reasoning_effort',
  'response_format', 'user', 'safety_identifier', 'n', 'store', 'metadata', 'service_tier', 'prompt_cache_key', 'logprobs',
  'top_logprobs', 'logit_bias', 'modalities',
]);

const MIME_OF_EXTENSION: Record<string, string> = {
  png: 'image/png', jpg: 'image/jpeg', jpeg: 'image/jpeg', gif: 'image/gif', webp: 'image/webp', heic: 'image/heic', heif: 'image/heif',
  pdf: 'application/pdf', wav: 'audio/wav', mp3: 'audio/mp3', mp4: 'video/mp4',
};

const unsupported = unsupportedBy("Google's Gemini API");

type Part = Obj;

function textParts(text: string): Part[] {
  return text === '' ? [] : [{ text }];
}

/** A URL as Gemini's inline data (a data: URL) or file data (any other URI). */
function media(url: string, param: string): Part {
  const data = /^data:([^;,]+);base64,(.*)$/s.exec(url);
  if (data) return { inlineData: { mimeType: (data[1] ?? '').toLowerCase(), data: data[2] ?? '' } };
  if (/^data:/i.test(url)) throw unsupported(param, 'A data URL is served only in base64');
  const ext = /\.([a-z0-9]+)(?:[?#].*)?$/i.exec(url)?.[1]?.toLowerCase();
  const mimeType = ext === undefined ? undefined : MIME_OF_EXTENSION[ext];
  return { fileData: { fileUri: url, ...(mimeType ? { mimeType } : {}) } };
}

function contentParts(content: unknown, at: string, role: 'user' | 'assistant'): Part[] {
  if (!given(content)) return [];
  if (typeof content === 'string') return textParts(content);
  if (!Array.isArray(content)) throw invalid(`${at}.content`, 'must be a string or a list of content parts');
  return content.flatMap((part, j): Part[] => {
    const param = `${at}.content[${j}]`;
    if (!isObject(part)) throw invalid(param, 'must be an object');
    if (part.type === 'text') {
      if (typeof part.text !== 'string') throw invalid(`${param}.text`, 'must be a string');
      return textParts(part.text);
    }
    if (part.type === 'refusal' && role === 'assistant') return textParts(typeof part.refusal === 'string' ? part.refusal : '');
    if (role === 'user' && part.type === 'image_url') {
      const url = isObject(part.image_url) ? part.image_url.url : part.image_url;
      if (typeof url !== 'string') throw invalid(`${param}.image_url.url`, 'must be a string');
      return [media(url, `${param}.image_url.url`)];
    }
    if (role === 'user' && part.type === 'input_audio' && isObject(part.input_audio)) {
      const { data, format } = part.input_audio;
      if (typeof data !== 'string') throw invalid(`${param}.input_audio.data`, 'must be a string');
      if (format !== 'wav' && format !== 'mp3') throw unsupported(`${param}.input_audio.format`, "Audio is served as 'wav' or 'mp3'");
      return [{ inlineData: { mimeType: `audio/${format}`, data } }];
    }
    if (role === 'user' && part.type === 'file' && isObject(part.file)) {
      if (typeof part.file.file_data === 'string') return [media(part.file.file_data, `${param}.file.file_data`)];
      if (typeof part.file.file_id === 'string' && /^[a-z][a-z0-9+.-]*:\/\//i.test(part.file.file_id)) return [media(part.file.file_id, `${param}.file.file_id`)];
      throw unsupported(`${param}.file`, 'A file is served as file_data (a data URL) or a file_id that is a URI');
    }
    throw unsupported(`${param}.type`, `Content part type '${String(part.type)}' is not supported in a ${role} message`);
  });
}

function functionCall(call: unknown, param: string): { id: string; part: Part } {
  const { id, name, input } = toolCallOf(call, param, unsupported);
  return { id, part: { functionCall: { name, args: input } } };
}

/** The Gemini signature among an assistant message's `thinking_blocks` (Anthropic's are for Anthropic). */
function signatureIn(blocks: unknown, at: string): string | undefined {
  if (!Array.isArray(blocks)) throw invalid(`${at}.thinking_blocks`, 'must be a list');
  for (const b of blocks) if (isObject(b) && isGeminiSignature(b.signature)) return b.signature.slice(GEMINI_SIGNATURE_PREFIX.length);
  return undefined;
}

/** A tool message's content as a functionResponse's `response` (Gemini takes an object). */
function responseOf(content: unknown, at: string): Obj {
  const text = textPieces(content, at, unsupported).join('');
  if (text.trimStart().startsWith('{')) {
    try {
      const parsed: unknown = JSON.parse(text);
      if (isObject(parsed)) return parsed;
    } catch {
      // not JSON after all: it is the result's text
    }
  }
  return { result: text };
}

interface Content {
  role: 'user' | 'model';
  parts: Part[];
}

/** Adds a turn, merged into the one before when of the same role; a user turn's function responses stay first. */
function push(contents: Content[], turn: Content): void {
  if (turn.parts.length === 0) return;
  const last = contents.at(-1);
  if (last?.role !== turn.role) {
    contents.push(turn);
    return;
  }
  const all = [...last.parts, ...turn.parts];
  last.parts = turn.role === 'user' ? [...all.filter((p) => p.functionResponse), ...all.filter((p) => !p.functionResponse)] : all;
}

function conversation(value: unknown, opts: GeminiRequestOptions): { system: string[]; contents: Content[] } {
  if (!Array.isArray(value)) throw invalid('messages', 'must be a list of messages');
  const system: string[] = [];
  const contents: Content[] = [];
  // Gemini answers a call by the function's name: the name each tool call id was called with, in this conversation.
  const names = new Map<string, string>();
  const checksSignatures = THINKING_MODELS.test(opts.model) && !BUDGET_MODELS.test(opts.model);
  value.forEach((m, i) => {
    const at = `messages[${i}]`;
    if (!isObject(m)) throw invalid(at, 'must be an object');
    switch (m.role) {
      case 'system':
      case 'developer':
        system.push(...textPieces(m.content, at, unsupported).filter((t) => t !== ''));
        return;
      case 'user':
        push(contents, { role: 'user', parts: contentParts(m.content, at, 'user') });
        return;
      case 'assistant': {
        const parts = contentParts(m.content, at, 'assistant');
        if (given(m.tool_calls)) {
          if (!Array.isArray(m.tool_calls)) throw invalid(`${at}.tool_calls`, 'must be a list');
          const calls = m.tool_calls.map((c, j) => functionCall(c, `${at}.tool_calls[${j}]`));
          const first = calls[0];
          if (first) {
            const signature = (given(m.thinking_blocks) ? signatureIn(m.thinking_blocks, at) : undefined) ?? opts.signatureOf?.(first.id);
            if (signature !== undefined) first.part.thoughtSignature = signature;
            else if (checksSignatures) first.part.thoughtSignature = SKIP_THOUGHT_SIGNATURE;
          }
          for (const c of calls) {
            names.set(c.id, (c.part.functionCall as Obj).name as string);
            parts.push(c.part);
          }
        }
        push(contents, { role: 'model', parts });
        return;
      }
      case 'tool': {
        if (typeof m.tool_call_id !== 'string' || m.tool_call_id === '') throw invalid(`${at}.tool_call_id`, 'must be a non-empty string');
        const name = names.get(m.tool_call_id);
        if (name === undefined) throw invalid(`${at}.tool_call_id`, `no assistant tool call with id '${m.tool_call_id}' precedes it (Gemini answers a call by its function's name)`);
        push(contents, { role: 'user', parts: [{ functionResponse: { name, response: responseOf(m.content, at) } }] });
        return;
      }
      case 'function':
        throw unsupported(`${at}.role`, "The deprecated 'function' role is not supported: use tool messages");
      default:
        throw invalid(`${at}.role`, "must be 'system', 'developer', 'user', 'assistant' or 'tool'");
    }
  });
  return { system, contents };
}

function functionDeclarations(value: unknown): Obj[] {
  return functionTools(value, unsupported).map((fn) => {
    const declaration: Obj = { name: fn.name };
    if (typeof fn.description === 'string') declaration.description = fn.description;
    if (fn.parameters) {
      const params = toGeminiSchema(fn.parameters, `${fn.at}.parameters`);
      // A function without arguments has no parameters: Gemini refuses an OBJECT without properties.
      if (isObject(params.properties) && Object.keys(params.properties).length > 0) declaration.parameters = params;
    }
    return declaration;
  });
}

/** `tool_choice` as Gemini's mode, and the functions it is limited to (none: every one declared). */
function toolChoiceOf(value: unknown, declared: Obj[]): { mode: 'AUTO' | 'NONE' | 'ANY'; only?: string[] } {
  if (value === 'auto') return { mode: 'AUTO' };
  if (value === 'none') return { mode: 'NONE' };
  if (value === 'required') return { mode: 'ANY' };
  if (isObject(value) && value.type === 'function' && isObject(value.function) && typeof value.function.name === 'string') {
    return { mode: 'ANY', only: [value.function.name] };
  }
  if (isObject(value) && value.type === 'allowed_tools' && isObject(value.allowed_tools)) {
    const { mode, tools } = value.allowed_tools;
    if (!Array.isArray(tools)) throw invalid('tool_choice.allowed_tools.tools', 'must be a list');
    const allowed = tools.map((t) => (isObject(t) && isObject(t.function) ? t.function.name : undefined));
    if (allowed.some((n) => typeof n !== 'string')) throw unsupported('tool_choice.allowed_tools.tools', 'Only function tools can be allowed');
    if (mode !== 'auto' && mode !== 'required') throw invalid('tool_choice.allowed_tools.mode', "must be 'auto' or 'required'");
    return { mode: mode === 'auto' ? 'AUTO' : 'ANY', ...(allowed.length === declared.length ? {} : { only: allowed as string[] }) };
  }
  throw unsupported('tool_choice', "tool_choice is served as 'auto', 'none', 'required', a function or allowed_tools");
}

/** The thinkingConfig of a turn: the effort asked, and thoughts included so that reasoning reaches the client. */
function thinkingConfig(effort: unknown, model: string): Obj | undefined {
  if (!given(effort)) return THINKING_MODELS.test(model) ? { includeThoughts: true } : undefined;
  if (typeof effort !== 'string' || GEMINI_THINKING_LEVELS[effort] === undefined) {
    throw unsupported('reasoning_effort', "reasoning_effort is served as 'none', 'minimal', 'low', 'medium', 'high' or 'xhigh'");
  }
  const include = effort !== 'none';
  if (BUDGET_MODELS.test(model)) return { thinkingBudget: GEMINI_THINKING_BUDGETS[effort], ...(include ? { includeThoughts: true } : {}) };
  return { thinkingLevel: GEMINI_THINKING_LEVELS[effort], ...(include ? { includeThoughts: true } : {}) };
}

/** A Chat Completions body as the GenerateContentRequest for a Gemini upstream. */
export function toGeminiRequest(chat: Obj, opts: GeminiRequestOptions): Obj {
  refuseUnknown(chat, KNOWN, unsupported);
  refuseUnless(chat, 'parallel_tool_calls', (v) => v === true, unsupported, 'parallel_tool_calls: false is not supported: Gemini has no way to make one call at a time');

  const { system, contents } = conversation(chat.messages, opts);
  if (contents.length === 0) throw invalid('messages', 'the conversation has no user or assistant message with content');
  const body: Obj = { contents };
  if (system.length > 0) body.systemInstruction = { parts: system.map((text) => ({ text })) };

  const declarations = given(chat.tools) ? functionDeclarations(chat.tools) : [];
  if (declarations.length > 0) body.tools = [{ functionDeclarations: declarations }];
  if (given(chat.tool_choice)) {
    const { mode, only } = toolChoiceOf(chat.tool_choice, declarations);
    if (declarations.length === 0) {
      if (mode === 'ANY') throw invalid('tool_choice', 'a tool is required but no tools are given');
    } else if (only && mode === 'AUTO') {
      // Gemini limits the names only in mode ANY: among some of the tools, the model that may still answer is sent only those.
      body.tools = [{ functionDeclarations: declarations.filter((d) => only.includes(d.name as string)) }];
      body.toolConfig = { functionCallingConfig: { mode } };
    } else body.toolConfig = { functionCallingConfig: { mode, ...(only ? { allowedFunctionNames: only } : {}) } };
  }

  const generation: Obj = {};
  const max = maxTokensOf(chat);
  if (max !== undefined) generation.maxOutputTokens = max;
  if (given(chat.temperature)) {
    const t = num(chat.temperature, 'temperature');
    if (t < 0 || t > 2) throw invalid('temperature', 'must be between 0 and 2');
    generation.temperature = t;
  }
  if (given(chat.top_p)) {
    const p = num(chat.top_p, 'top_p');
    if (p < 0 || p > 1) throw invalid('top_p', 'must be between 0 and 1');
    generation.topP = p;
  }
  if (given(chat.top_k)) generation.topK = positiveInt(chat.top_k, 'top_k');
  if (given(chat.seed)) {
    if (!Number.isInteger(chat.seed)) throw invalid('seed', 'must be an integer');
    generation.seed = chat.seed;
  }
  if (given(chat.presence_penalty)) generation.presencePenalty = num(chat.presence_penalty, 'presence_penalty');
  if (given(chat.frequency_penalty)) generation.frequencyPenalty = num(chat.frequency_penalty, 'frequency_penalty');
  if (given(chat.stop)) {
    const stops = stopsOf(chat.stop);
    if (stops.length > 0) generation.stopSequences = stops;
  }
  if (given(chat.response_format)) {
    const format = chat.response_format;
    if (!isObject(format)) throw invalid('response_format', 'must be an object');
    if (format.type === 'json_object') generation.responseMimeType = 'application/json';
    else if (format.type === 'json_schema') {
      const schema = isObject(format.json_schema) ? format.json_schema.schema : undefined;
      if (!isObject(schema)) throw invalid('response_format.json_schema.schema', 'must be a JSON Schema object');
      generation.responseMimeType = 'application/json';
      generation.responseJsonSchema = schema;
    } else if (format.type !== 'text') throw unsupported('response_format.type', "response_format is served as 'text', 'json_object' or 'json_schema'");
  }
  const thinking = thinkingConfig(chat.reasoning_effort, opts.model);
  if (thinking) generation.thinkingConfig = thinking;
  if (Object.keys(generation).length > 0) body.generationConfig = generation;
  return body;
}
