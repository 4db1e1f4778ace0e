import { describe, expect, it } from 'vitest';
import { reportedError } from './upstream-errors.js';

describe('reportedError', () => {
  it('keeps the event as sent, and the error object in OpenAI shape with every field it had', () => {
    const data = '{"error":{"message":"busy","type":"server_error","code":null,"extra":1}}';
    const err = reportedError(data, { message: 'busy', type: 'server_error', code: null, extra: 1 });
    expect(err.event).toBe(data);
    expect(err.toJSON()).toEqual({ error: { message: 'busy', type: 'server_error', code: null, param: null, extra: 1 } });
    expect(err.status).toBe(500);
  });

  it.each([
    [{ message: 'm', code: 400 }, 400],
    [{ message: 'm', status: 429 }, 429],
    [{ message: 'm', type: 'invalid_request_error' }, 400],
    [{ message: 'm', type: 'BadRequestError' }, 400],
    [{ message: 'm', type: 'not_found_error' }, 404],
    [{ message: 'm', type: 'rate_limit_error' }, 429],
    [{ message: 'm', type: 'insufficient_quota' }, 429],
    [{ message: 'm', type: 'server_error' }, 500],
    [{ message: 'm', code: 'context_length_exceeded' }, 500],
  ])('gives %j the status %i for a JSON client', (error, status) => {
    expect(reportedError('{}', error).status).toBe(status);
  });

  it('makes an error object of a bare message, and a message of nothing', () => {
    expect(reportedError('{}', 'overloaded').toJSON()).toEqual({ error: { message: 'overloaded', type: 'server_error', param: null, code: null } });
    expect(reportedError('{}', true).message).toMatch(/upstream reported an error/);
  });
});
