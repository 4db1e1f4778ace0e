/**
 * Soak test: Jarvis in this process (createJarvis, logging to a temp file) and the mock upstream, under mixed
 * traffic at a moderate rate for a bounded time:
 *
 *   npm run soak -- [--duration-s 120] [--rate 20] [--request-timeout-ms 20000]
 *
 * Traffic: normal streams (simulator and upstream), non-streaming requests, barge-ins, client aborts, failing
 * upstreams (every mock failure knob), event subscribers and bad requests. After a warm-up, traffic pauses, drains
 * and a baseline is taken (after a forced GC: the script re-runs itself with --expose-gc when it has no gc()); at
 * the end the same drain and measurement must land within 10% of the baseline for heap used and for active
 * handles/resources (process.getActiveResourcesInfo()). It also fails when a request hung past its timeout, an
 * answer was malformed, or the process emitted any warning (a MaxListenersExceededWarning, a deprecation...) or an
 * unhandled rejection. Prints a summary; exits 0 when everything holds, 1 when anything does not, 2 on bad arguments.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { Agent, request, type Dispatcher } from 'undici';
import { createJarvis, type Jarvis } from '../src/app.js';
import { makeConfig } from '../src/config.js';
import { createLogger } from '../src/observability/logger.js';
import { startMockUpstream, type MockUpstream } from '../fakes/openai/index.js';

const USAGE = 'usage: npm run soak -- [--duration-s 120] [--rate 20] [--request-timeout-ms 20000]';
const TOLERANCE = 0.1;
const DRAIN_MS = 30_000;
/** Marks the re-run with --expose-gc, so it never re-runs itself again. */
const CHILD_MARK = 'JARVIS_SOAK_EXPOSE_GC';

interface Options {
  durationS: number;
  rate: number;
  requestTimeoutMs: number;
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      'duration-s': { type: 'string', default: '120' },
      rate: { type: 'string', default: '20' },
      'request-timeout-ms': { type: 'string', default: '20000' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const positive = (name: string, raw: string) => {
    const n = Number(raw);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} must be a positive number, got ${JSON.stringify(raw)}`);
    return n;
  };
  return {
    durationS: positive('duration-s', values['duration-s']),
    rate: positive('rate', values.rate),
    requestTimeoutMs: positive('request-timeout-ms', values['request-timeout-ms']),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Traffic

/** What one operation ended as: `ok`, or the reason it is a problem. */
type Result = { ok: true } | { ok: false; problem: string };
const ok: Result = { ok: true };
const bad = (problem: string): Result => ({ ok: false, problem });

interface Ctx {
  url: string;
  dispatcher: Dispatcher;
  timeoutMs: number;
}

const uid = () => randomBytes(5).toString('hex');

/** An SSE response read incrementally: `until` reads until the data seen so far satisfies a condition. */
class SseReader {
  readonly data: string[] = [];
  #buf = '';
  readonly #it: AsyncIterator<Buffer>;
  #ended = false;

  constructor(body: Dispatcher.ResponseData['body']) {
    this.#it = body[Symbol.asyncIterator]();
  }

  get ended(): boolean {
    return this.#ended;
  }

  async until(pred: (data: string[]) => boolean): Promise<boolean> {
    while (!pred(this.data)) {
      const { done, value } = await this.#it.next();
      if (done) {
        this.#ended = true;
        return false;
      }
      this.#buf += value.toString('utf8');
      for (let i = this.#buf.indexOf('\n\n'); i >= 0; i = this.#buf.indexOf('\n\n')) {
        const block = this.#buf.slice(0, i);
        this.#buf = this.#buf.slice(i + 2);
        for (const line of block.split('\n')) if (line.startsWith('data: ')) this.data.push(line.slice(6));
      }
    }
    return true;
  }

  rest(): Promise<boolean> {
    return this.until(() => false);
  }
}

interface ChunkShape {
  choices?: { delta?: { content?: string }; finish_reason?: string | null }[];
  error?: { code?: string };
}

/** The ending of a finished SSE body: every data line JSON, `[DONE]` last; returns the last chunk, or a problem. */
function ending(data: string[]): ChunkShape | string {
  if (data.at(-1) !== '[DONE]') return `stream did not end with [DONE] (last: ${JSON.stringify(data.at(-1))})`;
  const chunks: ChunkShape[] = [];
  for (const d of data.slice(0, -1)) {
    try {
      chunks.push(JSON.parse(d) as ChunkShape);
    } catch {
      return `malformed data line ${JSON.stringify(d.slice(0, 80))}`;
    }
  }
  return chunks.at(-1) ?? 'stream had no chunks';
}

const finishOf = (c: ChunkShape) => c.choices?.[0]?.finish_reason ?? null;

async function openChat(ctx: Ctx, body: object, signal: AbortSignal, headers: Record<string, string> = {}) {
  return request(`${ctx.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
    dispatcher: ctx.dispatcher,
    signal,
  });
}

