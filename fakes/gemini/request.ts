// Reading a GenerateContentRequest as the fake needs it, and refusing it as Gemini does.
//
// Google's front end parses the JSON into the request's proto before the model sees it, and that parse is strict
// where OpenAI's and Anthropic's are lenient: a field the proto does not have is a 400 INVALID_ARGUMENT naming it
// and where it is (`Unknown name "additionalProperties" at 'tools[0].function_declarations[0].parameters': Cannot
// find field.`), which is what catches a gateway passing JSON Schema through as Gemini's OpenAPI subset. The parse
// takes both spellings of a field (camelCase, the JSON name, and snake_case, the proto name), names fields in snake
// case in its paths, takes enum values in any case, and a single value where a list is expected. `parse` does the
// same and hands back the request in camelCase, so the rest of the fake reads one spelling; the record keeps the
// body as sent.
//
// Then the checks the API makes of the conversation: roles, non-empty turns, function responses answering the
// call turn before them, and for Gemini 3 the thought signature on each function call turn of the current turn.
import { SKIP_SIGNATURE, invalidArgument, missingSignature, signatureIssued, signatureValid, type ErrorSpec, type Json } from './wire.js';

const PROTO = 'type.googleapis.com/google.ai.generativelanguage.v1beta.';

type Field = 'scalar' | 'any' | { msg: string; repeated?: true; map?: true } | { enum: string; values: readonly string[]; repeated?: true };

const TYPES = ['TYPE_UNSPECIFIED', 'STRING', 'NUMBER', 'INTEGER', 'BOOLEAN', 'ARRAY', 'OBJECT', 'NULL'] as const;
const MODES = ['MODE_UNSPECIFIED', 'AUTO', 'ANY', 'NONE', 'VALIDATED'] as const;
const LEVELS = ['THINKING_LEVEL_UNSPECIFIED', 'MINIMAL', 'LOW', 'MEDIUM', 'HIGH'] as const;

const fields = (names: string, kind: Field = 'scalar') => Object.fromEntries(names.split(' ').map((n) => [n, kind]));

/** The messages of the request, each field by its JSON name: what the parse accepts. */
const MESSAGES: Record<string, Record<string, Field>> = {
  GenerateContentRequest: {
    ...fields('model cachedContent'),
    ...fields('serviceTier', 'any'),
    contents: { msg: 'Content', repeated: true },
    systemInstruction: { msg: 'Content' },
    tools: { msg: 'Tool', repeated: true },
    toolConfig: { msg: 'ToolConfig' },
    safetySettings: { msg: 'SafetySetting', repeated: true },
    generationConfig: { msg: 'GenerationConfig' },
  },
  CountTokensRequest: { model: 'scalar', contents: { msg: 'Content', repeated: true }, generateContentRequest: { msg: 'GenerateContentRequest' } },
  Content: { parts: { msg: 'Part', repeated: true }, role: 'scalar' },
  Part: {
    ...fields('text thought thoughtSignature'),
    ...fields('inlineData fileData executableCode codeExecutionResult videoMetadata partMetadata mediaResolution toolCall toolResponse', 'any'),
    functionCall: { msg: 'FunctionCall' },
    functionResponse: { msg: 'FunctionResponse' },
  },
  FunctionCall: { ...fields('id name'), args: 'any' },
  FunctionResponse: { ...fields('id name willContinue scheduling'), ...fields('response parts', 'any') },
  Tool: {
    functionDeclarations: { msg: 'FunctionDeclaration', repeated: true },
    ...fields('googleSearchRetrieval codeExecution googleSearch urlContext computerUse fileSearch googleMaps mcpServers', 'any'),
  },
  FunctionDeclaration: {
    ...fields('name description behavior'),
    ...fields('parametersJsonSchema responseJsonSchema', 'any'),
    parameters: { msg: 'Schema' },
    response: { msg: 'Schema' },
  },
  Schema: {
    type: { enum: 'Type', values: TYPES },
    ...fields('format title description nullable enum maxItems minItems required minProperties maxProperties minLength maxLength pattern propertyOrdering minimum maximum'),
    ...fields('example default', 'any'),
    properties: { msg: 'Schema', map: true },
    anyOf: { msg: 'Schema', repeated: true },
    items: { msg: 'Schema' },
  },
  ToolConfig: { functionCallingConfig: { msg: 'FunctionCallingConfig' }, retrievalConfig: 'any', includeServerSideToolInvocations: 'scalar' },
  FunctionCallingConfig: { mode: { enum: 'FunctionCallingConfig.Mode', values: MODES }, allowedFunctionNames: 'scalar' },
  SafetySetting: fields('category threshold method'),
  GenerationConfig: {
    ...fields(
      'candidateCount stopSequences maxOutputTokens temperature topP topK seed responseMimeType presencePenalty frequencyPenalty responseLogprobs logprobs ' +
        'enableEnhancedCivicAnswers responseModalities mediaResolution enableAffectiveDialog',
    ),
    ...fields('responseJsonSchema _responseJsonSchema speechConfig imageConfig audioTranscriptionConfig', 'any'),
    responseSchema: { msg: 'Schema' },
    thinkingConfig: { msg: 'ThinkingConfig' },
  },
  ThinkingConfig: { ...fields('includeThoughts thinkingBudget'), thinkingLevel: { enum: 'ThinkingConfig.ThinkingLevel', values: LEVELS } },
};

