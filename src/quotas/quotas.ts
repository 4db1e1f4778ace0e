import type { Logger } from 'pino';
import type { ApiKeyIdentity } from '../access/keys.js';
import { JarvisError } from '../errors.js';
import { retryAfter } from '../http/retry-headers.js';
import type { QuotaKind, QuotaStore } from './quota-store.js';

/**
 * When a slot frees is unknown (a stream ends when it ends): a client asked to come back in a second polls
 * gently and gets in soon after one does.
 */
const STREAM_RETRY_AFTER_MS = 1000;
/**
 * The longest wait worth retrying for. OpenAI's SDKs wait whatever Retry-After says, inside the call: past the
 * longest back-off they would choose themselves (8 s), an error the application can show beats a call that
 * hangs, so such a 429 says `x-should-retry: false` (its Retry-After still tells when to come back).
 */
const MAX_RETRY_WAIT_MS = 8000;

const noop = () => {};

/** Per-key quotas on chat requests: requests per minute and streams in flight, from a key's settings. */
export class Quotas {
  readonly #store: QuotaStore;
  readonly #log: Logger;
  readonly #onExceeded: (quota: QuotaKind) => void;
  #held = 0;

  constructor(opts: { store: QuotaStore; log: Logger; onExceeded?: (quota: QuotaKind) => void }) {
    this.#store = opts.store;
    this.#log = opts.log;
    this.#onExceeded = opts.onExceeded ?? (() => {});
  }

  /** Stream slots held by this instance right now; back to 0 whenever no chat stream is running. */
  get held(): number {
    return this.#held;
  }

  /**
   * Counts one chat request against its key and takes a stream slot. Resolves with the function that frees the
   * slot (call it once the stream is over, in a finally); throws a 429 JarvisError when a quota is used up.
   */
  async admit(identity: ApiKeyIdentity | null, requestId: string): Promise<() => void> {
    if (!identity || (identity.rpm === 0 && identity.maxStreams === 0)) return noop;
    const limits = { rpm: identity.rpm, maxStreams: identity.maxStreams };
    const admission = await this.#store.admit(identity.id, limits, requestId);
    if (admission.ok) {
      if (identity.maxStreams === 0) return admission.release;
      this.#held++;
      let released = false;
      return () => {
        if (released) return;
        released = true;
        this.#held--;
        admission.release();
      };
    }
    const waitMs = admission.retryAfterMs ?? STREAM_RETRY_AFTER_MS;
    this.#onExceeded(admission.quota);
    this.#log.info({ request_id: requestId, owner: identity.id, quota: admission.quota, limit: limits[admission.quota === 'rpm' ? 'rpm' : 'maxStreams'], retry_after_ms: Math.ceil(waitMs) }, 'quota_exceeded');
    const opts = { headers: retryAfter(waitMs), retryable: waitMs <= MAX_RETRY_WAIT_MS };
    if (admission.quota === 'rpm') {
      throw new JarvisError('JARVIS_ERR_RATE_LIMITED', `Rate limit reached for this API key: ${identity.rpm} requests per minute. Retry in ${formatWait(waitMs)}.`, opts);
    }
    throw new JarvisError('JARVIS_ERR_TOO_MANY_STREAMS', `This API key already has ${identity.maxStreams} stream${identity.maxStreams === 1 ? '' : 's'} in flight, its limit. Retry when one has finished.`, opts);
  }

  close(): Promise<void> {
    return this.#store.close();
  }
}

function formatWait(ms: number): string {
  return ms < 1000 ? `${Math.ceil(ms)} ms` : `${Math.ceil(ms / 1000)} s`;
}
