import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { RedisEventBus } from '../events/redis-bus.js';
import { RedisQuotaStore } from '../quotas/redis-store.js';
import { RedisSessionRegistry, type DegradedReason } from '../sessions/redis-registry.js';
import { RedisLink, type RedisTarget } from './redis-link.js';

export interface Cluster {
  instanceId: string;
  link: RedisLink;
  sessions: RedisSessionRegistry;
  bus: RedisEventBus;
  /** Per-key quotas counted across every instance (falls back to this instance's counts while Redis is away). */
  quotas: RedisQuotaStore;
  /** Control round trips (ask another instance, get its answer), for /metrics. */
  onControlLatency(listener: (ms: number) => void): void;
  /** Claims decided by this instance alone (Redis away or too slow), and failed event-stream reads, for /metrics. */
  onDegraded(listener: (reason: DegradedReason) => void): void;
  onEventReadFailure(listener: () => void): void;
  close(): Promise<void>;
}

export class RedisUnavailableError extends Error {
  override readonly name = 'RedisUnavailableError';
}

/**
 * The Redis-backed session registry and event bus for running several instances. Throws
 * RedisUnavailableError when Redis cannot be reached at start, unless `redis.optional`.
 */
export async function createCluster(config: Config, log: Logger): Promise<Cluster> {
  const target = redisTarget(config);
  const where = describe(config);
  const instanceId = config.instanceId ?? `inst_${randomBytes(4).toString('hex')}`;
  const link = new RedisLink({ target, prefix: config.redis.prefix, log });
  const latencyListeners: ((ms: number) => void)[] = [];
  const degradedListeners: ((reason: DegradedReason) => void)[] = [];
  const readFailureListeners: (() => void)[] = [];
  const sessions = new RedisSessionRegistry({
    link,
    instanceId,
    ttlMs: config.redis.sessionTtlMs,
    prevStreamWaitMs: config.sessions.prevStreamWaitMs,
    log,
    onControlLatency: (ms) => latencyListeners.forEach((l) => l(ms)),
    onDegraded: (reason) => degradedListeners.forEach((l) => l(reason)),
  });
  const bus = new RedisEventBus({ link, replay: config.events.replay, log, instanceId, onReadFailure: () => readFailureListeners.forEach((l) => l()) });
  // Stream slots live as long as session records do: an instance that dies frees both within the same TTL.
  const quotas = new RedisQuotaStore({ link, ttlMs: config.redis.sessionTtlMs });

  try {
    await link.connect();
  } catch (err) {
    if (!config.redis.optional) {
      await link.close();
      throw new RedisUnavailableError(`cannot reach Redis at ${where}: ${(err as Error).message} (set JARVIS_REDIS_OPTIONAL=1 to start without it)`);
    }
    link.connectInBackground();
  }
  // SUBSCRIBE queues until the subscriber connection is up, so this does not wait for Redis.
  void sessions.start().catch(() => {});
  bus.start();
  log.info({ instance: instanceId, redis: where, state: link.state }, 'cluster_joined');

  return {
    instanceId,
    link,
    sessions,
    bus,
    quotas,
    onControlLatency: (l) => latencyListeners.push(l),
    onDegraded: (l) => degradedListeners.push(l),
    onEventReadFailure: (l) => readFailureListeners.push(l),
    async close() {
      await Promise.all([sessions.close(), bus.close(), quotas.close()]);
      await link.close();
    },
  };
}

/** The configured Redis as the link opens it: one server, a Sentinel set, or a cluster. */
function redisTarget(config: Config): RedisTarget {
  const { url, sentinels, cluster, name, password } = config.redis;
  if (url) return { url };
  if (cluster.length > 0) return { cluster: cluster.map(hostPort), password: password ?? undefined };
  if (sentinels.length === 0 || !name) throw new Error('createCluster needs redis.url, redis.sentinels or redis.cluster');
  return { sentinels: sentinels.map(hostPort), name, password: password ?? undefined };
}

function hostPort(s: string): { host: string; port: number } {
  const at = s.lastIndexOf(':');
  return { host: s.slice(0, at), port: Number(s.slice(at + 1)) };
}

/** Where Redis is, for logs and errors: never a password. */
function describe(config: Config): string {
  const { url, sentinels, cluster, name } = config.redis;
  if (url) return redactUrl(url);
  return cluster.length > 0 ? `cluster via ${cluster.join(',')}` : `sentinel ${name ?? '?'} via ${sentinels.join(',')}`;
}

function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'redis://?';
  }
}
