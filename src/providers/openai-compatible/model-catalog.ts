import { request, type Dispatcher } from 'undici';
import { readCapped } from './upstream-http.js';
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

/** A model list is a few hundred KiB for thousands of models; a peer sending more is not sending a model list. */
const MAX_MODEL_LIST_CHARS = 4 * 1024 * 1024;
/** Bounded as a whole (connecting included): /v1/models waits for this, not for the upstream timeout. */
const MODEL_LIST_TIMEOUT_MS = 2000;

/** GET `url`: the `data` entries of the model list an upstream answers (OpenAI's and Anthropic's shape alike). */
export async function fetchModelList(url: string, headers: Record<string, string>, dispatcher: Dispatcher, name: string): Promise<unknown[]> {
  const list = await fetchModelPage(url, headers, dispatcher, name);
  if (!Array.isArray(list?.data)) throw new Error(`upstream ${name} sent no model list`);
  return list.data as unknown[];
}

/** GET `url`: one page of an upstream's model list, parsed, whatever its shape. */
export async function fetchModelPage(url: string, headers: Record<string, string>, dispatcher: Dispatcher, name: string): Promise<Record<string, unknown> | null> {
  const res = await request(url, { method: 'GET', headers: { accept: 'application/json', ...headers }, dispatcher, signal: AbortSignal.timeout(MODEL_LIST_TIMEOUT_MS) });
  if (res.statusCode !== 200) {
    await res.body.dump();
    throw new Error(`upstream ${name} answered ${res.statusCode} to GET ${new URL(url).pathname}`);
  }
  const text = await readCapped(res.body, MAX_MODEL_LIST_CHARS);
  if (text.length > MAX_MODEL_LIST_CHARS) throw new Error(`upstream ${name} sent a model list over ${MAX_MODEL_LIST_CHARS} characters`);
  return JSON.parse(text) as Record<string, unknown> | null;
}

/**
 * An upstream's models as /v1/models lists them: the ones its config names, and for a catch-all ("*") upstream
 * what it says it serves (asked through a ModelCatalog) and `advertise`. Only a catch-all upstream is asked: one
 * with a model list gets only those models.
 */
export function upstreamModels(upstream: { name: string; models?: string[] | undefined }, advertise: string[], list: () => Promise<ModelInfo[]>): () => Promise<ModelInfo[]> {
  const catchAll = (upstream.models ?? []).includes('*');
  const named = [...new Set([...(upstream.models ?? []).filter((m) => m !== '*'), ...(catchAll ? advertise : [])])];
  const catalog = catchAll ? new ModelCatalog(list) : undefined;
  return async () => {
    const reported = (await catalog?.get()) ?? [];
    const byId = new Map(reported.map((m) => [m.id, m]));
    for (const id of named) if (!byId.has(id)) byId.set(id, { id, owned_by: upstream.name });
    return [...byId.values()];
  };
}
