// Several Jarvis *processes* sharing one Redis, for the cluster tests: each is `node --import tsx src/main.ts`
// on its own loopback port with its own log file, its own instance id and the test's own key prefix. Helpers
// read and wait on each instance's log (parsed logfmt, with timestamps, so order across files can be checked),
// stream chats and events over real HTTP, kill instances (SIGTERM, SIGKILL) and delete the test's Redis keys.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { Agent, fetch, type Response } from 'undici';
import type { ChatEvent as JarvisEvent } from '../../src/events/types.js';
import type { Health } from './chat.js';
import { freePort } from './redis-server.js';
import { forEachSseBlock, parseSseBlock } from './sse.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const uid = () => randomBytes(5).toString('hex');

/** A fresh key prefix per test file (or test): `jt:<random>:`, so runs never see each other's keys. */
export const testPrefix = () => `jt:${uid()}:`;
export const sessionId = (tag = 's') => `${tag}-${uid()}`;

// ---------------------------------------------------------------------------------------------------------------
// Logs

export interface LogLine {
  /** Epoch milliseconds from the line's ISO timestamp. */
  ts: number;
  level: string;
  event: string;
  fields: Record<string, string>;
  /** Position in its file: the order that instance wrote it. */
  index: number;
  raw: string;
}

/** Parses Jarvis's logfmt (`<iso time> <level> <event> key=value key="quoted"`); skips incomplete lines. */
export function parseLog(text: string): LogLine[] {
  const out: LogLine[] = [];
  const complete = text.slice(0, text.lastIndexOf('\n') + 1);
  for (const raw of complete.split('\n')) {
    if (!raw) continue;
    const m = /^(\S+) (\S+) (\S+)(.*)$/.exec(raw);
    if (!m) continue;
    const fields: Record<string, string> = {};
    const rest = m[4]!;
    const re = / ([\w.]+)=("(?:[^"\\]|\\.)*"|\S*)/g;
    for (let f = re.exec(rest); f; f = re.exec(rest)) {
      const v = f[2]!;
      fields[f[1]!] = v.startsWith('"') ? (JSON.parse(v) as string) : v;
    }
    out.push({ ts: Date.parse(m[1]!), level: m[2]!, event: m[3]!, fields, index: out.length, raw });
  }
  return out;
}

export interface LogQuery {
  event: string;
  /** Every given field must equal. */
  fields?: Record<string, string>;
}

export function findLog(lines: LogLine[], q: LogQuery): LogLine | undefined {
  return lines.find((l) => l.event === q.event && Object.entries(q.fields ?? {}).every(([k, v]) => l.fields[k] === v));
}

export function mustFindLog(lines: LogLine[], q: LogQuery, where = 'log'): LogLine {
  const line = findLog(lines, q);
  if (!line) throw new Error(`${where}: no ${q.event} ${JSON.stringify(q.fields ?? {})} in:\n${lines.map((l) => l.raw).join('\n').slice(-4000)}`);
  return line;
}

// ---------------------------------------------------------------------------------------------------------------
// Polling

/** Polls `check` until it returns a value other than undefined; fails with `what` (and the last state) at the deadline. */
export async function pollUntil<T>(check: () => Promise<T | undefined> | T | undefined, what: string, timeoutMs = 10_000, intervalMs = 20): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Instances


