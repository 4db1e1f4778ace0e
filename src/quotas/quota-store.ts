/** A key's limits; 0 means unlimited. */
export interface QuotaLimits {
  /** Requests per minute. */
  rpm: number;
  /** Streams in flight at once. */
  maxStreams: number;
}

export type QuotaKind = 'rpm' | 'streams';

export type Admission =
  | { ok: true; /** Frees the stream slot (if one was taken); idempotent. */ release(): void }
  | { ok: false; quota: QuotaKind; /** When a retry could succeed; undefined when nobody can know (a slot frees when a stream ends). */ retryAfterMs: number | undefined };

/**
 * Where quota state lives: in this process (LocalQuotaStore) or shared by every instance (RedisQuotaStore).
 * `admit` checks and counts in one step: a request refused for one quota uses up nothing of the other.
 */
export interface QuotaStore {
  admit(owner: string, limits: QuotaLimits, streamId: string): Promise<Admission>;
  close(): Promise<void>;
}

/**
 * Requests per minute as GCRA (a token bucket of `rpm` tokens refilled at rpm per minute, kept as one number):
 * each request moves the key's theoretical arrival time `tat` on by 60 s / rpm, and is admitted while `tat`
 * stays at most one minute ahead of now. So a key may spend its whole minute at once, then one request every
 * 60/rpm s; `retryAfterMs` is exactly when the next one fits. The Redis store runs the same arithmetic in Lua.
 */
export function gcra(tat: number, now: number, rpm: number): { ok: true; tat: number } | { ok: false; retryAfterMs: number } {
  const next = Math.max(tat, now) + 60_000 / rpm;
  if (next - now <= 60_000) return { ok: true, tat: next };
  return { ok: false, retryAfterMs: next - now - 60_000 };
}
