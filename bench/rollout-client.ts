// Scenario 9's client, run as its own process (pinned away from Jarvis):
//   node --import tsx bench/rollout-client.ts '<RolloutSpec JSON>' [--watch-stdin]
// Runs tool-call rollouts through Jarvis's Responses API, over a WebSocket (GET /v1/responses, one
// `response.create` message a turn, `store: false`, the connection's memory behind `previous_response_id`) and
// over HTTP SSE (POST /v1/responses with `stream: true`, `store: true`, `previous_response_id`), alternating the
// two, and prints one line `BENCH_RESULT <RolloutClientResult JSON>`. A rollout: turn 1 asks; the upstream
// (bench/tool-loop-mock.ts) answers with a function call; each later turn sends only that call's output; after
// `calls` calls the answer is text. Each rollout's time, each turn's first token, and Jarvis's CPU over the rollout
// (its /proc schedstat, read before the rollout and after it has settled) are recorded.
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { createParser } from 'eventsource-parser';
import type { Pool } from 'undici';
import WebSocket from 'ws';
import { driverMain } from './load-client.js';
import { cpuSeconds } from './proc-stats.js';
import { FIRST_TOKEN_EVENTS, TOOLS, TURN_END_EVENTS, toolCallOf, turnProblem } from './rollout.js';
import { streamPool } from './stream-client.js';

export type Transport = 'ws' | 'sse';
export const TRANSPORTS: readonly Transport[] = ['ws', 'sse'];

export interface RolloutSpec {
  label: string;
  /** Jarvis, http://127.0.0.1:PORT. */
  origin: string;
  model: string;
  /** Function calls before the final text answer: a rollout is calls + 1 turns. */
  calls: number;
  /** Characters of each function output the client sends back. */
  outputChars: number;
  /** Measured rollouts per transport, in pairs whose order alternates (WS then SSE, SSE then WS, ...). */
  rollouts: number;
  /**
   * First, for this long, `warmupConcurrency` loops of unmeasured rollouts (each alternating the transports, on
   * connections of their own): a fresh Jarvis's first thousands of turns run partly unoptimised code.
   */
  warmupMs: number;
  warmupConcurrency: number;
  /** Then unmeasured pairs on the measured connection, as measured (the client's own code warms too). */
  warmup: number;
  /** Then Jarvis's CPU over this long with nothing sent: what it spends idle (timers), for the report. */
  idleMs: number;
  /** Quiet time after each rollout, inside its CPU window: Jarvis's batched log writes and a socket's close land in it. */
  settleMs: number;
  turnTimeoutMs: number;
  /** Jarvis's pid, for its CPU; none: CPU is NaN. */
  pid?: number;
}

export interface RolloutRecord {
  transport: Transport;
  /** The pair it was measured in (one rollout of each transport, back to back): WS / SSE ratios are taken per pair. */
  pair: number;
  /** First request sent (WS: before the socket is opened) → the last turn's `response.completed`, ms. */
  totalMs: number;
  /** WS: opening the socket (in totalMs); NaN over HTTP (its keep-alive connection is open already). */
  connectMs: number;
  /** Per turn: request or message sent → its first text or arguments delta, ms. */
  ttftMs: number[];
  /** Per turn: sent → its `response.completed`, ms. */
  turnMs: number[];
  /** Jarvis's CPU over the rollout and the settle after it, seconds. */
  cpuSec: number;
  /** This client's own CPU over the same window (process.cpuUsage), seconds: what the transport costs a client. */
  clientCpuSec: number;
}

export interface RolloutClientResult {
  label: string;
  /** Rollouts run in the timed warm-up. */
  warmupRollouts: number;
  /** Jarvis's CPU while idle, ms a second. */
  idleCpuMsPerSec: number;
  ws: RolloutRecord[];
  sse: RolloutRecord[];
  /** Rollouts that failed (measured or warm-up), with why. */
  errors: string[];
}

interface TurnTiming {
  ttftMs: number;
  totalMs: number;
  response: unknown;
}

type Json = Record<string, unknown>;

const QUESTION = 'Look up one fact per call, as many as it takes, then answer.';

/** What the client sends for turn `turn` (0-based): the question, or the output of the last turn's call. */
function inputOf(turn: number, callId: string | undefined, outputChars: number): unknown {
  if (turn === 0 || callId === undefined) return QUESTION;
  const head = `{"step":${turn - 1},"fact":"`;
  const output = `${head}${'x'.repeat(Math.max(0, outputChars - head.length - 2))}"}`;
  return [{ type: 'function_call_output', call_id: callId, output }];
}

