import { EventEmitter } from 'node:events';
import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';

/** Where Redis is: one server's URL, or the sentinels that watch a master (followed through failovers). */
export type RedisTarget = { url: string } | { sentinels: { host: string; port: number }[]; name: string; password?: string | undefined };

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
  readonly cmd: Redis;
  /** Pub/sub subscriber for the control channel (a subscribed connection can run nothing else). */
  readonly sub: Redis;
  /** Blocking XREAD for the event stream. */
  readonly reader: Redis;
  #state: LinkState = 'down';
  /** redis_unavailable has been logged: the next 'up' is a recovery, and is logged as one. */
  #reportedDown = false;
  /** close() has begun: our own connections closing is not Redis becoming unavailable. */
  #closing = false;
  /** A command timed out on a connection that is still open: Redis is taken to be away until a PING answers. */
  #stalled = false;
  #probe: NodeJS.Timeout | undefined;
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
    // With sentinels, each connection asks them for the master, and again after a failover (the old master's
    // connections close; +switch-master makes ioredis move at once rather than at its next reconnect).
    const open = (o: RedisOptions) =>
      'url' in target ? new Redis(target.url, o) : new Redis({ ...o, sentinels: target.sentinels, name: target.name, password: target.password, failoverDetector: true, role: 'master' });
    // Commands issued in the same tick (a stream's claim, its events, its quota) leave in one socket write.
    this.cmd = open({ ...base, connectionName: 'jarvis-cmd', enableAutoPipelining: true });
    // The subscriber must queue its SUBSCRIBE until connected, and ioredis re-subscribes after a reconnect.
    // (maxRetriesPerRequest null: a command waits for the connection rather than failing while Redis is away.)
    const waiting: RedisOptions = { ...base, enableOfflineQueue: true, maxRetriesPerRequest: null, commandTimeout: undefined };
    this.sub = open({ ...waiting, connectionName: 'jarvis-sub' });
    // A blocking read must not time out client-side.
    this.reader = open({ ...waiting, connectionName: 'jarvis-reader' });
    for (const c of [this.cmd, this.sub, this.reader]) c.on('error', () => {});
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
        attempt,
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
