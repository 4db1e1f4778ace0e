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
  #corked = false;
  readonly #uncork = () => {
    if (!this.#corked) return;
    this.#corked = false;
    this.#res.uncork();
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
    this.#res.writeHead(200, { ...SSE_HEADERS, ...headers });
    // Headers go out now, not with the first token: the client learns at once that the stream has begun.
    this.#res.flushHeaders();
  }

  write(frame: string): boolean {
    if (!this.writable) return false;
    this.active = true;
    if (!this.#corked) {
      // The frames of one upstream read arrive in one run of microtasks: hold them and send them in one write.
      this.#corked = true;
      this.#res.cork();
      process.nextTick(this.#uncork);
    }
    this.#res.write(frame);
    // A frame bigger than the bound (a whole answer in one upstream chunk) sits in Node's buffer until the kernel
    // takes it, however fast the client reads; the bound counts on top of it. 3 bytes per UTF-16 unit is UTF-8's most.
    if (frame.length * 3 > this.#largestFrame) this.#largestFrame = frame.length * 3;
    if (this.#res.writableLength > this.#maxBufferedBytes + this.#largestFrame) this.#onOverflow();
    return true;
  }

  ping(): void {
    if (!this.writable) return;
    if (!this.#open) this.#openForPing();
    this.#res.write(PING);
  }

  /** Leaves the heartbeat; ends the response if this writer opened it (else the caller answers some other way). */
  end(frame?: string): void {
    this.#heartbeat.delete(this);
    // Node 24's response drops frames still corked when it ends: let them go first.
    this.#uncork();
    if (!this.#open || !this.writable) return;
    if (frame) this.#res.end(frame);
    else this.#res.end();
  }
}
