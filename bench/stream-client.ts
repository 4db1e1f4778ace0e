// One streaming request (a chat completion, a Responses stream or an Anthropic Messages stream), timed as a client sees it, and one
// /v1/events subscriber. Used by the load client and the barge-in driver. Every request has a hard time limit, so nothing here can hang a run.
import { performance } from 'node:perf_hooks';
import { Pool, type Dispatcher } from 'undici';
import { CHAT_STREAM, EventStreamCounter, MESSAGES_STREAM, RESPONSES_STREAM, StreamScanner, type WirePatterns } from './sse-scan.js';
import type { Samples } from './stats.js';

export interface HttpTarget {
  /** http://127.0.0.1:PORT (loopback only). */
  origin: string;
  path: string;
  headers: Record<string, string>;
}

export interface StreamRecord {
  /** performance.now() just before the request was handed to undici. */
  sentAt: number;
  /** Time to the first non-empty content delta, ms (NaN if none). */
  ttftMs: number;
  /** Time to the end of the response, ms. */
  totalMs: number;
  status: number;
  tokens: number;
  frames: number;
  finishReason: string | undefined;
  done: boolean;
  error: string | undefined;
}

/** A pool sized for `connections` concurrent streams to one origin; streaming needs one connection each. */
export function streamPool(origin: string, connections: number): Pool {
  return new Pool(origin, {
    connections,
    pipelining: 1,
    keepAliveTimeout: 60_000,
    keepAliveMaxTimeout: 60_000,
    connect: { timeout: 10_000 },
  });
}

/** `workers` loops that each run `step` again and again until `ms` have passed: a closed-loop load. */
export async function closedLoop(workers: number, ms: number, step: () => Promise<unknown>): Promise<void> {
  const until = performance.now() + ms;
  const worker = async () => {
    while (performance.now() < until) await step();
  };
  await Promise.all(Array.from({ length: workers }, worker));
}

/** The API a client speaks: OpenAI Chat Completions, OpenAI's Responses API, or Anthropic's Messages API. */
export type Wire = 'chat' | 'responses' | 'messages';

/** The anthropic-version a Messages client sends (what the current @anthropic-ai/sdk sends). */
export const MESSAGES_VERSION = '2026-10-21';

export function chatBody(extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ model: 'mock-model', messages: [{ role: 'user', content: 'benchmark' }], stream: true, ...extra });
}

/** The same question as chatBody, as a Messages client asks it (max_tokens is required there). */
export function messagesBody(extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ model: 'mock-model', max_tokens: 1024, messages: [{ role: 'user', content: 'benchmark' }], stream: true, ...extra });
}

/** The same question as chatBody, as a Responses client asks it. */
export function responsesBody(extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ model: 'mock-model', input: 'benchmark', stream: true, ...extra });
}

export function streamBody(wire: Wire, extra: Record<string, unknown> = {}): string {
  return wire === 'messages' ? messagesBody(extra) : wire === 'responses' ? responsesBody(extra) : chatBody(extra);
}

/** The field of `wire`'s request that caps the answer's tokens. */
export const maxTokensField = (wire: Wire) => (wire === 'responses' ? 'max_output_tokens' : 'max_tokens');

const SCAN: Record<Wire, { patterns: WirePatterns; end: string }> = {
  chat: { patterns: CHAT_STREAM, end: '[DONE]' },
  responses: { patterns: RESPONSES_STREAM, end: 'response.completed' },
  messages: { patterns: MESSAGES_STREAM, end: 'message_stop' },
};

/**
 * Sends one streaming request and reads it to the end: a chat completion, with `wire: 'responses'` a Responses
 * stream (its response.output_text.delta events are the tokens, response.completed its end), or with
 * `wire: 'messages'` an Anthropic Messages stream (its text_delta events are the tokens, message_stop its end). `gaps` (optional) receives the
 * inter-token gaps in ms: tokens that arrive in one network chunk are 0 ms apart, as the client really sees them.
 */
