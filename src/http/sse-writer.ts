import type { ServerResponse } from 'node:http';
import { CoalescedWrites } from './coalesced-writes.js';
import { PING_FRAME } from './sse-frames.js';
import type { Heartbeat, HeartbeatTarget } from './heartbeat.js';

export const SSE_HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache',
  connection: 'keep-alive',
  'x-accel-buffering': 'no',
} as const;


/**
 * An SSE response. Writes never wait; instead the writer says when the client is behind, so the stream can stop
 * reading its upstream until the client catches up (`behind`, `drained`), the way a pipe would.
 */
export class SseWriter implements HeartbeatTarget {
  active = true;
  readonly #res: ServerResponse;
  readonly #heartbeat: Heartbeat;
  readonly #openForPing: () => void;
  #open = false;
  /**
   * Frames written in this tick, sent as one string on the next: a flood's upstream read yields dozens of
   * frames, and one socket write for all of them costs far less than one per frame (or a corked writev of many).
   */
  readonly #out: CoalescedWrites;

  /**
   * Joins the heartbeat at once: if a whole interval passes before the first output (a slow first token),
   * `openForPing` opens the response so the ping can keep proxies from closing it.
   */
  constructor(res: ServerResponse, opts: { heartbeat: Heartbeat; openForPing: () => void }) {
    this.#res = res;
    this.#heartbeat = opts.heartbeat;
    this.#openForPing = opts.openForPing;
    this.#out = new CoalescedWrites(res, (flush) => process.nextTick(flush));
    this.#heartbeat.add(this);
  }

  get opened(): boolean {
    return this.#open;
  }

  /** True while the client can still be written to. */
  get writable(): boolean {
    return !this.#res.destroyed && !this.#res.writableEnded;
  }

  /**
   * Bytes written to the socket that it could not take yet: what the client has not read. Frames of the current
   * tick are not among them; they have not been offered to the socket.
   */
  get unsent(): number {
    return this.#res.writableLength;
  }

  open(headers: Record<string, string>): void {
    if (this.#open) return;
    this.#open = true;
    // No flushHeaders(): the response opens only for output written in this same tick, and the headers leave
    // with it in one write instead of a write of their own.
    this.#res.writeHead(200, { ...SSE_HEADERS, ...headers });
  }

  write(frame: string): boolean {
    if (!this.writable) return false;
    this.active = true;
    this.#out.write(frame);
    return true;
  }

  ping(): void {
    if (!this.writable) return;
    if (!this.#open) this.#openForPing();
    // Not a write for the heartbeat's purposes: `active` stays clear, so an idle stream pings every interval.
    this.#out.write(PING_FRAME);
  }

  /**
   * Resolves once the client has read down to `limit` unread bytes. Every `stallMs` it checks that the client took
   * something; one that took nothing in a whole interval has stopped reading, and `onStall` runs (the caller
   * cancels, which aborts `signal`). Rejects with the signal's reason when it is aborted.
   */
  drained(limit: number, stallMs: number, onStall: () => void, signal: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let last = this.#res.writableLength;
      const done = () => {
        cleanup();
        resolve();
      };
      const aborted = () => {
        cleanup();
        reject(signal.reason);
      };
      // 'drain' is the usual way out; the interval also catches a buffer that emptied without one (a response
      // queued behind another on its connection drains through the socket, not itself).
      const timer = setInterval(() => {
        const now = this.#res.writableLength;
        if (now <= limit) return done();
        if (now >= last) return onStall();
        last = now;
      }, stallMs);
      // Frames after the first go to the socket itself (CoalescedWrites), so it is the socket that drains.
      const socket = this.#res.socket;
      const cleanup = () => {
        clearInterval(timer);
        this.#res.off('drain', done);
        socket?.off('drain', done);
        signal.removeEventListener('abort', aborted);
      };
      if (signal.aborted) return aborted();
      this.#res.on('drain', done);
      socket?.on('drain', done);
      signal.addEventListener('abort', aborted, { once: true });
    });
  }

  /** Leaves the heartbeat; ends the response if this writer opened it (else the caller answers some other way). */
  end(frame?: string): void {
    this.#heartbeat.delete(this);
    if (this.#open && this.writable) this.#out.end(frame);
    else this.#out.discard();
  }
}
