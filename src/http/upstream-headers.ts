import type { FastifyRequest } from 'fastify';

/**
 * A W3C trace context header, version 00, exactly: trace id and parent id not all zeros, lowercase hex. Anything
 * else is dropped rather than repaired, so an upstream never receives a header Jarvis did not check.
 */
const TRACEPARENT = /^00-(?!0{32})[\da-f]{32}-(?!0{16})[\da-f]{16}-[\da-f]{2}$/;

/**
 * What a chat request contributes to the headers of its upstream request: Jarvis's own request id (so an
 * upstream's logs join up with Jarvis's) and the caller's `traceparent` when it is valid. Nothing the client
 * sent is copied otherwise; the provider enforces the same allow-list (openai-compatible/index.ts).
 */
export function upstreamHeaders(request: FastifyRequest): Record<string, string> {
  const out: Record<string, string> = { 'x-request-id': request.id };
  const tp = validTraceparent(request);
  if (tp) out.traceparent = tp;
  return out;
}

/** The caller's `traceparent` if it is valid; an invalid one is ignored, as the W3C spec says. */
export function validTraceparent(request: FastifyRequest): string | undefined {
  const tp = request.headers.traceparent;
  return typeof tp === 'string' && TRACEPARENT.test(tp) ? tp : undefined;
}