const camel = (name: string) => name.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
const snake = (name: string) => name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const at = (path: string, name: string) => (path === '' ? name : `${path}.${name}`);

interface Violation {
  field: string;
  description: string;
}

/** Parses `value` as the message `type` at `path`: its camelCase copy, and each violation the parse finds. */
function walk(value: unknown, type: string, path: string, out: Violation[]): unknown {
  if (!isObject(value)) {
    out.push({ field: path, description: `Invalid value at '${path}' (${PROTO}${type}), ${JSON.stringify(value)}` });
    return value;
  }
  const spec = MESSAGES[type]!;
  const copy: Json = {};
  for (const [name, v] of Object.entries(value)) {
    const key = name === '_responseJsonSchema' ? name : camel(name);
    const field = spec[key];
    if (field === undefined) {
      const where = path === '' ? '' : ` at '${path}'`;
      out.push({ field: path, description: `Invalid JSON payload received. Unknown name ${JSON.stringify(name)}${where}: Cannot find field.` });
      continue;
    }
    if (v === null) continue;
    const here = at(path, snake(key));
    if (field === 'scalar' || field === 'any') copy[key] = v;
    else if ('enum' in field) {
      const one = (x: unknown, p: string) => {
        const hit = typeof x === 'string' ? field.values.find((e) => e === x.toUpperCase()) : typeof x === 'number' ? field.values[x] : undefined;
        if (hit === undefined) out.push({ field: p, description: `Invalid value at '${p}' (${PROTO}${field.enum}), ${JSON.stringify(x)}` });
        return hit ?? x;
      };
      copy[key] = field.repeated && Array.isArray(v) ? v.map((x, i) => one(x, `${here}[${i}]`)) : one(v, here);
    } else if (field.map) {
      if (!isObject(v)) out.push({ field: here, description: `Invalid value at '${here}' (${PROTO}${field.msg}), ${JSON.stringify(v)}` });
      else copy[key] = Object.fromEntries(Object.entries(v).map(([k, x], i) => [k, walk(x, field.msg, `${here}[${i}].value`, out)]));
    } else if (field.repeated) {
      const list = Array.isArray(v) ? v : [v];
      copy[key] = list.map((x, i) => walk(x, field.msg, `${here}[${i}]`, out));
    } else copy[key] = walk(v, field.msg, here, out);
  }
  return copy;
}

/** A request parsed as the API parses it: the camelCase request, or the 400 that names every field it refused. */
export function parse(body: Json, type: 'GenerateContentRequest' | 'CountTokensRequest'): { request: Json } | { error: ErrorSpec } {
  const out: Violation[] = [];
  const request = walk(body, type, '', out) as Json;
  if (out.length === 0) return { request };
  const fieldViolations = out.map((v) => (v.field === '' ? { description: v.description } : v));
  return { error: invalidArgument(out.map((v) => v.description).join('\n'), [{ '@type': 'type.googleapis.com/google.rpc.BadRequest', fieldViolations }]) };
}

export const contentsOf = (req: Json): Json[] => (Array.isArray(req.contents) ? (req.contents as unknown[]).filter(isObject) : []);
export const partsOf = (content: Json | undefined): Json[] => (Array.isArray(content?.parts) ? (content.parts as unknown[]).filter(isObject) : []);
const isUser = (c: Json) => c.role === undefined || c.role === '' || c.role === 'user';

/**
 * The last user turn: its text (text parts, and function responses' payloads, as a client tags them) and the
 * payloads of its function responses, as JSON. Works on the body as sent too (snake_case), for the record.
 */
export function lastUser(req: Json): { prompt: string; responses: string[] } {
  const contents = contentsOf(req);
  for (let i = contents.length - 1; i >= 0; i--) {
    const c = contents[i]!;
    if (!isUser(c)) continue;
    const parts = partsOf(c);
    const responses = parts.flatMap((p) => {
      const r = p.functionResponse ?? p.function_response;
      return isObject(r) ? [JSON.stringify(r.response ?? {})] : [];
    });
    const prompt = parts.map((p) => (typeof p.text === 'string' ? p.text : '')).join('') + responses.join('');
    return { prompt, responses };
  }
  return { prompt: '', responses: [] };
}

/** All the text a part carries that identifies the conversation: not thoughts, nor signatures, which a gateway may drop. */
function partText(p: Json): string {
  if (p.thought === true) return '';
  if (typeof p.text === 'string') return p.text;
  const call = p.functionCall as Json | undefined;
  if (call) return `${String(call.name)} ${JSON.stringify(call.args ?? {})}`;
  const response = p.functionResponse as Json | undefined;
  if (response) return `${String(response.name)} ${JSON.stringify(response.response ?? {})}`;
  return JSON.stringify(p);
}

