// Small HTTP helpers shared by the integration tests: raw requests to /v1/chat/completions, SSE payload
// parsing, and polling /healthz until the server has released everything a stream held.
import { createServer } from 'node:net';

export const user = (content: string) => [{ role: 'user' as const, content }];

export async function postChat(url: string, body: unknown, init: { headers?: Record<string, string>; signal?: AbortSignal } = {}): Promise<Response> {
  return fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...init.headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    ...(init.signal ? { signal: init.signal } : {}),
  });
}

/** The chunk shape tests read; loose on purpose, since a test asserts on exactly the fields it cares about. */
export interface Chunk {
  id?: string;
  object?: string;
  model?: string;
  choices: { index: number; delta: { role?: string; content?: string }; finish_reason: string | null }[];
  usage?: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
  error?: { message: string; type: string; param: string | null; code: string | null };
}

/** SSE `data:` payloads as JSON, with the final `[DONE]` checked and removed. */
export function chunksOf(data: string[]): Chunk[] {
  if (data.at(-1) !== '[DONE]') throw new Error(`stream did not end with [DONE]: ${JSON.stringify(data.slice(-3))}`);
  return data.slice(0, -1).map((d) => JSON.parse(d) as Chunk);
}

export const textOf = (chunks: Chunk[]) => chunks.map((c) => c.choices[0]?.delta.content ?? '').join('');

/** GET /healthz. */
export interface Health {
  status: string;
  uptime_s: number;
  streams: number;
  sessions: number;
  buffers: number;
  timers: number;
  subscribers: number;
  redis: { state: 'up' | 'down' | 'disabled'; instance?: string };
}

/** Polls /healthz until every per-stream resource is released; fails with the last counts after the deadline. */
export async function waitForIdle(url: string, timeoutMs = 5000, opts: { subscribers?: boolean } = {}): Promise<Health> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const health = (await (await fetch(`${url}/healthz`)).json()) as Health;
    const idle = health.streams === 0 && health.sessions === 0 && health.buffers === 0 && health.timers === 0;
    if (idle && (!opts.subscribers || health.subscribers === 0)) return health;
    if (Date.now() > deadline) throw new Error(`server not idle within ${timeoutMs} ms: ${JSON.stringify(health)}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A loopback port nothing listens on: bound once by us, then released. */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * Rejects with a message naming what never happened, instead of the test hanging until its timeout. A guard
 * against a hang, not a performance bound: `ms` is far longer than the wait ever is when things work.
 */
export function orFail<T>(promise: Promise<T>, what: string, ms = 10_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const fail = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms)));
  return Promise.race([promise, fail]).finally(() => clearTimeout(timer));
}
