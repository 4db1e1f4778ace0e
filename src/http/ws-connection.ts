import type { RawData, WebSocket } from 'ws';
import type { JarvisContext } from '../context.js';
import { JarvisError, type CancelReason } from '../errors.js';
import { isObject, type Obj } from '../json.js';
import type { SubscriberSlot } from '../events/subscriber-slots.js';
import type { HeartbeatTarget } from './heartbeat.js';

/** Close codes (RFC 6455, and application codes in 4000-4999). */
export const WS_CLOSE = { normal: 1000, goingAway: 1001, unsupportedData: 1003, slowConsumer: 4008 } as const;

export interface WsConnectionOptions {
  ctx: JarvisContext;
  /** The connection's place (connection limits), given back when it closes. */
  slot: SubscriberSlot;
  /** Called once the connection has closed (the route forgets it). */
  onClosed?: (() => void) | undefined;
}

/**
 * What every JSON-over-WebSocket API connection needs once, whatever its protocol (the Responses API's
 * WebSocket mode, the Realtime API): text messages in, JSON events out; a client that is behind holds its
 * streams (StreamSink.flush) and one that stopped reading is dropped (4008); the heartbeat's ping, and a peer that
 * never answers it cut off; an idle timeout; shutdown that lets what is in flight finish, then closes with 1001;
 * a binary message closes with 1003. The protocol (a subclass) says what a message does and what is in flight.
 */
export abstract class WsConnection implements HeartbeatTarget {
  active = false;
  readonly id: string;
  protected readonly ctx: JarvisContext;
  protected readonly socket: WebSocket;
  readonly #opts: WsConnectionOptions;
  readonly #idle: NodeJS.Timeout;
  readonly #closedSignal: { promise: Promise<void>; resolve: () => void };
  #drained: Promise<void> | undefined;
  #terminate: NodeJS.Timeout | undefined;
  #awaitingPong = false;
  #closing = false;
  #closed = false;

