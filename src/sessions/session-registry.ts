import type { Logger } from 'pino';
import type { SessionPolicy } from '../config.js';
import type { CancelReason } from '../errors.js';

/** A stream as the session registry sees it: something it can cancel and whose cleanup it can wait for. */
export interface SessionClaim {
  /** The registry's key: the client's session id namespaced by API key. */
  sessionKey: string;
  /** The session id as the client sent it (for messages). */
  sessionId: string;
  requestId: string;
  trace: string;
  policy: SessionPolicy;
  /** When the request arrived (epoch ms): a session follows arrival order where the client gives no seq. */
  arrivedAt: number;
  /** X-Session-Seq: the client's own order of its requests in the session, when it sends one. */
  seq?: number | undefined;
  /** Cancels the stream; it then cleans up and releases its lease. */
  cancel(reason: CancelReason): void;
  /** The claiming stream's own signal: a wait ends when the claimant itself is cancelled. */
  signal: AbortSignal;
  log: Logger;
}

export interface SessionLease {
  /** Called once, after the stream's cleanup has completed. Whoever waits on this stream proceeds then. */
  release(): void;
}

export interface SessionRegistry {
  /**
   * Applies the barge-in policy; resolves when the stream may start generating. Rejects with a JarvisError when
   * the request is refused (session_busy, stale_request), and with the claim's own cancellation when it is
   * superseded before it starts (a newer request already holds the session).
   */
  acquire(claim: SessionClaim): Promise<SessionLease>;
  /** Sessions with at least one live stream. */
  readonly size: number;
  close(): Promise<void>;
}
