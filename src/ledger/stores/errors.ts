/**
 * Why a ledger store refused or failed. The writer keeps its batch and retries on any of them; the code says
 * whether waiting can help (busy, unavailable, closed after a reopen) or not (config).
 * - `config`: the store's options are wrong (a URL that does not parse); never carries the URL itself.
 * - `closed`: the store was not opened, or was closed, or its worker died; open it (again) first.
 * - `busy`: the embedded file stayed locked by another connection past the retry window.
 * - `unavailable`: the database could not be reached or the query failed.
 */
export type LedgerStoreErrorCode = 'config' | 'closed' | 'busy' | 'unavailable';

export class LedgerStoreError extends Error {
  override readonly name = 'LedgerStoreError';
  constructor(
    readonly code: LedgerStoreErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
