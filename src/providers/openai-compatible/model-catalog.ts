import type { ModelInfo } from '../provider.js';

/** How long an upstream's model list is kept, and how soon a failed fetch is tried again. */
export const MODEL_LIST_TTL_MS = 60_000;
export const MODEL_LIST_RETRY_MS = 5_000;

/**
 * What an upstream says it serves, fetched at most once per TTL however often /v1/models is asked (so the route
 * cannot be used to multiply requests to the upstream), one fetch at a time. A fetch that fails keeps the last
 * list (or none) and is retried after a short wait.
 */
export class ModelCatalog {
  readonly #fetch: () => Promise<ModelInfo[]>;
  readonly #now: () => number;
  #models: ModelInfo[] = [];
  #expires = 0;
  #inflight: Promise<ModelInfo[]> | undefined;

  constructor(fetch: () => Promise<ModelInfo[]>, now: () => number = Date.now) {
    this.#fetch = fetch;
    this.#now = now;
  }

  get(): Promise<ModelInfo[]> {
    if (this.#now() < this.#expires) return Promise.resolve(this.#models);
    this.#inflight ??= this.#fetch().then(
      (models) => {
        this.#models = models;
        this.#expires = this.#now() + MODEL_LIST_TTL_MS;
        return models;
      },
      () => {
        this.#expires = this.#now() + MODEL_LIST_RETRY_MS;
        return this.#models;
      },
    ).finally(() => (this.#inflight = undefined));
    return this.#inflight;
  }
}
