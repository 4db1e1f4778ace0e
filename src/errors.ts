/**
 * Every error Jarvis returns is one of these codes. Each maps to an HTTP status and an OpenAI error `type`
 * and `code`, so clients written against OpenAI handle Jarvis errors without special cases.
 * docs/errors.md documents every code; a test fails when one is missing there.
 */
export const ERROR_CODES = {
  JARVIS_ERR_INVALID_JSON: { status: 400, type: 'invalid_request_error', code: 'invalid_json', retryable: false },
  JARVIS_ERR_INVALID_REQUEST: { status: 400, type: 'invalid_request_error', code: 'invalid_value', retryable: false },
  JARVIS_ERR_UNSUPPORTED_VALUE: { status: 400, type: 'invalid_request_error', code: 'unsupported_value', retryable: false },
  JARVIS_ERR_INVALID_SESSION_ID: { status: 400, type: 'invalid_request_error', code: 'invalid_session_id', retryable: false },
  JARVIS_ERR_TOO_MANY_MESSAGES: { status: 400, type: 'invalid_request_error', code: 'array_above_max_length', retryable: false },
  JARVIS_ERR_CONTENT_TOO_LONG: { status: 400, type: 'invalid_request_error', code: 'context_length_exceeded', retryable: false },
  JARVIS_ERR_MALFORMED_HTTP: { status: 400, type: 'invalid_request_error', code: 'bad_request', retryable: false },
  JARVIS_ERR_UNAUTHORIZED: { status: 401, type: 'authentication_error', code: 'invalid_api_key', retryable: false },
  JARVIS_ERR_FORBIDDEN: { status: 403, type: 'permission_error', code: 'insufficient_scope', retryable: false },
  JARVIS_ERR_ORIGIN_NOT_ALLOWED: { status: 403, type: 'permission_error', code: 'origin_not_allowed', retryable: false },
  JARVIS_ERR_METHOD_NOT_ALLOWED: { status: 405, type: 'invalid_request_error', code: 'method_not_allowed', retryable: false },
  JARVIS_ERR_MODEL_NOT_FOUND: { status: 404, type: 'invalid_request_error', code: 'model_not_found', retryable: false },
  JARVIS_ERR_RESPONSE_NOT_FOUND: { status: 404, type: 'invalid_request_error', code: 'response_not_found', retryable: false },
  JARVIS_ERR_PREVIOUS_RESPONSE_NOT_FOUND: { status: 400, type: 'invalid_request_error', code: 'previous_response_not_found', retryable: false },
  JARVIS_ERR_ROUTE_NOT_FOUND: { status: 404, type: 'invalid_request_error', code: 'unknown_url', retryable: false },
  JARVIS_ERR_REQUEST_TIMEOUT: { status: 408, type: 'invalid_request_error', code: 'request_timeout', retryable: true },
  JARVIS_ERR_SESSION_BUSY: { status: 409, type: 'invalid_request_error', code: 'session_busy', retryable: false },
  JARVIS_ERR_STALE_REQUEST: { status: 409, type: 'invalid_request_error', code: 'stale_request', retryable: false },
  JARVIS_ERR_RATE_LIMITED: { status: 429, type: 'rate_limit_error', code: 'rate_limit_exceeded', retryable: true },
  JARVIS_ERR_TOO_MANY_STREAMS: { status: 429, type: 'rate_limit_error', code: 'rate_limit_exceeded', retryable: true },
  JARVIS_ERR_TOO_MANY_SUBSCRIBERS: { status: 429, type: 'rate_limit_error', code: 'rate_limit_exceeded', retryable: true },
  JARVIS_ERR_TOO_MANY_CONNECTIONS: { status: 429, type: 'rate_limit_error', code: 'rate_limit_exceeded', retryable: true },
  JARVIS_ERR_TOO_MANY_IN_FLIGHT: { status: 429, type: 'rate_limit_error', code: 'rate_limit_exceeded', retryable: true },
  JARVIS_ERR_BUDGET_EXCEEDED: { status: 429, type: 'insufficient_quota', code: 'insufficient_quota', retryable: false },
  JARVIS_ERR_ACTIVE_RESPONSE: { status: 409, type: 'invalid_request_error', code: 'conversation_already_has_active_response', retryable: false },
  JARVIS_ERR_CANCEL_NOT_ACTIVE: { status: 400, type: 'invalid_request_error', code: 'response_cancel_not_active', retryable: false },
  JARVIS_ERR_ITEM_NOT_FOUND: { status: 400, type: 'invalid_request_error', code: 'item_not_found', retryable: false },
  JARVIS_ERR_BODY_TOO_LARGE: { status: 413, type: 'invalid_request_error', code: 'request_too_large', retryable: false },
  JARVIS_ERR_HEADERS_TOO_LARGE: { status: 431, type: 'invalid_request_error', code: 'headers_too_large', retryable: false },
  JARVIS_ERR_UPSTREAM_STATUS: { status: 502, type: 'api_error', code: 'upstream_error', retryable: true },
  JARVIS_ERR_UPSTREAM_REPORTED: { status: 500, type: 'server_error', code: 'upstream_error', retryable: true },
  JARVIS_ERR_UPSTREAM_AUTH: { status: 502, type: 'api_error', code: 'upstream_auth_failed', retryable: false },
  JARVIS_ERR_ANSWER_TOO_LARGE: { status: 502, type: 'api_error', code: 'response_too_large', retryable: false },
  JARVIS_ERR_UPSTREAM_UNREACHABLE: { status: 502, type: 'api_error', code: 'upstream_unreachable', retryable: true },
  JARVIS_ERR_UPSTREAM_TIMEOUT: { status: 504, type: 'api_error', code: 'upstream_timeout', retryable: true },
  JARVIS_ERR_UPSTREAM_STREAM: { status: 502, type: 'api_error', code: 'upstream_stream_error', retryable: true },
  JARVIS_ERR_UPSTREAM_IDLE: { status: 504, type: 'api_error', code: 'upstream_idle_timeout', retryable: true },
  JARVIS_ERR_OVERLOADED: { status: 503, type: 'api_error', code: 'overloaded', retryable: true },
  JARVIS_ERR_LEDGER_UNAVAILABLE: { status: 503, type: 'api_error', code: 'ledger_unavailable', retryable: true },
  JARVIS_ERR_SHUTTING_DOWN: { status: 503, type: 'api_error', code: 'server_shutting_down', retryable: true },
  JARVIS_ERR_INTERNAL: { status: 500, type: 'api_error', code: 'internal_error', retryable: true },
} as const satisfies Record<string, { status: number; type: string; code: string; retryable: boolean }>;

