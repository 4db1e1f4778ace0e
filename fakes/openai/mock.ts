// A real HTTP server that speaks enough of the OpenAI Chat Completions API to drive the gateway in
// integration tests and benchmarks: a fast stream of `tok0 `, `tok1 `... with failure modes on demand. It is
// steered like the faithful fake, by knobs in the text of the last message (knobs.ts): `tokens:20 delay:5`,
// `stall-after:2`, `status:429`..., so a test scripts the upstream through any client and any gateway path.
// Knob words are not counted as prompt tokens. The constructor's `defaults` are what a request gets when its
// prompt does not say, and hold the options only a benchmark sets (a first-token tail).
import * as http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { isKnobWord, lastMessage, mockKnobsIn, type MockKnobs } from './knobs.js';

export type { MockKnobs } from './knobs.js';

/** The constructor's options for every request: the knobs a prompt does not set, and a first-token tail. */
export interface MockDefaults extends MockKnobs {
  /** Every `tailEvery`-th request waits `tailTtftMs` for its first token instead (a heavy first-token tail). */
  tailEvery?: number;
  tailTtftMs?: number;
}

export interface RecordedRequest {
  id: number;
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  // Tests read arbitrary forwarded fields (model, messages, mock, extra params) without narrowing.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any;
  /** The text of the last message: tests tag requests there too. */
  prompt: string;
  /** The knobs the prompt set (without the defaults). */
  knobs: MockKnobs;
  receivedAt: number;
  /** The client's port: requests with the same one came over the same (kept-alive) connection. */
  remotePort: number | undefined;
  tokensSent: number;
  finished: boolean;
  clientClosed: boolean;
  closedAt?: number;
  closed: Promise<void>;
}

export interface MockUpstream {
  url: string;
  port: number;
  /** Exposed so tests can assert on listening state and connection counts after close(). */
  server: http.Server;
  requests: RecordedRequest[];
  /** GET /v1/models requests answered so far (readiness checks, model lists). */
  readonly modelListRequests: number;
  nextRequest(): Promise<RecordedRequest>;
  setDefaults(k: MockDefaults): void;
  close(): Promise<void>;
}

// Large enough that flood mode writes big buffers (few syscalls), small enough that a 10k-token
// stream yields to the event loop often and cannot starve concurrent streams.
const FLOOD_BATCH = 64;
const DONE = 'data: [DONE]\n\n';
const MALFORMED = 'data: {not json\n\n';
const MID_STREAM_ERROR =
  'data: {"error":{"message":"mock mid-stream error","type":"server_error","code":"mock_error"}}\n\n';
const NUMERIC_DEFAULTS = [
  'tokens', 'delayMs', 'ttftMs', 'headersDelayMs', 'failAfter', 'stallAfter', 'errorAfter', 'malformedAfter', 'status', 'endDelayMs', 'retryAfterMs', 'tailEvery', 'tailTtftMs',
] as const;

// Defaults can come from a command line's JSON; anything of the wrong type is dropped so it falls back to the
// built-in default instead of producing NaN timers or never-matching comparisons.
function sanitizeDefaults(raw: unknown): MockDefaults {
  const out: MockDefaults = {};
  if (raw === null || typeof raw !== 'object') return out;
  const r = raw as Record<string, unknown>;
  for (const key of NUMERIC_DEFAULTS) {
    const v = r[key];
    if (typeof v === 'number' && Number.isFinite(v) && v >= 0) out[key] = Math.floor(v);
  }
  if (typeof r.noDone === 'boolean') out.noDone = r.noDone;
  if (typeof r.noRetryAfter === 'boolean') out.noRetryAfter = r.noRetryAfter;
  if (typeof r.text === 'string') out.text = r.text;
  return out;
}

function errorJson(message: string, type: string, code: string | null): string {
  return JSON.stringify({ error: { message, type, param: null, code } });
}