export interface JarvisProcess {
  readonly id: string;
  /** http://127.0.0.1:PORT */
  readonly url: string;
  readonly port: number;
  readonly logFile: string;
  readonly child: ChildProcess;
  /** undici dispatcher for this instance; destroyed before it is stopped. */
  readonly agent: Agent;
  /** Resolves with the exit code and signal once the process has exited (its log may not be captured yet: see kill). */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly alive: boolean;
  stderr(): string;
  logText(): Promise<string>;
  logs(): Promise<LogLine[]>;
  /** Polls the log until `find` returns a line (or fails after `timeoutMs`). */
  waitForLog(q: LogQuery | ((lines: LogLine[]) => LogLine | undefined), timeoutMs?: number): Promise<LogLine>;
  health(): Promise<Health>;
  waitForHealth(pred: (h: Health) => boolean, what: string, timeoutMs?: number): Promise<Health>;
  metrics(): Promise<string>;
  /** SIGTERM (graceful; falls back to SIGKILL after `graceMs`) or SIGKILL; resolves once exited and its log captured. */
  kill(signal?: 'SIGTERM' | 'SIGKILL', graceMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export interface SpawnOptions {
  id: string;
  redisUrl?: string | undefined;
  prefix?: string | undefined;
  /** Extra environment, on top of the test defaults (simulator pace, log file, port, ...). */
  env?: Record<string, string>;
}

/** Every process still alive when the test worker exits is killed: no test leaves a Jarvis behind. */
const running = new Set<ChildProcess>();
let exitHook = false;
function track(child: ChildProcess): void {
  if (!exitHook) {
    exitHook = true;
    process.once('exit', () => {
      for (const c of running) c.kill('SIGKILL');
    });
  }
  running.add(child);
  child.once('exit', () => running.delete(child));
}

/** Spawns one Jarvis process and returns at once (it may still be starting, or about to exit). */
export async function spawnJarvis(opts: SpawnOptions): Promise<JarvisProcess> {
  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), `jarvis-cluster-${opts.id}-`));
  const logFile = join(dir, 'system.log');
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? tmpdir(),
    HOST: '127.0.0.1',
    PORT: String(port),
    JARVIS_INSTANCE_ID: opts.id,
    JARVIS_LOG_FILE: logFile,
    JARVIS_LOG_FORMAT: 'logfmt',
    JARVIS_LOG_LEVEL: 'info',
    JARVIS_SIM_TOKENS_PER_SEC: '200',
    JARVIS_SIM_TTFT_MS: '10',
    JARVIS_SHUTDOWN_GRACE_MS: '1000',
    JARVIS_DATA_DIR: dir,
    ...(opts.redisUrl ? { REDIS_URL: opts.redisUrl } : {}),
    ...(opts.prefix ? { JARVIS_REDIS_PREFIX: opts.prefix } : {}),
    ...opts.env,
  };
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], { cwd: ROOT, env, stdio: ['ignore', 'ignore', 'pipe'] });
  track(child);
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  child.once('error', () => {});
  let alive = true;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      alive = false;
      resolve({ code, signal });
    });
  });
  const url = `http://127.0.0.1:${port}`;
  const agent = new Agent({ keepAliveTimeout: 1000 });
  let lastText = '';
  let removed = false;
  const logText = async () => {
    // After exit the log is read once more, kept, and its directory removed: a test can still read it.
    if (!removed) lastText = await readFile(logFile, 'utf8').catch(() => lastText);
    return lastText;
  };
  const gone = exited.then(async () => {
    await logText();
    removed = true;
    await rm(dir, { recursive: true, force: true, maxRetries: 3 }).catch(() => {});
  });
  const logs = async () => parseLog(await logText());
  const get = async (path: string) => {
    const res = await fetch(`${url}${path}`, { dispatcher: agent });
    return res;
  };
  const proc: JarvisProcess = {
    id: opts.id,
    url,
    port,
    logFile,
    child,
    agent,
    exited,
    get alive() {
      return alive;
    },
    stderr: () => stderr,
    logText,
    logs,
    async waitForLog(q, timeoutMs = 10_000) {
      const find = typeof q === 'function' ? q : (lines: LogLine[]) => findLog(lines, q);
      const what = typeof q === 'function' ? 'log condition' : `${q.event} ${JSON.stringify(q.fields ?? {})}`;
      try {
        return await pollUntil(async () => find(await logs()), `${opts.id}: ${what}`, timeoutMs);
      } catch (err) {
        throw new Error(`${(err as Error).message}; log so far:\n${(await logText()).slice(-4000)}`);
      }
    },
    async health() {
      const res = await get('/healthz');
      if (res.status !== 200) throw new Error(`${opts.id} /healthz answered ${res.status}`);
      return (await res.json()) as Health;
    },
    async waitForHealth(pred, what, timeoutMs = 10_000) {
      let last: Health | undefined;
      try {
        return await pollUntil(async () => {
          last = await proc.health();
          return pred(last) ? last : undefined;
        }, `${opts.id}: ${what}`, timeoutMs);
      } catch (err) {
        throw new Error(`${(err as Error).message}; last /healthz: ${JSON.stringify(last)}`);
      }
    },
    async metrics() {
      const res = await get('/metrics');
      return res.text();
    },
    async kill(signal = 'SIGTERM', graceMs = 10_000) {
      if (signal === 'SIGKILL') {
        // Killed first: the test's own connections must not close (and cancel streams) before the process dies.
        if (alive) child.kill('SIGKILL');
        await gone;
        await agent.destroy().catch(() => {});
        return exited;
      }
      // Our idle keep-alive connections would otherwise hold the graceful close up.
      await agent.destroy().catch(() => {});
      if (alive) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
        await gone;
        clearTimeout(timer);
      }
      await gone;
      return exited;
    },
  };
  return proc;
}

