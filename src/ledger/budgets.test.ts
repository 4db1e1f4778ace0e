import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { ApiKeyIdentity } from '../access/keys.js';
import { JarvisError } from '../errors.js';
import { Budgets, LocalSpend } from './budgets.js';

const key = (budget: ApiKeyIdentity['budget']): ApiKeyIdentity => ({ id: 'k', scopes: new Set(['chat']), models: null, rpm: 0, maxStreams: 0, budget });
const log = pino({ level: 'silent' });

describe('budgets', () => {
  it('refuses a key once a day budget is spent, with insufficient_quota', async () => {
    const budgets = new Budgets({ counter: new LocalSpend(), log });
    const k = key({ tokensPerDay: 100, costPerDay: 1 });
    await budgets.check(k, 'r1');
    budgets.spent('k', 0.5, 60, Date.now());
    await budgets.check(k, 'r2');
    budgets.spent('k', 0.1, 40, Date.now());
    const err = await budgets.check(k, 'r3').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(JarvisError);
    expect(err).toMatchObject({ status: 429, code: 'insufficient_quota', retryable: false });
  });

  it('starts a new day at 00:00 UTC, and a new month on the 1st', async () => {
    const spend = new LocalSpend();
    spend.add('k', '2026-12-30', 2, 10);
    spend.add('k', '2026-12-31', 3, 10);
    expect(await spend.read('k', '2026-12-31')).toEqual({ costDay: 3, tokensDay: 10, costMonth: 5 });
    expect(await spend.read('k', '2027-01-01')).toEqual({ costDay: 0, tokensDay: 0, costMonth: 0 });
  });

  it('lets keys without a budget through without reading any spend', async () => {
    const budgets = new Budgets({ counter: new LocalSpend(), log });
    await expect(budgets.check(key(undefined), 'r')).resolves.toBeUndefined();
    await expect(budgets.check(null, 'r')).resolves.toBeUndefined();
  });
});
