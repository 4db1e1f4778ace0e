import { request, type Dispatcher } from 'undici';
import type { UpstreamConfig } from '../../config.js';
import type { ChatRequest, Delta, ModelInfo, NativeResponsesRequest, Provider, RelayRequest, RelayResponse, StreamOptions } from '../provider.js';
import { IdlePool } from './idle-pool.js';
import { fetchModelList, upstreamModels } from './model-catalog.js';
import { statusError, upstreamFailure } from './upstream-errors.js';
import { CHAT_EVENTS, RESPONSES_EVENTS, type EventDecoder } from './sse-deltas.js';
import { forwarded, probe } from './upstream-http.js';
import { UpstreamStream } from './upstream-stream.js';
import { isObject } from '../../json.js';

export interface OpenAICompatibleOptions {
  /** Time allowed until the upstream's response headers. */
  timeoutMs: number;
  /** Longest silence allowed between body bytes once the stream has begun. */
  idleMs: number;
  /** Models listed in /v1/models for a catch-all ("*") upstream. */
  advertise: string[];
}

/** Any server speaking the OpenAI API: OpenAI, vLLM, Ollama's /v1, llama.cpp server, LM Studio. */
export function openAICompatibleProvider(upstream: UpstreamConfig, opts: OpenAICompatibleOptions): Provider {
  const base = upstream.baseUrl.replace(/\/+$/, '');
  const auth: Record<string, string> = upstream.apiKey ? { authorization: `Bearer ${upstream.apiKey}` } : {};
  const url = new URL(base);
  // One pool of keep-alive connections per upstream, reused across streams.
  const dispatcher = new IdlePool(url.origin, { keepAliveTimeout: 30_000, headersTimeout: opts.timeoutMs, bodyTimeout: opts.idleMs, connect: { timeout: opts.timeoutMs } });
  const target: Target = { base, origin: url.origin, basePath: url.pathname.replace(/\/+$/, ''), auth, dispatcher, name: upstream.name };
  const models = upstreamModels(upstream, opts.advertise, () => listModels(target));

  return {
    id: `upstream:${upstream.name}`,
    wires: upstream.responses === 'native' ? ['openai.chat', 'openai.responses'] : ['openai.chat'],
    models,
    ready: ({ signal }) => probe(`${base}/models`, auth, dispatcher, signal, upstream.name),
    stream: (req, { signal }) => streamChat(req, signal, target),
    ...(upstream.responses === 'native' ? { streamResponses: (req: NativeResponsesRequest, { signal }: StreamOptions) => streamResponses(req, signal, target) } : {}),
    ...(upstream.realtime === 'native' ? { realtime: { url: `${base.replace(/^http/, 'ws')}/realtime`, headers: auth } } : {}),
    relay: (req, { signal }) => relay(req, signal, target),
    close: () => dispatcher.close(),
  };
}

interface Target {
  base: string;
  /** `base` split for undici's dispatch: scheme, host and port; and the path (no trailing slash). */
  origin: string;
  basePath: string;
  auth: Record<string, string>;
  dispatcher: Dispatcher;
  name: string;
}

/** Jarvis's headers last: nothing forwarded can replace the upstream's key or the content type. */
function requestHeaders(target: Target, extra: Record<string, string> | undefined, accept: string): Record<string, string> {
  return { ...forwarded(extra), 'content-type': 'application/json', accept, ...target.auth };
}

/** POST `path` (a relay: the answer's body as undici gives it). */
async function post(target: Target, path: string, body: string, accept: string, extra: Record<string, string> | undefined, signal: AbortSignal): Promise<Dispatcher.ResponseData> {
  try {
    return await request(`${target.base}/${path}`, { method: 'POST', headers: requestHeaders(target, extra, accept), body, dispatcher: target.dispatcher, signal });
  } catch (err) {
    throw signal.aborted ? signal.reason : upstreamFailure(err, target.name, false);
  }
}

function streamChat(req: ChatRequest, signal: AbortSignal, target: Target): AsyncIterable<Delta[]> {
  // Always stream from the upstream, and always ask for usage: non-stream clients are served by the same path,
  // and the client sees usage only when it asked for it. Its other stream_options go up as they are.
  const streamOptions = isObject(req.body.stream_options) ? req.body.stream_options : {};
  const body = JSON.stringify({ ...req.body, model: req.model, stream: true, stream_options: { ...streamOptions, include_usage: true } });
  return streamFrom(target, 'chat/completions', body, req.headers, signal, CHAT_EVENTS);
}

function streamResponses(req: NativeResponsesRequest, signal: AbortSignal, target: Target): AsyncIterable<Delta[]> {
  return streamFrom(target, 'responses', JSON.stringify({ ...req.body, model: req.model, stream: true }), req.headers, signal, RESPONSES_EVENTS);
}

function streamFrom(target: Target, path: string, body: string, headers: Record<string, string> | undefined, signal: AbortSignal, decoder: EventDecoder): AsyncIterable<Delta[]> {
  return new UpstreamStream({
    dispatcher: target.dispatcher,
    origin: target.origin,
    path: `${target.basePath}/${path}`,
    headers: requestHeaders(target, headers, 'text/event-stream'),
    body,
    decoder,
    name: target.name,
    signal,
  });
}

async function relay(req: RelayRequest, signal: AbortSignal, target: Target): Promise<RelayResponse> {
  const body = JSON.stringify({ ...req.body, model: req.model });
  const res = await post(target, req.endpoint, body, req.body.stream === true ? 'text/event-stream' : 'application/json', req.headers, signal);
  if (res.statusCode >= 400) throw await statusError(res, target.name);
  const type = res.headers['content-type'];
  return { status: res.statusCode, headers: { 'content-type': typeof type === 'string' ? type : 'application/json' }, body: res.body };
}

/** GET /models: what the upstream says it serves. */
async function listModels(target: Target): Promise<ModelInfo[]> {
  const out: ModelInfo[] = [];
  for (const m of await fetchModelList(`${target.base}/models`, target.auth, target.dispatcher, target.name)) {
    if (!isObject(m) || typeof m.id !== 'string' || m.id === '') continue;
    out.push({ id: m.id, owned_by: typeof m.owned_by === 'string' ? m.owned_by : target.name, ...(typeof m.created === 'number' ? { created: m.created } : {}) });
  }
  return out;
}
