// What the fake writes on the wire, and the deterministic values it writes: ids, thought signatures, usage, error
// bodies. Google's front end writes JSON two ways, and the fake writes both: a unary answer (generateContent, an
// error) pretty-printed with two spaces and a final newline; an SSE frame on one line as `{"key": value,"next": …}`
// (a space after each colon, none after a comma), framed `data: <json>\r\n\r\n`.
import type * as http from 'node:http';
import { hash32 } from '../http.js';

export type Json = Record<string, unknown>;

export { hash32, writePaced } from '../http.js';

/** Google's headers on every answer, beside the content type. */
const HEADERS = { vary: 'Origin, X-Origin, Referer', server: 'scaffolding on HTTPServer2', 'x-content-type-options': 'nosniff' };

/** A unary JSON answer as Google's front end writes it: pretty-printed, with a final newline. */
export function sendJson(res: http.ServerResponse, status: number, payload: unknown): void {
  const text = `${JSON.stringify(payload, null, 2)}\n`;
  res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8', 'content-length': String(Buffer.byteLength(text)), ...HEADERS });
  res.end(text);
}

/** The headers of a 200 stream: `alt=sse` is an event stream, without it a JSON array written as it is generated. */
export function streamHeaders(sse: boolean): http.OutgoingHttpHeaders {
  return { 'content-type': sse ? 'text/event-stream' : 'application/json; charset=UTF-8', 'content-disposition': 'attachment', ...HEADERS };
}

/** JSON on one line as Google's SSE frames carry it: `{"a": 1,"b": [{"c": true}]}`. */
export function oneLine(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(oneLine).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    return `{${Object.entries(value)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${JSON.stringify(k)}: ${oneLine(v)}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}

/** One server-sent event as Gemini frames it: a data line, CRLF CRLF. No event names, no ids, no [DONE]. */
export const sse = (data: unknown) => `data: ${oneLine(data)}\r\n\r\n`;

const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/** `n` base64url characters derived from `seed`, as opaque as Google's ids look and the same for the same seed. */
export function opaque(seed: string, n: number): string {
  let out = '';
  for (let round = 0; out.length < n; round++) {
    let h = hash32(`${round}:${seed}`);
    for (let k = 0; k < 5 && out.length < n; k++) {
      out += B64URL[h % 64];
      h = Math.floor(h / 64);
    }
  }
  return out;
}

/** A response id as Gemini writes them (23 base64url characters), the same for the same conversation. */
export const responseIdOf = (seed: string) => opaque(`resp:${seed}`, 23);

// Thought signatures the fake can check again later: Gemini's are opaque bytes (base64 in JSON) it verifies
// server-side, and so are these. A function call's signature signs the call's name, so one moved onto another
// call fails as a tampered one would; a text part's signs the empty string (it is not tied to the text, which a
// client may legitimately join).
const SIGNING_KEY = 'gemini-fake-signing-key';
const mac = (payload: string) => opaque(`${SIGNING_KEY}:${payload}`, 24);

/** The value Google documents for a function call whose signature was lost (history from elsewhere): it passes Gemini 3's check. */
export const SKIP_SIGNATURE = 'skip_thought_signature_validator';

/** The signature the fake issues for a part bound to `bound` (a function call's name, or '' for text); `nonce` makes each answer's different. */
export function signatureOf(bound: string, nonce: string): string {
  const payload = `ts.${hash32(bound).toString(36)}.${opaque(nonce, 12)}`;
  return Buffer.from(`${payload}.${mac(payload)}`).toString('base64');
}

function partsOf(signature: unknown): string[] | null {
  if (typeof signature !== 'string' || signature === '') return null;
  const parts = Buffer.from(signature, 'base64').toString('utf8').split('.');
  return parts.length === 4 && parts[0] === 'ts' && parts[3] === mac(parts.slice(0, 3).join('.')) ? parts : null;
}

/** Whether `signature` is one the fake issued, for whatever part. */
export function signatureIssued(signature: unknown): boolean {
  return partsOf(signature) !== null;
}

/** Whether `signature` is one the fake issued for a part bound to `bound`. */
export function signatureValid(bound: string, signature: unknown): boolean {
  return partsOf(signature)?.[1] === hash32(bound).toString(36);
}

/** Tokens per modality, as the usage details list them. */
const text = (tokenCount: number) => [{ modality: 'TEXT', tokenCount }];

/**
 * A chunk's usageMetadata, cumulative, in the order Gemini writes its fields (their proto numbers). Zero counts
 * are left out, as proto3 JSON leaves them: a chunk of thoughts only has no candidatesTokenCount yet.
 */
export function usageOf(prompt: number, candidates: number, thoughts: number, cached = 0): Json {
  const u: Json = { promptTokenCount: prompt };
  if (candidates > 0) u.candidatesTokenCount = candidates;
  u.totalTokenCount = prompt + candidates + thoughts;
  if (cached > 0) u.cachedContentTokenCount = cached;
  u.promptTokensDetails = text(prompt);
  if (cached > 0) u.cacheTokensDetails = text(cached);
  if (thoughts > 0) u.thoughtsTokenCount = thoughts;
  return u;
}

/** A Google API error: its HTTP code, canonical status, message and typed details (google.rpc.*). */
export interface ErrorSpec {
  code: number;
  status: string;
  message: string;
  details?: Json[];
}

/** The body of an error as Google answers it. */
export const errorBody = (e: ErrorSpec) => ({ error: { code: e.code, message: e.message, status: e.status, ...(e.details ? { details: e.details } : {}) } });

export function sendError(res: http.ServerResponse, e: ErrorSpec): void {
  sendJson(res, e.code, errorBody(e));
}

const RPC = 'type.googleapis.com/google.rpc.';
const TROUBLESHOOTING = 'https://developers.generativeai.google/guide/troubleshooting';
export const INTERNAL_MESSAGE = `An internal error has occurred. Please retry or report in ${TROUBLESHOOTING}`;

/** A request without any key: Google's front end refuses it before the API sees it. */
export const NO_KEY: ErrorSpec = {
  code: 403,
  status: 'PERMISSION_DENIED',
  message: "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.",
};

/** A key that is not one: 400, not 401, with the reason in an ErrorInfo. */
export const BAD_KEY: ErrorSpec = {
  code: 400,
  status: 'INVALID_ARGUMENT',
  message: 'API key not valid. Please pass a valid API key.',
  details: [
    { '@type': `${RPC}ErrorInfo`, reason: 'API_KEY_INVALID', domain: 'googleapis.com', metadata: { service: 'generativelanguage.googleapis.com' } },
    { '@type': `${RPC}LocalizedMessage`, locale: 'en-US', message: 'API key not valid. Please pass a valid API key.' },
  ],
};

/** Gemini 3's refusal of a function call sent back without its signature; `position` is the content's, from 1. */
export const missingSignature = (name: string, position: number): ErrorSpec => ({
  code: 400,
  status: 'INVALID_ARGUMENT',
  message:
    'Function call is missing a thought_signature in functionCall parts. This is required for tools to work correctly, and missing thought_signature may lead to degraded model performance. ' +
    `Additional data, function call \`default_api:${name}\` , position ${position}. Please refer to https://ai.google.dev/gemini-api/docs/thought-signatures for more details.`,
});