const user = (content: string) => [{ role: 'user', content }];

async function normalStream(ctx: Ctx, signal: AbortSignal): Promise<Result> {
  const sim = Math.random() < 0.3;
  const body = sim
    ? { model: 'jarvis-sim', messages: user('What is a good name for a cat?'), stream: true }
    : { messages: user('hello tokens:20 delay:5'), stream: true };
  const res = await openChat(ctx, body, signal);
  if (res.statusCode !== 200) return bad(`stream answered ${res.statusCode}`);
  const r = new SseReader(res.body);
  await r.rest();
  const last = ending(r.data);
  if (typeof last === 'string') return bad(last);
  return finishOf(last) === 'stop' ? ok : bad(`stream finished with ${JSON.stringify(last)}`);
}

async function jsonRequest(ctx: Ctx, signal: AbortSignal): Promise<Result> {
  const res = await openChat(ctx, { messages: user('hi tokens:10'), stream: false }, signal);
  const body = (await res.body.json()) as { object?: string };
  return res.statusCode === 200 && body.object === 'chat.completion' ? ok : bad(`non-stream answered ${res.statusCode} ${JSON.stringify(body).slice(0, 120)}`);
}

async function bargeIn(ctx: Ctx, signal: AbortSignal): Promise<Result> {
  const session = `soak-${uid()}`;
  const headers = { 'x-session-id': session };
  const first = await openChat(ctx, { messages: user('long one tokens:500 delay:5'), stream: true }, signal, headers);
  if (first.statusCode !== 200) return bad(`barge-in first answered ${first.statusCode}`);
  const a = new SseReader(first.body);
  if (!(await a.until((d) => d.some((x) => x.includes('"content":"tok'))))) return bad('barge-in first stream ended before its first token');
  const second = await openChat(ctx, { messages: user('short one tokens:5'), stream: true }, signal, headers);
  const b = new SseReader(second.body);
  await Promise.all([a.rest(), b.rest()]);
  const endA = ending(a.data);
  const endB = ending(b.data);
  if (typeof endA === 'string') return bad(`superseded stream: ${endA}`);
  if (typeof endB === 'string') return bad(`barging stream: ${endB}`);
  if (finishOf(endA) !== 'cancelled') return bad(`superseded stream finished with ${JSON.stringify(endA)}`);
  return finishOf(endB) === 'stop' ? ok : bad(`barging stream finished with ${JSON.stringify(endB)}`);
}

async function clientAbort(ctx: Ctx, signal: AbortSignal): Promise<Result> {
  const ac = new AbortController();
  const onOuter = () => ac.abort();
  signal.addEventListener('abort', onOuter, { once: true });
  try {
    const res = await openChat(ctx, { messages: user('abort me tokens:1000 delay:5'), stream: true }, ac.signal);
    const r = new SseReader(res.body);
    if (!(await r.until((d) => d.some((x) => x.includes('"content":"tok'))))) return bad('aborted stream ended before its first token');
    ac.abort();
    await r.rest().catch(() => false);
    return ok;
  } finally {
    signal.removeEventListener('abort', onOuter);
  }
}

/** The mock's failure knobs, as a prompt carries them. */
const FAILURES = [
  'tokens:10 fail-after:3',
  'tokens:10 error-after:3',
  'tokens:10 malformed-after:3',
  'tokens:5 no-done',
  'tokens:10 stall-after:3',
  'status:500',
  'status:429',
  'headers-delay:60000',
];

