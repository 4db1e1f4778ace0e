// A real HTTP server that answers as the OpenAI API does, for the tests that hold Jarvis to being a faithful
// gateway: every answer exists both as the chunks OpenAI streams and as the chat.completion it returns when not
// streaming, written out by hand, so "through Jarvis" can be compared with "direct" field by field.
//
// The answer is chosen by the last user message, the way a client library drives it, with the knobs the mock
// reads too (knobs.ts): `scenario:<name>` picks one (text when none), `tokens:<n>` sets a length, `delay:<ms>`
// paces the chunks (`scenario:no-usage`: a server that reports no usage, asked or not). A request with `tools` gets a tool call, and one whose last message is a tool result gets an
// answer that quotes it: a round trip needs no knobs.
// POST /v1/responses answers as OpenAI's Responses API does, for text answers (a native Responses upstream).
import * as http from 'node:http';
import { hash32, listen, recordRequest, sendJson, writePaced, type FakeRequest } from '../http.js';
import { knob, lastMessage, scenarioIn } from './knobs.js';

type Json = Record<string, unknown>;

/** One request the fake received. */
export type UpstreamRequest = FakeRequest;

export interface OpenAIUpstream {
  /** Base URL, ending in /v1. */
  url: string;
  requests: UpstreamRequest[];
  /** Requests whose prompt contains `tag` (retries included). */
  requestsFor(tag: string): UpstreamRequest[];
  /** How many times GET /v1/models was asked. */
  readonly modelListRequests: number;
  close(): Promise<void>;
}

export const CREATED = 1_764_590_000;
export const FINGERPRINT = 'fp_5d2ae5e4a5';
/** What the upstream says it is: a dated snapshot of what was asked for. */
export const snapshotOf = (model: string) => `${model}-2024-07-18`;

export const USAGE = (completion: number) => ({
  prompt_tokens: 19,
  completion_tokens: completion,
  total_tokens: 19 + completion,
  prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
  completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
});

export const ERRORS: Record<string, { status: number; error: Json; headers?: Record<string, string> }> = {
  'http-400': {
    status: 400,
    error: { message: "Invalid value for 'temperature': must be at most 2.", type: 'invalid_request_error', param: 'temperature', code: 'invalid_value' },
  },
  'http-401': {
    status: 401,
    error: { message: 'Incorrect API key provided: sk-proj-****wxyz. You can find your API key at https://platform.openai.com/account/api-keys.', type: 'invalid_request_error', param: null, code: 'invalid_api_key' },
  },
  'http-403': {
    status: 403,
    error: { message: 'Project `proj_secret123` does not have access to model `gpt-4o`.', type: 'invalid_request_error', param: null, code: 'model_not_found' },
  },
  'http-404': {
    status: 404,
    error: { message: 'The model `gpt-9` does not exist or you do not have access to it.', type: 'invalid_request_error', param: null, code: 'model_not_found' },
  },
  'http-429': {
    status: 429,
    error: { message: 'Rate limit reached for gpt-4o-mini on requests per min (RPM): Limit 3, Used 3, Requested 1.', type: 'requests', param: null, code: 'rate_limit_exceeded' },
    // retry-after-ms keeps the SDKs' waits short; retry-after is what OpenAI sends.
    headers: { 'retry-after': '1', 'retry-after-ms': '20' },
  },
  'http-500': {
    status: 500,
    error: { message: 'The server had an error while processing your request. Sorry about that!', type: 'server_error', param: null, code: null },
    headers: { 'retry-after-ms': '20' },
  },
  'http-503': {
    status: 503,
    error: { message: 'The engine is currently overloaded, please try again later.', type: 'server_error', param: null, code: 'overloaded' },
    headers: { 'retry-after': '1', 'retry-after-ms': '20' },
  },
};

/** The error event a stream carries when the upstream fails after answering 200. */
export const STREAM_ERROR = { error: { message: 'The server had an error while processing your request. Sorry about that!', type: 'server_error', param: null, code: null } };

