import type { Config } from '../config.js';

export type Price = Config['prices'][string];

/** What a line's tokens cost, in US dollars, at a model's price per million tokens. */
export function costOf(price: Price, t: { input: number; cached: number; cacheWrite: number; output: number }): number {
  // `input` counts every input token; the cached and cache-written ones are priced apart when the price says so.
  const plain = Math.max(0, t.input - t.cached - t.cacheWrite);
  const micro = plain * price.input + t.cached * (price.cachedInput ?? price.input) + t.cacheWrite * (price.cacheWrite ?? price.input) + t.output * price.output;
  return micro / 1_000_000;
}

/** The price of the model that served (its exact name), if the operator set one. */
export function priceOf(prices: Config['prices'], model: string | null | undefined): Price | undefined {
  return model ? prices[model] : undefined;
}
