import { SIMULATED_MODEL, type Config } from '../config.js';
import { JarvisError } from '../errors.js';
import { openAICompatibleProvider } from './openai-compatible/index.js';
import type { ModelInfo, Provider } from './provider.js';
import { simulatedProvider } from './simulated/index.js';

/** Which provider serves which model: the simulator always, then each configured upstream. */
export class ProviderRegistry {
  readonly #byModel = new Map<string, Provider>();
  readonly #catchAll: Provider | undefined;
  readonly #providers: Provider[] = [];
  readonly #defaultModel: string;

  constructor(config: Config) {
    this.#defaultModel = config.defaultModel;
    const sim = simulatedProvider(config.simulator);
    this.#add(sim, [SIMULATED_MODEL]);
    let catchAll: Provider | undefined;
    for (const upstream of config.upstreams) {
      const provider = openAICompatibleProvider(upstream, {
        timeoutMs: config.upstreamTimeoutMs,
        idleMs: config.upstreamIdleMs,
        advertise: config.defaultModel === SIMULATED_MODEL ? [] : [config.defaultModel],
      });
      this.#add(provider, upstream.models.filter((m) => m !== '*'));
      if (upstream.models.includes('*')) catchAll ??= provider;
    }
    this.#catchAll = catchAll;
    if (!this.#byModel.has(this.#defaultModel) && !catchAll) {
      throw new JarvisError('JARVIS_ERR_MODEL_NOT_FOUND', `default model ${this.#defaultModel} is served by no provider`);
    }
  }

  #add(provider: Provider, models: string[]): void {
    this.#providers.push(provider);
    for (const m of models) if (!this.#byModel.has(m)) this.#byModel.set(m, provider);
  }

  resolve(model: string | undefined): { provider: Provider; model: string } {
    const id = model ?? this.#defaultModel;
    const provider = this.#serving(id);
    if (!provider) {
      throw new JarvisError('JARVIS_ERR_MODEL_NOT_FOUND', `The model '${id}' does not exist or you do not have access to it.`, { param: 'model' });
    }
    return { provider, model: id };
  }

  /** Every model a request can name, once each, as listed by the provider a request for it would reach. */
  async models(): Promise<ModelInfo[]> {
    const lists = await Promise.all(this.#providers.map((p) => p.models()));
    const seen = new Map<string, ModelInfo>();
    lists.forEach((list, i) => {
      for (const m of list) if (!seen.has(m.id) && this.#serving(m.id) === this.#providers[i]) seen.set(m.id, m);
    });
    return [...seen.values()];
  }

  #serving(model: string): Provider | undefined {
    return this.#byModel.get(model) ?? this.#catchAll;
  }

  /** Checks every provider; one that cannot be reached makes the whole gateway not ready. */
  async readiness(signal: AbortSignal): Promise<{ id: string; ready: boolean; error?: string }[]> {
    return Promise.all(
      this.#providers.map(async (p) => {
        try {
          await p.ready({ signal });
          return { id: p.id, ready: true };
        } catch (err) {
          return { id: p.id, ready: false, error: (err as Error).message };
        }
      }),
    );
  }

  async close(): Promise<void> {
    await Promise.all(this.#providers.map((p) => p.close?.()));
  }
}
