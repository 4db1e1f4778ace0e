import { EventEmitter } from 'node:events';
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';

export interface HostPort {
  host: string;
  port: number;
}

/**
 * Where Redis is: one server's URL, the sentinels that watch a master (followed through failovers), or some nodes
 * of a Redis Cluster (the rest, and which owns which slot, are learnt from them and followed through failovers).
 */
export type RedisTarget = { url: string } | { sentinels: HostPort[]; name: string; password?: string | undefined } | { cluster: HostPort[]; password?: string | undefined };

/** A connection to one server (or through sentinels), or to a whole cluster: the commands Jarvis uses are the same. */
export type RedisClient = Redis | Cluster;

export interface RedisLinkOptions {
  /** One server's URL (shorthand for `target: { url }`)... */
  url?: string | undefined;
  /** ...or where Redis is, whichever way. */
  target?: RedisTarget | undefined;
  /** Every key and channel starts with this, so several deployments (and test runs) share one Redis. */
  prefix: string;
  log: Logger;
}

export type LinkState = 'up' | 'down';

/** The command timeout: how long a request that meets a stalled Redis waits before Jarvis stops asking it. */
export const COMMAND_TIMEOUT_MS = 1000;
/** While Redis is stalled, how often it is asked (PING) whether it answers again. */
const PROBE_MS = 250;

/**
 * The connections to Redis and whether it is usable right now. Commands fail fast while Redis is away
 * (no offline queue, a short command timeout), so a lost Redis degrades Jarvis to local behaviour instead of
 * hanging requests; ioredis reconnects by itself and the link logs the way back. A Redis that keeps the
 * connection but stops answering (frozen, or stuck in a slow command) counts as away too, from the first
 * command that times out until it answers a PING again: without that, every request would wait out the command
 * timeout, and nothing would say Redis was in trouble.
 */
export class RedisLink extends EventEmitter {
  readonly prefix: string;
  /** Commands: claims, publishes, XADD, XRANGE. */
  readonly cmd: RedisClient;
  /** Pub/sub subscriber for the control channel (a subscribed connection can run nothing else). */
  readonly sub: RedisClient;
  /** Blocking XREAD for the event stream. */
  readonly reader: RedisClient;
  /**
   * A Redis Cluster: publishing and subscribing are sharded (SPUBLISH/SSUBSCRIBE: a message goes to the shard that
   * owns its channel, not to every node), and every key that one script or transaction touches shares a hash tag.
   */
  readonly sharded: boolean;
  #state: LinkState = 'down';
  /** redis_unavailable has been logged: the next 'up' is a recovery, and is logged as one. */
  #reportedDown = false;
  /** close() has begun: our own connections closing is not Redis becoming unavailable. */
  #closing = false;
  /** A command timed out on a connection that is still open: Redis is taken to be away until a PING answers. */
  #stalled = false;
  #probe: NodeJS.Timeout | undefined;
  #nodeError: string | undefined;
  readonly #log: Logger;

