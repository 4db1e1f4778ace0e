// A real HTTP server that answers as Anthropic's Messages API does, for tests that hold a gateway to being faithful
// to an Anthropic upstream, and for driving one with Anthropic's own SDK. It is steered like the OpenAI fake
// (fakes/openai), so a test can use either the same way:
//
//  - the last user message picks the answer: `scenario:<name>` (text when none), `tokens:<n>` a length, `delay:<ms>`
//    paces the stream's events (timers, so a test can abort mid-stream);
//  - a request with `tools` gets a tool_use, and one whose last user message holds tool_result blocks gets an answer
//    quoting them: a round trip needs no knobs;
//  - the same conversation gets the same ids, so an answer direct and one through a gateway compare whole.
//
// Scenarios: text, tokens:<n> (or long), tool, tools-2, thinking, thinking-tool, thinking-redacted, max-tokens,
// stop-sequence, refusal, error-mid, http-400, http-401, http-403, http-404, http-429, http-500, http-529.
//
// It checks what Anthropic checks before answering: the API key (when one is configured), `anthropic-version`,
// the required fields, the sampling parameters that 2026-10-21 refuses, and, with thinking on, that the assistant
// turn whose tool_use is being answered starts with a thinking block signed by this fake.
import * as http from 'node:http';
import { listen, recordRequest, type FakeRequest } from '../http.js';
import { knob } from '../knobs.js';
import { answerFor, framesOf, render } from './answers.js';
import { API_VERSIONS, inputTokensOf, invalidRequest, lastUser, conversationKey } from './request.js';
import { ERRORS, requestId, sendError, sendJson, writePaced, type Json } from './wire.js';

export { answerFor, render, scenarioOf, REFUSAL_DETAILS, REFUSAL_TEXT, STOP_SEQUENCE, TEXT, THINKING, THINKING_TOOL, TOOL_ARGS, type Answer, type Block } from './answers.js';
export { API_VERSIONS, SAMPLING_PARAMS, inputTokensOf } from './request.js';
export { DELTA_USAGE, ERRORS, START_OUTPUT_TOKENS, STREAM_ERROR, USAGE, errorBody, signatureOf, signatureValid, type ErrorSpec } from './wire.js';

/** One request the fake received. */
export type AnthropicRequestRecord = FakeRequest;

export interface AnthropicUpstream {
  /** The origin, e.g. http://127.0.0.1:PORT, without /v1: the SDK's `baseURL`. */
  url: string;
  requests: AnthropicRequestRecord[];
  /** Requests whose prompt contains `tag` (retries included). */
  requestsFor(tag: string): AnthropicRequestRecord[];
  /** How many times GET /v1/models was asked. */
  readonly modelListRequests: number;
  close(): Promise<void>;
}

export interface AnthropicUpstreamOptions {
  /** When set, a request with any other key (in `x-api-key`, or `Authorization: Bearer`) gets 401. */
  apiKey?: string;
  /** The models GET /v1/models lists. */
  models?: string[];
}

export const MODELS = ['claude-opus-5-5', 'claude-sonnet-5-5', 'claude-haiku-4-5'];

/** The model entry GET /v1/models lists for `id`, `i`-th in the list. */
export function modelInfo(id: string, i: number) {
  const line = /\b(opus|sonnet|haiku|fable|mythos)\b/.exec(id.replace(/-/g, ' '))?.[1] ?? null;
  const version = /-(\d+)(?:-(\d))?(?:-\d{8})?$/.exec(id);
  const name = line ? `Claude ${line[0]!.toUpperCase()}${line.slice(1)}${version ? ` ${version[1]}${version[2] === undefined ? '' : `.${version[2]}`}` : ''}` : id;
  return {
    type: 'model',
    id,
    display_name: name,
    created_at: new Date(Date.UTC(2026, 9, 21) - i * 86_400_000).toISOString().replace('.000Z', 'Z'),
    capabilities: null,
    deprecated_at: null,
    lifecycle: 'active',
    line,
    max_input_tokens: 200_000,
    max_tokens: 64_000,
    retires_at: null,
  };
}

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** The key a request presents: `x-api-key` first (Anthropic prefers it when both are sent), else a bearer token. */
function keyOf(headers: http.IncomingHttpHeaders): string | undefined {
  const key = headers['x-api-key'];
  if (typeof key === 'string' && key !== '') return key;
  const bearer = /^Bearer\s+(.+)$/i.exec(headers.authorization ?? '');
  return bearer?.[1];
}

