import { request, type Dispatcher } from 'undici';

/**
 * The only request headers that reach an upstream besides Jarvis's own (content type, accept, the upstream's
 * key, a provider's API version): Jarvis's request id and a W3C traceparent, both set by Jarvis (see
 * http/upstream-headers.ts). A header added to ChatRequest.headers by mistake (a client's Authorization, cookies)
 * still stops here, whichever provider sends the request.
 */
const FORWARDED_HEADERS = ['x-request-id', 'traceparent'] as const;

export function forwarded(headers: Record<string, string> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!headers) return out;
  for (const name of FORWARDED_HEADERS) {
    const value = headers[name];
    if (typeof value === 'string') out[name] = value;
  }
  return out;
}

/**
 * A response body's text, read until it passes `max` characters and no further (the rest is left unread and the
 * request closed): what Jarvis reads of an upstream's JSON answers, so a peer cannot make it hold an endless body.
 */
export async function readCapped(body: Dispatcher.ResponseData['body'], max: number): Promise<string> {
  let text = '';
  for await (const chunk of body) {
    text += chunk;
    if (text.length > max) break;
  }
  return text;
}

/** GET `url` as a readiness probe: any answer but a 5xx means the upstream is there. */
export async function probe(url: string, headers: Record<string, string>, dispatcher: Dispatcher, signal: AbortSignal, name: string): Promise<void> {
  const res = await request(url, { method: 'GET', headers, dispatcher, signal, headersTimeout: 2000, bodyTimeout: 2000 });
  await res.body.dump();
  if (res.statusCode >= 500) throw new Error(`upstream ${name} answered ${res.statusCode}`);
}
