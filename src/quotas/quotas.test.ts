import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { ApiKeyIdentity } from '../access/keys.js';
import { JarvisError } from '../errors.js';
import { retryHeaders } from '../http/retry-headers.js';
import { LocalQuotaStore } from './local-store.js';
import { Quotas } from './quotas.js';

const identity = (rpm: number, maxStreams: number): ApiKeyIdentity => ({ id: 'alice', scopes: new Set(['chat']), models: null, rpm, maxStreams });

function setup(now: () => number = () => 0) {
  const lines: Record<string, unknown>[] = [];
  const log = pino({ base: null }, { write: (l: string) => lines.push(JSON.parse(l) as Record<string, unknown>) });
  const exceeded: string[] = [];
  const quotas = new Quotas({ store: new LocalQuotaStore({ now }), log, onExceeded: (q) => exceeded.push(q) });
  return { quotas, lines, exceeded };
}

async function refusal(p: Promise<unknown>): Promise<JarvisError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof JarvisError) return err;
    throw err;
  }
  throw new Error('admitted');
}

describe('Quotas', () => {
  it('admits everything for no key, or a key without limits, taking no slot', async () => {
    const { quotas } = setup();
    for (let i = 0; i < 100; i++) {
      await quotas.admit(null, `r${i}`);
      await quotas.admit(identity(0, 0), `k${i}`);
    }
    expect(quotas.held).toBe(0);
  });

  it('refuses a second stream with a retryable 429 after 1 s, and counts held slots', async () => {
    const { quotas, lines, exceeded } = setup();
    const release = await quotas.admit(identity(0, 1), 'r1');
    expect(quotas.held).toBe(1);
    const err = await refusal(quotas.admit(identity(0, 1), 'r2'));
    expect(err).toMatchObject({ jarvisCode: 'JARVIS_ERR_TOO_MANY_STREAMS', status: 429, type: 'rate_limit_error', code: 'rate_limit_exceeded', retryable: true });
    expect(err.headers).toEqual({ 'retry-after': '1', 'retry-after-ms': '1000' });
    expect(retryHeaders(err)).toEqual({});
    expect(exceeded).toEqual(['streams']);
    expect(lines.find((l) => l.msg === 'quota_exceeded')).toMatchObject({ request_id: 'r2', owner: 'alice', quota: 'streams', limit: 1, retry_after_ms: 1000 });
    release();
    release();
    expect(quotas.held).toBe(0);
    (await quotas.admit(identity(0, 1), 'r3'))();
  });

  it('refuses past rpm with the exact wait; a wait longer than an SDK would choose says x-should-retry: false', async () => {
    const { quotas } = setup(() => 0);
    // rpm 600: 600 at once, then one every 100 ms.
    for (let i = 0; i < 600; i++) await quotas.admit(identity(600, 0), `a${i}`);
    const soon = await refusal(quotas.admit(identity(600, 0), 'late'));
    expect(soon).toMatchObject({ jarvisCode: 'JARVIS_ERR_RATE_LIMITED', status: 429, retryable: true });
    expect(soon.headers).toEqual({ 'retry-after': '1', 'retry-after-ms': '100' });

    const { quotas: slow } = setup(() => 0);
    await slow.admit(identity(2, 0), 'b1');
    await slow.admit(identity(2, 0), 'b2');
    const late = await refusal(slow.admit(identity(2, 0), 'b3'));
    expect(late.headers).toEqual({ 'retry-after': '30', 'retry-after-ms': '30000' });
    expect(late.retryable).toBe(false);
    expect(retryHeaders(late)).toEqual({ 'x-should-retry': 'false' });
  });
});