/**
 * What identifies a conversation: roles and the text of each part. Consecutive model contents count as one turn
 * (the SDK's chat keeps each streamed chunk as a content of its own; a gateway may join them), so the same
 * conversation gets the same ids whichever way it is sent.
 */
export function conversationKey(req: Json): string {
  const turns: string[] = [];
  let last = '';
  for (const c of contentsOf(req)) {
    const role = isUser(c) ? 'user' : String(c.role);
    const text = partsOf(c).map(partText).join('|');
    if (role === 'model' && last === 'model') turns[turns.length - 1] += `|${text}`;
    else turns.push(`${role}:${text}`);
    last = role;
  }
  return turns.join('\n');
}

/** The prompt's token count, estimated the same way for usageMetadata and countTokens: ~4 characters a token. */
export function inputTokensOf(req: Json): number {
  const contents = contentsOf(req);
  let chars = partsOf(req.systemInstruction as Json | undefined)
    .map(partText)
    .join('').length;
  for (const c of contents) chars += partsOf(c).map(partText).join('').length;
  if (Array.isArray(req.tools)) chars += JSON.stringify(req.tools).length;
  return Math.max(1, Math.ceil(chars / 4) + contents.length);
}

/** Whether the request asked for thought summaries (`generationConfig.thinkingConfig.includeThoughts`). */
export function includeThoughts(req: Json): boolean {
  return ((req.generationConfig as Json | undefined)?.thinkingConfig as Json | undefined)?.includeThoughts === true;
}

/** Gemini 3 models check thought signatures on function calls; earlier ones do not. */
export const isGemini3 = (model: string) => model.startsWith('gemini-3');

const CONTENTS_MISSING = '* GenerateContentRequest.contents: contents is not specified\n';

/**
 * Why Gemini would refuse this (parsed) conversation with a 400, or null. These are the API's own checks, made
 * after the parse: every role `user` or `model`, no empty turn, each function response turn answering the call
 * turn just before it call for call, and for Gemini 3 the signatures.
 */
export function invalidConversation(req: Json, model: string): ErrorSpec | null {
  const contents = contentsOf(req);
  if (contents.length === 0) return invalidArgument(CONTENTS_MISSING);
  for (const [i, c] of contents.entries()) {
    if (!isUser(c) && c.role !== 'model') return invalidArgument('Please use a valid role: user, model.');
    if (partsOf(c).length === 0) return invalidArgument(`* GenerateContentRequest.contents[${i}].parts: contents.parts must not be empty.\n`);
  }
  for (const [i, c] of contents.entries()) {
    const responses = partsOf(c).filter((p) => p.functionResponse !== undefined);
    if (responses.length === 0) continue;
    // The call turn: the model contents just before (one or several, when a chat kept each streamed chunk).
    const calls: string[] = [];
    for (let j = i - 1; j >= 0 && contents[j]!.role === 'model'; j--) calls.unshift(...partsOf(contents[j]).flatMap((p) => (p.functionCall ? [String((p.functionCall as Json).name)] : [])));
    if (calls.length === 0) return invalidArgument('Please ensure that function response turn comes immediately after a function call turn.');
    if (responses.length !== calls.length) {
      return invalidArgument('Please ensure that the number of function response parts is equal to the number of function call parts of the function call turn.');
    }
    // Names answered call for call (as a multiset: parallel responses may come in any order). The wording is the fake's.
    const names = responses.map((p) => String((p.functionResponse as Json).name)).sort();
    const called = [...calls].sort();
    const stray = names.find((n, k) => n !== called[k]);
    if (stray !== undefined) return invalidArgument(`Please ensure that each function response part answers a function call part of the function call turn: no call named "${stray}" awaits a response.`);
  }
  // A signature is opaque to the client and checked by the API: one it did not issue is refused, on any model.
  for (const c of contents) {
    for (const p of partsOf(c)) {
      if (p.thoughtSignature !== undefined && p.thoughtSignature !== SKIP_SIGNATURE && !signatureIssued(p.thoughtSignature)) return invalidArgument('Corrupted thought signature.');
    }
  }
  if (isGemini3(model)) {
    // The current turn starts after the last user content with text (not function responses); in it, the first
    // function call of each model content carries the signature that came with it.
    let start = 0;
    for (let i = contents.length - 1; i >= 0; i--) {
      if (isUser(contents[i]!) && partsOf(contents[i]).some((p) => typeof p.text === 'string')) {
        start = i + 1;
        break;
      }
    }
    for (let i = start; i < contents.length; i++) {
      const c = contents[i]!;
      if (c.role !== 'model') continue;
      const first = partsOf(c).find((p) => p.functionCall !== undefined);
      if (!first) continue;
      const name = String((first.functionCall as Json).name);
      if (first.thoughtSignature === undefined) return missingSignature(name, i + 1);
      if (first.thoughtSignature !== SKIP_SIGNATURE && !signatureValid(name, first.thoughtSignature)) return invalidArgument('Corrupted thought signature.');
    }
  }
  return null;
}

/** countTokens counts `contents`, or the whole `generateContentRequest` (system instruction and tools too). */
export function countedRequest(req: Json): Json {
  return isObject(req.generateContentRequest) ? req.generateContentRequest : req;
}
