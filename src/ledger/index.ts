import { join } from 'node:path';
import type { Logger } from 'pino';
import type { ApiKeyIdentity } from '../access/keys.js';
import type { Config } from '../config.js';
import type { RandomIds } from '../ids.js';
import type { Budgets } from './budgets.js';
import { Ledger, type LedgerObserver } from './ledger.js';
import { EmbeddedLedgerStore } from './stores/embedded.js';
import { PostgresLedgerStore } from './stores/postgres.js';

/**
 * The ledger the configuration asks for: PostgreSQL when JARVIS_DATABASE_URL is set (several instances, one
 * ledger), else the embedded file under JARVIS_DATA_DIR; none with JARVIS_LEDGER=0. It opens in the background:
 * Jarvis serves at once, and lines wait for the store.
 */
export function createLedger(config: Config, deps: { log: Logger; ids: RandomIds; observer: LedgerObserver; budgets: Budgets; keys: readonly ApiKeyIdentity[] }): Ledger | undefined {
  if (!config.ledger.enabled) return undefined;
  const store = config.databaseUrl ? new PostgresLedgerStore({ url: config.databaseUrl }) : new EmbeddedLedgerStore({ file: join(config.dataDir, 'ledger.sqlite') });
  return new Ledger({
    store,
    prices: config.prices,
    flushMs: config.ledger.flushMs,
    maxQueued: config.ledger.maxQueued,
    log: deps.log,
    ids: deps.ids,
    observer: deps.observer,
    onSpend: (key, cost, tokens, atMs) => deps.budgets.spent(key, cost, tokens, atMs),
    onOpen: (s) => deps.budgets.seed(s, deps.keys).catch((err: unknown) => deps.log.warn({ error: (err as Error).message }, 'budget_seed_failed')),
  });
}
