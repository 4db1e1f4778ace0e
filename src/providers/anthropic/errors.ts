import { JarvisError } from '../../errors.js';
import { isObject, type Obj } from '../../json.js';
import { retryHeadersOf, upstreamAuthError } from '../openai-compatible/upstream-errors.js';

/**
 * Anthropic's error types as the statuses and OpenAI types they mean for a client of another wire. 529
 * overloaded_error has no OpenAI equivalent: it becomes a retryable 503, as OpenAI answers when overloaded.
 */
const MEANING: Record<string, { status: number; type: string }> = {
  invalid_request_error: { status: 400, type: 'invalid_request_error' },
  authentication_error: { status: 401, type: 'authentication_error' },
  permission_error: { status: 403, type: 'permission_error' },
  not_found_error: { status: 404, type: 'invalid_request_error' },
  request_too_large: { status: 413, type: 'invalid_request_error' },
  rate_limit_error: { status: 429, type: 'rate_limit_error' },
  api_error: { status: 500, type: 'server_error' },
  timeout_error: { status: 504, type: 'server_error' },
  overloaded_error: { status: 503, type: 'server_error' },
};

function typeOfStatus(status: number): string {
  if (status === 429) return 'rate_limit_error';
  if (status === 529) return 'overloaded_error';
  if (status === 404) return 'not_found_error';
  if (status === 413) return 'request_too_large';
  return status >= 500 ? 'api_error' : 'invalid_request_error';
}

/** The error object of an Anthropic error body (`{"type":"error","error":{...}}`), or one made from the status. */
function errorOf(parsed: unknown, status: number): Obj {
  const error = isObject(parsed) && isObject(parsed.error) ? parsed.error : {};
  return {
    ...error,
    type: typeof error.type === 'string' ? error.type : typeOfStatus(status),
    message: typeof error.message === 'string' ? error.message : `upstream answered HTTP ${status}`,
  };
}

function openAIBody(error: Obj, type: string): Obj {
  return { message: error.message, type, param: null, code: error.type };
}

/**
 * An Anthropic upstream's HTTP error, with its meaning kept for every client: 400 stays 400 with the message,
 * 429 stays 429 with its retry headers, 529 becomes a retryable 503 (a Messages client gets the 529 as sent),
 * 401 and 403 say the gateway's own key is wrong (502 upstream_auth_failed, the upstream's words not repeated).
 */
export function anthropicStatusError(status: number, resHeaders: Record<string, string | string[] | undefined>, text: string, name: string): JarvisError {
  if (status === 401 || status === 403) return upstreamAuthError(status, name);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON (a proxy's page): the status says what happened
  }
  const error = errorOf(parsed, status);
  const meaning = MEANING[String(error.type)] ?? { status: status === 529 ? 503 : status, type: status >= 500 ? 'server_error' : 'invalid_request_error' };
  const outStatus = status === 529 ? 503 : status;
  const native = { wire: 'anthropic.messages', status, body: isObject(parsed) && isObject(parsed.error) ? parsed : { type: 'error', error } };
  return new JarvisError('JARVIS_ERR_UPSTREAM_STATUS', String(error.message), {
    status: outStatus,
    type: meaning.type,
    code: String(error.type),
    body: openAIBody(error, meaning.type),
    headers: retryHeadersOf(resHeaders),
    native,
    ...(outStatus >= 500 || outStatus === 429 ? { retryable: true } : { retryable: false }),
  });
}

/**
 * An `error` event in an Anthropic stream. A Messages client gets the event as sent; a chat client gets an error
 * event of its own format with the same type and message, and a JSON client the status that type means.
 */
export function reportedAnthropicError(data: string, event: Obj): JarvisError {
  const error = errorOf(event, 500);
  const meaning = MEANING[String(error.type)] ?? { status: 500, type: 'server_error' };
  const body = openAIBody(error, meaning.type);
  return new JarvisError('JARVIS_ERR_UPSTREAM_REPORTED', String(error.message), {
    status: meaning.status,
    type: meaning.type,
    code: String(error.type),
    body,
    event: JSON.stringify({ error: body }),
    native: { wire: 'anthropic.messages', status: meaning.status === 503 ? 529 : meaning.status, body: { type: 'error', error }, event: data },
  });
}