export async function runChatStream(
  pool: Dispatcher,
  target: HttpTarget,
  body: string,
  opts: { timeoutMs: number; gaps?: Samples | undefined; headers?: Record<string, string>; wire?: Wire },
): Promise<StreamRecord> {
  const scan = SCAN[opts.wire ?? 'chat'];
  const scanner = new StreamScanner(scan.patterns);
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new Error(`stream timed out after ${opts.timeoutMs} ms`)), opts.timeoutMs);
  const sentAt = performance.now();
  let firstAt = NaN;
  let lastAt = NaN;
  let status = 0;
  let error: string | undefined;
  try {
    const res = await pool.request({
      path: target.path,
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream', ...target.headers, ...opts.headers },
      body,
      signal: controller.signal,
    });
    status = res.statusCode;
    if (status !== 200) {
      const text = await res.body.text();
      error = `HTTP ${status}: ${text.slice(0, 160).replace(/\s+/g, ' ')}`;
    } else {
      await new Promise<void>((resolve, reject) => {
        res.body.on('data', (chunk: Buffer) => {
          const t = performance.now();
          const k = scanner.feed(chunk);
          if (k === 0) return;
          if (Number.isNaN(firstAt)) firstAt = t;
          else opts.gaps?.push(t - lastAt);
          for (let i = 1; i < k; i++) opts.gaps?.push(0);
          lastAt = t;
        });
        res.body.once('end', resolve);
        res.body.once('error', reject);
      });
      if (scanner.error) error = 'error event in stream';
      else if (!scanner.done) error = `stream ended without ${scan.end}`;
    }
  } catch (err) {
    error = err instanceof Error ? err.message : String(err);
  } finally {
    clearTimeout(timer);
  }
  return {
    sentAt,
    ttftMs: firstAt - sentAt,
    totalMs: performance.now() - sentAt,
    status,
    tokens: scanner.tokens,
    frames: scanner.frames,
    finishReason: scanner.finishReason,
    done: scanner.done,
    error,
  };
}

export interface Subscription {
  counter: EventStreamCounter;
  /** Resolves once `: connected` arrived (rejects if the subscription fails first). */
  connected: Promise<void>;
  /** Resolves when the response has ended, for whatever reason. */
  closed: Promise<void>;
  /** Time of the last chunk received (performance.now()). */
  lastChunkAt: number;
  close(): void;
}

/** Subscribes to `/v1/events` over SSE. `onChunk` (optional) sees every raw chunk, for a full parse. */
export function subscribeEvents(pool: Dispatcher, target: HttpTarget, onChunk?: (chunk: Buffer) => void): Subscription {
  const counter = new EventStreamCounter();
  const controller = new AbortController();
  let resolveConnected!: () => void;
  let rejectConnected!: (e: unknown) => void;
  const connected = new Promise<void>((resolve, reject) => {
    resolveConnected = resolve;
    rejectConnected = reject;
  });
  const sub: Subscription = {
    counter,
    connected,
    lastChunkAt: NaN,
    closed: Promise.resolve(),
    close: () => controller.abort(),
  };
  sub.closed = (async () => {
    try {
      const res = await pool.request({ path: target.path, method: 'GET', headers: { accept: 'text/event-stream', ...target.headers }, signal: controller.signal });
      if (res.statusCode !== 200) {
        const text = await res.body.text();
        throw new Error(`events subscription: HTTP ${res.statusCode}: ${text.slice(0, 160)}`);
      }
      await new Promise<void>((resolve, reject) => {
        res.body.on('data', (chunk: Buffer) => {
          sub.lastChunkAt = performance.now();
          counter.feed(chunk);
          onChunk?.(chunk);
          if (counter.connected) resolveConnected();
        });
        res.body.once('end', resolve);
        res.body.once('error', reject);
      });
    } catch (err) {
      rejectConnected(err);
      if (!controller.signal.aborted) throw err;
    }
  })();
  // The caller awaits `connected`; a rejection it already saw must not also surface as unhandled here.
  connected.catch(() => {});
  return sub;
}