interface Answer {
  /** Chunk bodies as OpenAI streams them (without the `usage` members that `include_usage` adds). */
  chunks: Json[];
  /** The same answer as OpenAI returns it with `stream: false`. */
  completion: Json;
  /** The stream fails after this many chunks with STREAM_ERROR (0: before any). */
  errorAfter?: number;
  /** A server that reports no usage, asked or not (as some local servers do). */
  noUsage?: boolean;
}

function toolName(body: Json, i: number): string {
  const tools = Array.isArray(body.tools) ? (body.tools as Json[]) : [];
  const fn = (tools[i] ?? tools[0])?.function as Json | undefined;
  return typeof fn?.name === 'string' ? fn.name : 'get_weather';
}

/** The same prompt gets the same ids, so an answer direct and an answer through a gateway can be compared whole. */
const idOf = (text: string): string => hash32(text).toString(36);

/** Builds the answer to one chat request: chunks and completion written out side by side. */
function chatAnswer(body: Json): { scenario: string; answer: Answer } {
  const { role, text: prompt } = lastMessage(body);
  const seq = idOf(JSON.stringify(body.messages ?? null));
  const asked = typeof body.model === 'string' ? body.model : 'gpt-4o-mini';
  const head = { id: `chatcmpl-up${seq}`, object: 'chat.completion.chunk', created: CREATED, model: snapshotOf(asked), service_tier: 'default', system_fingerprint: FINGERPRINT };
  const top = { id: head.id, object: 'chat.completion', created: CREATED, model: head.model, service_tier: 'default', system_fingerprint: FINGERPRINT };
  let obfuscation = 0;
  const chunk = (choices: Json[], extra: Json = {}): Json => ({ ...head, choices, ...extra, obfuscation: 'x'.repeat(1 + (obfuscation++ % 5)) });
  const delta = (d: Json, finish: string | null = null, index = 0, logprobs: unknown = null): Json => ({ index, delta: d, logprobs, finish_reason: finish });
  const message = (m: Json): Json => ({ role: 'assistant', content: null, refusal: null, annotations: [], ...m });
  const done = (choices: Json[], completion: number): Json => ({ ...top, choices, usage: USAGE(completion) });

  let scenario = scenarioIn(prompt) ?? (role === 'tool' ? 'tool-result' : Array.isArray(body.tools) ? 'tool' : 'text');
  if (role === 'tool' && scenario !== 'tool-result' && scenarioIn(prompt) === undefined) scenario = 'tool-result';

  const textAnswer = (tokens: string[], extra: Partial<Answer> = {}): Answer => ({
    chunks: [chunk([delta({ role: 'assistant', content: '', refusal: null })]), ...tokens.map((t) => chunk([delta({ content: t })])), chunk([delta({}, 'stop')])],
    completion: done([{ index: 0, message: message({ content: tokens.join('') }), logprobs: null, finish_reason: 'stop' }], tokens.length),
    ...extra,
  });
  const counted = (n: number) => Array.from({ length: n }, (_, i) => `t${i} `);

  switch (scenario) {
    case 'tool':
    case 'tools-2': {
      const calls = scenario === 'tool' ? 1 : 2;
      const args = ['{"location":"Paris"}', '{"location":"Tokyo","unit":"c"}'];
      const pieces = (s: string) => [s.slice(0, 3), s.slice(3, 12), s.slice(12)];
      const chunks = [
        chunk([delta({ role: 'assistant', content: null, tool_calls: [{ index: 0, id: `call_${seq}a`, type: 'function', function: { name: toolName(body, 0), arguments: '' } }], refusal: null })]),
      ];
      for (const p of pieces(args[0]!)) chunks.push(chunk([delta({ tool_calls: [{ index: 0, function: { arguments: p } }] })]));
      if (calls === 2) {
        chunks.push(chunk([delta({ tool_calls: [{ index: 1, id: `call_${seq}b`, type: 'function', function: { name: toolName(body, 1), arguments: '' } }] })]));
        for (const p of pieces(args[1]!)) chunks.push(chunk([delta({ tool_calls: [{ index: 1, function: { arguments: p } }] })]));
      }
      chunks.push(chunk([delta({}, 'tool_calls')]));
      const toolCalls = Array.from({ length: calls }, (_, i) => ({ id: `call_${seq}${'ab'[i]}`, type: 'function', function: { name: toolName(body, i), arguments: args[i] } }));
      return { scenario, answer: { chunks, completion: done([{ index: 0, message: message({ tool_calls: toolCalls }), logprobs: null, finish_reason: 'tool_calls' }], 12 * calls) } };
    }
    case 'tool-result': {
      const result = prompt.trim() || 'nothing';
      return { scenario, answer: textAnswer(['The tool', ' says: ', result, '.']) };
    }
    case 'reasoning':
    case 'reasoning-alt': {
      // DeepSeek, vLLM and llama.cpp call it reasoning_content; OpenRouter and Ollama call it reasoning.
      const key = scenario === 'reasoning' ? 'reasoning_content' : 'reasoning';
      const thoughts = ['The user', ' wants', ' a sum.'];
      const answer = ['2 + 2', ' = 4.'];
      const chunks = [
        chunk([delta({ role: 'assistant', content: null, [key]: '' })]),
        ...thoughts.map((t) => chunk([delta({ content: null, [key]: t })])),
        ...answer.map((t) => chunk([delta({ content: t, [key]: null })])),
        chunk([delta({}, 'stop')]),
      ];
      return {
        scenario,
        answer: { chunks, completion: done([{ index: 0, message: message({ content: answer.join(''), [key]: thoughts.join('') }), logprobs: null, finish_reason: 'stop' }], 9) },
      };
    }
    case 'refusal': {
      const parts = ["I'm sorry,", " I can't", ' help with that.'];
      const chunks = [chunk([delta({ role: 'assistant', content: null, refusal: '' })]), ...parts.map((p) => chunk([delta({ refusal: p })])), chunk([delta({}, 'stop')])];
      return { scenario, answer: { chunks, completion: done([{ index: 0, message: message({ refusal: parts.join('') }), logprobs: null, finish_reason: 'stop' }], 8) } };
    }
    case 'logprobs': {
      const tokens = ['Hello', ' world', '!'];
      const lp = (t: string, i: number) => ({ token: t, logprob: -0.25 * (i + 1), bytes: [...Buffer.from(t)], top_logprobs: [{ token: t, logprob: -0.25 * (i + 1), bytes: [...Buffer.from(t)] }] });
      const chunks = [
        chunk([delta({ role: 'assistant', content: '', refusal: null }, null, 0, { content: [], refusal: null })]),
        ...tokens.map((t, i) => chunk([delta({ content: t }, null, 0, { content: [lp(t, i)], refusal: null })])),
        chunk([delta({}, 'stop')]),
      ];
      const completion = done([{ index: 0, message: message({ content: tokens.join('') }), logprobs: { content: tokens.map(lp), refusal: null }, finish_reason: 'stop' }], 3);
      return { scenario, answer: { chunks, completion } };
    }
    case 'annotations': {
      const annotation = { type: 'url_citation', url_citation: { start_index: 0, end_index: 5, title: 'Example', url: 'https://example.com/' } };
      const chunks = [
        chunk([delta({ role: 'assistant', content: '', refusal: null })]),
        chunk([delta({ content: 'Paris' })]),
        chunk([delta({ annotations: [annotation] })]),
        chunk([delta({}, 'stop')]),
      ];
      return { scenario, answer: { chunks, completion: done([{ index: 0, message: message({ content: 'Paris', annotations: [annotation] }), logprobs: null, finish_reason: 'stop' }], 1) } };
    }
    case 'vendor': {
      // A delta key no client library knows: carried into the message as it accumulates.
      const chunks = [
        chunk([delta({ role: 'assistant', content: '', vendor_note: 'a' })]),
        chunk([delta({ content: 'ok', vendor_note: 'b' })]),
        chunk([delta({}, 'stop')], { vendor_top: 1 }),
      ];
      const completion = { ...done([{ index: 0, message: { role: 'assistant', content: 'ok', refusal: null, annotations: [], vendor_note: 'ab' }, logprobs: null, finish_reason: 'stop' }], 1), vendor_top: 1 };
      return { scenario, answer: { chunks, completion } };
    }
    case 'n': {
      const n = typeof body.n === 'number' ? body.n : 1;
      const words = (i: number) => [`Choice ${i}`, ' says', ' hi.'];
      const chunks: Json[] = [];
      for (let i = 0; i < n; i++) chunks.push(chunk([delta({ role: 'assistant', content: '', refusal: null }, null, i)]));
      for (let t = 0; t < 3; t++) for (let i = 0; i < n; i++) chunks.push(chunk([delta({ content: words(i)[t] }, null, i)]));
      for (let i = 0; i < n; i++) chunks.push(chunk([delta({}, 'stop', i)]));
      const choices = Array.from({ length: n }, (_, i) => ({ index: i, message: message({ content: words(i).join('') }), logprobs: null, finish_reason: 'stop' }));
      return { scenario, answer: { chunks, completion: done(choices, 3 * n) } };
    }
    case 'error-first':
      return { scenario, answer: { ...textAnswer(['never']), errorAfter: 0 } };
    case 'error-mid':
      return { scenario, answer: { ...textAnswer(['Hello', ' there', ' and']), errorAfter: 3 } };
    case 'long':
      return { scenario, answer: textAnswer(counted(knob(prompt, 'tokens', 40))) };
    case 'no-usage': {
      const answer = textAnswer(['The answer', ' is', ' 42', '.'], { noUsage: true });
      const { usage: _usage, ...completion } = answer.completion;
      return { scenario, answer: { ...answer, completion } };
    }
    default:
      return { scenario, answer: textAnswer(['The answer', ' is', ' 42', '.']) };
  }
}