async function failingUpstream(ctx: Ctx, signal: AbortSignal): Promise<Result> {
  const knobs = FAILURES[Math.floor(Math.random() * FAILURES.length)]!;
  const res = await openChat(ctx, { messages: user(`fail ${knobs}`), stream: true }, signal);
  if (res.statusCode !== 200) {
    const body = (await res.body.json()) as { error?: { code?: unknown } };
    return res.statusCode >= 400 && typeof body.error?.code === 'string' ? ok : bad(`failing upstream answered ${res.statusCode} without an OpenAI error`);
  }
  const r = new SseReader(res.body);
  await r.rest();
  const last = ending(r.data);
  if (typeof last === 'string') return bad(`failing upstream (${knobs}): ${last}`);
  return last.error ? ok : bad(`failing upstream (${knobs}) ended without an error line`);
}

async function subscriber(ctx: Ctx, signal: AbortSignal): Promise<Result> {
  const session = `soak-${uid()}`;
  const ac = new AbortController();
  const onOuter = () => ac.abort();
  signal.addEventListener('abort', onOuter, { once: true });
  try {
    const events = await request(`${ctx.url}/v1/events?session_id=${session}`, { dispatcher: ctx.dispatcher, signal: ac.signal });
    if (events.statusCode !== 200) return bad(`events answered ${events.statusCode}`);
    const sub = new SseReader(events.body);
    const chat = await openChat(ctx, { messages: user('watched tokens:10 delay:2'), stream: true }, signal, { 'x-session-id': session });
    await new SseReader(chat.body).rest();
    const sawEnd = await sub.until((d) => d.some((x) => x.includes('"type":"chat.end"') || x.includes('"finish_reason"')));
    ac.abort();
    await sub.rest().catch(() => false);
    return sawEnd ? ok : bad('subscriber never saw chat.end');
  } finally {
    signal.removeEventListener('abort', onOuter);
  }
}

async function badRequest(ctx: Ctx, signal: AbortSignal): Promise<Result> {
  const res = await request(`${ctx.url}/v1/chat/completions`, { method: 'POST', body: '{"messages": [', headers: { 'content-type': 'application/json' }, dispatcher: ctx.dispatcher, signal });
  const body = (await res.body.json()) as { error?: { code?: unknown } };
  return res.statusCode === 400 && body.error?.code === 'invalid_json' ? ok : bad(`bad request answered ${res.statusCode}`);
}

const KINDS = {
  stream: { weight: 6, run: normalStream },
  json: { weight: 2, run: jsonRequest },
  'barge-in': { weight: 2, run: bargeIn },
  abort: { weight: 2, run: clientAbort },
  'failing-upstream': { weight: 3, run: failingUpstream },
  subscriber: { weight: 1, run: subscriber },
  'bad-request': { weight: 1, run: badRequest },
} as const;
type Kind = keyof typeof KINDS;
const KIND_NAMES = Object.keys(KINDS) as Kind[];

function pickKind(): Kind {
  const total = KIND_NAMES.reduce((s, k) => s + KINDS[k].weight, 0);
  let r = Math.random() * total;
  for (const k of KIND_NAMES) {
    r -= KINDS[k].weight;
    if (r < 0) return k;
  }
  return 'stream';
}

interface Tally {
  started: number;
  ok: number;
  hung: number;
  problems: string[];
  byKind: Record<string, number>;
}