/** Waits until the process answers /healthz and `pred` holds (default: Redis linked); fails if it exits first. */
export async function waitReady(proc: JarvisProcess, pred: (h: Health) => boolean = (h) => h.redis.state === 'up', timeoutMs = 30_000): Promise<Health> {
  const deadline = Date.now() + timeoutMs;
  let last: Health | undefined;
  for (;;) {
    if (!proc.alive) throw new Error(`${proc.id} exited during start: ${JSON.stringify(await proc.exited)}; stderr: ${proc.stderr()}`);
    try {
      last = await proc.health();
      if (pred(last)) return last;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`${proc.id} not ready within ${timeoutMs} ms; last /healthz: ${JSON.stringify(last)}; stderr: ${proc.stderr()}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export async function startJarvisProcess(opts: SpawnOptions, ready?: (h: Health) => boolean): Promise<JarvisProcess> {
  const proc = await spawnJarvis(opts);
  try {
    await waitReady(proc, ready);
  } catch (err) {
    await proc.kill('SIGKILL');
    throw err;
  }
  return proc;
}

export interface TestCluster {
  readonly prefix: string;
  readonly redisUrl: string;
  readonly instances: JarvisProcess[];
  /** Starts one more instance into the cluster (same Redis and prefix). */
  add(id: string, env?: Record<string, string>): Promise<JarvisProcess>;
  /** Stops every instance (SIGTERM, SIGKILL after a grace), then deletes the prefix's keys. */
  stop(): Promise<void>;
}

/** Starts `n` instances `i1..in` in parallel on one Redis and prefix; each is ready once its /healthz shows Redis up. */
export async function startCluster(opts: { n: number; redisUrl: string; prefix?: string; env?: Record<string, string>; envFor?: (i: number) => Record<string, string> }): Promise<TestCluster> {
  const prefix = opts.prefix ?? testPrefix();
  const instances: JarvisProcess[] = [];
  const add = async (id: string, env?: Record<string, string>) => {
    const p = await startJarvisProcess({ id, redisUrl: opts.redisUrl, prefix, env: { ...opts.env, ...env } });
    instances.push(p);
    return p;
  };
  const cluster: TestCluster = {
    prefix,
    redisUrl: opts.redisUrl,
    instances,
    add,
    async stop() {
      await Promise.all(instances.map((p) => p.kill('SIGTERM', 5000)));
      await deleteKeys(opts.redisUrl, prefix).catch(() => {});
    },
  };
  const started = await Promise.allSettled(Array.from({ length: opts.n }, (_, i) => add(`i${i + 1}`, opts.envFor?.(i + 1))));
  const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) {
    await cluster.stop();
    throw failed.reason as Error;
  }
  // In id order, whatever order they became ready in.
  instances.sort((a, b) => Number(a.id.slice(1)) - Number(b.id.slice(1)));
  return cluster;
}

// ---------------------------------------------------------------------------------------------------------------
// Redis keys

/** Deletes every key under `prefix` (SCAN, never KEYS). Resolves with how many were deleted. */
export async function deleteKeys(redisUrl: string, prefix: string): Promise<number> {
  if (!prefix.startsWith('jt:')) throw new Error(`refusing to delete keys outside a test prefix: ${prefix}`);
  const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null });
  redis.on('error', () => {});
  try {
    await redis.connect();
    let deleted = 0;
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
      cursor = next;
      if (keys.length) deleted += await redis.del(...keys);
    } while (cursor !== '0');
    return deleted;
  } finally {
    redis.disconnect();
  }
}

/** Who a session's record in Redis says holds it: `instance|request id` for each holder (sessions/redis-scripts.ts). */
export async function sessionHolders(redis: Redis, prefix: string, session: string): Promise<string[]> {
  const fields = await redis.hgetall(`${prefix}session:{-/${session}}`);
  return Object.entries(fields)
    .filter(([f]) => f.startsWith('h:'))
    .map(([f, v]) => `${v.split('|')[0]}|${f.slice(2)}`)
    .sort();
}

/** Keys under `prefix` matching `pattern` (after the prefix). */
export async function keysOf(redis: Redis, prefix: string, pattern = '*'): Promise<string[]> {
  const out: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}${pattern}`, 'COUNT', 500);
    cursor = next;
    out.push(...keys);
  } while (cursor !== '0');
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Chat over SSE

/** Arrival order across every client in the test process: "X arrived before Y" without reading a clock. */
let arrivals = 0;

export interface Chunk {
  /** Absent on an in-stream error line (`data: {"error":{...}}`). */
  choices?: { index: number; delta: { role?: string; content?: string }; finish_reason: string | null }[];
  error?: { code: string | null; type: string; message: string };
}

export interface ChatResult {
  status: number;
  requestId: string;
  /** Content deltas concatenated. */
  text: string;
  chunks: Chunk[];
  finishReason: string | null;
  /** The stream ended with `data: [DONE]`. */
  done: boolean;
  /** Arrival order of the last frame. */
  endOrder: number;
  /** An error answered with a status instead of a stream. */
  error?: { code: string | null; type: string; message: string };
}

export const user = (content: string) => [{ role: 'user' as const, content }];

/** A streaming chat completion read frame by frame; `firstToken` resolves with the first content delta. */
export class StreamingChat {
  readonly result: Promise<ChatResult>;
  readonly firstToken: Promise<void>;
  /** Resolves once the response headers have arrived. */
  readonly opened: Promise<{ status: number; requestId: string }>;
  readonly controller = new AbortController();
  firstTokenOrder: number | undefined;
  /** Content deltas received so far. */
  tokens = 0;
  #ended = false;
  #waiters: (() => boolean)[] = [];
  #onFirst!: () => void;
  #noFirst!: (err: Error) => void;

  constructor(
    readonly base: string,
    readonly body: Record<string, unknown>,
    readonly headers: Record<string, string> = {},
    readonly dispatcher?: Agent,
  ) {
    this.firstToken = new Promise<void>((resolve, reject) => {
      this.#onFirst = resolve;
      this.#noFirst = reject;
    });
    this.firstToken.catch(() => {});
    let opened!: (v: { status: number; requestId: string }) => void;
    let notOpened!: (err: unknown) => void;
    this.opened = new Promise((resolve, reject) => {
      opened = resolve;
      notOpened = reject;
    });
    this.opened.catch(() => {});
    this.result = this.#run(opened).finally(() => {
      this.#ended = true;
      this.#wake();
    });
    this.result = this.result.then(
      (r) => {
        this.#noFirst(new Error(`stream ended (${r.status} ${r.finishReason ?? r.error?.code ?? ''}) before its first token`));
        return r;
      },
      (err: unknown) => {
        notOpened(err);
        this.#noFirst(err as Error);
        throw err;
      },
    );
    this.result.catch(() => {});
  }

  async #run(opened: (v: { status: number; requestId: string }) => void): Promise<ChatResult> {
    const res: Response = await fetch(`${this.base}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...this.headers },
      body: JSON.stringify({ model: 'jarvis-sim', stream: true, ...this.body }),
      signal: this.controller.signal,
      ...(this.dispatcher ? { dispatcher: this.dispatcher } : {}),
    });
    const requestId = res.headers.get('x-request-id') ?? '';
    opened({ status: res.status, requestId });
    const result: ChatResult = { status: res.status, requestId, text: '', chunks: [], finishReason: null, done: false, endOrder: 0 };
    if (!res.headers.get('content-type')?.startsWith('text/event-stream')) {
      const json = (await res.json()) as { error?: ChatResult['error'] };
      if (json.error) result.error = json.error;
      result.endOrder = ++arrivals;
      return result;
    }
    const onBlock = (block: string) => {
      const { data } = parseSseBlock(block);
      if (data === undefined) return;
      result.endOrder = ++arrivals;
      if (data === '[DONE]') {
        result.done = true;
        return;
      }
      const chunk = JSON.parse(data) as Chunk;
      result.chunks.push(chunk);
      if (chunk.error) result.error = chunk.error;
      const choice = chunk.choices?.[0];
      if (choice?.delta.content) {
        result.text += choice.delta.content;
        this.tokens++;
        if (this.firstTokenOrder === undefined) {
          this.firstTokenOrder = result.endOrder;
          this.#onFirst();
        }
      }
      if (choice?.finish_reason) result.finishReason = choice.finish_reason;
    };
    await forEachSseBlock(res.body!, onBlock, () => this.#wake());
    return result;
  }

  #wake(): void {
    this.#waiters = this.#waiters.filter((check) => !check());
  }

  /** Resolves once `n` content deltas have arrived; rejects if the stream ends first. */
  untilTokens(n: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (this.tokens >= n) resolve();
        else if (this.#ended) reject(new Error(`stream ended after ${this.tokens} tokens, before ${n}`));
        else return false;
        return true;
      };
      if (!check()) this.#waiters.push(check);
    });
  }
}

/** Starts a streaming chat on `proc` (through its dispatcher); the model is jarvis-sim unless `body.model` says otherwise. */
export function chat(proc: JarvisProcess, prompt: string, opts: { session?: string; policy?: string; body?: Record<string, unknown>; headers?: Record<string, string> } = {}): StreamingChat {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.session) headers['x-session-id'] = opts.session;
  if (opts.policy) headers['x-session-policy'] = opts.policy;
  return new StreamingChat(proc.url, { messages: user(prompt), ...opts.body }, headers, proc.agent);
}

/** Rejects naming what never happened instead of hanging the test until its timeout (a guard, not a bound). */
export function orFail<T>(promise: Promise<T>, what: string, ms = 15_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const fail = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms)));
  return Promise.race([promise, fail]).finally(() => clearTimeout(timer));
}

// ---------------------------------------------------------------------------------------------------------------
// Events over SSE

export type { Health, JarvisEvent };


/** A /v1/events SSE subscriber, parsed as bytes arrive; a test waits on a condition over `events`. */
export class EventSubscriber {
  readonly events: JarvisEvent[] = [];
  /** The `id:` line of each event as sent, checked against the payload's id. */
  readonly frameIds: string[] = [];
  connected = false;
  ended = false;
  readonly #controller = new AbortController();
  #done: Promise<void> = Promise.resolve();
  #changed: (() => boolean)[] = [];

  static async open(proc: JarvisProcess, opts: { session?: string; lastEventId?: number } = {}): Promise<EventSubscriber> {
    const sub = new EventSubscriber();
    const query = opts.session ? `?session_id=${encodeURIComponent(opts.session)}` : '';
    const res = await fetch(`${proc.url}/v1/events${query}`, {
      headers: opts.lastEventId !== undefined ? { 'last-event-id': String(opts.lastEventId) } : {},
      signal: sub.#controller.signal,
      dispatcher: proc.agent,
    });
    if (res.status !== 200) throw new Error(`GET /v1/events on ${proc.id} answered ${res.status}: ${await res.text()}`);
    sub.#done = sub.#pump(res);
    sub.#done.catch(() => {});
    // ": connected" is written in the same tick the subscriber is attached to the bus.
    await sub.until(() => sub.connected, 'the connected comment');
    return sub;
  }

  async #pump(res: Response): Promise<void> {
    try {
      await forEachSseBlock(res.body!, (block) => this.#block(block), () => this.#wake());
    } catch {
      // aborted by close()
    } finally {
      this.ended = true;
      this.#wake();
    }
  }

  #block(block: string): void {
    const { id, data, comments } = parseSseBlock(block);
    if (comments.includes(': connected')) this.connected = true;
    if (id !== undefined && data !== undefined) {
      this.frameIds.push(id);
      this.events.push(JSON.parse(data) as JarvisEvent);
    }
  }

  #wake(): void {
    this.#changed = this.#changed.filter((check) => !check());
  }

  /** Resolves once `pred` holds (re-checked as bytes arrive); rejects if the stream ends first or at the deadline. */
  until(pred: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#changed = this.#changed.filter((c) => c !== check);
        reject(new Error(`events: no ${what} within ${timeoutMs} ms (have ${this.events.length} events)`));
      }, timeoutMs);
      const check = () => {
        if (pred()) {
          clearTimeout(timer);
          resolve();
          return true;
        }
        if (this.ended) {
          clearTimeout(timer);
          reject(new Error(`events stream ended before ${what}`));
          return true;
        }
        return false;
      };
      if (!check()) this.#changed.push(check);
    });
  }

  /** Waits for the chat.end / chat.cancelled / chat.error of `requestId`. */
  untilEnd(requestId: string, timeoutMs?: number): Promise<void> {
    return this.until(() => this.events.some((e) => e.request_id === requestId && (e.type === 'chat.end' || e.type === 'chat.cancelled' || e.type === 'chat.error')), `end of ${requestId}`, timeoutMs);
  }

  async close(): Promise<void> {
    this.#controller.abort();
    await this.#done;
  }
}

/** Sums a Prometheus metric's samples named exactly `name` (any labels); undefined when absent. */
export function metricValue(text: string, name: string): number | undefined {
  let sum: number | undefined;
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})? (\S+)/.exec(line);
    if (m && m[1] === name) sum = (sum ?? 0) + Number(m[3]);
  }
  return sum;
}
