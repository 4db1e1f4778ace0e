import type { ServerResponse } from 'node:http';
import type { Heartbeat, HeartbeatTarget } from './heartbeat.js';

export const SSE_HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache',
  connection: 'keep-alive',
  'x-accel-buffering': 'no',
} as const;

const PING = ': ping\n\n';

/**
 * An SSE response. Writes never wait: a client that stops reading is detected by the bytes Node holds for it,
 * and past `maxBufferedBytes` `onOverflow` runs (the caller cancels the stream) instead of buffering forever.
 */
export class SseWriter implements HeartbeatTarget {
  active = true;
  readonly #res: ServerResponse;
  readonly #heartbeat: Heartbeat;
  readonly #maxBufferedBytes: number;
  readonly #onOverflow: () => void;
  readonly #openForPing: () => void;
  #open = false;
  /**
   * Frames written in this tick, sent as one string on the next: a flood's upstream read yields dozens of
   * frames, and one socket write for all of them costs far less than one per frame (or a corked writev of many).
   */
  #pending = '';
  readonly #flush = () => {
    if (this.#pending === '') return;
    const out = this.#pending;
    this.#pending = '';
    if (this.writable) this.#res.write(out);
  };
  /** UTF-8 bytes the largest frame so far may take: one frame alone never counts as a reader falling behind. */
  #largestFrame = 0;

  /**
   * Joins the heartbeat at once: if a whole interval passes before the first output (a slow first token),
   * `openForPing` opens the response so the ping can keep proxies from closing it.
   */
  constructor(res: ServerResponse, opts: { heartbeat: Heartbeat; maxBufferedBytes: number; onOverflow: () => void; openForPing: () => void }) {
    this.#res = res;
    this.#heartbeat = opts.heartbeat;
    this.#maxBufferedBytes = opts.maxBufferedBytes;
    this.#onOverflow = opts.onOverflow;
    this.#openForPing = opts.openForPing;
    this.#heartbeat.add(this);
  }

  get opened(): boolean {
    return this.#open;
  }

  /** True while the client can still be written to. */
  get writable(): boolean {
    return !this.#res.destroyed && !this.#res.writableEnded;
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
    this.#append(frame);
    // A frame bigger than the bound (a whole answer in one upstream chunk) sits in Node's buffer until the kernel
    // takes it, however fast the client reads; the bound counts on top of it. 3 bytes per UTF-16 unit is UTF-8's most.
    if (frame.length * 3 > this.#largestFrame) this.#largestFrame = frame.length * 3;
    if (this.#res.writableLength + this.#pending.length > this.#maxBufferedBytes + this.#largestFrame) this.#onOverflow();
    return true;
  }

  #append(frame: string): void {
    if (this.#pending === '') process.nextTick(this.#flush);
    this.#pending += frame;
  }

  ping(): void {
    if (!this.writable) return;
    if (!this.#open) this.#openForPing();
    // Not a write for the heartbeat's purposes: `active` stays clear, so an idle stream pings every interval.
    this.#append(PING);
  }

  /** Leaves the heartbeat; ends the response if this writer opened it (else the caller answers some other way). */
  end(frame?: string): void {
    this.#heartbeat.delete(this);
    const out = this.#pending + (frame ?? '');
    this.#pending = '';
    if (!this.#open || !this.writable) return;
    if (out) this.#res.end(out);
    else this.#res.end();
  }
}
