import { Agent, errors as undiciErrors, request, type Dispatcher } from 'undici';
import type { UpstreamConfig } from '../../config.js';
import { JarvisError } from '../../errors.js';
import type { ChatRequest, Delta, ModelInfo, Provider } from '../provider.js';
import { parseUpstreamStream } from './sse-deltas.js';

export interface OpenAICompatibleOptions {
  /** Time allowed until the upstream's response headers. */
  timeoutMs: number;
  /** Longest silence allowed between body bytes once the stream has begun. */
  idleMs: number;
  /** Models listed in /v1/models for a catch-all ("*") upstream. */
  advertise: string[];
}

const MAX_ERROR_BODY = 64 * 1024;

/**
 * The only request headers that reach an upstream besides Jarvis's own (content type, accept, the upstream's
 * key): Jarvis's request id and a W3C traceparent, both set by Jarvis (see http/upstream-headers.ts). A header
 * added to ChatRequest.headers by mistake (a client's Authorization, cookies) still stops here.
 */
const FORWARDED_HEADERS = ['x-request-id', 'traceparent'] as const;

function forwarded(headers: Record<string, string> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!headers) return out;
  for (const name of FORWARDED_HEADERS) {
    const value = headers[name];
    if (typeof value === 'string') out[name] = value;
  }
  return out;
}

/** Any server speaking the OpenAI Chat Completions API: OpenAI, vLLM, Ollama's /v1, llama.cpp server, LM Studio. */
export function openAICompatibleProvider(upstream: UpstreamConfig, opts: OpenAICompatibleOptions): Provider {
  // One pooled keep-alive dispatcher per upstream; connections are reused across streams.
  const dispatcher = new Agent({ keepAliveTimeout: 30_000, headersTimeout: opts.timeoutMs, bodyTimeout: opts.idleMs, connect: { timeout: opts.timeoutMs } });
  const base = upstream.baseUrl.replace(/\/+$/, '');
  const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'text/event-stream' };
  if (upstream.apiKey) headers.authorization = `Bearer ${upstream.apiKey}`;

  const models = (): ModelInfo[] => {
    const ids = upstream.models.includes('*') ? [...upstream.models.filter((m) => m !== '*'), ...opts.advertise] : upstream.models;
    return [...new Set(ids)].map((id) => ({ id, owned_by: upstream.name }));
  };

  return {
    id: `upstream:${upstream.name}`,
    models,
    async ready({ signal }) {
      const res = await request(`${base}/models`, { method: 'GET', headers, dispatcher, signal, headersTimeout: 2000, bodyTimeout: 2000 });
      await res.body.dump();
      if (res.statusCode >= 500) throw new Error(`upstream ${upstream.name} answered ${res.statusCode}`);
    },
    stream: (req, { signal }) => streamChat(req, signal, { base, headers, dispatcher, name: upstream.name }),
    close: () => dispatcher.close(),
  };
}

interface Target {
  base: string;
  headers: Record<string, string>;
  dispatcher: Dispatcher;
  name: string;
}

async function* streamChat(req: ChatRequest, signal: AbortSignal, target: Target): AsyncGenerator<Delta[]> {
  // Always stream from the upstream, and always ask for usage: non-stream clients are served by the same path,
  // and usage is reported only when the client asked for it.
  const body = JSON.stringify({ ...req.body, model: req.model, stream: true, stream_options: { include_usage: true } });
  let res: Dispatcher.ResponseData;
  try {
    // Jarvis's own headers last: nothing forwarded can replace the upstream's key or the content type.
    const headers = { ...forwarded(req.headers), ...target.headers };
    res = await request(`${target.base}/chat/completions`, { method: 'POST', headers, body, dispatcher: target.dispatcher, signal });
  } catch (err) {
    throw signal.aborted ? signal.reason : upstreamFailure(err, target.name, false);
  }
  let completed = false;
  try {
    if (res.statusCode >= 400) throw await statusError(res, target.name);
    yield* parseUpstreamStream(res.body, signal);
    completed = true;
  } catch (err) {
    if (signal.aborted) throw signal.reason;
    throw upstreamFailure(err, target.name, true);
  } finally {
    if (completed) {
      // After [DONE] the body is all but over: read its last bytes so the connection goes back to the pool.
      res.body.dump().catch(() => {});
    } else if (!res.body.destroyed) {
      // Leaving early (abort, error, consumer stopped) must close the upstream request so it stops generating.
      res.body.destroy();
    }
  }
}

function upstreamFailure(err: unknown, name: string, started: boolean): JarvisError {
  if (err instanceof JarvisError) return err;
  if (err instanceof undiciErrors.HeadersTimeoutError || err instanceof undiciErrors.ConnectTimeoutError) {
    return new JarvisError('JARVIS_ERR_UPSTREAM_TIMEOUT', `upstream ${name} did not answer in time`, { cause: err });
  }
  if (err instanceof undiciErrors.BodyTimeoutError) {
    return new JarvisError('JARVIS_ERR_UPSTREAM_IDLE', `upstream ${name} stopped sending data`, { cause: err });
  }
  if (started) return new JarvisError('JARVIS_ERR_UPSTREAM_STREAM', `upstream ${name} stream failed: ${(err as Error).message}`, { cause: err });
  return new JarvisError('JARVIS_ERR_UPSTREAM_UNREACHABLE', `upstream ${name} is unreachable: ${(err as Error).message}`, { cause: err });
}

async function statusError(res: Dispatcher.ResponseData, name: string): Promise<JarvisError> {
  let text = '';
  for await (const chunk of res.body) {
    text += chunk;
    if (text.length > MAX_ERROR_BODY) break;
  }
  let upstreamError: { message?: unknown; type?: unknown; code?: unknown; param?: unknown } = {};
  try {
    const parsed = JSON.parse(text) as { error?: typeof upstreamError };
    if (parsed && typeof parsed.error === 'object' && parsed.error) upstreamError = parsed.error;
  } catch {
    // not JSON: the status alone says what happened
  }
  const passThrough = res.statusCode < 500;
  const retryAfter = res.headers['retry-after'];
  const message = typeof upstreamError.message === 'string' ? upstreamError.message : `upstream ${name} answered HTTP ${res.statusCode}`;
  return new JarvisError('JARVIS_ERR_UPSTREAM_STATUS', message, {
    status: passThrough ? res.statusCode : 502,
    ...(passThrough && typeof upstreamError.type === 'string' ? { type: upstreamError.type } : {}),
    ...(passThrough && typeof upstreamError.code === 'string' ? { code: upstreamError.code } : {}),
    ...(typeof upstreamError.param === 'string' ? { param: upstreamError.param } : {}),
    ...(typeof retryAfter === 'string' ? { headers: { 'retry-after': retryAfter } } : {}),
  });
}