  constructor(opts: RedisLinkOptions) {
    super();
    this.prefix = opts.prefix;
    this.#log = opts.log;
    const base: RedisOptions = {
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: COMMAND_TIMEOUT_MS,
      connectTimeout: 2000,
      // Keep trying forever, at most every 2 s: Redis coming back is the normal way out of degraded mode.
      retryStrategy: (times) => Math.min(100 * times, 2000),
    };
    const target: RedisTarget = opts.target ?? { url: opts.url ?? 'redis://127.0.0.1:6379' };
    this.sharded = 'cluster' in target;
    const open = (o: RedisOptions, extra: Partial<ClusterOptions> = {}): RedisClient => {
      if ('url' in target) return new Redis(target.url, o);
      // With sentinels, each connection asks them for the master, and again after a failover (the old master's
      // connections close; +switch-master makes ioredis move at once rather than at its next reconnect).
      if ('sentinels' in target) return new Redis({ ...o, sentinels: target.sentinels, name: target.name, password: target.password, failoverDetector: true, role: 'master' });
      // A cluster: the slot map is asked of the nodes at start, and again on a MOVED or a node lost (a failover);
      // a command meeting a failover is retried on the new owner until the cluster redirects it there.
      const { retryStrategy, lazyConnect, enableOfflineQueue, ...node } = o;
      return new Cluster(target.cluster, {
        lazyConnect,
        enableOfflineQueue,
        clusterRetryStrategy: retryStrategy,
        enableAutoPipelining: o.enableAutoPipelining,
        retryDelayOnFailover: 100,
        retryDelayOnClusterDown: 100,
        redisOptions: { ...node, password: target.password },
        ...extra,
      });
    };
    // Commands issued in the same tick (a stream's claim, its events, its quota) leave in one socket write.
    this.cmd = open({ ...base, connectionName: 'jarvis-cmd', enableAutoPipelining: true });
    // The subscriber must queue its SUBSCRIBE until connected, and ioredis re-subscribes after a reconnect.
    // (maxRetriesPerRequest null: a command waits for the connection rather than failing while Redis is away.)
    const waiting: RedisOptions = { ...base, enableOfflineQueue: true, maxRetriesPerRequest: null, commandTimeout: undefined };
    this.sub = open({ ...waiting, connectionName: 'jarvis-sub' }, { shardedSubscribers: true });
    // A blocking read must not time out client-side.
    this.reader = open({ ...waiting, connectionName: 'jarvis-reader' });
    for (const c of [this.cmd, this.sub, this.reader]) c.on('error', () => {});
    // A cluster that cannot start says only that no node is available; the node's own reason is the useful one
    // ("cluster support disabled": REDIS_CLUSTER_NODES names a plain server).
    for (const c of [this.cmd, this.sub, this.reader]) if (c instanceof Cluster) c.on('node error', (err: Error) => (this.#nodeError = err.message));
    this.cmd.on('ready', () => {
      if (!this.#stalled) this.#set('up');
    });
    this.cmd.on('close', () => this.#set('down'));
  }

  /**
   * Every caller of `cmd` reports its failures here: a command that timed out means Redis is stalled. Stops
   * using Redis at once (the link goes down, with redis_unavailable reason=timeout) and probes it until it answers.
   */
  noteFailure(err: unknown): void {
    if (this.#closing || this.#stalled || !/timed out/i.test((err as Error | undefined)?.message ?? '')) return;
    this.#stalled = true;
    if (this.#state === 'up') {
      this.#state = 'down';
      this.#reportedDown = true;
      this.#log.warn({ reason: 'timeout' }, 'redis_unavailable');
      this.emit('down');
    }
    const probe = () => {
      this.#probe = undefined;
      if (this.#closing) return;
      this.cmd.ping().then(
        () => {
          this.#stalled = false;
          if (this.cmd.status === 'ready') this.#set('up');
        },
        () => (this.#probe = setTimeout(probe, PROBE_MS).unref()),
      );
    };
    probe();
  }

  /**
   * `command` (sent on `cmd`), bounded by the command timeout on a cluster too: there ioredis holds a command that
   * meets a failover (no master for its slot yet) and retries it until the slot has one, past the timeout, which
   * bounds only each try. A request path must not wait out a failover: it is told what a stalled Redis tells it.
   */
  within<T>(command: Promise<T>): Promise<T> {
    if (!this.sharded) return command;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        // The slot's master is likely gone: ask the cluster who serves what now, rather than at the next MOVED.
        if (this.cmd instanceof Cluster) this.cmd.refreshSlotsCache();
        reject(new Error('Command timed out (no answer from the cluster within the command timeout)'));
      }, COMMAND_TIMEOUT_MS);
    });
    command.catch(() => {});
    return Promise.race([command, late]).finally(() => clearTimeout(timer));
  }

  /** Publishes on `channel` (sharded on a cluster); resolves with how many subscribers received it. */
  publish(channel: string, message: string): Promise<number> {
    return this.sharded ? this.cmd.spublish(channel, message).then(Number) : this.cmd.publish(channel, message);
  }

  /** Subscribes `sub` to `channel` (sharded on a cluster); queued until connected, and renewed after a reconnect. */
  async subscribe(channel: string): Promise<void> {
    await (this.sharded ? this.sub.ssubscribe(channel) : this.sub.subscribe(channel));
  }

  /** Calls `listener` with every message `sub` receives; returns what detaches it. */
  onMessage(listener: (channel: string, message: string) => void): () => void {
    const event = this.sharded ? 'smessage' : 'message';
    this.sub.on(event, listener);
    return () => this.sub.off(event, listener);
  }

  get state(): LinkState {
    return this.#state;
  }

  get available(): boolean {
    return this.#state === 'up';
  }

  key(...parts: string[]): string {
    return this.prefix + parts.join(':');
  }

  #set(state: LinkState): void {
    if (state === this.#state) return;
    this.#state = state;
    if (this.#closing) return;
    if (state === 'up') {
      if (this.#reportedDown) this.#log.info({}, 'redis_recovered');
      this.#reportedDown = false;
    } else {
      this.#reportUnavailable();
    }
    this.emit(state);
  }

  #reportUnavailable(): void {
    this.#reportedDown = true;
    this.#log.warn({}, 'redis_unavailable');
  }

  /** Connects all three connections; rejects if Redis cannot be reached within `timeoutMs`. */
  async connect(timeoutMs = 3000): Promise<void> {
    const attempt = Promise.all([this.cmd.connect(), this.sub.connect(), this.reader.connect()]);
    attempt.catch(() => {});
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        attempt.catch((err: unknown) => {
          throw this.#nodeError ? new Error(`${(err as Error).message}: ${this.#nodeError}`) : err;
        }),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Starts connecting and returns at once; the link comes up whenever Redis does (JARVIS_REDIS_OPTIONAL). */
  connectInBackground(): void {
    for (const c of [this.cmd, this.sub, this.reader]) c.connect().catch(() => {});
    if (this.#state === 'down') this.#reportUnavailable();
  }

  async close(): Promise<void> {
    this.#closing = true;
    clearTimeout(this.#probe);
    this.removeAllListeners();
    // QUIT on the reader would wait behind its blocking XREAD (up to the 1 s block); it has nothing to flush.
    this.reader.disconnect();
    await Promise.all([this.cmd, this.sub].map((c) => c.quit().catch(() => c.disconnect())));
  }
}