const sse = (payload: unknown) => `data: ${typeof payload === 'string' ? payload : JSON.stringify(payload)}\n\n`;


function streamAnswer(res: http.ServerResponse, body: Json, answer: Answer, delayMs: number): void {
  const includeUsage = (body.stream_options as Json | null | undefined)?.include_usage === true && answer.noUsage !== true;
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' });
  const frames: string[] = [];
  const upTo = answer.errorAfter ?? answer.chunks.length;
  // OpenAI puts `"usage": null` in every chunk when usage was asked for, and sends it in one more chunk at the end.
  for (const c of answer.chunks.slice(0, upTo)) frames.push(sse(includeUsage ? insertUsage(c, null) : c));
  if (answer.errorAfter !== undefined) {
    frames.push(sse(STREAM_ERROR));
    return writePaced(res, frames, delayMs, true);
  }
  const completion = answer.completion as { usage: unknown };
  if (includeUsage) {
    const { choices: _choices, ...rest } = answer.chunks[0]!;
    frames.push(sse(insertUsage({ ...rest, choices: [] }, completion.usage)));
  }
  frames.push('data: [DONE]\n\n');
  writePaced(res, frames, delayMs, true);
}

/** `usage` where OpenAI puts it: after `choices`, before `obfuscation`. */
function insertUsage(chunk: Json, usage: unknown): Json {
  const { obfuscation, ...rest } = chunk;
  return { ...rest, usage, ...(obfuscation === undefined ? {} : { obfuscation }) };
}

