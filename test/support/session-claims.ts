// A stream as a session registry sees it, for the registry tests: cancel() records the reason and aborts the
// claim's signal, as a real stream's does, and the test decides when the stream releases its lease (or, with
// autoRelease, it releases as soon as it is cancelled, as a real stream's cleanup does).
import pino, { type Logger } from 'pino';
import type { SessionPolicy } from '../../src/config.js';
import { StreamCancelled, type CancelReason } from '../../src/errors.js';
import type { SessionClaim, SessionLease, SessionRegistry } from '../../src/sessions/session-registry.js';

export type LogRecord = Record<string, unknown> & { msg: string };

/** A pino logger writing parsed records into an array, synchronously. */
export function captureLog(): { log: Logger; records: LogRecord[] } {
  const records: LogRecord[] = [];
  const log = pino({ level: 'debug', base: null }, { write: (line: string) => void records.push(JSON.parse(line) as LogRecord) });
  return { log, records };
}

export class FakeStream {
  /** Every cancel() call, so a test sees a stream cancelled twice. */
  readonly cancelled: CancelReason[] = [];
  readonly controller = new AbortController();
  readonly claim: SessionClaim;
  readonly records: LogRecord[];
  readonly wasCancelled: Promise<CancelReason>;
  lease: SessionLease | undefined;
  readonly #autoRelease: boolean;
  #onCancel!: (r: CancelReason) => void;

  constructor(sessionKey: string, readonly requestId: string, policy: SessionPolicy = 'cancel-previous', opts: { autoRelease?: boolean; seq?: number } = {}) {
    const { log, records } = captureLog();
    this.records = records;
    this.#autoRelease = opts.autoRelease ?? false;
    this.wasCancelled = new Promise((resolve) => (this.#onCancel = resolve));
    this.claim = {
      sessionKey,
      sessionId: sessionKey.split('/')[1] ?? sessionKey,
      requestId,
      trace: `t-${requestId}`,
      policy,
      arrivedAt: performance.timeOrigin + performance.now(),
      seq: opts.seq,
      cancel: (reason) => {
        this.cancelled.push(reason);
        if (this.controller.signal.aborted) return;
        this.#onCancel(reason);
        this.controller.abort(new StreamCancelled(reason));
        if (this.#autoRelease) queueMicrotask(() => this.lease?.release());
      },
      signal: this.controller.signal,
      log,
    };
  }

  async acquire(registry: SessionRegistry): Promise<SessionLease> {
    this.lease = await registry.acquire(this.claim);
    // Cancelled while it waited to start: it ends at once.
    if (this.#autoRelease && this.controller.signal.aborted) this.lease.release();
    return this.lease;
  }

  logged(msg: string): LogRecord[] {
    return this.records.filter((r) => r.msg === msg);
  }
}
