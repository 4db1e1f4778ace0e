import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { JarvisError } from '../errors.js';

/** Response headers a browser page may read: the request id, and what the SDKs' retry logic reads. */
const EXPOSED = 'x-request-id, retry-after, retry-after-ms, x-should-retry';
/** What a preflight allows when it does not ask for a list of its own (it normally does, and gets it back). */
const DEFAULT_ALLOWED_HEADERS = 'authorization, content-type, x-session-id, x-session-policy, last-event-id, traceparent';
const HEADER_LIST = /^[A-Za-z0-9-]+(\s*,\s*[A-Za-z0-9-]+)*$/;

/**
 * CORS for the browser origins in JARVIS_CORS_ORIGINS (exact matches), and nothing for any other origin. A few
 * lines instead of a plugin because Jarvis needs only this: exact origins, no cookies (keys are sent as a
 * header, so no Allow-Credentials), headers set on the raw response so hijacked SSE responses carry them too.
 *
 * WebSocket upgrades are not covered by CORS at all: a page on any site may open one, and its browser sends the
 * page's Origin. So an upgrade that carries an Origin not on the list is refused (403), whether or not CORS is
 * on; clients that are not browsers send no Origin and are unaffected.
 */
export function installCors(app: FastifyInstance, origins: string[]): void {
  const allowed = new Set(origins.map((o) => o.toLowerCase()));
  const originOf = (request: FastifyRequest): string | undefined => {
    const origin = request.headers.origin;
    return typeof origin === 'string' && allowed.has(origin.toLowerCase()) ? origin : undefined;
  };

  app.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
    // The answer depends on the Origin whenever CORS is on, allowed or not: caches must keep them apart.
    if (allowed.size > 0) reply.raw.setHeader('vary', 'Origin');
    const origin = originOf(request);
    if (origin === undefined) {
      if (request.headers.origin !== undefined && request.headers.upgrade?.toLowerCase() === 'websocket') {
        throw new JarvisError('JARVIS_ERR_ORIGIN_NOT_ALLOWED', 'This origin may not open a WebSocket to Jarvis (see JARVIS_CORS_ORIGINS).');
      }
      return;
    }
    reply.raw.setHeader('access-control-allow-origin', origin);
    reply.raw.setHeader('access-control-expose-headers', EXPOSED);
  });

  if (allowed.size === 0) return;
  // Preflights carry no key: they are answered here, outside the routes that require one.
  app.options('*', async (request, reply) => {
    const asked = request.headers['access-control-request-headers'];
    reply.code(204);
    if (originOf(request) !== undefined && request.headers['access-control-request-method'] !== undefined) {
      reply.header('access-control-allow-methods', 'GET, POST');
      reply.header('access-control-allow-headers', typeof asked === 'string' && HEADER_LIST.test(asked) ? asked : DEFAULT_ALLOWED_HEADERS);
      reply.header('access-control-max-age', '600');
    }
    return reply.send();
  });
}
