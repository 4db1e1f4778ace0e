import { request } from 'undici';
import { ANTHROPIC_DEFAULT_MAX_TOKENS, ANTHROPIC_VERSION, type UpstreamConfig } from '../../config.js';
import { JarvisError } from '../../errors.js';
import { isObject } from '../../json.js';
import { IdlePool } from '../openai-compatible/idle-pool.js';
import { fetchModelList, upstreamModels } from '../openai-compatible/model-catalog.js';
import { upstreamFailure } from '../openai-compatible/upstream-errors.js';
import { forwarded, probe, readCapped } from '../openai-compatible/upstream-http.js';
import { UpstreamStream } from '../openai-compatible/upstream-stream.js';
import type { ChatRequest, Delta, ModelInfo, Provider } from '../provider.js';
import { anthropicStatusError } from './errors.js';
import { toAnthropicRequest } from './request.js';
import { SignedThinking, withRecalled, type SignatureMemory } from '../signed-thinking.js';
import { anthropicEvents } from './stream.js';

export interface AnthropicOptions {
  timeoutMs: number;
  idleMs: number;
  advertise: string[];
  /** Where signed thinking is remembered: this instance's own memory unless a cluster shares one. */
  signatures?: SignatureMemory | undefined;
}

/** Headers a Messages client's request may carry to an Anthropic upstream: its API version and beta features. */
const CLIENT_HEADERS = ['anthropic-version', 'anthropic-beta'] as const;
/** The most of a count_tokens answer read: it is one small object. */
const MAX_COUNT_BODY = 64 * 1024;

/**
 * Anthropic's Messages API (`{baseUrl}/v1/messages`): a Chat Completions turn is encoded into a Messages request
 * (request.ts); a Messages client's own request goes up as it came (model aside). The stream's deltas are in
 * Anthropic's wire (stream.ts). The key goes as `Authorization: Bearer`, as the current SDK sends it.
 */
export function anthropicProvider(upstream: UpstreamConfig, opts: AnthropicOptions): Provider {
  const base = upstream.baseUrl.replace(/\/+$/, '');
  const url = new URL(base);
  const basePath = url.pathname.replace(/\/+$/, '');
  const version = upstream.anthropicVersion ?? ANTHROPIC_VERSION;
  const auth: Record<string, string> = upstream.apiKey ? { authorization: `Bearer ${upstream.apiKey}` } : {};
  const dispatcher = new IdlePool(url.origin, { keepAliveTimeout: 30_000, headersTimeout: opts.timeoutMs, bodyTimeout: opts.idleMs, connect: { timeout: opts.timeoutMs } });
  const signatures = opts.signatures ?? new SignedThinking();
  const remember = (id: string, blocks: Record<string, unknown>[]) => signatures.remember(id, blocks);
  const models = upstreamModels(upstream, opts.advertise, () => listModels());

  function headers(req: ChatRequest, accept: string): Record<string, string> {
    const out = forwarded(req.headers);
    out['anthropic-version'] = version;
    for (const name of CLIENT_HEADERS) {
      const v = req.native?.headers?.[name];
      if (typeof v === 'string') out[name] = v;
    }
    return { ...out, 'content-type': 'application/json', accept, ...auth };
  }

  /** The request body: a Messages client's own, else the turn encoded; `dropped` as request.ts says. */
  function bodyOf(req: ChatRequest): { body: string; dropped: string[] } {
    if (req.native?.wire === 'anthropic.messages') return { body: JSON.stringify({ ...req.native.body, model: req.model, stream: true }), dropped: [] };
    const { body, dropped } = toAnthropicRequest(
      req.body,
      { model: req.model, version, dropParams: upstream.dropParams === true, defaultMaxTokens: upstream.maxTokens ?? ANTHROPIC_DEFAULT_MAX_TOKENS },
      (id) => signatures.get(id),
    );
    return { body: JSON.stringify(body), dropped };
  }

  function open(req: ChatRequest, signal: AbortSignal): UpstreamStream {
    const { body, dropped } = bodyOf(req);
    if (dropped.length > 0) req.onDropped?.(dropped);
    return new UpstreamStream({
      dispatcher,
      origin: url.origin,
      path: `${basePath}/v1/messages`,
      headers: headers(req, 'text/event-stream'),
      body,
      // A Messages client keeps and sends back its own thinking blocks: only a translated turn needs them remembered.
      decoder: anthropicEvents(req.native?.wire === 'anthropic.messages' ? undefined : remember),
      statusError: anthropicStatusError,
      name: upstream.name,
      signal,
    });
  }

  async function listModels(): Promise<ModelInfo[]> {
    const out: ModelInfo[] = [];
    for (const m of await fetchModelList(`${base}/v1/models?limit=1000`, { 'anthropic-version': version, ...auth }, dispatcher, upstream.name)) {
      if (!isObject(m) || typeof m.id !== 'string' || m.id === '') continue;
      const created = typeof m.created_at === 'string' ? Date.parse(m.created_at) : NaN;
      out.push({ id: m.id, owned_by: upstream.name, ...(Number.isFinite(created) ? { created: Math.floor(created / 1000) } : {}), ...(typeof m.display_name === 'string' ? { description: m.display_name } : {}) });
    }
    return out;
  }

  return {
    id: `upstream:${upstream.name}`,
    wires: ['anthropic.messages'],
    models,
    ready: ({ signal }) => probe(`${base}/v1/models`, { 'anthropic-version': version, ...auth }, dispatcher, signal, upstream.name),
    stream(req: ChatRequest, { signal }): AsyncIterable<Delta[]> {
      // A Messages client sends its own thinking blocks back: nothing to recall for it.
      if (req.native?.wire === 'anthropic.messages') return open(req, signal);
      return withRecalled(signatures, req.body.messages, signal, () => open(req, signal));
    },
    async countTokens(req: ChatRequest, { signal }): Promise<number> {
      const source = req.native?.wire === 'anthropic.messages' ? { ...req.native.body } : JSON.parse(bodyOf(req).body);
      const { stream: _s, max_tokens: _m, temperature: _t, top_p: _p, top_k: _k, stop_sequences: _q, metadata: _d, ...rest } = source as Record<string, unknown>;
      let res;
      try {
        res = await request(`${base}/v1/messages/count_tokens`, { method: 'POST', headers: headers(req, 'application/json'), body: JSON.stringify({ ...rest, model: req.model }), dispatcher, signal });
      } catch (err) {
        throw signal.aborted ? signal.reason : upstreamFailure(err, upstream.name, false);
      }
      const text = await readCapped(res.body, MAX_COUNT_BODY);
      if (res.statusCode >= 400) throw anthropicStatusError(res.statusCode, res.headers, text, upstream.name);
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        // not JSON, or cut at MAX_COUNT_BODY: no count in it
      }
      if (!isObject(parsed) || typeof parsed.input_tokens !== 'number') throw new JarvisError('JARVIS_ERR_UPSTREAM_STREAM', `upstream ${upstream.name} sent no input_tokens`);
      return parsed.input_tokens;
    },
    async relay(req) {
      throw new JarvisError('JARVIS_ERR_UNSUPPORTED_VALUE', `The model '${req.model}' is served by an Anthropic upstream, which has no /v1/${req.endpoint}.`, { param: 'model' });
    },
    close: () => dispatcher.close(),
  };
}
