import type { UpstreamConfig } from '../../config.js';
import { JarvisError } from '../../errors.js';
import { isObject } from '../../json.js';
import { IdlePool } from '../openai-compatible/idle-pool.js';
import { fetchModelPage, upstreamModels } from '../openai-compatible/model-catalog.js';
import { forwarded, probe } from '../openai-compatible/upstream-http.js';
import { UpstreamStream } from '../openai-compatible/upstream-stream.js';
import type { ChatRequest, Delta, ModelInfo, Provider } from '../provider.js';
import { GEMINI_SIGNATURE_PREFIX, SignedThinking, withRecalled, type SignatureMemory } from '../signed-thinking.js';
import { geminiStatusError } from './errors.js';
import { toGeminiRequest } from './request.js';
import { geminiEvents } from './stream.js';

export interface GeminiOptions {
  timeoutMs: number;
  idleMs: number;
  advertise: string[];
  /** Where thought signatures are remembered: this instance's own memory unless a cluster shares one. */
  signatures?: SignatureMemory | undefined;
}

/** How many pages of GET /models are read (Google pages by 50 unless asked for more). */
const MAX_MODEL_PAGES = 10;

/** The path of a model's method: `models/{model}` (a name Google gives with its `models/` prefix taken as is). */
function modelPath(model: string, method: string): string {
  const name = model.startsWith('models/') ? model.slice('models/'.length) : model;
  return `models/${encodeURIComponent(name)}:${method}`;
}

/**
 * Google's Gemini API (`{baseUrl}/models/{model}:streamGenerateContent?alt=sse`, baseUrl ending with the API
 * version as Google's SDK builds it): a turn is encoded into a GenerateContentRequest (request.ts), the stream's
 * chunks decoded into parts (stream.ts). The key goes as `x-goog-api-key`, never in the URL (which is logged).
 */
export function geminiProvider(upstream: UpstreamConfig, opts: GeminiOptions): Provider {
  const base = upstream.baseUrl.replace(/\/+$/, '');
  const url = new URL(base);
  const basePath = url.pathname.replace(/\/+$/, '');
  const auth: Record<string, string> = upstream.apiKey ? { 'x-goog-api-key': upstream.apiKey } : {};
  const dispatcher = new IdlePool(url.origin, { keepAliveTimeout: 30_000, headersTimeout: opts.timeoutMs, bodyTimeout: opts.idleMs, connect: { timeout: opts.timeoutMs } });
  const signatures = opts.signatures ?? new SignedThinking();
  const remember = (id: string, signature: string) => signatures.remember(id, [{ type: 'thinking', thinking: '', signature: GEMINI_SIGNATURE_PREFIX + signature }]);
  const signatureOf = (id: string): string | undefined => {
    const s = signatures.get(id)?.[0]?.signature;
    return typeof s === 'string' ? s.slice(GEMINI_SIGNATURE_PREFIX.length) : undefined;
  };
  const models = upstreamModels(upstream, opts.advertise, () => listModels());

  async function listModels(): Promise<ModelInfo[]> {
    const out: ModelInfo[] = [];
    let token: string | undefined;
    for (let page = 0; page < MAX_MODEL_PAGES; page++) {
      const query = `pageSize=1000${token ? `&pageToken=${encodeURIComponent(token)}` : ''}`;
      const list = await fetchModelPage(`${base}/models?${query}`, auth, dispatcher, upstream.name);
      if (!Array.isArray(list?.models)) throw new Error(`upstream ${upstream.name} sent no model list`);
      for (const m of list.models) {
        if (!isObject(m) || typeof m.name !== 'string') continue;
        const id = m.name.startsWith('models/') ? m.name.slice('models/'.length) : m.name;
        if (id !== '') out.push({ id, owned_by: upstream.name, ...(typeof m.displayName === 'string' ? { description: m.displayName } : {}) });
      }
      token = typeof list.nextPageToken === 'string' && list.nextPageToken !== '' ? list.nextPageToken : undefined;
      if (!token) break;
    }
    return out;
  }

  function open(req: ChatRequest, signal: AbortSignal): UpstreamStream {
    const body = toGeminiRequest(req.body, { model: req.model, signatureOf });
    return new UpstreamStream({
      dispatcher,
      origin: url.origin,
      path: `${basePath}/${modelPath(req.model, 'streamGenerateContent')}?alt=sse`,
      headers: { ...forwarded(req.headers), 'content-type': 'application/json', accept: 'text/event-stream', ...auth },
      body: JSON.stringify(body),
      decoder: geminiEvents(remember),
      statusError: geminiStatusError,
      name: upstream.name,
      signal,
    });
  }

  return {
    id: `upstream:${upstream.name}`,
    wires: ['gemini'],
    models,
    ready: ({ signal }) => probe(`${base}/models?pageSize=1`, auth, dispatcher, signal, upstream.name),
    stream(req: ChatRequest, { signal }): AsyncIterable<Delta[]> {
      return withRecalled(signatures, req.body.messages, signal, () => open(req, signal));
    },
    async relay(req) {
      throw new JarvisError('JARVIS_ERR_UNSUPPORTED_VALUE', `The model '${req.model}' is served by a Gemini upstream, which Jarvis does not relay /v1/${req.endpoint} to.`, { param: 'model' });
    },
    close: () => dispatcher.close(),
  };
}
