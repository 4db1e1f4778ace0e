// A real HTTP server that answers as Google's Gemini API does (generativelanguage.googleapis.com, v1beta), for
// tests that hold a gateway to being faithful to a Gemini upstream, and for driving one with Google's own SDK
// (@google/genai). It is steered like the other fakes (fakes/openai, fakes/anthropic), so a test can use any of
// them the same way:
//
//  - the last user turn picks the answer: `scenario:<name>` (text when none), `tokens:<n>` a length, `cached:<n>`
//    cached prompt tokens, `delay:<ms>` paces the stream's chunks (timers, so a test can abort mid-stream);
//  - a request with function declarations gets a function call, and one whose last user turn holds function
//    responses gets an answer quoting them: a round trip needs no knobs;
//  - the same conversation gets the same ids, so an answer direct and one through a gateway compare whole.
//
// Scenarios: text, tokens:<n> (or long), no-usage, tool, tools-2, thinking, thinking-tool, max-tokens, safety,
// recitation, malformed-call, error-mid, cut, http-400, http-401, http-403, http-404, http-429, http-500, http-503.
//
// Endpoints: POST /v1beta/models/{model}:generateContent, :streamGenerateContent (`?alt=sse` for server-sent
// events, else a JSON array), :countTokens; GET /v1beta/models (paged) and /v1beta/models/{model}.
//
// It checks what Gemini checks before answering: the API key (when one is configured; `x-goog-api-key`, or
// `?key=`), the request's fields as Google's proto parse does (an unknown name is a 400 naming it), the roles and
// turns of the conversation, function responses answering the calls before them, and for gemini-3* models the
// thought signature on each function call turn of the current turn, which must be one this fake issued.
import * as http from 'node:http';
import { listen, recordRequest, type FakeRequest } from '../http.js';
import { knob, scenarioIn } from '../knobs.js';
import { answerFor, render, scenarioOf } from './answers.js';
import { countedRequest, inputTokensOf, invalidConversation, lastUser, parse } from './request.js';
import { BAD_KEY, ERRORS, NO_KEY, invalidArgument, notFound, sendError, sendJson, sse, streamHeaders, writePaced, type ErrorSpec, type Json } from './wire.js';

export {
  CITATION_METADATA,
  ERROR_MID_TEXT,
  MALFORMED_MESSAGE,
  RECITATION_TEXT,
  SAFETY_RATINGS,
  SAFETY_TEXT,
  TEXT,
  THINKING,
  THINKING_TOOL,
  TOOL_ARGS,
  answerFor,
  joined,
  render,
  scenarioOf,
  type Answer,
  type FinishReason,
} from './answers.js';
export { conversationKey, includeThoughts, inputTokensOf, invalidConversation, isGemini3, lastUser, parse } from './request.js';
export {
  BAD_KEY,
  ERRORS,
  INTERNAL_MESSAGE,
  NO_KEY,
  SKIP_SIGNATURE,
  STREAM_ERROR,
  errorBody,
  missingSignature,
  oneLine,
  responseIdOf,
  signatureIssued,
  signatureOf,
  signatureValid,
  usageOf,
  type ErrorSpec,
} from './wire.js';

/** One request the fake received. */
export type GeminiRequestRecord = FakeRequest;

export interface GeminiUpstream {
  /** e.g. http://127.0.0.1:PORT/v1beta — what Jarvis's upstream baseUrl is set to. */
  url: string;
  /** http://127.0.0.1:PORT — what @google/genai's httpOptions.baseUrl takes (with apiVersion 'v1beta'). */
  origin: string;
  requests: GeminiRequestRecord[];
  /** Requests whose prompt contains `tag` (retries included). */
  requestsFor(tag: string): GeminiRequestRecord[];
  /** How many times GET /v1beta/models was asked. */
  readonly modelListRequests: number;
  close(): Promise<void>;
}

