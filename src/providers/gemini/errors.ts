import { JarvisError } from '../../errors.js';
import { isObject, type Obj } from '../../json.js';
import { retryHeadersOf, upstreamAuthError } from '../openai-compatible/upstream-errors.js';

/** Google's canonical error statuses as the HTTP statuses and OpenAI error types they mean. */
const MEANING: Record<string, { status: number; type: string }> = {
  INVALID_ARGUMENT: { status: 400, type: 'invalid_request_error' },
  FAILED_PRECONDITION: { status: 400, type: 'invalid_request_error' },
  OUT_OF_RANGE: { status: 400, type: 'invalid_request_error' },
  NOT_FOUND: { status: 404, type: 'invalid_request_error' },
  RESOURCE_EXHAUSTED: { status: 429, type: 'rate_limit_error' },
  CANCELLED: { status: 499, type: 'server_error' },
  INTERNAL: { status: 500, type: 'server_error' },
  UNKNOWN: { status: 500, type: 'server_error' },
  UNAVAILABLE: { status: 503, type: 'server_error' },
  DEADLINE_EXCEEDED: { status: 504, type: 'server_error' },
};

/** Google's RetryInfo detail ("7s", "0.5s") as whole seconds, the way retry-after says it. */
function retryDelayOf(error: Obj): string | undefined {
  if (!Array.isArray(error.details)) return undefined;
  for (const d of error.details) {
    if (!isObject(d) || typeof d.retryDelay !== 'string') continue;
    const seconds = /^(\d+(?:\.\d+)?)s$/.exec(d.retryDelay)?.[1];
    if (seconds !== undefined) return String(Math.ceil(Number(seconds)));
  }
  return undefined;
}

/** A Google error whose details say the API key is the problem (Gemini answers a wrong key with 400). */
function keyRefused(error: Obj): boolean {
  return Array.isArray(error.details) && error.details.some((d) => isObject(d) && (d.reason === 'API_KEY_INVALID' || d.reason === 'API_KEY_SERVICE_BLOCKED'));
}

function jarvisErrorOf(error: Obj, status: number, code: 'JARVIS_ERR_UPSTREAM_STATUS' | 'JARVIS_ERR_UPSTREAM_REPORTED', headers: Record<string, string>, event?: string): JarvisError {
  const google = typeof error.status === 'string' ? error.status : undefined;
  const meaning = (google && MEANING[google]) || { status, type: status === 429 ? 'rate_limit_error' : status >= 500 ? 'server_error' : 'invalid_request_error' };
  const message = typeof error.message === 'string' && error.message !== '' ? error.message : `upstream answered HTTP ${status}`;
  const outStatus = code === 'JARVIS_ERR_UPSTREAM_STATUS' ? status : meaning.status;
  const body = { message, type: meaning.type, param: null, code: google ?? null };
  return new JarvisError(code, message, {
    status: outStatus,
    type: meaning.type,
    ...(google ? { code: google } : {}),
    body,
    headers,
    ...(event !== undefined ? { event: JSON.stringify({ error: body }) } : {}),
    retryable: outStatus === 429 || outStatus >= 500,
  });
}

/**
 * A Gemini upstream's HTTP error with its meaning kept: 400 INVALID_ARGUMENT stays 400 with Google's message,
 * 429 RESOURCE_EXHAUSTED stays 429 with the retry delay Google gives as `retry-after`, 503 UNAVAILABLE stays a
 * retryable 503. 401, 403 and a key Google calls invalid say the gateway's own key is wrong: 502
 * upstream_auth_failed, the upstream's words not repeated.
 */
export function geminiStatusError(status: number, resHeaders: Record<string, string | string[] | undefined>, text: string, name: string): JarvisError {
  if (status === 401 || status === 403) return upstreamAuthError(status, name);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON (a proxy's page): the status says what happened
  }
  // Google answers some errors as a one-element list.
  const root = Array.isArray(parsed) ? parsed[0] : parsed;
  const error = isObject(root) && isObject(root.error) ? root.error : {};
  if (keyRefused(error)) return upstreamAuthError(status, name);
  const headers = retryHeadersOf(resHeaders);
  const delay = retryDelayOf(error);
  if (delay !== undefined && headers['retry-after'] === undefined) headers['retry-after'] = delay;
  return jarvisErrorOf(error, status, 'JARVIS_ERR_UPSTREAM_STATUS', headers);
}

/** An error object in a Gemini stream (`data: {"error": {...}}`): a streaming client gets an error event of its own format. */
export function reportedGeminiError(data: string, error: Obj): JarvisError {
  const code = typeof error.code === 'number' && error.code >= 400 && error.code <= 599 ? error.code : 500;
  return jarvisErrorOf(error, code, 'JARVIS_ERR_UPSTREAM_REPORTED', {}, data);
}
