import type { Logger } from 'pino';
import type { Cluster } from './cluster/index.js';
import type { Config } from './config.js';
import type { EventBus } from './events/event-bus.js';
import type { TokenBatcher } from './events/token-batcher.js';
import type { ApiKeys } from './http/auth.js';
import type { Heartbeat } from './http/heartbeat.js';
import type { ProviderRegistry } from './providers/registry.js';
import type { Quotas } from './quotas/quotas.js';
import type { SessionRegistry } from './sessions/session-registry.js';
import type { LiveStreams } from './streams/live-streams.js';
import type { EventLoopWatchdog } from './observability/event-loop-watchdog.js';
import type { Metrics } from './observability/metrics.js';
import type { RandomIds } from './ids.js';
import type { Ledger } from './ledger/ledger.js';
import type { Budgets } from './ledger/budgets.js';
import type { Tracing } from './observability/turn-trace.js';

/** Everything one Jarvis instance owns, created at start and passed down; nothing lives at module level. */
export interface JarvisContext {
  config: Config;
  log: Logger;
  providers: ProviderRegistry;
  sessions: SessionRegistry;
  bus: EventBus;
  batcher: TokenBatcher;
  live: LiveStreams;
  heartbeat: Heartbeat;
  keys: ApiKeys;
  quotas: Quotas;
  metrics: Metrics;
  watchdog: EventLoopWatchdog;
  ids: RandomIds;
  cluster?: Cluster | undefined;
  /** The usage ledger; absent when turned off (JARVIS_LEDGER=0). */
  ledger?: Ledger | undefined;
  budgets: Budgets;
  /** OpenTelemetry traces, when the OTLP endpoint variables are set. */
  tracing?: Tracing | undefined;
  /** Each WebSocket route's drain (http/ws-upgrade.ts): a shutdown starts them before it closes the listener. */
  drains: Set<() => void>;
}
