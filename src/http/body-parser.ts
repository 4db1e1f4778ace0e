import type { FastifyInstance } from 'fastify';
import { JarvisError } from '../errors.js';

/**
 * The deepest JSON a request body may nest. Real requests nest a few levels (a tool's JSON Schema, a dozen or
 * two); thousands of levels are an attack on everything that walks the body recursively (JSON.stringify on the
 * way upstream overflows the stack at about 5,000).
 */
export const MAX_JSON_DEPTH = 64;

/** How deep `value` nests, counted without recursion (a deep value is exactly what would overflow the stack). */
export function jsonDepth(value: unknown, stopAfter = Infinity): number {
  let max = 0;
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (typeof v !== 'object' || v === null) continue;
    if (depth > max) {
      max = depth;
      if (max > stopAfter) return max;
    }
    for (const child of Array.isArray(v) ? v : Object.values(v)) if (typeof child === 'object' && child !== null) stack.push([child, depth + 1]);
  }
  return max;
}

/**
 * JSON whatever the Content-Type says: `curl -d '{...}'` sends application/x-www-form-urlencoded, and the
 * original Jarvis quick reference is tested exactly that way. Fastify's own JSON parser (with its prototype
 * poisoning protection) does the parsing; a body nested deeper than MAX_JSON_DEPTH is refused before any
 * route sees it.
 */
export function acceptJsonForAnyContentType(app: FastifyInstance): void {
  const json = app.getDefaultJsonParser('error', 'error');
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, (request, body, done) => {
    json(request, body as string, (err, value) => {
      if (err) return done(err);
      if (jsonDepth(value, MAX_JSON_DEPTH) > MAX_JSON_DEPTH) {
        return done(new JarvisError('JARVIS_ERR_INVALID_REQUEST', `The request body nests JSON more than ${MAX_JSON_DEPTH} levels deep.`), undefined);
      }
      done(null, value);
    });
  });
}