function errorOf(scenario: string): (typeof ERRORS)[string] | undefined {
  return ERRORS[scenario];
}

function handleChat(res: http.ServerResponse, body: Json, rec: UpstreamRequest): void {
  const { scenario, answer } = chatAnswer(body);
  rec.scenario = scenario;
  const failure = errorOf(scenario);
  if (failure) return sendJson(res, failure.status, { error: failure.error }, failure.headers);
  if (scenario === 'http-502-html') {
    res.writeHead(502, { 'content-type': 'text/html' });
    res.end('<html><body><h1>502 Bad Gateway</h1></body></html>');
    return;
  }
  const prompt = lastMessage(body).text;
  const delayMs = knob(prompt, 'delay', 0);
  // A server with its whole answer ready sends it in one write; one generating fast sends at line rate.
  if (scenario === 'flood' || scenario === 'one-write') return flood(res, knob(prompt, 'tokens', 50_000), scenario === 'one-write', idOf(prompt));
  if (body.stream === true) return streamAnswer(res, body, answer, delayMs);
  // What OpenAI answers a non-streaming request that fails: the error as an HTTP 500.
  if (answer.errorAfter !== undefined) return sendJson(res, 500, STREAM_ERROR, { 'retry-after-ms': '20' });
  const send = () => sendJson(res, 200, answer.completion);
  if (delayMs > 0) setTimeout(send, delayMs * answer.chunks.length);
  else send();
}

