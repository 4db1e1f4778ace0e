// Gemini's error statuses keep their meaning: 429 with Google's retry delay as retry-after, 503 retryable, 400 with
// its message, and a key Gemini refuses (401, 403, or 400 API_KEY_INVALID) the gateway's own problem.
import { describe, expect, it } from 'vitest';
import { geminiStatusError } from './errors.js';

const body = (code: number, status: string, message: string, details: unknown[] = []) => JSON.stringify({ error: { code, message, status, details } });

describe('geminiStatusError', () => {
  it('429 RESOURCE_EXHAUSTED stays 429, with the RetryInfo delay as retry-after', () => {
    const err = geminiStatusError(429, {}, body(429, 'RESOURCE_EXHAUSTED', 'Quota exceeded', [{ '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: '6.2s' }]), 'g');
    expect([err.status, err.type, err.code, err.retryable, err.headers]).toEqual([429, 'rate_limit_error', 'RESOURCE_EXHAUSTED', true, { 'retry-after': '7' }]);
    expect(err.message).toBe('Quota exceeded');
  });

  it('503 UNAVAILABLE stays a retryable 503; 400 INVALID_ARGUMENT a 400 with the message', () => {
    const busy = geminiStatusError(503, {}, body(503, 'UNAVAILABLE', 'The model is overloaded.'), 'g');
    expect([busy.status, busy.type, busy.retryable]).toEqual([503, 'server_error', true]);
    const bad = geminiStatusError(400, {}, body(400, 'INVALID_ARGUMENT', 'Invalid JSON payload received.'), 'g');
    expect([bad.status, bad.type, bad.code, bad.retryable, bad.message]).toEqual([400, 'invalid_request_error', 'INVALID_ARGUMENT', false, 'Invalid JSON payload received.']);
  });

  it.each([
    [401, body(401, 'UNAUTHENTICATED', 'no')],
    [403, body(403, 'PERMISSION_DENIED', 'no')],
    [400, body(400, 'INVALID_ARGUMENT', 'API key not valid. Please pass a valid API key.', [{ '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: 'API_KEY_INVALID' }])],
  ])('%i refusing the key is 502 upstream_auth_failed, without Google\'s words', (status, text) => {
    const err = geminiStatusError(status, {}, text, 'g');
    expect([err.status, err.code]).toEqual([502, 'upstream_auth_failed']);
    expect(err.message).not.toContain('API key not valid');
  });

  it('a body that is not Google\'s keeps the status', () => {
    const err = geminiStatusError(502, {}, '<html>bad gateway</html>', 'g');
    expect([err.status, err.retryable]).toEqual([502, true]);
  });
});
