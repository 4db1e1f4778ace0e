import type { Logger } from 'pino';
import type { ApiKeyIdentity, KeyBudget } from '../access/keys.js';
import type { RedisLink } from '../cluster/redis-link.js';
import { JarvisError } from '../errors.js';
import { dayOf } from './record.js';
import type { LedgerStore } from './types.js';

/** A key's spend in the current UTC day and month. */
export interface Spend {
  costDay: number;
  tokensDay: number;
  costMonth: number;
}

/** Where spend is counted: this instance's memory, or Redis for every instance. */
export interface SpendCounter {
  add(key: string, day: string, cost: number, tokens: number): void;
  read(key: string, day: string): Promise<Spend>;
  /** What the ledger says was spent before this start, where nothing counts it yet. */
  seed(key: string, day: string, spend: Spend): Promise<void>;
}

const monthOf = (day: string) => day.slice(0, 7);
const ZERO: Spend = { costDay: 0, tokensDay: 0, costMonth: 0 };

/** Spend counted in this process: a key's current day and month, older periods forgotten. */
export class LocalSpend implements SpendCounter {
  readonly #byKey = new Map<string, { day: string; spend: Spend }>();

  #entry(key: string, day: string): Spend {
    const e = this.#byKey.get(key);
    if (!e) {
      const fresh = { day, spend: { ...ZERO } };
      this.#byKey.set(key, fresh);
      return fresh.spend;
    }
    if (e.day !== day) {
      const sameMonth = monthOf(e.day) === monthOf(day);
      e.spend = { costDay: 0, tokensDay: 0, costMonth: sameMonth ? e.spend.costMonth : 0 };
      e.day = day;
    }
    return e.spend;
  }

  add(key: string, day: string, cost: number, tokens: number): void {
    const s = this.#entry(key, day);
    s.costDay += cost;
    s.tokensDay += tokens;
    s.costMonth += cost;
  }

  read(key: string, day: string): Promise<Spend> {
    return Promise.resolve({ ...this.#entry(key, day) });
  }

  seed(key: string, day: string, spend: Spend): Promise<void> {
    const s = this.#entry(key, day);
    s.costDay += spend.costDay;
    s.tokensDay += spend.tokensDay;
    s.costMonth += spend.costMonth;
    return Promise.resolve();
  }
}

/**
 * Spend shared by every instance on one Redis: a hash per key and day (cost, tokens) and per key and month (cost),
 * each key's in one hash slot. While Redis is away, this instance's own counts decide (a request is never refused
 * because Redis is), and what it counted meanwhile is not added to Redis later.
 */
export class RedisSpend implements SpendCounter {
  readonly #link: RedisLink;
  readonly #local = new LocalSpend();

  constructor(link: RedisLink) {
    this.#link = link;
  }

  #keys(key: string, day: string): [string, string] {
    const p = `${this.#link.prefix}budget:{${key}}`;
    return [`${p}:d:${day}`, `${p}:m:${monthOf(day)}`];
  }

  add(key: string, day: string, cost: number, tokens: number): void {
    this.#local.add(key, day, cost, tokens);
    if (!this.#link.available) return;
    const [d, m] = this.#keys(key, day);
    this.#link.cmd
      .multi()
      .hincrbyfloat(d, 'cost', cost)
      .hincrby(d, 'tokens', tokens)
      .expire(d, 2 * 86_400)
      .hincrbyfloat(m, 'cost', cost)
      .expire(m, 32 * 86_400)
      .exec()
      .catch(() => {});
  }

  async read(key: string, day: string): Promise<Spend> {
    if (!this.#link.available) return this.#local.read(key, day);
    const [d, m] = this.#keys(key, day);
    try {
      const r = (await this.#link.within(this.#link.cmd.multi().hget(d, 'cost').hget(d, 'tokens').hget(m, 'cost').exec())) ?? [];
      const n = (i: number) => Number((r[i]?.[1] as string | null | undefined) ?? 0);
      return { costDay: n(0), tokensDay: n(1), costMonth: n(2) };
    } catch {
      return this.#local.read(key, day);
    }
  }

  async seed(key: string, day: string, spend: Spend): Promise<void> {
    await this.#local.seed(key, day, spend);
    if (!this.#link.available) return;
    const [d, m] = this.#keys(key, day);
    // Only where no instance counts yet: another that started first seeded it and has counted since.
    await this.#link.cmd
      .multi()
      .hsetnx(d, 'cost', String(spend.costDay))
      .hsetnx(d, 'tokens', String(spend.tokensDay))
      .expire(d, 2 * 86_400)
      .hsetnx(m, 'cost', String(spend.costMonth))
      .expire(m, 32 * 86_400)
      .exec()
      .catch(() => {});
  }
}

/**
 * Per-key budgets (keys file `budget`): checked before a request reaches an upstream, against what the key's lines
 * cost so far in the UTC day and month. A stream's cost counts once it ends, so streams already running when the
 * budget is reached finish: the budget can be overrun by what they cost.
 */
export class Budgets {
  readonly #counter: SpendCounter;
  readonly #log: Logger;
  readonly #onExceeded: (() => void) | undefined;

  constructor(opts: { counter: SpendCounter; log: Logger; onExceeded?: () => void }) {
    this.#counter = opts.counter;
    this.#log = opts.log;
    this.#onExceeded = opts.onExceeded;
  }

  spent(key: string, cost: number, tokens: number, atMs: number): void {
    this.#counter.add(key, dayOf(atMs), cost, tokens);
  }

  /** Throws insufficient_quota when the key has spent one of its budgets. */
  async check(identity: ApiKeyIdentity | null, requestId: string): Promise<void> {
    const budget = identity?.budget;
    if (!identity || !budget) return;
    const spend = await this.#counter.read(identity.id, dayOf(Date.now()));
    const over = exceeded(budget, spend);
    if (!over) return;
    this.#onExceeded?.();
    this.#log.info({ request_id: requestId, owner: identity.id, budget: over.name, limit: over.limit, spent: over.spent }, 'budget_exceeded');
    throw new JarvisError('JARVIS_ERR_BUDGET_EXCEEDED', `You exceeded your current quota: this API key's budget (${over.name} ${over.limit}) is spent. It renews ${over.name === 'costPerMonth' ? 'on the 1st of next month' : 'at 00:00 UTC'}.`, {
      retryable: false,
    });
  }

  /** The spend before this start, read from the ledger's store once it opens. */
  async seed(store: LedgerStore, keys: readonly ApiKeyIdentity[]): Promise<void> {
    const withBudget = keys.filter((k) => k.budget);
    if (withBudget.length === 0) return;
    const now = new Date();
    const day = dayOf(now.getTime());
    const dayStart = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());
    const monthStart = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1);
    const [daily, monthly] = await Promise.all([store.spend(dayStart), store.spend(monthStart)]);
    for (const k of withBudget) {
      const d = daily.find((r) => r.key === k.id);
      const m = monthly.find((r) => r.key === k.id);
      await this.#counter.seed(k.id, day, { costDay: d?.cost ?? 0, tokensDay: d?.tokens ?? 0, costMonth: m?.cost ?? 0 });
    }
  }
}

function exceeded(b: KeyBudget, s: Spend): { name: keyof KeyBudget; limit: number; spent: number } | undefined {
  if (b.tokensPerDay !== undefined && s.tokensDay >= b.tokensPerDay) return { name: 'tokensPerDay', limit: b.tokensPerDay, spent: s.tokensDay };
  if (b.costPerDay !== undefined && s.costDay >= b.costPerDay) return { name: 'costPerDay', limit: b.costPerDay, spent: round(s.costDay) };
  if (b.costPerMonth !== undefined && s.costMonth >= b.costPerMonth) return { name: 'costPerMonth', limit: b.costPerMonth, spent: round(s.costMonth) };
  return undefined;
}

const round = (n: number) => Math.round(n * 1e6) / 1e6;
