// Helpers for the access tests (keys, scopes, quotas, tenancy, CORS): authenticated requests and event
// subscriptions, WebSocket upgrade outcomes, metrics read with an admin key, and Jarvis in this process on the
// shared Redis (cluster mode), several of them on one key prefix.
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import WebSocket from 'ws';
import type { Config, DeepPartial } from '../../src/config.js';
import type { ChatEvent } from '../../src/events/types.js';
import { startJarvis, type TestJarvis } from './jarvis.js';
import { forEachSseBlock, parseSseBlock } from './sse.js';

export const REDIS_URL = 'redis://127.0.0.1:6379';
export const as = (key: string) => ({ authorization: `Bearer ${key}` });
export const testPrefix = () => `jt:${randomBytes(5).toString('hex')}:`;

/** Like startJarvis, in cluster mode on `redisUrl` with `prefix`: two of them on one prefix are two instances. */
export function startClusteredJarvis(prefix: string, overrides: DeepPartial<Config> = {}, redisUrl = REDIS_URL): Promise<TestJarvis> {
  return startJarvis({ ...overrides, redis: { url: redisUrl, prefix, optional: true, sessionTtlMs: 10_000, ...overrides.redis } });
}

/** Deletes every key under a test prefix (SCAN, never KEYS). */
export async function deletePrefix(prefix: string, redisUrl = REDIS_URL): Promise<void> {
  if (!prefix.startsWith('jt:')) throw new Error(`refusing to delete keys outside a test prefix: ${prefix}`);
  const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null });
  redis.on('error', () => {});
  try {
    await redis.connect();
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
      cursor = next;
      if (keys.length) await redis.del(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}

/** Polls until `check` returns a value; fails naming `what` at the deadline (a guard, not a bound). */
export async function until<T>(check: () => Promise<T | undefined>, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 15));
  }
}

/** A Prometheus sample, read from /metrics with `headers` (an admin key); 0 when absent. */
export async function metric(url: string, headers: Record<string, string>, sample: string): Promise<number> {
  const res = await fetch(`${url}/metrics`, { headers });
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
  const line = (await res.text()).split('\n').find((l) => l.split(' ')[0] === sample);
  return line === undefined ? 0 : Number(line.split(' ')[1]);
}

/** Waits until /healthz says no stream and no quota slot is held. */
export async function waitForNoSlots(url: string): Promise<void> {
  await until(async () => {
    const h = (await (await fetch(`${url}/healthz`)).json()) as { streams: number; quota_slots: number };
    return h.streams === 0 && h.quota_slots === 0 ? true : undefined;
  }, `${url}: streams and quota slots back to 0`);
}

/** The outcome of a WebSocket upgrade to `path`: 101 when accepted (then closed), else the refusal's status and body. */
export function upgrade(url: string, path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  const ws = new WebSocket(`${url.replace(/^http/, 'ws')}${path}`, { headers });
  ws.on('error', () => {});
  return new Promise((resolve) => {
    ws.once('open', () => {
      ws.close();
      resolve({ status: 101, body: '' });
    });
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, body });
        ws.terminate();
      });
    });
  });
}

/** An authenticated /v1/events SSE subscription, parsed as bytes arrive. */
export class Events {
  readonly events: ChatEvent[] = [];
  readonly #controller = new AbortController();
  #done: Promise<void> = Promise.resolve();
  #waiters: (() => boolean)[] = [];
  #ended = false;

  static async open(url: string, headers: Record<string, string>, query = ''): Promise<Events> {
    const sub = new Events();
    const res = await fetch(`${url}/v1/events${query ? `?${query}` : ''}`, { headers, signal: sub.#controller.signal });
    if (res.status !== 200) throw new Error(`GET /v1/events answered ${res.status}: ${await res.text()}`);
    let connected!: () => void;
    const isConnected = new Promise<void>((resolve) => (connected = resolve));
    sub.#done = (async () => {
      try {
        await forEachSseBlock(
          res.body!,
          (block) => {
            const { comments, event, data } = parseSseBlock(block);
            if (comments.includes(': connected')) connected();
            if (data && event?.startsWith('chat.')) sub.events.push(JSON.parse(data) as ChatEvent);
          },
          () => sub.#wake(),
        );
      } catch {
        // aborted by close()
      } finally {
        sub.#ended = true;
        sub.#wake();
      }
    })();
    // ": connected" is written in the same tick the subscriber joins the bus.
    await isConnected;
    return sub;
  }

  #wake(): void {
    this.#waiters = this.#waiters.filter((check) => !check());
  }

  /** Resolves once `pred` holds; rejects if the stream ends first or at the deadline. */
  until(pred: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`events: no ${what} within ${timeoutMs} ms (have ${this.events.length})`)), timeoutMs);
      const check = () => {
        if (pred()) resolve();
        else if (this.#ended) reject(new Error(`events ended before ${what}`));
        else return false;
        clearTimeout(timer);
        return true;
      };
      if (!check()) this.#waiters.push(check);
    });
  }

  /** Waits for the final event (end, cancelled, error) of `requestId`. */
  untilEnd(requestId: string): Promise<void> {
    return this.until(() => this.events.some((e) => e.request_id === requestId && ['chat.end', 'chat.cancelled', 'chat.error'].includes(e.type)), `end of ${requestId}`);
  }

  async close(): Promise<void> {
    this.#controller.abort();
    await this.#done;
  }
}