/**
 * `tokens` token chunks (`t0 `, `t1 `...) in the compact form vLLM and llama.cpp send, smaller than Jarvis's own
 * chunks would be: in one write, or at line rate in large writes with the reader's backpressure honoured.
 */
function flood(res: http.ServerResponse, tokens: number, oneWrite: boolean, seq: string): void {
  res.writeHead(200, { 'content-type': 'text/event-stream' });
  const head = `data: {"id":"c${seq}","object":"chat.completion.chunk","created":${CREATED},"model":"m","choices":[{"index":0,"delta":{"content":"t`;
  const frames: string[] = [];
  for (let i = 0; i < tokens; i++) frames.push(`${head}${i} "},"finish_reason":null}]}\n\n`);
  frames.push(`data: {"id":"c${seq}","object":"chat.completion.chunk","created":${CREATED},"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n`);
  frames.push('data: [DONE]\n\n');
  if (oneWrite) res.end(frames.join(''));
  else writePaced(res, frames, 0, true);
}

function handleCompletions(res: http.ServerResponse, body: Json, rec: UpstreamRequest): void {
  const seq = idOf(JSON.stringify(body.prompt ?? null));
  const prompt = typeof body.prompt === 'string' ? body.prompt : Array.isArray(body.prompt) ? String(body.prompt[0]) : '';
  const scenario = scenarioIn(prompt) ?? 'text';
  rec.scenario = scenario;
  const failure = errorOf(scenario);
  if (failure) return sendJson(res, failure.status, { error: failure.error }, failure.headers);
  const words = scenario === 'long' ? Array.from({ length: knob(prompt, 'tokens', 40) }, (_, i) => ` w${i}`) : [' Paris', ' is', ' in', ' France.'];
  const head = { id: `cmpl-up${seq}`, object: 'text_completion', created: CREATED, model: snapshotOf(String(body.model)) };
  const usage = { prompt_tokens: 5, completion_tokens: words.length, total_tokens: 5 + words.length };
  if (body.stream !== true) {
    return sendJson(res, 200, { ...head, choices: [{ text: words.join(''), index: 0, logprobs: null, finish_reason: 'stop' }], usage });
  }
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8' });
  const frames = words.map((w) => sse({ ...head, choices: [{ text: w, index: 0, logprobs: null, finish_reason: null }] }));
  frames.push(sse({ ...head, choices: [{ text: '', index: 0, logprobs: null, finish_reason: 'stop' }] }));
  if ((body.stream_options as Json | undefined)?.include_usage === true) frames.push(sse({ ...head, choices: [], usage }));
  frames.push('data: [DONE]\n\n');
  writePaced(res, frames, knob(prompt, 'delay', 0), true);
}

function handleEmbeddings(res: http.ServerResponse, body: Json, rec: UpstreamRequest): void {
  const inputs = Array.isArray(body.input) ? body.input : [body.input];
  rec.scenario = typeof inputs[0] === 'string' ? (scenarioIn(inputs[0]) ?? 'text') : 'text';
  const failure = errorOf(rec.scenario);
  if (failure) return sendJson(res, failure.status, { error: failure.error }, failure.headers);
  const vector = (input: unknown, index: number) => [0.1, -0.2, 0.3].map((v) => v * (index + 1) * String(input).length);
  // `encoding_format: base64` (what the openai SDK asks for unless told otherwise): the float32s, little-endian.
  const base64 = body.encoding_format === 'base64';
  const data = inputs.map((input, index) => ({ object: 'embedding', index, embedding: base64 ? Buffer.from(new Float32Array(vector(input, index)).buffer).toString('base64') : vector(input, index) }));
  sendJson(res, 200, { object: 'list', data, model: String(body.model), usage: { prompt_tokens: inputs.length * 2, total_tokens: inputs.length * 2 } });
}

