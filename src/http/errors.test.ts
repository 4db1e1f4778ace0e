// How a framework error becomes a coded JarvisError: the body parser's failures are the client's, a SyntaxError
// thrown inside Jarvis (an upstream's answer parsed by a route) is not.
import { describe, expect, it } from 'vitest';
import { toJarvisError } from './errors.js';

describe('toJarvisError', () => {
  it("is the client's invalid JSON when the body parser says so (a SyntaxError it gave status 400)", () => {
    const parser = Object.assign(new SyntaxError('Unexpected token } in JSON at position 9'), { statusCode: 400 });
    expect(toJarvisError(parser)).toMatchObject({ jarvisCode: 'JARVIS_ERR_INVALID_JSON', status: 400 });
  });

  it("is Jarvis's own failure for a SyntaxError from anywhere else, never a 400 that blames the client", () => {
    expect(toJarvisError(new SyntaxError('Unexpected token < in JSON at position 0'))).toMatchObject({ jarvisCode: 'JARVIS_ERR_INTERNAL', status: 500 });
  });
});
