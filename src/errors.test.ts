import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES, JarvisError } from './errors.js';

describe('error codes', () => {
  const doc = readFileSync(new URL('../docs/errors.md', import.meta.url), 'utf8');

  it.each(Object.keys(ERROR_CODES))('%s is documented in docs/errors.md', (code) => {
    expect(doc).toContain(`\`${code}\``);
  });

  it('serialises in the OpenAI error shape', () => {
    const err = new JarvisError('JARVIS_ERR_INVALID_REQUEST', 'bad', { param: 'messages' });
    expect(err.toJSON()).toEqual({ error: { message: 'bad', type: 'invalid_request_error', param: 'messages', code: 'invalid_value' } });
    expect(err.status).toBe(400);
  });
});
