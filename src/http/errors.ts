import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { JarvisError } from '../errors.js';
import { messagesError } from '../apis/anthropic-messages/errors.js';
import { retryHeaders } from './retry-headers.js';

/**
 * preValidation for POST routes: a POST with neither content nor Content-Type (`curl -X POST`) is never parsed, so
 * it would reach validation as "body must be object"; it is the same empty body as one sent with a Content-Type,
 * and gets the same error.
 */
export async function rejectEmptyBody(request: FastifyRequest): Promise<void> {
  if (request.body === undefined) throw new JarvisError('JARVIS_ERR_INVALID_JSON', 'Request body is empty; expected a JSON object.');
}

/** The client API a route serves (its Fastify route config), which decides the shape of its errors. */
export function apiOf(request: FastifyRequest): string | undefined {
  return (request.routeOptions.config as { api?: string } | undefined)?.api;
}

/** An error in the shape of the client API the route serves: Anthropic's for the Messages API, OpenAI's otherwise. */
export function sendError(reply: FastifyReply, error: JarvisError): void {
  if (apiOf(reply.request) === 'anthropic.messages') {
    const { status, body } = messagesError(error);
    void reply.code(status).headers({ ...retryHeaders(error), ...error.headers }).send(body);
    return;
  }
  void reply.code(error.status).headers({ ...retryHeaders(error), ...error.headers }).send(error.toJSON());
}

/** Ajv's instancePath ("/messages/0/role") as OpenAI's param ("messages[0].role"). */
function paramOf(path: string | undefined, missing: unknown): string | null {
  const parts = (path ?? '').split('/').filter(Boolean);
  if (typeof missing === 'string') parts.push(missing);
  if (parts.length === 0) return null;
  return parts.map((p, i) => (/^\d+$/.test(p) ? `[${p}]` : i === 0 ? p : `.${p}`)).join('');
}

/** Every framework error becomes a coded JarvisError, so a client never sees Fastify's shape or a 500 for bad input. */
export function toJarvisError(err: FastifyError | Error): JarvisError {
  if (err instanceof JarvisError) return err;
  const e = err as FastifyError;
  if (e.validation && e.validation.length > 0) {
    const v = e.validation[0]!;
    const param = paramOf(v.instancePath, (v.params as { missingProperty?: unknown }).missingProperty);
    const what = param ?? 'body';
    return new JarvisError('JARVIS_ERR_INVALID_REQUEST', `Invalid value for '${what}': ${v.message ?? 'invalid'}.`, { param });
  }
  switch (e.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new JarvisError('JARVIS_ERR_BODY_TOO_LARGE', 'Request body is larger than the configured limit.');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new JarvisError('JARVIS_ERR_INVALID_JSON', 'Request body is empty; expected a JSON object.');
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new JarvisError('JARVIS_ERR_INVALID_JSON', 'Request body is not valid JSON.');
  }
  // Only the body parser's own failure (a 400 it set) is the client's JSON: a SyntaxError thrown inside Jarvis is
  // Jarvis's fault (a 500), never the client's.
  if (e.statusCode === 400) {
    return new JarvisError('JARVIS_ERR_INVALID_JSON', `Request body is not valid JSON: ${e.message}`);
  }
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    return new JarvisError('JARVIS_ERR_INVALID_REQUEST', e.message, { status: e.statusCode });
  }
  return new JarvisError('JARVIS_ERR_INTERNAL', 'The server had an error while processing your request.', { cause: err });
}

export function installErrorHandlers(app: FastifyInstance, log: Logger): void {
  app.setErrorHandler((err: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    // The client went away while its body was arriving (or its request timed out and the connection was closed):
    // Fastify reports that as a 400, but nobody is left to answer and it was not a bad request.
    if (request.raw.destroyed && (err.code === 'ECONNRESET' || request.raw.socket?.destroyed)) {
      log.info({ request_id: request.id }, 'request_aborted');
      return reply.send();
    }
    const error = toJarvisError(err);
    // Fastify closes the connection after any body parser error, in case more of the body is coming. A body read
    // to its end (not JSON, nested too deep) left nothing unread; one that is too large is still arriving, and
    // Node reads and discards the rest once the answer is sent (within JARVIS_REQUEST_TIMEOUT_MS), so a client
    // still sending gets its 413 instead of a reset. Either way the connection stays usable, as after any error.
    if (reply.getHeader('connection') === 'close' && error.headers.connection === undefined) reply.removeHeader('connection');
    // A refused WebSocket upgrade's connection is closed after the answer (by the WebSocket plugin): it says so.
    if (request.headers.upgrade !== undefined) void reply.header('connection', 'close');
    // A refusal under load (503 overloaded, shutting down) is a rejection like any 4xx; only a bug is a failure.
    if (error.jarvisCode === 'JARVIS_ERR_INTERNAL') log.error({ err, request_id: request.id, code: error.code }, 'request_failed');
    else log.info({ request_id: request.id, status: error.status, code: error.code }, 'request_rejected');
    sendError(reply, error);
  });
  app.setNotFoundHandler((request, reply) => {
    sendError(reply, new JarvisError('JARVIS_ERR_ROUTE_NOT_FOUND', `Unknown request URL: ${request.method} ${request.url.split('?')[0]}.`));
  });
}