export interface GeminiUpstreamOptions {
  /** When set, a request without a key gets 403 PERMISSION_DENIED, one with another key 400 API_KEY_INVALID. */
  apiKey?: string;
  /** The models GET /v1beta/models lists. */
  models?: string[];
}

export const MODELS = ['gemini-3-pro-preview', 'gemini-3-flash-preview', 'gemini-2.5-flash'];

/** The methods each model lists in supportedGenerationMethods. */
export const GENERATION_METHODS = ['generateContent', 'countTokens', 'createCachedContent', 'batchGenerateContent'];

/** The Model resource GET /v1beta/models lists for `id`, in the order Gemini writes its fields. */
export function modelInfo(id: string) {
  const displayName = id
    .split('-')
    .map((w) => (w === '' ? w : `${w[0]!.toUpperCase()}${w.slice(1)}`))
    .join(' ');
  return {
    name: `models/${id}`,
    version: id.includes('preview') ? id.replace(/^gemini-/, '') : '001',
    displayName,
    description: `${displayName}, as the fake serves it.`,
    inputTokenLimit: 1_048_576,
    outputTokenLimit: 65_536,
    supportedGenerationMethods: GENERATION_METHODS,
    temperature: 1,
    topP: 0.95,
    topK: 64,
    maxTemperature: 2,
    thinking: true,
  };
}

/** GET /v1beta/models's page size when the request names none, and the most it gives. */
export const DEFAULT_PAGE_SIZE = 50;
const MAX_PAGE_SIZE = 1000;

/** The opaque token of the page that starts with `name`. */
const pageTokenOf = (name: string) => Buffer.from(`\n${name}`).toString('base64url');

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** The key a request presents: the `x-goog-api-key` header (what the SDK sends), else the `key` query parameter. */
function keyOf(req: http.IncomingMessage, url: URL): string | undefined {
  const header = req.headers['x-goog-api-key'];
  if (typeof header === 'string' && header !== '') return header;
  return url.searchParams.get('key') ?? undefined;
}

const ROUTE = /^\/v1beta\/models\/([^/:]+):(generateContent|streamGenerateContent|countTokens)$/;

/** A streamGenerateContent answer without `alt=sse`: one JSON array, its elements written as they are generated. */
function arrayFrames(chunks: Json[], complete: boolean): string[] {
  const frames = chunks.map((c, i) => `${i === 0 ? '[' : '\n,\r\n'}${JSON.stringify(c, null, 2)}`);
  if (frames.length === 0) frames.push('[');
  return complete ? [...frames, '\n]'] : frames;
}

