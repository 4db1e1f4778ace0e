// What the fake writes on the wire, and the deterministic values it writes: ids, signatures, usage, error bodies.
import type * as http from 'node:http';
import { hash32, sendJson } from '../http.js';

export type Json = Record<string, unknown>;

export { hash32, sendJson, writePaced } from '../http.js';

const BASE58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';

/** `n` base58 characters derived from `seed`, as opaque as Anthropic's ids look and the same for the same seed. */
export function opaque(seed: string, n: number): string {
  let out = '';
  for (let round = 0; out.length < n; round++) {
    let h = hash32(`${round}:${seed}`);
    for (let k = 0; k < 5 && out.length < n; k++) {
      out += BASE58[h % 58];
      h = Math.floor(h / 58);
    }
  }
  return out;
}

export const messageId = (seed: string) => `msg_01${opaque(`msg:${seed}`, 22)}`;
export const toolUseId = (seed: string, i: number) => `toolu_01${opaque(`toolu:${i}:${seed}`, 22)}`;
export const requestId = (seed: string) => `req_011C${opaque(`req:${seed}`, 20)}`;

// Signatures the fake can check again later: Anthropic's are opaque and verified server-side, so are these. A
// signature names its thinking text's hash, so a block whose thinking was changed fails as Anthropic's would.
const SIGNING_KEY = 'anthropic-fake-signing-key';
const mac = (payload: string) => opaque(`${SIGNING_KEY}:${payload}`, 24);

/** The signature the fake issues for a thinking block with this text (`nonce` makes each answer's different). */
export function signatureOf(thinking: string, nonce: string): string {
  const payload = `th.${hash32(thinking).toString(36)}.${opaque(nonce, 12)}`;
  return Buffer.from(`${payload}.${mac(payload)}`).toString('base64');
}

/** Whether `signature` is one the fake issued for a thinking block with this text. */
export function signatureValid(thinking: string, signature: unknown): boolean {
  if (typeof signature !== 'string' || signature === '') return false;
  const parts = Buffer.from(signature, 'base64').toString('utf8').split('.');
  if (parts.length !== 4 || parts[0] !== 'th') return false;
  const payload = parts.slice(0, 3).join('.');
  return parts[1] === hash32(thinking).toString(36) && parts[3] === mac(payload);
}

/** The opaque `data` of a redacted_thinking block the fake issues. */
export function redactedDataOf(nonce: string): string {
  const payload = `rd.${opaque(nonce, 16)}`;
  return Buffer.from(`${payload}.${mac(payload)}`).toString('base64');
}

export function redactedDataValid(data: unknown): boolean {
  if (typeof data !== 'string' || data === '') return false;
  const parts = Buffer.from(data, 'base64').toString('utf8').split('.');
  return parts.length === 3 && parts[0] === 'rd' && parts[2] === mac(parts.slice(0, 2).join('.'));
}

/** The usage of a message, in the order Anthropic writes its fields. `thinking` is the part of `output` spent thinking. */
export const USAGE = (input: number, output: number, thinking = 0) => ({
  input_tokens: input,
  cache_creation_input_tokens: 0,
  cache_read_input_tokens: 0,
  cache_creation: { ephemeral_5m_input_tokens: 0, ephemeral_1h_input_tokens: 0 },
  output_tokens: output,
  output_tokens_details: { thinking_tokens: thinking },
  server_tool_use: null,
  service_tier: 'standard',
  inference_geo: 'global',
  speed: 'standard',
});

/** The cumulative usage a message_delta carries: the counters, not the tier. */
export const DELTA_USAGE = (input: number, output: number, thinking = 0) => ({
  input_tokens: input,
  cache_creation_input_tokens: 0,
  cache_read_input_tokens: 0,
  output_tokens: output,
  output_tokens_details: { thinking_tokens: thinking },
  server_tool_use: null,
});

/** `output_tokens` that message_start reports, before anything was generated. */
export const START_OUTPUT_TOKENS = 1;

export interface ErrorSpec {
  status: number;
  type: string;
  message: string;
  headers?: Record<string, string>;
}

/**
 * The HTTP failures a prompt can ask for with `scenario:<name>`. `retry-after` is what Anthropic sends with a 429;
 * `retry-after-ms` is not, but the SDK honours it before `retry-after`, which keeps its retries fast in tests.
 */
export const ERRORS: Record<string, ErrorSpec> = {
  'http-400': { status: 400, type: 'invalid_request_error', message: 'messages: text content blocks must be non-empty' },
  'http-401': { status: 401, type: 'authentication_error', message: 'invalid x-api-key' },
  'http-403': { status: 403, type: 'permission_error', message: 'Your API key does not have permission to use the specified resource.' },
  'http-404': { status: 404, type: 'not_found_error', message: 'model: claude-unknown-0' },
  'http-429': {
    status: 429,
    type: 'rate_limit_error',
    message: "This request would exceed your organization's rate limit of 50 requests per minute. For details, refer to: https://docs.claude.com/en/api/rate-limits.",
    headers: { 'retry-after': '1', 'retry-after-ms': '20' },
  },
  'http-500': { status: 500, type: 'api_error', message: 'Internal server error', headers: { 'retry-after-ms': '20' } },
  'http-529': { status: 529, type: 'overloaded_error', message: 'Overloaded', headers: { 'retry-after-ms': '20' } },
};

/** The body of an Anthropic error response. */
export const errorBody = (type: string, message: string, reqId: string) => ({ type: 'error', error: { type, message }, request_id: reqId });

/** The error event a stream carries when it fails after answering 200 (scenario `error-mid`). */
export const STREAM_ERROR = { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } };


/** An error as Anthropic answers it: the JSON body, and the request id in the `request-id` header too. */
export function sendError(res: http.ServerResponse, status: number, type: string, message: string, reqId: string, headers: Record<string, string> = {}): void {
  sendJson(res, status, errorBody(type, message, reqId), { 'request-id': reqId, ...headers });
}

/** One server-sent event as Anthropic frames it: the event name, and the same name as the data's `type`. */
export const sse = (data: { type: string }) => `event: ${data.type}\ndata: ${JSON.stringify(data)}\n\n`;