export const invalidArgument = (message: string, details?: Json[]): ErrorSpec => ({ code: 400, status: 'INVALID_ARGUMENT', message, ...(details ? { details } : {}) });

/** A model the API does not serve (scenario `http-404`, and GET /v1beta/models/{unknown}). */
export const notFound = (model: string, method: string): ErrorSpec => ({
  code: 404,
  status: 'NOT_FOUND',
  message: `models/${model} is not found for API version v1beta, or is not supported for ${method}. Call ListModels to see the list of available models and their supported methods.`,
});

/** The HTTP failures a prompt can ask for with `scenario:<name>`. Gemini sends no Retry-After: a 429 says when in RetryInfo. */
export const ERRORS: Record<string, ErrorSpec> = {
  'http-400': invalidArgument('Request contains an invalid argument.'),
  'http-401': {
    code: 401,
    status: 'UNAUTHENTICATED',
    message:
      'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.',
    details: [
      {
        '@type': `${RPC}ErrorInfo`,
        reason: 'ACCESS_TOKEN_TYPE_UNSUPPORTED',
        metadata: { service: 'generativelanguage.googleapis.com', method: 'google.ai.generativelanguage.v1beta.GenerativeService.GenerateContent' },
      },
    ],
  },
  'http-403': { code: 403, status: 'PERMISSION_DENIED', message: 'The caller does not have permission' },
  'http-404': notFound('gemini-unknown-0', 'generateContent'),
  'http-429': {
    code: 429,
    status: 'RESOURCE_EXHAUSTED',
    message:
      'You exceeded your current quota, please check your plan and billing details. For more information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits. To monitor your current usage, head to: https://ai.dev/rate-limit. \n' +
      '* Quota exceeded for metric: generativelanguage.googleapis.com/generate_content_free_tier_requests, limit: 10\nPlease retry in 7s.',
    details: [
      {
        '@type': `${RPC}QuotaFailure`,
        violations: [
          {
            quotaMetric: 'generativelanguage.googleapis.com/generate_content_free_tier_requests',
            quotaId: 'GenerateRequestsPerMinutePerProjectPerModel-FreeTier',
            quotaDimensions: { location: 'global' },
            quotaValue: '10',
          },
        ],
      },
      { '@type': `${RPC}RetryInfo`, retryDelay: '7s' },
    ],
  },
  'http-500': { code: 500, status: 'INTERNAL', message: INTERNAL_MESSAGE },
  'http-503': { code: 503, status: 'UNAVAILABLE', message: 'The model is overloaded. Please try again later.' },
};

/**
 * What a stream that fails after answering 200 carries (scenario `error-mid`): the error object as a data frame of
 * its own, after which the response ends. There is no event name: a reader knows it by its `error` key.
 */
export const STREAM_ERROR = errorBody({ code: 500, status: 'INTERNAL', message: INTERNAL_MESSAGE });