export async function startGeminiUpstream(opts: GeminiUpstreamOptions = {}): Promise<GeminiUpstream> {
  const requests: GeminiRequestRecord[] = [];
  const models = (opts.models ?? MODELS).map(modelInfo);
  let modelListRequests = 0;

  /** The key check every endpoint makes first: why it refuses, or null. */
  const refusal = (req: http.IncomingMessage, url: URL): ErrorSpec | null => {
    if (opts.apiKey === undefined) return null;
    const key = keyOf(req, url);
    if (key === undefined) return NO_KEY;
    return key === opts.apiKey ? null : BAD_KEY;
  };
  /** Answers the refusal, if any: true when the request may go on. */
  const admitted = (req: http.IncomingMessage, url: URL, res: http.ServerResponse): boolean => {
    const refused = refusal(req, url);
    if (refused) sendError(res, refused);
    return refused === null;
  };

  const listModels = (url: URL, res: http.ServerResponse) => {
    const asked = Number(url.searchParams.get('pageSize') ?? DEFAULT_PAGE_SIZE);
    const size = Math.min(MAX_PAGE_SIZE, asked > 0 && Number.isInteger(asked) ? asked : DEFAULT_PAGE_SIZE);
    const token = url.searchParams.get('pageToken');
    let from = 0;
    if (token !== null && token !== '') {
      from = models.findIndex((m) => pageTokenOf(m.name) === token);
      if (from < 0) return sendError(res, invalidArgument('Invalid page token.'));
    }
    const page = models.slice(from, from + size);
    const next = models[from + size];
    sendJson(res, 200, { models: page, ...(next ? { nextPageToken: pageTokenOf(next.name) } : {}) });
  };

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://fake');
    const path = url.pathname;
    const text = await readBody(req);

    if (req.method === 'GET' && (path === '/v1beta/models' || path.startsWith('/v1beta/models/'))) {
      if (path === '/v1beta/models') modelListRequests++;
      if (!admitted(req, url, res)) return;
      if (path === '/v1beta/models') return listModels(url, res);
      const id = decodeURIComponent(path.slice('/v1beta/models/'.length));
      const model = models.find((m) => m.name === `models/${id}`);
      return model ? sendJson(res, 200, model) : sendError(res, notFound(id, 'getModel'));
    }
    const route = ROUTE.exec(path);
    if (req.method !== 'POST' || !route) return sendError(res, { code: 404, status: 'NOT_FOUND', message: `Method not found: ${req.method} ${path}` });
    const model = decodeURIComponent(route[1]!);
    const method = route[2]!;

    let body: Json | undefined;
    try {
      const value: unknown = JSON.parse(text);
      if (typeof value === 'object' && value !== null && !Array.isArray(value)) body = value as Json;
    } catch {
      // Refused below, once the key is checked.
    }
    const parsed = body === undefined ? undefined : parse(body, method === 'countTokens' ? 'CountTokensRequest' : 'GenerateContentRequest');
    const request = parsed && 'request' in parsed ? (method === 'countTokens' ? countedRequest(parsed.request) : parsed.request) : undefined;
    // The prompt of a request the parse refused is read from the body as sent, as well as it can be.
    const prompt = lastUser(request ?? body ?? {}).prompt;
    const scenario = request ? scenarioOf(request) : (scenarioIn(prompt) ?? 'invalid');
    requests.push(recordRequest(req, res, { path, body: body ?? text, prompt, scenario }));

    if (!admitted(req, url, res)) return;
    if (body === undefined || parsed === undefined) return sendError(res, invalidArgument('Invalid JSON payload received. Unexpected token.'));
    if ('error' in parsed) return sendError(res, parsed.error);
    const ask = request!;
    if (method !== 'countTokens') {
      const invalid = invalidConversation(ask, model);
      if (invalid) return sendError(res, invalid);
    }
    const failure = ERRORS[scenario];
    if (failure) return sendError(res, failure);
    if (method === 'countTokens') {
      const total = inputTokensOf(ask);
      return sendJson(res, 200, { totalTokens: total, promptTokensDetails: [{ modality: 'TEXT', tokenCount: total }] });
    }

    const { response, chunks, end } = render(ask, answerFor(ask, model), model);
    const delayMs = knob(prompt, 'delay', 0);
    if (method === 'streamGenerateContent') {
      const events = url.searchParams.get('alt') === 'sse';
      res.writeHead(200, streamHeaders(events));
      return writePaced(res, events ? chunks.map(sse) : arrayFrames(chunks, end !== 'cut'), delayMs, end !== 'cut');
    }
    // Unstreamed, a failure mid-answer is the HTTP error it would have been; a cut is a connection closed unanswered.
    const send = () => {
      if (res.destroyed) return;
      if (end === 'cut') return res.destroy();
      return end === 'error' ? sendError(res, ERRORS['http-500']!) : sendJson(res, 200, response);
    };
    if (delayMs > 0) setTimeout(send, delayMs * Math.max(1, chunks.length));
    else send();
  };

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) sendError(res, { code: 500, status: 'INTERNAL', message: `fake: ${String(err)}` });
      else res.destroy();
    });
  });
  const { port, close } = await listen(server);
  return {
    url: `http://127.0.0.1:${port}/v1beta`,
    origin: `http://127.0.0.1:${port}`,
    requests,
    requestsFor: (tag) => requests.filter((r) => r.prompt.includes(tag)),
    get modelListRequests() {
      return modelListRequests;
    },
    close,
  };
}
