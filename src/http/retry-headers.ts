import type { JarvisError } from '../errors.js';

/** The statuses OpenAI's SDKs retry on their own (Node and Python alike) when the server says nothing. */
const SDK_RETRIES = (status: number) => status === 408 || status === 409 || status === 429 || status >= 500;

/** Retry-After in whole seconds (rounded up, as the header allows no fraction) and retry-after-ms exactly. */
export function retryAfter(ms: number): Record<string, string> {
  const whole = Math.max(1, Math.ceil(ms));
  return { 'retry-after': String(Math.ceil(whole / 1000)), 'retry-after-ms': String(whole) };
}

/**
 * What an error response tells a client about retrying, so the official SDKs (which retry 408, 409, 429 and
 * 5xx, up to twice by default) retry only what a retry can fix:
 * - `x-should-retry: false` on every error a retry cannot fix: bad input, a missing key or scope, an unknown
 *   model, a busy session (409, which the SDKs would otherwise retry), a quota that frees up too late;
 * - `retry-after-ms` next to a whole-second `Retry-After`, so a client waits as long as asked, to the ms.
 * Headers an error sets itself win over these.
 */
export function retryHeaders(error: JarvisError): Record<string, string> {
  const out: Record<string, string> = {};
  if (!error.retryable || !SDK_RETRIES(error.status)) out['x-should-retry'] = 'false';
  const seconds = error.headers['retry-after'];
  if (seconds !== undefined && /^\d+$/.test(seconds) && error.headers['retry-after-ms'] === undefined) {
    out['retry-after-ms'] = String(Math.max(1, Number(seconds) * 1000));
  }
  return out;
}