/** The last user text of a Responses request's input (a string, or the last user message item). */
function responsesPrompt(body: Json): string {
  if (typeof body.input === 'string') return body.input;
  if (!Array.isArray(body.input)) return '';
  for (let i = body.input.length - 1; i >= 0; i--) {
    const item = body.input[i] as Json;
    if (item?.role !== 'user') continue;
    if (typeof item.content === 'string') return item.content;
    if (Array.isArray(item.content)) return (item.content as Json[]).map((p) => (typeof p.text === 'string' ? p.text : '')).join('');
  }
  return '';
}

/**
 * POST /v1/responses as OpenAI answers it, for a text answer (the same words as chat: `scenario:long tokens:<n>`,
 * `delay:<ms>`): the semantic events numbered, or the Response object. The events are written out by hand, as
 * OpenAI sends them (`scenario:pretty`: their data pretty-printed over several `data:` lines).
 */
function handleResponses(res: http.ServerResponse, body: Json, rec: UpstreamRequest): void {
  const prompt = responsesPrompt(body);
  const scenario = scenarioIn(prompt) ?? 'text';
  rec.scenario = scenario;
  const failure = errorOf(scenario);
  if (failure) return sendJson(res, failure.status, { error: failure.error }, failure.headers);
  const lastItem = Array.isArray(body.input) ? (body.input.at(-1) as Json | undefined) : undefined;
  const toolResult = lastItem?.type === 'function_call_output' ? String(lastItem.output) : undefined;
  const words =
    toolResult !== undefined ? ['The tool', ' says: ', toolResult, '.'] : scenario === 'long' ? Array.from({ length: knob(prompt, 'tokens', 40) }, (_, i) => `t${i} `) : ['The answer', ' is', ' 42', '.'];
  const id = `resp_up${idOf(prompt + (toolResult ?? ''))}`;
  const msg = `msg_up${idOf(id)}`;
  const model = snapshotOf(typeof body.model === 'string' ? body.model : 'gpt-4o-mini');
  const base = { id, object: 'response', created_at: CREATED, background: false, error: null, incomplete_details: null, instructions: body.instructions ?? null, max_output_tokens: null, model, parallel_tool_calls: true, previous_response_id: null, store: body.store !== false, temperature: 1, text: { format: { type: 'text' } }, tool_choice: 'auto', tools: [], top_p: 1, truncation: 'disabled', user: null, metadata: {} };
  const text = words.join('');
  const part = (t: string) => ({ type: 'output_text', text: t, annotations: [], logprobs: [] });
  const item = (status: string, t: string) => ({ id: msg, type: 'message', status, role: 'assistant', content: t === '' && status === 'in_progress' ? [] : [part(t)] });
  const usage = { input_tokens: 9, input_tokens_details: { cached_tokens: 0 }, output_tokens: words.length, output_tokens_details: { reasoning_tokens: 0 }, total_tokens: 9 + words.length };
  let seq = 0;
  // `scenario:pretty`: each event's data pretty-printed, so it spans several `data:` lines (SSE joins them with \n).
  const ev = (type: string, fields: Json) => `event: ${type}\ndata: ${JSON.stringify({ type, sequence_number: seq++, ...fields }, null, scenario === 'pretty' ? 2 : undefined).replaceAll('\n', '\ndata: ')}\n\n`;
  if (toolResult === undefined && Array.isArray(body.tools) && body.tools.length > 0) {
    // A request with tools gets a call of the first one, as the chat answer does.
    const name = String((body.tools[0] as Json).name ?? 'tool');
    const args = '{"location":"Paris"}';
    const call = (status: string, a: string) => ({ id: `fc_up${idOf(id)}`, type: 'function_call', status, arguments: a, call_id: `call_up${idOf(id)}`, name });
    const called = { ...base, status: 'completed', output: [call('completed', args)], usage };
    if (body.stream !== true) return sendJson(res, 200, called);
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8' });
    return writePaced(res, [
      ev('response.created', { response: { ...base, status: 'in_progress', output: [], usage: null } }),
      ev('response.in_progress', { response: { ...base, status: 'in_progress', output: [], usage: null } }),
      ev('response.output_item.added', { output_index: 0, item: call('in_progress', '') }),
      ...[args.slice(0, 5), args.slice(5)].map((d) => ev('response.function_call_arguments.delta', { item_id: call('', '').id, output_index: 0, delta: d })),
      ev('response.function_call_arguments.done', { item_id: call('', '').id, output_index: 0, arguments: args }),
      ev('response.output_item.done', { output_index: 0, item: call('completed', args) }),
      ev('response.completed', { response: called }),
    ], knob(prompt, 'delay', 0), true);
  }
  const done = { ...base, status: 'completed', output: [item('completed', text)], usage };
  if (body.stream !== true) return sendJson(res, 200, done);
  const frames = [
    ev('response.created', { response: { ...base, status: 'in_progress', output: [], usage: null } }),
    ev('response.in_progress', { response: { ...base, status: 'in_progress', output: [], usage: null } }),
    ev('response.output_item.added', { output_index: 0, item: item('in_progress', '') }),
    ev('response.content_part.added', { item_id: msg, output_index: 0, content_index: 0, part: part('') }),
    ...words.map((w) => ev('response.output_text.delta', { item_id: msg, output_index: 0, content_index: 0, delta: w, logprobs: [] })),
    ev('response.output_text.done', { item_id: msg, output_index: 0, content_index: 0, text, logprobs: [] }),
    ev('response.content_part.done', { item_id: msg, output_index: 0, content_index: 0, part: part(text) }),
    ev('response.output_item.done', { output_index: 0, item: item('completed', text) }),
    ev('response.completed', { response: done }),
  ];
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8' });
  writePaced(res, frames, knob(prompt, 'delay', 0), true);
}