export type JarvisErrorCode = keyof typeof ERROR_CODES;

export interface OpenAIErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

/** An error as an upstream of another wire sent it: its status, its error body, and its stream event's data. */
export interface NativeError {
  wire: string;
  status: number;
  body: Record<string, unknown>;
  event?: string | undefined;
}

export class JarvisError extends Error {
  override readonly name = 'JarvisError';
  readonly jarvisCode: JarvisErrorCode;
  readonly status: number;
  readonly type: string;
  readonly code: string;
  readonly param: string | null;
  readonly retryable: boolean;
  readonly headers: Record<string, string>;
  /** An upstream's own error object, which the client gets as it was sent instead of one made from the fields above. */
  readonly body: Record<string, unknown> | undefined;
  /** An upstream's error event, the data of its SSE line as sent: what a streaming client gets. */
  readonly event: string | undefined;
  /**
   * An upstream's error in its own wire when that is not OpenAI's (`body` and `event` then hold its OpenAI form):
   * a client of that wire gets it as the upstream sent it, with the upstream's own status.
   */
  readonly native: NativeError | undefined;

  constructor(
    jarvisCode: JarvisErrorCode,
    message: string,
    opts: {
      param?: string | null;
      status?: number;
      type?: string;
      code?: string;
      headers?: Record<string, string>;
      cause?: unknown;
      retryable?: boolean;
      body?: Record<string, unknown>;
      event?: string;
      native?: NativeError;
    } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    const def = ERROR_CODES[jarvisCode];
    this.jarvisCode = jarvisCode;
    this.status = opts.status ?? def.status;
    this.type = opts.type ?? def.type;
    this.code = opts.code ?? def.code;
    this.param = opts.param ?? null;
    // A code's default, unless this instance knows better (a quota that frees up only after a long wait).
    this.retryable = opts.retryable ?? def.retryable;
    this.headers = opts.headers ?? {};
    this.body = opts.body;
    this.event = opts.event;
    this.native = opts.native;
  }

  toJSON(): OpenAIErrorBody {
    if (this.body) return { error: this.body as OpenAIErrorBody['error'] };
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

export function isJarvisError(err: unknown): err is JarvisError {
  return err instanceof JarvisError;
}

/** Why a stream was cancelled. Carried as the AbortSignal reason through every layer. */
/**
 * Why a stream was cancelled; `steered`: new user input took over its response (the Responses API's WebSocket
 * mode); `client_cancelled`: its client asked (the Realtime API's response.cancel).
 */
export type CancelReason = 'superseded' | 'client_disconnected' | 'shutdown' | 'client_backpressure' | 'steered' | 'client_cancelled';

export class StreamCancelled extends Error {
  override readonly name = 'StreamCancelled';
  constructor(readonly reason: CancelReason) {
    // A signal, not a fault: made on every barge-in and disconnect, where a stack says nothing. Without one it is
    // made in under 1 µs instead of 5-13 µs.
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(`stream cancelled: ${reason}`);
    Error.stackTraceLimit = limit;
  }
}

export function cancelReasonOf(signal: AbortSignal): CancelReason | undefined {
  return signal.aborted && signal.reason instanceof StreamCancelled ? signal.reason.reason : undefined;
}
