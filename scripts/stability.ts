/**
 * The operator's stability smoke test, run against any live Jarvis:
 *
 *   npm run stability -- --url http://127.0.0.1:8000 [--api-key KEY] [--timeout-ms 30000] [--quick]
 *
 * Exercises barge-in (rapid and concurrent supersession), client aborts, and then checks that /healthz drains
 * to zero. Prints one line per check and exits 0 when all pass, 1 when any fails or the server is unreachable,
 * 2 on bad arguments. Deliberately imports nothing from src/: it speaks only the public HTTP API.
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { createParser } from 'eventsource-parser';
import { Agent, request } from 'undici';

const USAGE = 'usage: npm run stability -- [--url http://127.0.0.1:8000] [--api-key KEY] [--timeout-ms 30000] [--quick]';

// Named explicitly rather than left to the server's default: a gateway whose default is a real upstream would
// otherwise spend real tokens, and only the simulator guarantees a long answer to "Long essay".
const MODEL = 'jarvis-sim';
const LONG_PROMPT = 'Long essay';
const SHORT_PROMPT = '2+2?';
const COMPLETED = new Set(['stop', 'length']);
const HEALTH_LATENCY_MS = 100;
const DRAIN_MS = 5000;

interface Options {
  url: string;
  apiKey: string | undefined;
  timeoutMs: number;
  quick: boolean;
}

interface StreamResult {
  status?: number;
  /** The server's x-request-id: what to grep its log for when this stream misbehaves. */
  requestId?: string;
  /** The last non-null finish_reason seen. */
  finishReason?: string;
  /** `data: [DONE]` arrived. */
  done: boolean;
  /** Chunks carrying non-empty content. */
  chunks: number;
  /** We aborted it on purpose. */
  aborted: boolean;
  error?: string;
  ms: number;
}

interface CheckResult {
  ok: boolean;
  line: string;
}

interface Problem {
  where: string;
  what: string;
}

