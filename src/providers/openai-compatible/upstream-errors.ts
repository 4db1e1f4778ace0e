import { errors as undiciErrors, type Dispatcher } from 'undici';
import { JarvisError } from '../../errors.js';
import { isObject } from '../../json.js';
import { readCapped } from './upstream-http.js';

/** The most of an error body read: an error object is small; a proxy's page need not be read whole. */
export const MAX_ERROR_BODY = 64 * 1024;

/** Headers of an upstream error that tell a client when to retry; the SDKs read them exactly as they do OpenAI's. */
const RETRY_HEADERS = ['retry-after', 'retry-after-ms', 'x-should-retry'] as const;

/** The `type` OpenAI gives an error of this status, for an upstream that gave none. */
function typeForStatus(status: number): string {
  if (status === 429) return 'rate_limit_error';
  return status >= 500 ? 'server_error' : 'invalid_request_error';
}

/** The statuses the error types of OpenAI-compatible servers mean, for an error that arrives with no status of its own. */
function statusForError(error: Record<string, unknown>): number {
  for (const v of [error.status, error.code]) {
    if (typeof v === 'number' && Number.isInteger(v) && v >= 400 && v <= 599) return v;
  }
  switch (error.type) {
    case 'invalid_request_error':
    case 'BadRequestError':
      return 400;
    case 'not_found_error':
      return 404;
    case 'rate_limit_error':
    case 'insufficient_quota':
    case 'requests':
    case 'tokens':
      return 429;
    default:
      return 500;
  }
}

/**
 * An upstream's error object in OpenAI's shape, keeping every field it sent: clients read `message`, `type`,
 * `code` and `param`, so those four are always there (null when the upstream gave none).
 */
function openAIShaped(error: Record<string, unknown>, status: number, fallback: string): Record<string, unknown> {
  return {
    ...error,
    message: typeof error.message === 'string' ? error.message : fallback,
    type: typeof error.type === 'string' ? error.type : typeForStatus(status),
    param: error.param ?? null,
    code: error.code ?? null,
  };
}

/** The JarvisError fields of an upstream error object: its type and code (as strings, for logs and events). */
function fieldsOf(error: Record<string, unknown>) {
  return {
    type: String(error.type),
    ...(error.code !== null && error.code !== undefined ? { code: String(error.code) } : {}),
    ...(typeof error.param === 'string' ? { param: error.param } : {}),
  };
}

/**
 * An upstream's HTTP error status, passed through with its error object and retry headers, so a client (and its
 * SDK's retry logic) sees what it would see talking to the upstream directly. A 401 or 403 is the exception: it
 * says Jarvis's own upstream key is wrong, which is the operator's problem; the tenant gets a 502 that blames
 * neither its key nor quotes the upstream's message (which names the key's last characters).
 */
export async function statusError(res: Dispatcher.ResponseData, name: string): Promise<JarvisError> {
  let text = '';
  if (res.statusCode === 401 || res.statusCode === 403) {
    await res.body.dump().catch(() => {});
  } else {
    text = await readCapped(res.body, MAX_ERROR_BODY);
  }
  return statusErrorOf(res.statusCode, res.headers, text, name);
}

/** As statusError, from the status, headers and (the first MAX_ERROR_BODY characters of) the body already read. */
export function statusErrorOf(status: number, resHeaders: Record<string, string | string[] | undefined>, text: string, name: string): JarvisError {
  if (status === 401 || status === 403) return upstreamAuthError(status, name);
  let error: Record<string, unknown> = {};
  try {
    const parsed: unknown = JSON.parse(text);
    // OpenAI's shape ({"error": {...}}), or the flat one older vLLM and some proxies answer with.
    if (isObject(parsed)) error = isObject(parsed.error) ? parsed.error : typeof parsed.message === 'string' ? parsed : {};
  } catch {
    // not JSON (an HTML error page from a proxy): the status alone says what happened
  }
  const body = openAIShaped(error, status, `upstream answered HTTP ${status}`);
  return new JarvisError('JARVIS_ERR_UPSTREAM_STATUS', String(body.message), { status, ...fieldsOf(body), body, headers: retryHeadersOf(resHeaders) });
}

/**
 * A 401 or 403 from any upstream: Jarvis's own upstream key is wrong, which is the operator's problem. The tenant
 * gets a 502 that blames neither its key nor quotes the upstream's message (which may name the key).
 */
export function upstreamAuthError(status: number, name: string): JarvisError {
  return new JarvisError('JARVIS_ERR_UPSTREAM_AUTH', `The gateway's upstream refused its credentials (HTTP ${status}). This is a gateway configuration error, not a problem with your API key.`, {
    cause: new Error(`upstream ${name} answered HTTP ${status}`),
  });
}

/** The headers of an upstream's error that tell a client when to retry, as it sent them. */
export function retryHeadersOf(resHeaders: Record<string, string | string[] | undefined>): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const h of RETRY_HEADERS) {
    const v = resHeaders[h];
    if (typeof v === 'string') headers[h] = v;
  }
  return headers;
}

/**
 * An error event in an upstream's stream (`data: {"error": {...}}`). A streaming client gets the event as it was
 * sent; a JSON client gets the error object with the status its type means.
 */
export function reportedError(data: string, reported: unknown): JarvisError {
  const error = isObject(reported) ? reported : { message: typeof reported === 'string' ? reported : 'upstream reported an error' };
  const status = statusForError(error);
  const body = openAIShaped(error, status, 'upstream reported an error');
  return new JarvisError('JARVIS_ERR_UPSTREAM_REPORTED', String(body.message), { status, ...fieldsOf(body), body, event: data });
}

/** Jarvis's own codes for what went wrong on the way: the upstream could not be reached, was too slow, or broke off. */
export function upstreamFailure(err: unknown, name: string, started: boolean): JarvisError {
  if (err instanceof JarvisError) return err;
  if (err instanceof undiciErrors.HeadersTimeoutError || err instanceof undiciErrors.ConnectTimeoutError) {
    return new JarvisError('JARVIS_ERR_UPSTREAM_TIMEOUT', `upstream ${name} did not answer in time`, { cause: err });
  }
  if (err instanceof undiciErrors.BodyTimeoutError) {
    return new JarvisError('JARVIS_ERR_UPSTREAM_IDLE', `upstream ${name} stopped sending data`, { cause: err });
  }
  if (started) return new JarvisError('JARVIS_ERR_UPSTREAM_STREAM', `upstream ${name} stream failed: ${(err as Error).message}`, { cause: err });
  return new JarvisError('JARVIS_ERR_UPSTREAM_UNREACHABLE', `upstream ${name} is unreachable: ${(err as Error).message}`, { cause: err });
}
