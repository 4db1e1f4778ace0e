import type { FastifyInstance } from 'fastify';

/**
 * JSON whatever the Content-Type says: `curl -d '{...}'` sends application/x-www-form-urlencoded, and the
 * original Jarvis quick reference is tested exactly that way. Fastify's own JSON parser (with its prototype
 * poisoning protection) does the parsing.
 */
export function acceptJsonForAnyContentType(app: FastifyInstance): void {
  const json = app.getDefaultJsonParser('error', 'error');
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, json);
}
