import type { JarvisError } from '../../errors.js';

/** Anthropic's error type for a status (https://docs.anthropic.com/en/api/errors). */
export function anthropicErrorType(status: number): string {
  switch (status) {
    case 400:
      return 'invalid_request_error';
    case 401:
      return 'authentication_error';
    case 402:
      return 'billing_error';
    case 403:
      return 'permission_error';
    case 404:
      return 'not_found_error';
    case 413:
      return 'request_too_large';
    case 429:
      return 'rate_limit_error';
    case 503:
    case 529:
      return 'overloaded_error';
    case 504:
      return 'timeout_error';
    default:
      return status >= 500 ? 'api_error' : 'invalid_request_error';
  }
}

/**
 * An error as an Anthropic client gets it: an Anthropic upstream's own error as it sent it (its status, 529
 * included), else Jarvis's in Anthropic's shape, with Anthropic's statuses, so the Anthropic SDK classes and
 * retries it as it would talking to Anthropic. Jarvis overloaded or shutting down (503) is Anthropic's 529.
 */
export function messagesError(error: JarvisError): { status: number; body: Record<string, unknown> } {
  if (error.native?.wire === 'anthropic.messages') return { status: error.native.status, body: error.native.body };
  const status = error.status === 503 ? 529 : error.status;
  return { status, body: { type: 'error', error: { type: anthropicErrorType(status), message: error.message } } };
}

/** The data of an `error` event in a Messages stream. */
export function messagesErrorEvent(error: JarvisError): string {
  if (error.native?.wire === 'anthropic.messages' && error.native.event !== undefined) return error.native.event;
  return JSON.stringify(messagesError(error).body);
}