function sendJson(res: http.ServerResponse, status: number, payload: string, extra?: http.OutgoingHttpHeaders): void {
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload), ...extra });
  res.end(payload);
}

function sendStatusError(res: http.ServerResponse, status: number, retryAfterMs?: number, noRetryAfter = false): void {
  const type = status === 429 ? 'rate_limit_error' : status >= 500 ? 'server_error' : 'invalid_request_error';
  const code = status === 429 ? 'rate_limit_exceeded' : `mock_${status}`;
  const retry = noRetryAfter ? {} : retryAfterMs === undefined ? { 'retry-after': '1' } : { 'retry-after-ms': String(retryAfterMs) };
  const extra = status === 429 ? retry : undefined;
  sendJson(res, status, errorJson(`mock upstream status ${status}`, type, code), extra);
}

// Word count keeps prompt_tokens predictable for assertions without pulling in a tokenizer; knobs are steering,
// not words of the prompt.
function countPromptTokens(messages: unknown): number {
  if (!Array.isArray(messages)) return 0;
  let n = 0;
  const words = (s: string) => s.split(/\s+/).filter((w) => w && !isKnobWord(w)).length;
  for (const m of messages) {
    const content = (m as { content?: unknown } | null)?.content;
    if (typeof content === 'string') n += words(content);
    else if (Array.isArray(content)) {
      for (const part of content) {
        const text = (part as { text?: unknown } | null)?.text;
        if (typeof text === 'string') n += words(text);
      }
    }
  }
  return n;
}

function optionalLimit(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 ? Math.floor(v) : Infinity;
}

/** Owns every timer/immediate/listener of one response so a single stop() can guarantee nothing fires later. */
class Scheduler {
  stopped = false;
  private timer: NodeJS.Timeout | undefined;
  private immediate: NodeJS.Immediate | undefined;
  private drainFn: (() => void) | undefined;

  constructor(private readonly res: http.ServerResponse) {}

  /** ms = 0 still defers (setImmediate) so flood mode gives other sockets a turn. */
  after(ms: number, fn: () => void): void {
    if (this.stopped) return;
    if (ms > 0) {
      this.timer = setTimeout(() => { this.timer = undefined; fn(); }, ms);
    } else {
      this.immediate = setImmediate(() => { this.immediate = undefined; fn(); });
    }
  }

  afterDrain(fn: () => void): void {
    if (this.stopped) return;
    this.drainFn = () => { this.drainFn = undefined; fn(); };
    this.res.once('drain', this.drainFn);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.immediate) clearImmediate(this.immediate);
    if (this.drainFn) this.res.off('drain', this.drainFn);
    this.timer = this.immediate = this.drainFn = undefined;
  }
}

