import { Client, Dispatcher, errors } from 'undici';

/**
 * One origin's keep-alive connections, with the idle ones kept apart so a request takes one in constant time.
 * undici's Pool looks for a free connection by walking all of them, twice per request: with thousands of streams
 * open that walk was 3-4% of a gateway holding 10,000 of them, and it grows with the square of the streams as
 * they open. The most recently freed connection goes first (its socket is the likeliest to be warm); a connection
 * that drops while idle (the upstream's keep-alive timeout, a failed connect) is closed and forgotten, so a burst
 * of streams leaves no thousands of idle clients behind.
 */
export class IdlePool extends Dispatcher {
  readonly #origin: string;
  readonly #options: Client.Options;
  readonly #clients = new Set<Client>();
  /** Clients that can take a request now, most recently freed last. */
  readonly #idle: Client[] = [];
  readonly #isIdle = new WeakSet<Client>();
  #closed = false;
  /** Places in #idle whose client has gone since. */
  #stale = 0;

  constructor(origin: string, options: Client.Options) {
    super();
    this.#origin = origin;
    this.#options = options;
  }

  /** Connections this pool holds (busy and idle). */
  get size(): number {
    return this.#clients.size;
  }

  override dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    if (this.#closed) throw new errors.ClientClosedError();
    let client = this.#idle.pop();
    while (client && !this.#isIdle.has(client)) {
      this.#stale--;
      client = this.#idle.pop();
    }
    if (client) this.#isIdle.delete(client);
    else client = this.#create();
    // With one request per connection (no pipelining) a client takes one and is busy until it emits 'drain'.
    if (client.dispatch(options, handler)) this.#release(client);
    return true;
  }

  #create(): Client {
    const client = new Client(this.#origin, this.#options);
    this.#clients.add(client);
    client.on('drain', () => this.#release(client));
    // Only an idle client is forgotten when its connection drops. One that took a request meanwhile (its socket
    // was closing when the request came: the keep-alive timeout, an aborted stream) connects again for it, and
    // destroying it would fail that request.
    const drop = () => {
      if (!this.#isIdle.has(client)) return;
      this.#isIdle.delete(client);
      this.#clients.delete(client);
      void client.close().catch(() => {});
      // Its place in #idle is skipped when reached; the stack is swept once stale places are half of it.
      if (++this.#stale > this.#idle.length / 2) this.#sweep();
    };
    client.on('disconnect', drop);
    client.on('connectionError', drop);
    return client;
  }

  #sweep(): void {
    let kept = 0;
    for (const c of this.#idle) if (this.#isIdle.has(c)) this.#idle[kept++] = c;
    this.#idle.length = kept;
    this.#stale = 0;
  }

  #release(client: Client): void {
    if (!this.#clients.has(client) || this.#isIdle.has(client)) return;
    this.#isIdle.add(client);
    this.#idle.push(client);
  }

  override close(): Promise<void>;
  override close(callback: () => void): void;
  override close(callback?: () => void): Promise<void> | void {
    this.#closed = true;
    const done = Promise.all([...this.#clients].map((c) => c.close())).then(() => {});
    if (!callback) return done;
    void done.then(callback);
  }

  override destroy(): Promise<void>;
  override destroy(err: Error | null): Promise<void>;
  override destroy(callback: () => void): void;
  override destroy(err: Error | null, callback: () => void): void;
  override destroy(errOrCallback?: Error | null | (() => void), callback?: () => void): Promise<void> | void {
    const err = typeof errOrCallback === 'function' ? null : (errOrCallback ?? null);
    const cb = typeof errOrCallback === 'function' ? errOrCallback : callback;
    this.#closed = true;
    const done = Promise.all([...this.#clients].map((c) => c.destroy(err))).then(() => {});
    if (!cb) return done;
    void done.then(cb);
  }
}