/** The Response an event carries when it ends a turn, or an error for one that ended it badly. */
function turnEnd(event: Json): unknown {
  if (event.type === 'error') throw new Error(`error event: ${JSON.stringify(event.error ?? event).slice(0, 300)}`);
  return event.response;
}

/** One turn over HTTP: POST /v1/responses with stream: true, its SSE read to the end. */
async function sseTurn(pool: Pool, body: Json, timeoutMs: number): Promise<TurnTiming> {
  const sent = performance.now();
  const res = await pool.request({
    method: 'POST',
    path: '/v1/responses',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs),
  });
  if (res.statusCode !== 200) throw new Error(`HTTP ${res.statusCode}: ${(await res.body.text()).slice(0, 300)}`);
  let ttftMs = NaN;
  let end: { at: number; response: unknown } | undefined;
  let failure: unknown;
  const parser = createParser({
    onEvent(e) {
      if (end || failure) return;
      try {
        const event = JSON.parse(e.data) as Json;
        const type = String(event.type);
        if (Number.isNaN(ttftMs) && FIRST_TOKEN_EVENTS.has(type)) ttftMs = performance.now() - sent;
        if (TURN_END_EVENTS.has(type)) end = { at: performance.now(), response: turnEnd(event) };
      } catch (err) {
        failure = err;
      }
    },
  });
  const decoder = new TextDecoder();
  for await (const chunk of res.body) parser.feed(decoder.decode(chunk as Buffer, { stream: true }));
  if (failure) throw failure;
  if (!end) throw new Error('the stream ended without response.completed');
  return { ttftMs, totalMs: end.at - sent, response: end.response };
}

/** A WebSocket to GET /v1/responses whose turns are awaited one at a time. */
class ResponsesSocket {
  readonly #ws: WebSocket;
  #turn: { sent: number; ttftMs: number; resolve: (t: TurnTiming) => void; reject: (err: unknown) => void } | undefined;
  #closed = false;
  readonly closed: Promise<void>;