interface ChunkShape {
  choices?: { delta?: { content?: string | null }; finish_reason?: string | null }[];
  error?: { message?: string; code?: string };
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      url: { type: 'string', default: 'http://127.0.0.1:8000' },
      'api-key': { type: 'string' },
      'timeout-ms': { type: 'string', default: '30000' },
      quick: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  let url: URL;
  try {
    url = new URL(values.url);
  } catch {
    throw new Error(`--url is not a URL: ${JSON.stringify(values.url)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`--url must be http:// or https://, got ${url.protocol}`);
  const timeoutMs = Number(values['timeout-ms']);
  if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) throw new Error(`--timeout-ms must be a positive integer, got ${JSON.stringify(values['timeout-ms'])}`);
  return { url: url.href.replace(/\/+$/, ''), apiKey: values['api-key'], timeoutMs, quick: values.quick };
}

/** The innermost useful message: undici and happy-eyeballs wrap the socket error that names the real cause. */
function describe(err: unknown): string {
  if (err instanceof AggregateError && err.errors.length > 0) return describe(err.errors[0]);
  if (err instanceof Error) {
    if (err.cause !== undefined && (err.message === 'fetch failed' || !('code' in err))) {
      const inner = describe(err.cause);
      if (inner) return inner;
    }
    return err.message || String((err as { code?: unknown }).code ?? err.name);
  }
  return String(err);
}

function errorMessageOf(body: string): string {
  try {
    const parsed = JSON.parse(body) as { error?: { message?: unknown; code?: unknown } };
    if (parsed.error && typeof parsed.error.message === 'string') return `${String(parsed.error.code ?? 'error')}: ${parsed.error.message.replace(/\.$/, '')}`;
  } catch {
    // Not JSON: a proxy's HTML page or plain text; show its start.
  }
  return body.slice(0, 200).replace(/\s+/g, ' ');
}

const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

function percentile(values: number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

const chunks = (n: number) => `${n} chunk${n === 1 ? '' : 's'}`;

function summarise(r: StreamResult): string {
  if (r.error) return r.error;
  return `finish_reason ${r.finishReason ?? 'none'}${r.done ? '' : ', no [DONE]'} after ${chunks(r.chunks)}`;
}

const at = (where: string, r: StreamResult) => (r.requestId ? `${where} (${r.requestId})` : where);

/** Identical failures (a 401 on every request, say) are shown once with a count, so the line stays readable. */
function report(problems: Problem[]): string {
  const groups = new Map<string, string[]>();
  for (const p of problems) groups.set(p.what, [...(groups.get(p.what) ?? []), p.where]);
  const shown = [...groups].slice(0, 3).map(([what, where]) => `${where[0]}${where.length > 1 ? ` (and ${where.length - 1} more)` : ''}: ${what}`);
  const hidden = problems.length - [...groups].slice(0, 3).reduce((n, [, where]) => n + where.length, 0);
  return shown.join(' | ') + (hidden > 0 ? ` | ${hidden} other failures` : '');
}

/** The server answered, but not as a Jarvis /healthz does: reachable, yet the wrong thing. */
class NotJarvis extends Error {}

class Client {
  readonly #opts: Options;
  readonly #agent: Agent;
  readonly runId = randomBytes(4).toString('hex');

  constructor(opts: Options) {
    this.#opts = opts;
    // Its own Agent so closing it at the end releases every socket this run opened, and nothing else.
    // pipelining 0 turns off keep-alive: with a pool, a later request that finds an idle socket overtakes an
    // earlier one still connecting, the server sees them out of order, and barge-in rightly picks the "wrong"
    // winner. A fresh connection each keeps arrival order close to send order.
    this.#agent = new Agent({ pipelining: 0, connect: { timeout: Math.min(opts.timeoutMs, 10_000) } });
  }

  session(name: string): string {
    return `stability-${this.runId}-${name}`;
  }

  async health(timeoutMs: number): Promise<{ body: Record<string, unknown>; ms: number }> {
    const started = performance.now();
    const res = await request(`${this.#opts.url}/healthz`, { method: 'GET', dispatcher: this.#agent, signal: AbortSignal.timeout(timeoutMs) });
    const text = await res.body.text();
    const ms = performance.now() - started;
    if (res.statusCode !== 200) throw new NotJarvis(`/healthz answered HTTP ${res.statusCode}${text ? `: ${errorMessageOf(text)}` : ''}`);
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw new NotJarvis(`/healthz did not answer JSON: ${text.slice(0, 120)}`);
    }
    if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new NotJarvis('/healthz did not answer a JSON object');
    return { body: body as Record<string, unknown>, ms };
  }

  /** An authenticated GET, so a missing or wrong key is one clear line instead of every check failing with 401. */
  async authProblem(): Promise<string | undefined> {
    try {
      const res = await request(`${this.#opts.url}/v1/models`, { method: 'GET', dispatcher: this.#agent, headers: this.#authHeader(), signal: AbortSignal.timeout(Math.min(this.#opts.timeoutMs, 5000)) });
      const text = await res.body.text();
      if (res.statusCode === 401 || res.statusCode === 403) return `HTTP ${res.statusCode}: ${errorMessageOf(text)}`;
    } catch {
      // Anything else is for the checks themselves to find and report in context.
    }
    return undefined;
  }

  #authHeader(): Record<string, string> {
    return this.#opts.apiKey ? { authorization: `Bearer ${this.#opts.apiKey}` } : {};
  }

  /** One streamed chat completion. Never throws: every outcome, including a hang, is reported in the result. */
  async chat(session: string, prompt: string, abortAfterChunks?: number): Promise<StreamResult> {
    const r: StreamResult = { done: false, chunks: 0, aborted: false, ms: 0 };
    const started = performance.now();
    const timeout = AbortSignal.timeout(this.#opts.timeoutMs);
    const mine = new AbortController();
    const headers = { 'content-type': 'application/json', accept: 'text/event-stream', 'x-session-id': session, ...this.#authHeader() };
    try {
      const res = await request(`${this.#opts.url}/v1/chat/completions`, {
        method: 'POST',
        dispatcher: this.#agent,
        signal: AbortSignal.any([timeout, mine.signal]),
        headers,
        body: JSON.stringify({ model: MODEL, stream: true, messages: [{ role: 'user', content: prompt }] }),
      });
      r.status = res.statusCode;
      const id = res.headers['x-request-id'];
      if (typeof id === 'string') r.requestId = id;
      if (res.statusCode !== 200) {
        r.error = `HTTP ${res.statusCode}: ${errorMessageOf(await res.body.text())}`;
        return r;
      }
      const type = String(res.headers['content-type'] ?? '');
      if (!type.startsWith('text/event-stream')) {
        r.error = `expected text/event-stream, got ${type || 'no content-type'}: ${(await res.body.text()).slice(0, 120)}`;
        return r;
      }
      const parser = createParser({
        onEvent: (ev) => {
          if (r.done) {
            r.error ??= 'data after [DONE]';
            return;
          }
          if (ev.data === '[DONE]') {
            r.done = true;
            return;
          }
          let chunk: ChunkShape;
          try {
            chunk = JSON.parse(ev.data) as ChunkShape;
          } catch {
            r.error ??= `unparseable SSE data: ${ev.data.slice(0, 120)}`;
            return;
          }
          if (chunk.error) {
            r.error ??= `error frame: ${chunk.error.code ?? 'error'}: ${chunk.error.message ?? ''}`;
            return;
          }
          const choice = chunk.choices?.[0];
          if (choice?.delta?.content) r.chunks++;
          if (choice?.finish_reason) r.finishReason = choice.finish_reason;
        },
      });
      const decoder = new TextDecoder();
      for await (const data of res.body) {
        parser.feed(decoder.decode(data as Buffer, { stream: true }));
        if (abortAfterChunks !== undefined && r.chunks >= abortAfterChunks && !r.done) {
          r.aborted = true;
          mine.abort();
          break;
        }
      }
      if (!r.done && !r.aborted) r.error ??= `stream ended without [DONE] after ${chunks(r.chunks)}`;
    } catch (err) {
      if (r.aborted) {
        // Our own abort surfacing from the body: the expected outcome.
      } else if (timeout.aborted) {
        r.error = `no [DONE] within ${this.#opts.timeoutMs} ms (${r.status === undefined ? 'no response headers' : `hung after ${chunks(r.chunks)}`})`;
      } else {
        r.error = describe(err);
      }
    } finally {
      r.ms = performance.now() - started;
    }
    return r;
  }

  async close(): Promise<void> {
    // close() waits for in-flight requests; every one has a timeout, but a bound here keeps exit unconditional.
    let timer: NodeJS.Timeout | undefined;
    const bounded = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), 2000)));
    const outcome = await Promise.race([this.#agent.close().then(() => 'closed' as const), bounded]).catch(() => 'late' as const);
    clearTimeout(timer);
    if (outcome === 'late') await this.#agent.destroy().catch(() => {});
  }
}

/** Long then, 50 ms later, short in a fresh session: barge-in must cancel the first and complete the second. */
async function rapidRequests(c: Client, iterations: number): Promise<CheckResult> {
  const problems: Problem[] = [];
  const durations: number[] = [];
  let passed = 0;
  for (let i = 0; i < iterations; i++) {
    const session = c.session(`rapid-${i}`);
    const started = performance.now();
    const first = c.chat(session, LONG_PROMPT);
    await sleep(50);
    const second = c.chat(session, SHORT_PROMPT);
    const [a, b] = await Promise.all([first, second]);
    durations.push(performance.now() - started);
    const before = problems.length;
    if (a.error || !a.done || a.finishReason !== 'cancelled') problems.push({ where: at(`iteration ${i + 1} first`, a), what: `${summarise(a)}, expected cancelled` });
    if (b.error || !b.done || !COMPLETED.has(b.finishReason ?? '')) problems.push({ where: at(`iteration ${i + 1} second`, b), what: `${summarise(b)}, expected stop` });
    else if (b.chunks === 0) problems.push({ where: at(`iteration ${i + 1} second`, b), what: 'completed with no content' });
    if (problems.length === before) passed++;
  }
  const p50 = `p50 ${secs(percentile(durations, 50))}`;
  if (problems.length === 0) return { ok: true, line: `rapid requests: ${passed}/${iterations} iterations, first cancelled, second completed (${p50})` };
  return { ok: false, line: `rapid requests: ${passed}/${iterations} iterations passed (${p50}); ${report(problems)}` };
}

/** Many sessions at once, each superseded several times: only the last request in each session may complete. */
async function concurrency(c: Client, sessions: number, perSession: number): Promise<CheckResult> {
  const started = performance.now();
  const all = await Promise.all(
    Array.from({ length: sessions }, async (_, s) => {
      const session = c.session(`conc-${s}`);
      const pending: Promise<StreamResult>[] = [];
      for (let k = 0; k < perSession; k++) {
        if (k > 0) await sleep(20);
        // Only the last one is short, so a survivor that should have been cancelled stands out rather than
        // finishing quickly and passing for the winner.
        pending.push(c.chat(session, k === perSession - 1 ? SHORT_PROMPT : LONG_PROMPT));
      }
      return Promise.all(pending);
    }),
  );
  const wall = performance.now() - started;
  const problems: Problem[] = [];
  let completed = 0;
  let goodSessions = 0;
  all.forEach((results, s) => {
    let good = true;
    results.forEach((r, k) => {
      const last = k === results.length - 1;
      if (!r.error && r.done) completed++;
      const ok = !r.error && r.done && (last ? COMPLETED.has(r.finishReason ?? '') : r.finishReason === 'cancelled');
      if (!ok) {
        good = false;
        problems.push({ where: at(`session ${s + 1} request ${k + 1}/${results.length}`, r), what: `${summarise(r)}, expected ${last ? 'stop' : 'cancelled'}` });
      }
    });
    if (good) goodSessions++;
  });
  const total = sessions * perSession;
  if (problems.length === 0) {
    return { ok: true, line: `concurrency: ${sessions} sessions × ${perSession} requests, ${completed}/${total} completed, only the last in each session finished (${secs(wall)})` };
  }
  return { ok: false, line: `concurrency: ${goodSessions}/${sessions} sessions correct, ${completed}/${total} streams completed; ${report(problems)}` };
}

/** Clients that vanish mid-stream must not disturb anyone else. */
async function clientAborts(c: Client, clients: number): Promise<CheckResult> {
  const ABORT_AFTER = 3;
  const results = await Promise.all(Array.from({ length: clients }, (_, i) => c.chat(c.session(`abort-${i}`), LONG_PROMPT, ABORT_AFTER)));
  const problems: Problem[] = [];
  const aborted = results.filter((r) => r.aborted).length;
  results.forEach((r, i) => {
    if (!r.aborted) problems.push({ where: at(`client ${i + 1}`, r), what: r.error ?? `stream ended (${summarise(r)}) before ${chunks(ABORT_AFTER)}` });
  });
  const after = await c.chat(c.session('after-aborts'), SHORT_PROMPT);
  if (after.error || !after.done || !COMPLETED.has(after.finishReason ?? '')) problems.push({ where: at('request after the aborts', after), what: `${summarise(after)}, expected stop` });
  if (problems.length === 0) {
    return { ok: true, line: `client aborts: ${aborted}/${clients} clients aborted mid-stream, a following request completed (${secs(after.ms)})` };
  }
  return { ok: false, line: `client aborts: ${aborted}/${clients} aborted mid-stream; ${report(problems)}` };
}

const DRAINED = ['streams', 'sessions', 'buffers', 'timers'] as const;

/** Cleanup of aborted streams is asynchronous, so poll for a bounded time instead of expecting zero at once. */
async function healthDrains(c: Client, baseline: Record<string, unknown>): Promise<CheckResult> {
  const deadline = performance.now() + DRAIN_MS;
  let slowest = 0;
  let last: Record<string, unknown> | undefined;
  let lastError: string | undefined;
  for (let polls = 0; polls < 200; polls++) {
    try {
      const { body, ms } = await c.health(1000);
      slowest = Math.max(slowest, ms);
      last = body;
      lastError = undefined;
      const missing = DRAINED.filter((k) => typeof body[k] !== 'number');
      if (missing.length > 0) return { ok: false, line: `health: /healthz lacks ${missing.join(', ')} (not a Jarvis with live counts?)` };
      if (ms > HEALTH_LATENCY_MS) return { ok: false, line: `health: /healthz took ${Math.round(ms)} ms, more than ${HEALTH_LATENCY_MS} ms` };
      if (DRAINED.every((k) => body[k] === 0)) {
        return { ok: true, line: `health: streams, sessions, buffers, timers all 0 (/healthz slowest ${Math.round(slowest)} ms)` };
      }
    } catch (err) {
      lastError = describe(err);
    }
    if (performance.now() >= deadline) break;
    await sleep(100);
  }
  if (lastError) return { ok: false, line: `health: /healthz failed: ${lastError}` };
  const counts = DRAINED.map((k) => `${k}=${String(last?.[k])}`).join(' ');
  const busyBefore = DRAINED.some((k) => typeof baseline[k] === 'number' && baseline[k] !== 0);
  const hint = busyBefore ? ' (the server was already busy before this run: other traffic?)' : ' (leak: see the server log)';
  return { ok: false, line: `health: after ${secs(DRAIN_MS)} still ${counts}${hint}` };
}

async function run(opts: Options): Promise<number> {
  const c = new Client(opts);
  try {
    process.stdout.write(`Jarvis stability check: ${opts.url}${opts.quick ? ' (quick)' : ''}, timeout ${opts.timeoutMs} ms per request\n`);
    let baseline: Record<string, unknown>;
    try {
      baseline = (await c.health(Math.min(opts.timeoutMs, 5000))).body;
    } catch (err) {
      const what = err instanceof NotJarvis ? 'no Jarvis answering at' : 'cannot reach Jarvis at';
      process.stdout.write(`✗ ${what} ${opts.url}: ${describe(err)}\n`);
      return 1;
    }
    const authProblem = await c.authProblem();
    if (authProblem) {
      process.stdout.write(`✗ ${opts.url} refused ${opts.apiKey ? 'the API key given' : 'a request without --api-key'}: ${authProblem}\n`);
      return 1;
    }

    const counts = opts.quick ? { rapid: 3, sessions: 10, perSession: 5, aborts: 10 } : { rapid: 5, sessions: 20, perSession: 5, aborts: 20 };
    const checks: [string, () => Promise<CheckResult>][] = [
      ['rapid requests', () => rapidRequests(c, counts.rapid)],
      ['concurrency', () => concurrency(c, counts.sessions, counts.perSession)],
      ['client aborts', () => clientAborts(c, counts.aborts)],
      ['health', () => healthDrains(c, baseline)],
    ];
    const failed: string[] = [];
    for (const [name, check] of checks) {
      let result: CheckResult;
      try {
        result = await check();
      } catch (err) {
        result = { ok: false, line: `${name}: ${describe(err)}` };
      }
      if (!result.ok) failed.push(name);
      process.stdout.write(`${result.ok ? '✓' : '✗'} ${result.line}\n`);
    }
    if (failed.length === 0) {
      process.stdout.write('✓✓✓ ALL TESTS PASSED ✓✓✓\n');
      return 0;
    }
    process.stdout.write(`✗✗✗ ${failed.length} of ${checks.length} CHECKS FAILED: ${failed.join(', ')} ✗✗✗\n`);
    return 1;
  } finally {
    await c.close();
  }
}

let opts: Options;
try {
  opts = parseOptions(process.argv.slice(2));
} catch (err) {
  process.stderr.write(`stability: ${describe(err)}\n${USAGE}\n`);
  process.exit(2);
}

run(opts).then(
  (code) => {
    process.exitCode = code;
    // Everything is closed by now; this only guards against a handle we do not own keeping the process alive.
    setTimeout(() => process.exit(code), 2000).unref();
  },
  (err: unknown) => {
    process.stdout.write(`✗ stability tool crashed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
