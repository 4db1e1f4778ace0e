import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { RedisLink } from './redis-link.js';

export type ControlOp = 'cancel' | 'await';

/** How a request to another instance ended: its stream is done, the bound passed first, or the instance is gone. */
export type ControlResult = 'done' | 'timeout' | 'gone';

const RESEND_MS = 50;

interface ControlRequest {
  id: string;
  op: ControlOp;
  requestId: string;
  from: string;
}
interface ControlReply {
  re: string;
  done: boolean;
}

/**
 * Asks another instance to cancel (or just report the end of) one of its streams, and waits for its answer,
 * which it sends only once that stream's cleanup has completed. Redis pub/sub (sharded on a cluster), one channel
 * per instance.
 */
export class ControlChannel {
  readonly #link: RedisLink;
  readonly #instanceId: string;
  readonly #pending = new Map<string, (result: ControlResult) => void>();
  readonly #channel: string;
  readonly #log: Logger;
  readonly #onLatency: ((ms: number) => void) | undefined;
  readonly #detach: () => void;

  constructor(opts: {
    link: RedisLink;
    instanceId: string;
    log: Logger;
    /** Cancels or awaits a local stream; resolves once it has cleaned up (true) or was not found (true). */
    handle: (op: ControlOp, requestId: string) => Promise<boolean>;
    onLatency?: (ms: number) => void;
  }) {
    this.#link = opts.link;
    this.#instanceId = opts.instanceId;
    this.#log = opts.log;
    this.#onLatency = opts.onLatency;
    this.#channel = opts.link.key('ctl', opts.instanceId);
    this.#detach = opts.link.onMessage((channel, message) => {
      if (channel !== this.#channel) return;
      let msg: ControlRequest & ControlReply;
      try {
        msg = JSON.parse(message) as ControlRequest & ControlReply;
      } catch {
        return;
      }
      if (typeof msg.re === 'string') {
        const resolve = this.#pending.get(msg.re);
        if (resolve) resolve(msg.done ? 'done' : 'timeout');
        return;
      }
      if (typeof msg.id !== 'string' || typeof msg.requestId !== 'string' || typeof msg.from !== 'string') return;
      void opts.handle(msg.op === 'await' ? 'await' : 'cancel', msg.requestId).then(
        (done) => this.#publish(this.#link.key('ctl', msg.from), { re: msg.id, done }),
        () => this.#publish(this.#link.key('ctl', msg.from), { re: msg.id, done: false }),
      );
    });
  }

  async start(): Promise<void> {
    await this.#link.subscribe(this.#channel);
  }

  close(): void {
    this.#detach();
  }

  #publish(channel: string, msg: ControlRequest | ControlReply): void {
    this.#link.publish(channel, JSON.stringify(msg)).catch((err: unknown) => {
      this.#log.warn({ err, channel }, 'control_publish_failed');
    });
  }

  /**
   * Resolves `done` when `instance` reports the stream done, `gone` when the instance is dead (its liveness key
   * expired), `timeout` when `ms` passes first (or Redis is away); rejects with the signal's reason if `signal`
   * aborts. The message is sent at once, whatever happens to the signal after.
   */
  request(instance: string, op: ControlOp, requestId: string, ms: number, signal: AbortSignal): Promise<ControlResult> {
    if (signal.aborted) return Promise.reject(signal.reason as Error);
    const id = randomBytes(8).toString('hex');
    const sent = performance.now();
    return new Promise<ControlResult>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const finish = (fn: () => void) => {
        clearTimeout(timer);
        this.#pending.delete(id);
        signal.removeEventListener('abort', onAbort);
        fn();
      };
      const onAbort = () => finish(() => reject(signal.reason as Error));
      signal.addEventListener('abort', onAbort, { once: true });
      if (Number.isFinite(ms)) timer = setTimeout(() => finish(() => resolve('timeout')), ms);
      this.#pending.set(id, (result) =>
        finish(() => {
          this.#onLatency?.(performance.now() - sent);
          resolve(result);
        }),
      );
      const message = JSON.stringify({ id, op, requestId, from: this.#instanceId } satisfies ControlRequest);
      const send = (): void => {
        this.#link
          .publish(this.#link.key('ctl', instance), message)
          .then(async (receivers) => {
            if (receivers > 0 || !this.#pending.has(id)) return;
            // Nobody heard it. A dead instance's liveness key has expired: its stream is gone, no need to wait.
            // A live one is only reconnecting its subscriber: say it again until it hears or the bound passes.
            if ((await this.#link.cmd.exists(this.#link.key('instance', instance))) === 0) finish(() => resolve('gone'));
            else if (this.#pending.has(id)) setTimeout(send, RESEND_MS).unref();
          })
          .catch((err: unknown) => {
            this.#link.noteFailure(err);
            finish(() => resolve('timeout'));
          });
      };
      send();
    });
  }

  get pending(): number {
    return this.#pending.size;
  }
}
