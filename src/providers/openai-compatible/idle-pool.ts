import { Client, Dispatcher, errors } from 'undici';

/**
 * One origin's keep-alive connections, with the idle ones kept apart so a request takes one in constant time.
 * undici's Pool looks for a free connection by walking all of them, twice per request: with thousands of streams
 * open that walk was 3-4% of a gateway holding 10,000 of them, and it grows with the square of the streams as
 * they open. The most recently freed connection goes first (its socket is the likeliest to be warm); a connection
 * that drops (an aborted stream, the upstream's keep-alive timeout, a failed connect) is destroyed and forgotten,
 * so a burst of streams leaves no thousands of idle clients behind.
 */
export class IdlePool extends Dispatcher {
  readonly #origin: string;
  readonly #options: Client.Options;
  readonly #clients = new Set<Client>();
  /** Clients that can take a request now, most recently freed last. */
  readonly #idle: Client[] = [];
  readonly #isIdle = new WeakSet<Client>();
  #closed = false;

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
    while (client && !this.#clients.has(client)) client = this.#idle.pop();
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
    const drop = () => {
      if (!this.#clients.delete(client)) return;
      void client.destroy().catch(() => {});
    };
    client.on('disconnect', drop);
    client.on('connectionError', drop);
    return client;
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
