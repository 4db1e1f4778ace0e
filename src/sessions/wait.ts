/**
 * Waits for `done`, at most `ms` (Infinity: no bound), and rejects with the signal's reason if it aborts first.
 * Resolves true when `done` settled in time. Removes its timer and listener on every path.
 */
export function waitBounded(done: Promise<unknown>, ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<boolean>((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    const finish = (fn: () => void) => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      fn();
    };
    const onAbort = () => finish(() => reject(signal.reason as Error));
    signal.addEventListener('abort', onAbort, { once: true });
    if (Number.isFinite(ms)) timer = setTimeout(() => finish(() => resolve(false)), ms);
    done.then(
      () => finish(() => resolve(true)),
      () => finish(() => resolve(true)),
    );
  });
}