export async function startAnthropicUpstream(opts: AnthropicUpstreamOptions = {}): Promise<AnthropicUpstream> {
  const requests: AnthropicRequestRecord[] = [];
  const models = (opts.models ?? MODELS).map(modelInfo);
  let modelListRequests = 0;

  /** The checks every endpoint makes first, the key and then the version header: why it refuses, or null. */
  const refusal = (req: http.IncomingMessage): { status: number; type: string; message: string } | null => {
    if (opts.apiKey !== undefined) {
      const key = keyOf(req.headers);
      if (key === undefined) return { status: 401, type: 'authentication_error', message: 'x-api-key header is required' };
      if (key !== opts.apiKey) return { status: 401, type: 'authentication_error', message: 'invalid x-api-key' };
    }
    const version = req.headers['anthropic-version'];
    if (version === undefined) return { status: 400, type: 'invalid_request_error', message: 'anthropic-version: header is required' };
    if (!(API_VERSIONS as readonly string[]).includes(String(version))) {
      return { status: 400, type: 'invalid_request_error', message: `anthropic-version: ${JSON.stringify(version)} is not a valid version` };
    }
    return null;
  };
  /** Answers the refusal, if any: true when the request may go on. */
  const admitted = (req: http.IncomingMessage, res: http.ServerResponse, reqId: string): boolean => {
    const refused = refusal(req);
    if (refused) sendError(res, refused.status, refused.type, refused.message, reqId);
    return refused === null;
  };

  const listModels = (url: URL, res: http.ServerResponse, reqId: string) => {
    const limit = Math.min(1000, Math.max(1, Number(url.searchParams.get('limit') ?? 20) || 20));
    const after = url.searchParams.get('after_id');
    const before = url.searchParams.get('before_id');
    let from = 0;
    let to = models.length;
    if (after !== null) from = models.findIndex((m) => m.id === after) + 1;
    if (before !== null) to = Math.max(0, models.findIndex((m) => m.id === before));
    const page = before !== null ? models.slice(Math.max(from, to - limit), to) : models.slice(from, Math.min(to, from + limit));
    const hasMore = before !== null ? to - limit > from : from + limit < to;
    sendJson(res, 200, { data: page, has_more: hasMore, first_id: page[0]?.id ?? null, last_id: page.at(-1)?.id ?? null }, { 'request-id': reqId });
  };

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://fake');
    const path = url.pathname;
    const text = await readBody(req);
    const reqId = requestId(`${req.method} ${path} ${text}`);

    if (req.method === 'GET' && (path === '/v1/models' || path.startsWith('/v1/models/'))) {
      if (path === '/v1/models') modelListRequests++;
      if (!admitted(req, res, reqId)) return;
      if (path === '/v1/models') return listModels(url, res, reqId);
      const id = decodeURIComponent(path.slice('/v1/models/'.length));
      const model = models.find((m) => m.id === id);
      if (model) return sendJson(res, 200, model, { 'request-id': reqId });
      return sendError(res, 404, 'not_found_error', `model: ${id}`, reqId);
    }
    if (req.method !== 'POST' || (path !== '/v1/messages' && path !== '/v1/messages/count_tokens')) {
      return sendError(res, 404, 'not_found_error', 'Not Found', reqId);
    }

    let body: Json;
    try {
      const parsed: unknown = JSON.parse(text);
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object');
      body = parsed as Json;
    } catch {
      if (!admitted(req, res, reqId)) return;
      return sendError(res, 400, 'invalid_request_error', 'There was an issue with the request body: the body must be a JSON object.', reqId);
    }
    const prompt = lastUser(body).prompt;
    let scenario = 'invalid';
    try {
      scenario = answerFor(body).scenario;
    } catch {
      // A body too malformed to answer; validation below says why.
    }
    requests.push(recordRequest(req, res, { path, body, prompt, scenario }));

    if (!admitted(req, res, reqId)) return;
    const invalid = invalidRequest(body, String(req.headers['anthropic-version']), path);
    if (invalid !== null) return sendError(res, 400, 'invalid_request_error', invalid, reqId);
    const answerId = requestId(`${path} ${conversationKey(body)} ${scenario}`);
    const failure = ERRORS[scenario];
    if (failure) return sendError(res, failure.status, failure.type, failure.message, answerId, failure.headers);
    if (path === '/v1/messages/count_tokens') return sendJson(res, 200, { input_tokens: inputTokensOf(body) }, { 'request-id': answerId });

    const { message, events, failed } = render(body, answerFor(body));
    const delayMs = knob(prompt, 'delay', 0);
    if (body.stream === true) {
      res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', 'request-id': answerId });
      return writePaced(res, framesOf(events), delayMs);
    }
    // What Anthropic answers a non-streaming request that the overload an error event reports would fail: a 529.
    const send = () => (res.destroyed ? undefined : failed ? sendError(res, 529, 'overloaded_error', 'Overloaded', answerId, ERRORS['http-529']!.headers) : sendJson(res, 200, message, { 'request-id': answerId }));
    if (delayMs > 0) setTimeout(send, delayMs * events.length);
    else send();
  };

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) sendError(res, 500, 'api_error', `fake: ${String(err)}`, requestId(String(err)));
      else res.destroy();
    });
  });
  const { port, close } = await listen(server);
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    requestsFor: (tag) => requests.filter((r) => r.prompt.includes(tag)),
    get modelListRequests() {
      return modelListRequests;
    },
    close,
  };
}
