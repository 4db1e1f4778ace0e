import { SIMULATED_MODEL, type Config } from '../config.js';
import { JarvisError } from '../errors.js';
import { anthropicProvider } from './anthropic/index.js';
import { geminiProvider } from './gemini/index.js';
import { openAICompatibleProvider } from './openai-compatible/index.js';
import pino, { type Logger } from 'pino';
import type { ModelInfo, Provider } from './provider.js';
import type { SignatureMemory } from './signed-thinking.js';
import { Circuit, type CircuitState } from './routes/circuit.js';
import { routedProvider, type RouteObserver } from './routes/routed-provider.js';
import { simulatedProvider } from './simulated/index.js';

const silentLog = pino({ level: 'silent' });

/** A share of the live streams that may be hedged at once (a hedge is a second paid request); at least one. */
export const HEDGE_SHARE = 0.1;

export interface RegistryDeps {
  log: Logger;
  /** Live streams now: the hedge budget is a share of them. */
  liveStreams: () => number;
  observer?: RouteObserver & { circuit(upstream: string, state: CircuitState): void };
  random?: () => number;
  /** The signed-thinking memory of each provider kind, when instances share one (a cluster); else each has its own. */
  signatures?: ((kind: 'anthropic' | 'gemini') => SignatureMemory) | undefined;
}

/** Which provider serves which model: the simulator always, then the routes, then each configured upstream. */
export class ProviderRegistry {
  readonly #byModel = new Map<string, Provider>();
  readonly #catchAll: Provider | undefined;
  readonly #providers: Provider[] = [];
  readonly #defaultModel: string;
  readonly #circuits: Circuit[] = [];
  readonly #kinds = new Map<string, string>();

  constructor(config: Config, deps?: RegistryDeps) {
    this.#defaultModel = config.defaultModel;
    const sim = simulatedProvider(config.simulator);
    this.#add(sim, [SIMULATED_MODEL]);
    let catchAll: Provider | undefined;
    const byName = new Map<string, { provider: Provider; circuit: Circuit | undefined }>();
    const log = deps?.log ?? silentLog;
    for (const upstream of config.upstreams) {
      this.#kinds.set(upstream.name, upstream.provider ?? 'openai');
      const opts = {
        timeoutMs: config.upstreamTimeoutMs,
        idleMs: config.upstreamIdleMs,
        advertise: config.defaultModel === SIMULATED_MODEL ? [] : [config.defaultModel],
      };
      const provider =
        upstream.provider === 'anthropic'
          ? anthropicProvider(upstream, { ...opts, signatures: deps?.signatures?.('anthropic') })
          : upstream.provider === 'gemini'
            ? geminiProvider(upstream, { ...opts, signatures: deps?.signatures?.('gemini') })
            : openAICompatibleProvider(upstream, opts);
      const circuit = upstream.circuit
        ? new Circuit(upstream.name, { ...upstream.circuit, log, onChange: (state) => deps?.observer?.circuit(upstream.name, state) })
        : undefined;
      if (circuit) this.#circuits.push(circuit);
      byName.set(upstream.name, { provider, circuit });
      this.#add(provider, (upstream.models ?? []).filter((m) => m !== '*'));
      if ((upstream.models ?? []).includes('*')) catchAll ??= provider;
    }
    let hedges = 0;
    const budget = {
      tryStart: () => {
        if (hedges >= Math.max(1, Math.floor((deps?.liveStreams() ?? 0) * HEDGE_SHARE))) return false;
        hedges++;
        return true;
      },
      end: () => void hedges--,
    };
    // A route's model is served by the route, ahead of an upstream that names the same model.
    for (const route of config.routes) {
      const targets = route.targets.map((t) => ({
        ...byName.get(t.upstream)!,
        upstream: t.upstream,
        model: t.model,
        weight: t.weight ?? 1,
        priority: t.priority ?? 0,
        kind: this.#kinds.get(t.upstream) ?? 'openai',
      }));
      const provider = routedProvider(route, targets, { log, hedges: budget, observer: deps?.observer, random: deps?.random });
      this.#providers.unshift(provider);
      this.#byModel.set(route.model, provider);
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

  /**
   * The upstream a provider that is not a route is, and the API it speaks (a route tells per attempt): what the
   * ledger and traces name.
   */
  describe(provider: Provider): { name: string; provider: string } | undefined {
    if (provider.id === 'simulated') return { name: 'simulator', provider: 'simulator' };
    if (!provider.id.startsWith('upstream:')) return undefined;
    const name = provider.id.slice('upstream:'.length);
    return { name, provider: this.#kinds.get(name) ?? 'openai' };
  }

  /** Each upstream with a circuit breaker, and its state. */
  circuits(): { upstream: string; state: CircuitState }[] {
    return this.#circuits.map((c) => ({ upstream: c.upstream, state: c.state }));
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