  private constructor(ws: WebSocket) {
    this.#ws = ws;
    this.closed = new Promise((resolve) => ws.once('close', () => resolve()));
    ws.on('message', (data) => this.#onMessage(String(data)));
    // A broken connection says so here, then closes: the turn in flight fails on the close.
    ws.on('error', () => {});
    ws.once('close', (code) => {
      this.#closed = true;
      this.#turn?.reject(new Error(`the socket closed (${code}) mid-turn`));
    });
  }

  static open(origin: string, timeoutMs: number): Promise<ResponsesSocket> {
    const ws = new WebSocket(`${origin.replace(/^http/, 'ws')}/v1/responses`, { perMessageDeflate: false, handshakeTimeout: timeoutMs });
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(new ResponsesSocket(ws)));
      ws.once('error', reject);
      ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: HTTP ${res.statusCode}`)));
    });
  }

  #onMessage(text: string): void {
    const turn = this.#turn;
    if (!turn) return;
    try {
      const event = JSON.parse(text) as Json;
      const type = String(event.type);
      if (Number.isNaN(turn.ttftMs) && FIRST_TOKEN_EVENTS.has(type)) turn.ttftMs = performance.now() - turn.sent;
      if (TURN_END_EVENTS.has(type)) {
        const at = performance.now();
        this.#turn = undefined;
        turn.resolve({ ttftMs: turn.ttftMs, totalMs: at - turn.sent, response: turnEnd(event) });
      }
    } catch (err) {
      this.#turn = undefined;
      turn.reject(err);
    }
  }

  /** Sends one `response.create` and resolves with the turn's timings at the event that ends it. */
  turn(body: Json, timeoutMs: number): Promise<TurnTiming> {
    if (this.#closed) return Promise.reject(new Error('the socket is closed'));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#turn = undefined;
        reject(new Error(`no response.completed within ${timeoutMs} ms`));
      }, timeoutMs);
      const done = <T>(fn: (v: T) => void) => (v: T) => {
        clearTimeout(timer);
        fn(v);
      };
      this.#turn = { sent: performance.now(), ttftMs: NaN, resolve: done(resolve), reject: done(reject) };
      this.#ws.send(JSON.stringify({ type: 'response.create', ...body }));
    });
  }

  close(): Promise<void> {
    if (!this.#closed) this.#ws.close(1000);
    return this.closed;
  }

  terminate(): void {
    this.#ws.terminate();
  }
}

/** One rollout over `transport`: calls + 1 turns, each checked (turnProblem); its timings. */
async function rollout(spec: RolloutSpec, transport: Transport, pool: Pool): Promise<Omit<RolloutRecord, 'cpuSec' | 'clientCpuSec' | 'pair'>> {
  const t0 = performance.now();
  let socket: ResponsesSocket | undefined;
  let connectMs = NaN;
  if (transport === 'ws') {
    socket = await ResponsesSocket.open(spec.origin, spec.turnTimeoutMs);
    connectMs = performance.now() - t0;
  }
  const ttftMs: number[] = [];
  const turnMs: number[] = [];
  try {
    let previous: string | undefined;
    let callId: string | undefined;
    for (let turn = 0; turn <= spec.calls; turn++) {
      const body: Json = {
        model: spec.model,
        input: inputOf(turn, callId, spec.outputChars),
        tools: TOOLS,
        ...(previous ? { previous_response_id: previous } : {}),
      };
      const t = socket ? await socket.turn({ ...body, store: false }, spec.turnTimeoutMs) : await sseTurn(pool, { ...body, store: true, stream: true }, spec.turnTimeoutMs);
      const problem = turnProblem(t.response, turn, spec.calls);
      if (problem) throw new Error(problem);
      ttftMs.push(t.ttftMs);
      turnMs.push(t.totalMs);
      previous = String((t.response as Json).id);
      callId = toolCallOf(t.response)?.callId;
    }
    const totalMs = performance.now() - t0;
    await socket?.close();
    return { transport, totalMs, connectMs, ttftMs, turnMs };
  } catch (err) {
    socket?.terminate();
    throw err;
  }
}

/** `concurrency` loops of rollouts, alternating the transports, until `ms` have passed; how many ran. */
async function warmUp(spec: RolloutSpec, errors: string[]): Promise<number> {
  if (spec.warmupMs <= 0 || spec.warmupConcurrency <= 0) return 0;
  const pool = streamPool(spec.origin, spec.warmupConcurrency);
  const until = performance.now() + spec.warmupMs;
  let n = 0;
  const loop = async (i: number) => {
    for (let k = i; performance.now() < until; k++) {
      const transport = TRANSPORTS[k % 2]!;
      try {
        await rollout(spec, transport, pool);
        n++;
      } catch (err) {
        if (errors.length < 20) errors.push(`warm-up ${transport}: ${err instanceof Error ? err.message : String(err)}`);
        await sleep(20);
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: spec.warmupConcurrency }, (_, i) => loop(i)));
  } finally {
    await pool.destroy().catch(() => {});
  }
  return n;
}

export async function runRollouts(spec: RolloutSpec): Promise<RolloutClientResult> {
  const out: RolloutClientResult = { label: spec.label, warmupRollouts: 0, idleCpuMsPerSec: NaN, ws: [], sse: [], errors: [] };
  // One keep-alive connection, as an HTTP client's pool keeps it: no TCP connect is measured over HTTP.
  const pool = streamPool(spec.origin, 1);
  const cpu = () => (spec.pid === undefined ? NaN : cpuSeconds(spec.pid));
  const once = async (transport: Transport, pair: number, measured: boolean) => {
    const cpu0 = cpu();
    const own0 = process.cpuUsage();
    try {
      const r = await rollout(spec, transport, pool);
      await sleep(spec.settleMs);
      const own = process.cpuUsage(own0);
      if (measured) out[transport].push({ ...r, pair, cpuSec: cpu() - cpu0, clientCpuSec: (own.user + own.system) / 1e6 });
    } catch (err) {
      out.errors.push(`${measured ? '' : 'warm-up '}${transport}: ${err instanceof Error ? err.message : String(err)}`);
      await sleep(spec.settleMs);
    }
  };
  try {
    const pairs = async (n: number, measured: boolean) => {
      for (let i = 0; i < n; i++) for (const t of i % 2 === 0 ? TRANSPORTS : [...TRANSPORTS].reverse()) await once(t, i, measured);
    };
    out.warmupRollouts = await warmUp(spec, out.errors);
    await pairs(spec.warmup, false);
    if (spec.idleMs > 0) {
      const cpu0 = cpu();
      await sleep(spec.idleMs);
      out.idleCpuMsPerSec = ((cpu() - cpu0) * 1000) / (spec.idleMs / 1000);
    }
    await pairs(spec.rollouts, true);
  } finally {
    await pool.destroy().catch(() => {});
  }
  return out;
}

/** How long a client may take at most: the warm-up, every turn of every rollout at its time limit, the idle read, and a margin. */
export function rolloutClientLimitMs(spec: RolloutSpec): number {
  return spec.warmupMs + (spec.calls + 1) * spec.turnTimeoutMs + spec.idleMs + (spec.rollouts + spec.warmup) * 2 * ((spec.calls + 1) * spec.turnTimeoutMs + spec.settleMs) + 30_000;
}

driverMain<RolloutSpec>('rollout-client', import.meta.url, rolloutClientLimitMs, runRollouts);