export async function startMockUpstream(
  opts: { defaults?: MockDefaults; port?: number; host?: string } = {},
): Promise<MockUpstream> {
  const host = opts.host ?? '127.0.0.1';
  let defaults = sanitizeDefaults(opts.defaults);
  let seq = 0;
  let closing = false;
  let closePromise: Promise<void> | undefined;
  const requests: RecordedRequest[] = [];
  let modelListRequests = 0;
  let taken = 0;
  const waiters: { resolve: (r: RecordedRequest) => void; reject: (e: Error) => void }[] = [];
  const sockets = new Set<Socket>();
  const active = new Set<Scheduler>();

  function record(r: RecordedRequest): void {
    requests.push(r);
    const w = waiters.shift();
    if (w) {
      taken++;
      w.resolve(r);
    }
  }

  function handleChat(req: http.IncomingMessage, res: http.ServerResponse, path: string, body: Record<string, unknown>): void {
    const id = ++seq;
    const prompt = lastMessage(body).text;
    const knobs = mockKnobsIn(prompt);
    const k: MockDefaults = { ...defaults, ...knobs };
    const sched = new Scheduler(res);
    active.add(sched);
    // Set when the mock itself kills the connection (failAfter), so that is not reported as a client abort.
    let serverAborted = false;
    let resolveClosed!: () => void;
    const rec: RecordedRequest = {
      id, method: req.method ?? 'POST', path, headers: req.headers, body, prompt, knobs,
      receivedAt: performance.now(), remotePort: req.socket.remotePort, tokensSent: 0, finished: false, clientClosed: false,
      closed: new Promise<void>((resolve) => { resolveClosed = resolve; }),
    };
    res.on('finish', () => { rec.finished = true; });
    res.on('close', () => {
      sched.stop();
      active.delete(sched);
      rec.closedAt = performance.now();
      rec.finished = res.writableFinished;
      if (!res.writableFinished && !serverAborted && !closing) rec.clientClosed = true;
      resolveClosed();
    });
    record(rec);

    const tokens = k.tokens ?? 5;
    const limit = Math.min(tokens, optionalLimit(body.max_tokens), optionalLimit(body.max_completion_tokens));
    const finishReason = limit < tokens ? 'length' : 'stop';
    const model = typeof body.model === 'string' ? body.model : 'mock-model';
    const created = Math.floor(Date.now() / 1000);
    const promptTokens = countPromptTokens(body.messages);
    const delayMs = k.delayMs ?? 0;
    const ttftMs = k.tailEvery && k.tailTtftMs !== undefined && id % k.tailEvery === 0 ? k.tailTtftMs : (k.ttftMs ?? 0);
    const text = k.text ?? 'tok';
    const hits = (knob: number | undefined, sent: number) => knob !== undefined && knob === sent;

    const respondJson = () => {
      if (sched.stopped) return;
      if (k.failAfter !== undefined && k.failAfter <= limit) {
        serverAborted = true;
        res.socket?.destroy();
        return;
      }
      if (k.stallAfter !== undefined && k.stallAfter <= limit) return;
      if (k.errorAfter !== undefined && k.errorAfter <= limit) {
        sendJson(res, 500, errorJson('mock mid-stream error', 'server_error', 'mock_error'));
        return;
      }
      let content = '';
      for (let i = 0; i < limit; i++) content += `${text}${i} `;
      sendJson(res, 200, JSON.stringify({
        id: `chatcmpl-mock-${id}`, object: 'chat.completion', created, model,
        choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: finishReason }],
        usage: { prompt_tokens: promptTokens, completion_tokens: limit, total_tokens: promptTokens + limit },
      }));
    };

    const startStream = () => {
      // Everything except the token index is constant per request, so build it once; the token text is
      // JSON-escaped once too, and the index is digits, which never need escaping.
      const head = `data: {"id":"chatcmpl-mock-${id}","object":"chat.completion.chunk","created":${created},"model":${JSON.stringify(model)},"choices":[`;
      const tokenPre = `${head}{"index":0,"delta":{"content":${JSON.stringify(text).slice(0, -1)}`;
      const tokenPost = ` "},"finish_reason":null}]}\n\n`;
      const roleChunk = `${head}{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}\n\n`;
      let tail = `${head}{"index":0,"delta":{},"finish_reason":"${finishReason}"}]}\n\n`;
      const streamOptions = body.stream_options as { include_usage?: unknown } | undefined;
      if (streamOptions?.include_usage === true) {
        tail += `${head}],"usage":{"prompt_tokens":${promptTokens},"completion_tokens":${limit},"total_tokens":${promptTokens + limit}}}\n\n`;
      }
      if (!k.noDone) tail += DONE;

      let sent = 0;
      let malformedDone = false;
      const step = (first: boolean) => {
        if (sched.stopped) return;
        let buf = first ? roleChunk : '';
        let batch = 0;
        for (;;) {
          if (hits(k.failAfter, sent)) {
            serverAborted = true;
            sched.stop();
            const socket = res.socket;
            if (buf) res.write(buf);
            // end() flushes what was written before the FIN, so the client really receives k tokens and
            // then sees the body cut short (no chunked terminator), rather than losing buffered tokens.
            socket?.end(() => socket.destroy());
            return;
          }
          if (hits(k.stallAfter, sent)) {
            if (buf) res.write(buf);
            return;
          }
          if (hits(k.errorAfter, sent)) {
            res.end(buf + MID_STREAM_ERROR);
            return;
          }
          if (!malformedDone && hits(k.malformedAfter, sent)) {
            malformedDone = true;
            buf += MALFORMED;
          }
          if (sent >= limit) {
            if (k.endDelayMs) {
              res.write(buf + tail);
              sched.after(k.endDelayMs, () => res.end());
            } else {
              res.end(buf + tail);
            }
            return;
          }
          buf += `${tokenPre}${sent}${tokenPost}`;
          rec.tokensSent = ++sent;
          if (delayMs > 0 || ++batch >= FLOOD_BATCH) break;
        }
        const next = () => sched.after(delayMs, () => step(false));
        // Respect backpressure so a client that stops reading does not make the mock buffer unboundedly.
        if (res.write(buf)) next();
        else sched.afterDrain(next);
      };
      if (ttftMs > 0) sched.after(ttftMs, () => step(true));
      else step(true);
    };

    const start = () => {
      if (sched.stopped) return;
      if (k.status !== undefined) {
        sendStatusError(res, k.status, k.retryAfterMs, k.noRetryAfter);
        return;
      }
      if (body.stream !== true) {
        const wait = ttftMs + delayMs * limit;
        if (wait > 0) sched.after(wait, respondJson);
        else respondJson();
        return;
      }
      res.writeHead(200, {
        'content-type': 'text/event-stream',
        'cache-control': 'no-cache',
        'x-mock-request-id': String(id),
      });
      // Headers go out now, independently of ttftMs, so "time to headers" and "time to first token" differ.
      res.flushHeaders();
      startStream();
    };

    const headersDelayMs = k.headersDelayMs ?? 0;
    if (headersDelayMs > 0) sched.after(headersDelayMs, start);
    else start();
  }

  const server = http.createServer({ noDelay: true }, (req, res) => {
    req.on('error', () => {});
    const path = (req.url ?? '/').split('?', 1)[0] ?? '/';
    if (req.method === 'GET' && path === '/v1/models') {
      modelListRequests++;
      req.resume();
      sendJson(res, 200, '{"object":"list","data":[{"id":"mock-model","object":"model","created":0,"owned_by":"mock"}]}');
      return;
    }
    if (req.method !== 'POST' || path !== '/v1/chat/completions') {
      req.resume();
      sendJson(res, 404, errorJson(`Unknown path: ${req.method} ${path}`, 'invalid_request_error', 'unknown_url'));
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (closing) {
        res.socket?.destroy();
        return;
      }
      let body: unknown;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        body = undefined;
      }
      if (body === null || typeof body !== 'object' || Array.isArray(body)) {
        sendJson(res, 400, errorJson('Request body is not a valid JSON object', 'invalid_request_error', 'invalid_json'));
        return;
      }
      handleChat(req, res, path, body as Record<string, unknown>);
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const urlHost = host.includes(':') ? `[${host}]` : host;

  return {
    url: `http://${urlHost}:${port}/v1`,
    port,
    server,
    requests,
    get modelListRequests() {
      return modelListRequests;
    },
    nextRequest() {
      if (taken < requests.length) return Promise.resolve(requests[taken++] as RecordedRequest);
      if (closing) return Promise.reject(new Error('mock upstream is closed'));
      return new Promise((resolve, reject) => waiters.push({ resolve, reject }));
    },
    setDefaults(k) {
      defaults = sanitizeDefaults(k);
    },
    close() {
      if (closePromise) return closePromise;
      closing = true;
      for (const s of active) s.stop();
      active.clear();
      // A test still awaiting a request would otherwise hang until its timeout with no hint why.
      for (const w of waiters.splice(0)) w.reject(new Error('mock upstream closed before a request arrived'));
      closePromise = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      return closePromise;
    },
  };
}