  constructor(socket: WebSocket, opts: WsConnectionOptions) {
    this.socket = socket;
    this.ctx = opts.ctx;
    this.#opts = opts;
    this.id = `ws_${opts.ctx.ids.hex(8)}`;
    let resolve!: () => void;
    this.#closedSignal = { promise: new Promise<void>((r) => (resolve = r)), resolve };
    this.#idle = setTimeout(() => this.#idleOver(), opts.ctx.config.websocket.idleTimeoutMs);
    this.#idle.unref();
    socket.on('message', this.#onMessage);
    socket.on('pong', this.#onPong);
    // ws reports a broken protocol (a frame too large, invalid UTF-8) here, then closes with its code.
    socket.on('error', this.#onError);
    socket.once('close', this.#onClose);
    opts.ctx.heartbeat.add(this);
  }

  /** One client event (a JSON object with a string `type`), and when it arrived (epoch ms). */
  protected abstract onEvent(event: Obj & { type: string }, arrivedAt: number): void;
  /** A message that is not an event (not JSON, no `type`): the protocol's error event. */
  protected abstract refuse(error: JarvisError): void;
  /** Streams (or turns) in flight: the connection is not idle, and shutdown waits for them. */
  protected abstract get inFlight(): number;
  /** Cancels everything in flight (the client left, stopped reading). */
  protected abstract cancelAll(reason: CancelReason): void;
  /** The connection has closed: the protocol's own cleanup and its `ws_close` line. */
  protected abstract onClosed(code: number): void;

  /** Resolves once the socket has closed and the connection cleaned up. */
  get closed(): Promise<void> {
    return this.#closedSignal.promise;
  }

  protected get isClosed(): boolean {
    return this.#closed;
  }

  protected get isClosing(): boolean {
    return this.#closing;
  }

  /** Shutdown: nothing new starts; what is in flight finishes (within the grace period), then 1001. */
  drain(): void {
    this.#closing = true;
    if (this.inFlight === 0) this.close(WS_CLOSE.goingAway, 'server_shutting_down');
  }

  /** Something in flight is over: the idle timer starts again, and a draining connection may close. */
  protected settled(): void {
    this.#idle.refresh();
    if (this.#closing && this.inFlight === 0) this.close(WS_CLOSE.goingAway, 'server_shutting_down');
  }

  /** The heartbeat's tick on an idle connection: a ping, and a peer that never answered the last one is gone. */
  ping(): void {
    if (this.#awaitingPong) {
      this.socket.terminate();
      return;
    }
    this.#awaitingPong = true;
    this.socket.ping();
  }

  /** One message out; false when the socket is not open. */
  protected send(text: string): boolean {
    if (this.#closed || this.socket.readyState !== this.socket.OPEN) return false;
    this.active = true;
    this.socket.send(text);
    return true;
  }

  /**
   * A client that is behind holds its streams (StreamSink.flush) until what it has not read is written out, as
   * over SSE; one that takes nothing for JARVIS_CLIENT_STALL_MS has stopped reading and is dropped, everything in
   * flight cancelled (client_backpressure).
   */
  protected flush(signal: AbortSignal): Promise<void> | undefined {
    const { config } = this.ctx;
    if (this.socket.bufferedAmount <= config.maxClientBufferBytes) return undefined;
    this.#drained ??= new Promise<void>((resolve) => {
      const stall = setTimeout(() => this.#drop(), config.clientStallMs);
      // A ping is written after everything sent before it: its callback says the backlog reached the socket.
      this.socket.ping(undefined, undefined, () => {
        clearTimeout(stall);
        this.#drained = undefined;
        resolve();
      });
    });
    return untilAborted(this.#drained, signal);
  }

  protected close(code: number, reason: string): void {
    if (this.socket.readyState !== this.socket.OPEN) return;
    this.socket.close(code, reason);
    // A client that does not answer the close (one that stopped reading never reads it) is cut off within a
    // second, not after ws's 30 s.
    this.#terminate = setTimeout(() => this.socket.terminate(), 1000);
    this.#terminate.unref();
  }

  #drop(): void {
    this.cancelAll('client_backpressure');
    this.close(WS_CLOSE.slowConsumer, 'slow_consumer');
  }

  #idleOver(): void {
    if (this.inFlight > 0) this.#idle.refresh();
    else this.close(WS_CLOSE.normal, 'idle_timeout');
  }

  readonly #onPong = () => {
    this.#awaitingPong = false;
  };

  readonly #onError = () => {};

  readonly #onMessage = (data: RawData, isBinary: boolean) => {
    const arrivedAt = performance.timeOrigin + performance.now();
    this.#idle.refresh();
    if (isBinary) {
      this.close(WS_CLOSE.unsupportedData, 'binary messages are not part of this protocol');
      return;
    }
    let event: unknown;
    try {
      event = JSON.parse(String(data));
    } catch {
      this.refuse(new JarvisError('JARVIS_ERR_INVALID_JSON', 'The message is not valid JSON.'));
      return;
    }
    if (!isObject(event) || typeof event.type !== 'string') {
      this.refuse(new JarvisError('JARVIS_ERR_INVALID_REQUEST', 'A message must be a JSON object with a string `type`.', { param: 'type' }));
      return;
    }
    this.onEvent(event as Obj & { type: string }, arrivedAt);
  };

  readonly #onClose = (code: number) => {
    this.#closed = true;
    clearTimeout(this.#idle);
    clearTimeout(this.#terminate);
    this.cancelAll('client_disconnected');
    this.ctx.heartbeat.delete(this);
    this.#opts.slot.release();
    this.socket.off('message', this.#onMessage);
    this.socket.off('pong', this.#onPong);
    this.onClosed(code);
    this.#opts.onClosed?.();
    this.#closedSignal.resolve();
  };
}

/** `promise`, or its rejection with the signal's reason once the signal aborts (a cancelled stream stops waiting). */
function untilAborted(promise: Promise<void>, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<void>((resolve, reject) => {
    const onAbort = () => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      () => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err as Error);
      },
    );
  });
}