export const MODELS = [
  { id: 'gpt-4o-mini', object: 'model', created: 1721172741, owned_by: 'system' },
  { id: 'gpt-4o-mini-2024-07-18', object: 'model', created: 1721172717, owned_by: 'system' },
  { id: 'text-embedding-3-small', object: 'model', created: 1705948997, owned_by: 'system' },
];

export async function startOpenAIUpstream(): Promise<OpenAIUpstream> {
  const requests: UpstreamRequest[] = [];
  let modelListRequests = 0;
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?', 1)[0]!;
    if (req.method === 'GET' && path === '/v1/models') {
      modelListRequests++;
      req.resume();
      return sendJson(res, 200, { object: 'list', data: MODELS });
    }
    if (req.method === 'GET' && path.startsWith('/v1/models/')) {
      req.resume();
      const model = MODELS.find((m) => m.id === decodeURIComponent(path.slice('/v1/models/'.length)));
      if (model) return sendJson(res, 200, model);
      return sendJson(res, 404, { error: { message: 'The model does not exist.', type: 'invalid_request_error', param: 'model', code: 'model_not_found' } });
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let body: Json;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Json;
      } catch {
        return sendJson(res, 400, { error: { message: 'We could not parse the JSON body of your request.', type: 'invalid_request_error', param: null, code: null } });
      }
      const prompt = path === '/v1/chat/completions' ? lastMessage(body).text : path === '/v1/responses' ? responsesPrompt(body) : JSON.stringify(body.prompt ?? body.input ?? '');
      const rec = recordRequest(req, res, { path, body, prompt, scenario: '' });
      requests.push(rec);
      if (path === '/v1/chat/completions') return handleChat(res, body, rec);
      if (path === '/v1/completions') return handleCompletions(res, body, rec);
      if (path === '/v1/embeddings') return handleEmbeddings(res, body, rec);
      if (path === '/v1/responses') return handleResponses(res, body, rec);
      sendJson(res, 404, { error: { message: `Invalid URL (${req.method} ${path})`, type: 'invalid_request_error', param: null, code: null } });
    });
  });
  const { port, close } = await listen(server);
  return {
    url: `http://127.0.0.1:${port}/v1`,
    requests,
    requestsFor: (tag) => requests.filter((r) => r.prompt.includes(tag)),
    get modelListRequests() {
      return modelListRequests;
    },
    close,
  };
}