/** Runs one operation under its timeout: one that does not finish in time is a hang, and is aborted. */
async function runOne(ctx: Ctx, kind: Kind, tally: Tally): Promise<void> {
  tally.started++;
  tally.byKind[kind] = (tally.byKind[kind] ?? 0) + 1;
  const ac = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    ac.abort();
  }, ctx.timeoutMs);
  try {
    const result = await KINDS[kind].run(ctx, ac.signal);
    if (result.ok) tally.ok++;
    else tally.problems.push(`${kind}: ${result.problem}`);
  } catch (err) {
    if (timedOut) {
      tally.hung++;
      tally.problems.push(`${kind}: did not finish within ${ctx.timeoutMs} ms`);
    } else {
      tally.problems.push(`${kind}: ${(err as Error).message}`);
    }
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Traffic for `ms` at `rate` operations per second, every kind at least `minEach` times (so a warm-up has been
 * down every path before the baseline); resolves when the last operation has finished.
 */
async function traffic(ctx: Ctx, ms: number, rate: number, tally: Tally, minEach = 0): Promise<void> {
  const inflight = new Set<Promise<void>>();
  const start = (kind: Kind) => {
    const p = runOne(ctx, kind, tally).finally(() => inflight.delete(p));
    inflight.add(p);
  };
  const queue: Kind[] = KIND_NAMES.flatMap((k) => Array.from({ length: minEach }, () => k));
  const until = performance.now() + ms;
  await new Promise<void>((resolve) => {
    const tick = setInterval(() => {
      if (performance.now() >= until && queue.length === 0) {
        clearInterval(tick);
        resolve();
        return;
      }
      start(queue.shift() ?? pickKind());
    }, 1000 / rate);
  });
  await Promise.all([...inflight]);
}

// ---------------------------------------------------------------------------------------------------------------
// Measurement

interface Sample {
  heapUsed: number;
  resources: number;
  byType: Record<string, number>;
}

const connectionsOf = (server: { getConnections(cb: (err: Error | null, n: number) => void): void }) =>
  new Promise<number>((resolve) => server.getConnections((_err, n) => resolve(n)));

async function pollUntil(check: () => Promise<boolean>, what: string | (() => string), timeoutMs = DRAIN_MS): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`${typeof what === 'string' ? what : what()}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Waits until traffic has left nothing behind that it should not: /healthz at zero, the client's connections
 * closed, and Jarvis's pooled upstream connections closed by the mock's short keep-alive. Both the baseline and
 * the final measurement are taken in this same state, so they compare like with like.
 */
async function drain(url: string, jarvis: Jarvis, mock: MockUpstream): Promise<void> {
  // Its own connection, closed before counting: a pooled keep-alive one would be counted as left open.
  const probe = new Agent({ connections: 1 });
  let health = {};
  await pollUntil(async () => {
    const res = await request(`${url}/healthz`, { dispatcher: probe });
    const h = (await res.body.json()) as Record<string, number>;
    health = h;
    return h.streams === 0 && h.sessions === 0 && h.buffers === 0 && h.timers === 0 && h.subscribers === 0;
  }, () => `/healthz back to zero (last: ${JSON.stringify(health)})`);
  await probe.close();
  let open = { jarvis: 0, upstream: 0 };
  await pollUntil(async () => {
    open = { jarvis: await connectionsOf(jarvis.app.server), upstream: await connectionsOf(mock.server) };
    return open.jarvis === 0 && open.upstream === 0;
  }, () => `connections closed (still open: ${JSON.stringify(open)})`);
  // The mock keeps a record of every request it served (for tests); that is the harness growing, not Jarvis.
  mock.requests.splice(0);
}

async function sample(): Promise<Sample> {
  // Several GC passes a turn apart (finalizers and weak callbacks run in between), then the smallest of a few
  // readings: an in-flight log write is a resource for a moment, not a leak.
  let best: Sample | undefined;
  for (let i = 0; i < 5; i++) {
    globalThis.gc?.();
    await new Promise((r) => setImmediate(r));
    globalThis.gc?.();
    const info = process.getActiveResourcesInfo();
    const byType: Record<string, number> = {};
    for (const t of info) byType[t] = (byType[t] ?? 0) + 1;
    const s = { heapUsed: process.memoryUsage().heapUsed, resources: info.length, byType };
    if (!best || s.resources < best.resources || (s.resources === best.resources && s.heapUsed < best.heapUsed)) best = s;
    await new Promise((r) => setTimeout(r, 50));
  }
  return best!;
}

const mib = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MiB`;
const types = (s: Sample) =>
  Object.entries(s.byType)
    .sort()
    .map(([t, n]) => `${t}=${n}`)
    .join(' ');

// ---------------------------------------------------------------------------------------------------------------

async function soak(opts: Options): Promise<boolean> {
  const problems: string[] = [];
  process.on('warning', (w) => {
    problems.push(`warning: ${w.name}: ${w.message}`);
  });
  process.on('unhandledRejection', (reason) => problems.push(`unhandled rejection: ${reason instanceof Error ? reason.stack : String(reason)}`));

  const dir = await mkdtemp(join(tmpdir(), 'jarvis-soak-'));
  const mock = await startMockUpstream();
  // Idle upstream connections close soon after traffic stops, so a drained process is reached in seconds.
  mock.server.keepAliveTimeout = 1000;
  const config = makeConfig({
    host: '127.0.0.1',
    port: 0,
    log: { level: 'info', format: 'logfmt', stdout: false, file: join(dir, 'system.log') },
    dataDir: dir,
    upstreams: [{ name: 'mock', baseUrl: mock.url, models: ['*'] }],
    defaultModel: 'mock-model',
    simulator: { tokensPerSec: 400, ttftMs: 20 },
    upstreamTimeoutMs: 1000,
    upstreamIdleMs: 1000,
    // A small replay ring fills during the warm-up: a ring still filling would look like growth.
    events: { replay: 100 },
  });
  const { logger, close: closeLog } = createLogger(config.log);
  const jarvis = await createJarvis({ config, log: logger });
  const url = await jarvis.listen();
  process.stdout.write(`soak: ${opts.durationS} s at ${opts.rate}/s against ${url} (gc ${globalThis.gc ? 'exposed' : 'not available'}), log ${config.log.file}\n`);

  const tally: Tally = { started: 0, ok: 0, hung: 0, problems: [], byKind: {} };
  const totalMs = opts.durationS * 1000;
  const warmupMs = Math.min(15_000, Math.max(1000, totalMs * 0.1));
  const phase = async (ms: number, minEach: number) => {
    const agent = new Agent({ keepAliveTimeout: 1000, connections: 256 });
    await traffic({ url, dispatcher: agent, timeoutMs: opts.requestTimeoutMs }, ms, opts.rate, tally, minEach);
    await agent.close();
    await drain(url, jarvis, mock);
  };

  let ok = false;
  try {
    await phase(warmupMs, 3);
    const baseline = await sample();
    process.stdout.write(`soak: baseline after ${tally.started} warm-up requests: heap ${mib(baseline.heapUsed)}, ${baseline.resources} resources (${types(baseline)})\n`);
    await phase(Math.max(0, totalMs - warmupMs), 0);
    const final = await sample();

    const heapOk = final.heapUsed <= baseline.heapUsed * (1 + TOLERANCE);
    const resourcesOk = final.resources <= baseline.resources * (1 + TOLERANCE);
    if (!heapOk) problems.push(`heap used grew from ${mib(baseline.heapUsed)} to ${mib(final.heapUsed)} (over ${TOLERANCE * 100}%)`);
    if (!resourcesOk) problems.push(`active resources grew from ${baseline.resources} (${types(baseline)}) to ${final.resources} (${types(final)})`);
    problems.push(...tally.problems);

    const kinds = Object.entries(tally.byKind)
      .map(([k, n]) => `${k}=${n}`)
      .join(' ');
    process.stdout.write(
      [
        `soak: ${tally.started} requests (${kinds}), ${tally.ok} as expected, ${tally.hung} hung`,
        `soak: heap ${mib(baseline.heapUsed)} -> ${mib(final.heapUsed)} (${heapOk ? 'ok' : 'FAIL'}), resources ${baseline.resources} -> ${final.resources} (${resourcesOk ? 'ok' : 'FAIL'}) [${types(final)}]`,
        ...problems.slice(0, 20).map((p) => `soak: problem: ${p}`),
        problems.length > 20 ? `soak: ... and ${problems.length - 20} more problems` : '',
      ]
        .filter(Boolean)
        .join('\n') + '\n',
    );
    ok = problems.length === 0;
  } catch (err) {
    process.stdout.write(`soak: problem: ${(err as Error).message}\n`);
  } finally {
    await jarvis.shutdown();
    await mock.close();
    await closeLog();
    await rm(dir, { recursive: true, force: true });
  }
  process.stdout.write(`soak: ${ok ? 'PASS' : 'FAIL'}\n`);
  return ok;
}

function main(): void {
  let opts: Options;
  try {
    opts = parseOptions(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`soak: ${(err as Error).message}\n${USAGE}\n`);
    process.exit(2);
  }
  if (typeof globalThis.gc !== 'function' && !process.env[CHILD_MARK]) {
    // Heap numbers without a forced GC measure the collector's timing, not leaks: run again with gc() exposed.
    const child = spawn(process.execPath, [...process.execArgv, '--expose-gc', process.argv[1]!, ...process.argv.slice(2)], {
      stdio: 'inherit',
      env: { ...process.env, [CHILD_MARK]: '1' },
    });
    child.once('exit', (code) => process.exit(code ?? 1));
    return;
  }
  soak(opts).then(
    (passed) => process.exit(passed ? 0 : 1),
    (err: unknown) => {
      process.stderr.write(`soak: ${err instanceof Error ? err.stack : String(err)}\n`);
      process.exit(1);
    },
  );
}

main();
