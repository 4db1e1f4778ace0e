// Scenario 10's client, run as its own process (pinned away from Jarvis):
//   node --import tsx bench/realtime-client.ts '<RealtimeSpec JSON>' [--watch-stdin]
// Two halves, each in pairs of sets whose order alternates, and one line `BENCH_RESULT <RealtimeClientResult JSON>`:
//  - text: the same question answered through Jarvis's Realtime API in text mode (GET /v1/realtime?model= of a
//    model that does not speak it: `conversation.item.create`, then `response.create` on the open socket) and
//    through POST /v1/chat/completions with `stream: true`, both to the OpenAI mock; each turn's first token and
//    Jarvis's CPU over each set;
//  - relay: responses with audio from the Realtime fake, read over sockets to the fake itself (direct) and over
//    sockets through Jarvis's relay (`realtime: native`); when each transcript and audio delta arrived after
//    `response.create` was sent, when `response.done` did, and Jarvis's CPU over each set. One relay variant per
//    answer asked for (its words and pacing).
// Turns come in sets, back to back on one path in one CPU window (as scenario 9's rollout does: a turn after an idle
// spell costs any process here several times its CPU). Each turn of a set over a socket has a socket of its own, and
// the items are deleted between sets (outside the windows), so every response reads a conversation of one message,
// as the HTTP request does.
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Pool } from 'undici';
import WebSocket, { type RawData } from 'ws';
import { driverMain } from './load-client.js';
import { cpuSeconds } from './proc-stats.js';
import { chatBody, runChatStream, streamPool } from './stream-client.js';

export type TextPath = 'ws' | 'http';
export const TEXT_PATHS: readonly TextPath[] = ['ws', 'http'];
export type RelayPath = 'direct' | 'jarvis';
export const RELAY_PATHS: readonly RelayPath[] = ['direct', 'jarvis'];

export interface RealtimeSpec {
  label: string;
  /** Jarvis, http://127.0.0.1:PORT. */
  origin: string;
  /** The text half's model (served by the OpenAI mock, so in text mode). */
  textModel: string;
  /** Tokens of the mock's answer (each turn is checked for them). */
  tokens: number;
  /** The Realtime fake's socket base, ws://127.0.0.1:PORT/v1 (its socket is `${url}/realtime?model=`). */
  directUrl: string;
  /** The relay half's model (an upstream with `realtime: native`). */
  relayModel: string;
  /** The relay half's answers, each measured in pairs of sets of its own. */
  relay: RelayVariant[];
  /** Measured pairs of sets of each half: a set is `turnsPerSet` text turns (or `responsesPerSet` responses) back to back on one path. */
  textPairs: number;
  turnsPerSet: number;
  responsesPerSet: number;
  /** First, `warmupConcurrency` loops of unmeasured sets on sockets of their own: text sets for `warmupMs`, then relay sets for `relayWarmupMs`. */
  warmupMs: number;
  relayWarmupMs: number;
  warmupConcurrency: number;
  /** Then unmeasured pairs of each half on the measured sockets (this process's own code warms too). */
  warmup: number;
  /** Then Jarvis's CPU over this long with nothing sent: what it spends idle, for the report. */
  idleMs: number;
  /** Quiet time after each set, inside its CPU window: Jarvis's batched log writes land in it. */
  settleMs: number;
  timeoutMs: number;
  /** Jarvis's pid, for its CPU; none: CPU is NaN. */
  pid?: number;
}

/** One answer of the relay half: the fake's `tokens:` and `delay:` knobs, and the measured pairs of sets of it per run. */
export interface RelayVariant {
  /** Words of the fake's answer: each a transcript delta and an audio delta. */
  words: number;
  /** The fake's pause before each word, ms (0: unpaced, 32 words a write burst). */
  delayMs: number;
  pairs: number;
}

/** A set of text turns back to back on one path. */
export interface TextSetRecord {
  path: TextPath;
  /** The pair it was measured in (a set of each path, back to back): socket / HTTP ratios are taken per pair. */
  pair: number;
  /** Per turn. Socket: `response.create` sent → the first `response.output_text.delta`; HTTP: the request handed to undici → the first content chunk. ms. */
  ttftMs: number[];
  /** Per turn. Socket: → `response.done`; HTTP: → the end of the body (after `[DONE]`). ms. */
  totalMs: number[];
  /** Jarvis's CPU over the set (on the socket, from the first `conversation.item.create`) and the settle after it, seconds. */
  cpuSec: number;
  /** This client's own CPU over the same window, seconds. */
  clientCpuSec: number;
}

/** One response with audio, timed from `response.create` sent. */
export interface RelayResponseTiming {
  /** → `response.created`, ms. */
  createdMs: number;
  /** → each `response.output_audio_transcript.delta` / `response.output_audio.delta`, in arrival order, ms. */
  deltaMs: number[];
  /** → `response.done`, ms. */
  doneMs: number;
}

/** A set of responses back to back on one path, each on a socket of its own. */
export interface RelaySetRecord {
  path: RelayPath;
  pair: number;
  responses: RelayResponseTiming[];
  /** Frames the client sent and received over the set (each response's user message, the response, its rate_limits.updated). */
  frames: number;
  /** Bytes of the frames received over the set. */
  bytes: number;
  /** Reads of the clients' TCP sockets over the set (chunks their 'data' event delivered): how the frames came bunched. */
  reads: number;
  /** Jarvis's CPU over the set and the settle after it, seconds (on the direct path Jarvis relays nothing: its idle over as long). */
  cpuSec: number;
  clientCpuSec: number;
}

export interface RealtimeClientResult {
  label: string;
  /** Turns (text) and responses (relay) run in the timed warm-up. */
  warmup: { text: number; relay: number };
  /** Jarvis's CPU while idle, ms a second. */
  idleCpuMsPerSec: number;
  text: Record<TextPath, TextSetRecord[]>;
  /** Per relay variant, in the spec's order. */
  relay: Record<RelayPath, RelaySetRecord[]>[];
  /** Sets that failed (measured or warm-up), with why. */
  errors: string[];
}

type Json = Record<string, unknown>;

/** The question of the text half (the mock answers with its default tokens whatever it is asked). */
export const QUESTION = 'What is the weather like on the coast today?';
/** The user's text of the relay half: the fake answers `tokens:<n>` with n words, audio and transcript (`delay:<ms>` before each). */
export const relayQuestion = (words: number, delayMs = 0) => `Tell me a story. tokens:${words}${delayMs > 0 ? ` delay:${delayMs}` : ''}`;

/** A frame's event type, read from its first bytes without parsing it (an audio delta is 6.4 kB of base64). */
const TYPE = /"type"\s*:\s*"([\w.]+)"/;
const typeOf = (data: Buffer) => TYPE.exec(data.toString('latin1', 0, Math.min(data.length, 160)))?.[1] ?? '';
const parse = (data: Buffer) => JSON.parse(data.toString('utf8')) as Json;

type OnFrame<T> = (type: string, data: Buffer, at: number) => T | undefined;

/** One Realtime socket (to Jarvis or to the fake) whose frames are awaited one exchange at a time. */
class RealtimeSocket {
  readonly #ws: WebSocket;
  #wait: { on: OnFrame<unknown>; resolve: (v: unknown) => void; reject: (err: unknown) => void } | undefined;
  #closed = false;
  /** Frames and bytes received so far, and frames sent. */
  received = 0;
  bytes = 0;
  sent = 0;
  /** Chunks read from the TCP socket so far. */
  reads = 0;
  /** The items of the last exchange, deleted before the next. */
  items: string[] = [];

  private constructor(ws: WebSocket) {
    this.#ws = ws;
    ws.on('message', (data: RawData) => {
      const at = performance.now();
      const buf = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
      this.received++;
      this.bytes += buf.length;
      const wait = this.#wait;
      if (!wait) return;
      const type = typeOf(buf);
      try {
        if (type === 'error') throw new Error(`error event: ${buf.toString('utf8').slice(0, 300)}`);
        const v = wait.on(type, buf, at);
        if (v !== undefined) {
          this.#wait = undefined;
          wait.resolve(v);
        }
      } catch (err) {
        this.#wait = undefined;
        wait.reject(err);
      }
    });
    ws.on('error', () => {});
    // A listener of its own on the TCP socket ws reads, once ws has its own there (earlier, the bytes that came with
    // the 101 would reach this one alone): it counts reads and changes nothing of how ws reads them.
    ws.once('open', () => (ws as unknown as { _socket: Socket })._socket.on('data', () => this.reads++));
    ws.once('close', (code) => {
      this.#closed = true;
      this.#wait?.reject(new Error(`the socket closed (${code})`));
      this.#wait = undefined;
    });
  }

  /** Opens `url` and waits for its `session.created`. */
  static async open(url: string, timeoutMs: number): Promise<RealtimeSocket> {
    const ws = new WebSocket(url, { perMessageDeflate: false, handshakeTimeout: timeoutMs });
    // Listening from the start: session.created may come in the same read as the 101.
    const s = new RealtimeSocket(ws);
    const created = s.next((type) => (type === 'session.created' ? true : undefined), timeoutMs);
    const opened = new Promise<void>((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
      ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: HTTP ${res.statusCode}`)));
    });
    try {
      await Promise.all([opened, created]);
    } catch (err) {
      ws.terminate();
      throw err;
    }
    return s;
  }

  send(event: Json): void {
    if (this.#closed) throw new Error('the socket is closed');
    this.sent++;
    this.#ws.send(JSON.stringify(event));
  }

  /** Resolves with the first value `on` returns for a frame (an `error` event or the close rejects). */
  next<T>(on: OnFrame<T>, timeoutMs: number): Promise<T> {
    if (this.#closed) return Promise.reject(new Error('the socket is closed'));
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#wait = undefined;
        reject(new Error(`no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#wait = {
        on,
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v as T);
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      };
    });
  }

  /** Deletes the last exchange's items (the conversation is empty again). */
  async clear(timeoutMs: number): Promise<void> {
    const items = this.items;
    this.items = [];
    if (items.length === 0) return;
    let left = items.length;
    const deleted = this.next((type) => (type === 'conversation.item.deleted' && --left === 0 ? true : undefined), timeoutMs);
    for (const id of items) this.send({ type: 'conversation.item.delete', item_id: id });
    await deleted;
  }

  /** Adds a user message and waits for its `conversation.item.done`. */
  async ask(id: string, text: string, timeoutMs: number): Promise<void> {
    const done = this.next((type, data) => (type === 'conversation.item.done' && data.includes(id) ? true : undefined), timeoutMs);
    this.send({ type: 'conversation.item.create', item: { id, type: 'message', role: 'user', content: [{ type: 'input_text', text }] } });
    await done;
    this.items.push(id);
  }

  close(): void {
    if (!this.#closed) this.#ws.close(1000);
  }
}

/** The pause between emptying the conversations and a set's window. */
const QUIET_MS = 5;

let itemSeq = 0;
const userItemId = () => `item_bench_${process.pid}_${itemSeq++}`;

/** The assistant item of a `response.output_item.added`, remembered for the delete. */
function rememberOutput(s: RealtimeSocket, data: Buffer): void {
  const id = (parse(data).item as Json | undefined)?.id;
  if (typeof id === 'string') s.items.push(id);
}

/** The response of a `response.done`, checked to have completed. */
function completed(data: Buffer): Json {
  const response = parse(data).response as Json | undefined;
  if (response?.status !== 'completed') throw new Error(`response ${String(response?.status)}: ${JSON.stringify(response?.status_details ?? null).slice(0, 200)}`);
  return response;
}

interface TurnTiming {
  ttftMs: number;
  totalMs: number;
}

/** A text-mode turn over the socket: the question, then `response.create`, read to `response.done`. */
async function textWsTurn(s: RealtimeSocket, spec: RealtimeSpec): Promise<TurnTiming> {
  await s.ask(userItemId(), QUESTION, spec.timeoutMs);
  let ttftMs = NaN;
  let tokens = 0;
  const sent = performance.now();
  const end = s.next((type, data, at) => {
    if (type === 'response.output_text.delta') {
      if (tokens++ === 0) ttftMs = at - sent;
    } else if (type === 'response.output_item.added') rememberOutput(s, data);
    else if (type === 'response.done') {
      completed(data);
      return at;
    }
    return undefined;
  }, spec.timeoutMs);
  s.send({ type: 'response.create' });
  const at = await end;
  if (tokens !== spec.tokens) throw new Error(`${tokens} text deltas, ${spec.tokens} expected`);
  return { ttftMs, totalMs: at - sent };
}

/** The same question through POST /v1/chat/completions, streamed. */
async function textHttpTurn(pool: Pool, spec: RealtimeSpec): Promise<TurnTiming> {
  const body = chatBody({ model: spec.textModel, messages: [{ role: 'user', content: QUESTION }] });
  const r = await runChatStream(pool, { origin: spec.origin, path: '/v1/chat/completions', headers: {} }, body, { timeoutMs: spec.timeoutMs });
  if (r.error) throw new Error(r.error);
  if (r.tokens !== spec.tokens) throw new Error(`${r.tokens} content chunks, ${spec.tokens} expected`);
  return { ttftMs: r.ttftMs, totalMs: r.totalMs };
}

/** A response with audio over `s` (direct or relayed): each delta's arrival after `response.create` was sent. */
async function relayTurn(s: RealtimeSocket, spec: RealtimeSpec, v: RelayVariant): Promise<RelayResponseTiming> {
  await s.ask(userItemId(), relayQuestion(v.words, v.delayMs), spec.timeoutMs);
  const deltaMs: number[] = [];
  let createdMs = NaN;
  let doneAt = NaN;
  const sent = performance.now();
  // rate_limits.updated follows response.done (often in the same read): the exchange ends with it, so it is counted
  // as this response's frame, not the next one's.
  const end = s.next((type, data, at) => {
    if (type === 'response.output_audio_transcript.delta' || type === 'response.output_audio.delta') deltaMs.push(at - sent);
    else if (type === 'response.created') createdMs = at - sent;
    else if (type === 'response.output_item.added') rememberOutput(s, data);
    else if (type === 'response.done') {
      completed(data);
      doneAt = at;
    } else if (type === 'rate_limits.updated' && !Number.isNaN(doneAt)) return true;
    return undefined;
  }, spec.timeoutMs);
  s.send({ type: 'response.create' });
  await end;
  if (deltaMs.length !== 2 * v.words) throw new Error(`${deltaMs.length} deltas, ${2 * v.words} expected`);
  return { createdMs, deltaMs, doneMs: doneAt - sent };
}

/** The sockets and connection of one client: a text socket per turn of a set, a socket per response of a set on each relay path. */
interface Sockets {
  text: RealtimeSocket[];
  pool: Pool;
  direct: RealtimeSocket[];
  jarvis: RealtimeSocket[];
}

const wsOrigin = (origin: string) => origin.replace(/^http/, 'ws');

async function openSockets(spec: RealtimeSpec): Promise<Sockets> {
  const out: Sockets = { text: [], pool: streamPool(spec.origin, 1), direct: [], jarvis: [] };
  try {
    const open = async (list: RealtimeSocket[], n: number, url: string) => {
      for (let i = 0; i < n; i++) list.push(await RealtimeSocket.open(url, spec.timeoutMs));
    };
    await open(out.text, spec.turnsPerSet, `${wsOrigin(spec.origin)}/v1/realtime?model=${encodeURIComponent(spec.textModel)}`);
    await open(out.direct, spec.responsesPerSet, `${spec.directUrl}/realtime?model=${encodeURIComponent(spec.relayModel)}`);
    await open(out.jarvis, spec.responsesPerSet, `${wsOrigin(spec.origin)}/v1/realtime?model=${encodeURIComponent(spec.relayModel)}`);
    return out;
  } catch (err) {
    await closeSockets(out);
    throw err;
  }
}

async function closeSockets(s: Sockets): Promise<void> {
  for (const ws of [...s.text, ...s.direct, ...s.jarvis]) ws.close();
  await s.pool.destroy().catch(() => {});
}

/** Empties the conversations of `sockets` (outside any window): every response then reads one user message. */
async function clearAll(sockets: RealtimeSocket[], spec: RealtimeSpec): Promise<void> {
  await Promise.all(sockets.map((x) => x.clear(spec.timeoutMs)));
}

/** A set of text turns on `path`, back to back: over the socket, each turn on a socket of its own (an empty conversation). */
async function textSet(path: TextPath, s: Sockets, spec: RealtimeSpec): Promise<Pick<TextSetRecord, 'ttftMs' | 'totalMs'>> {
  const ttftMs: number[] = [];
  const totalMs: number[] = [];
  for (let k = 0; k < spec.turnsPerSet; k++) {
    const t = path === 'ws' ? await textWsTurn(s.text[k]!, spec) : await textHttpTurn(s.pool, spec);
    ttftMs.push(t.ttftMs);
    totalMs.push(t.totalMs);
  }
  return { ttftMs, totalMs };
}

/** A set of responses with audio on `path`, back to back, each on a socket of its own; with what the clients' sockets carried. */
async function relaySet(path: RelayPath, s: Sockets, spec: RealtimeSpec, v: RelayVariant): Promise<Pick<RelaySetRecord, 'responses' | 'frames' | 'bytes' | 'reads'>> {
  const sockets = s[path];
  const total = (f: (x: RealtimeSocket) => number) => sockets.reduce((n, x) => n + f(x), 0);
  const counts = () => ({ frames: total((x) => x.received + x.sent), bytes: total((x) => x.bytes), reads: total((x) => x.reads) });
  const before = counts();
  const responses: RelayResponseTiming[] = [];
  for (const socket of sockets) responses.push(await relayTurn(socket, spec, v));
  const after = counts();
  return { responses, frames: after.frames - before.frames, bytes: after.bytes - before.bytes, reads: after.reads - before.reads };
}

const message = (err: unknown) => (err instanceof Error ? err.message : String(err));

type WarmUpKind = { text: TextPath } | { relay: RelayPath; v: RelayVariant };

/**
 * `warmupConcurrency` loops of unmeasured sets, each on sockets of its own: text sets over both paths for `warmupMs`
 * (a fresh Jarvis needs thousands of turns to settle), then relay sets of every variant over both paths for
 * `relayWarmupMs`. How many turns and responses ran.
 */
async function warmUp(spec: RealtimeSpec, errors: string[]): Promise<{ text: number; relay: number }> {
  const n = { text: 0, relay: 0 };
  const phase = async (ms: number, kinds: WarmUpKind[]) => {
    if (ms <= 0 || spec.warmupConcurrency <= 0 || kinds.length === 0) return;
    const until = performance.now() + ms;
    const loop = async (i: number) => {
      let s: Sockets | undefined;
      try {
        s = await openSockets(spec);
        for (let k = i; performance.now() < until; k++) {
          const kind = kinds[k % kinds.length]!;
          try {
            if ('text' in kind) {
              await clearAll(s.text, spec);
              n.text += (await textSet(kind.text, s, spec)).ttftMs.length;
            } else {
              await clearAll(s[kind.relay], spec);
              n.relay += (await relaySet(kind.relay, s, spec, kind.v)).responses.length;
            }
          } catch (err) {
            if (errors.length < 20) errors.push(`warm-up ${'text' in kind ? `text ${kind.text}` : `relay ${kind.relay}`}: ${message(err)}`);
            await sleep(20);
          }
        }
      } catch (err) {
        if (errors.length < 20) errors.push(`warm-up: ${message(err)}`);
      } finally {
        if (s) await closeSockets(s);
      }
    };
    await Promise.all(Array.from({ length: spec.warmupConcurrency }, (_, i) => loop(i)));
  };
  await phase(spec.warmupMs, TEXT_PATHS.map((path) => ({ text: path })));
  await phase(spec.relayWarmupMs, spec.relay.flatMap((v) => RELAY_PATHS.map((path) => ({ relay: path, v }))));
  return n;
}

export async function runRealtime(spec: RealtimeSpec): Promise<RealtimeClientResult> {
  const out: RealtimeClientResult = { label: spec.label, warmup: { text: 0, relay: 0 }, idleCpuMsPerSec: NaN, text: { ws: [], http: [] }, relay: spec.relay.map(() => ({ direct: [], jarvis: [] })), errors: [] };
  const cpu = () => (spec.pid === undefined ? NaN : cpuSeconds(spec.pid));
  out.warmup = await warmUp(spec, out.errors);
  const s = await openSockets(spec);
  /** One set in a CPU window (after `before`, outside it); the set's figures, or undefined (the error is kept). */
  const windowed = async <T>(what: string, before: () => Promise<void>, set: () => Promise<T>): Promise<(T & { cpuSec: number; clientCpuSec: number }) | undefined> => {
    try {
      await before();
      // The emptied conversations' last acknowledgements have just arrived: what Jarvis does after them is not the set's.
      await sleep(QUIET_MS);
      const cpu0 = cpu();
      const own0 = process.cpuUsage();
      const r = await set();
      await sleep(spec.settleMs);
      const own = process.cpuUsage(own0);
      return { ...r, cpuSec: cpu() - cpu0, clientCpuSec: (own.user + own.system) / 1e6 };
    } catch (err) {
      out.errors.push(`${what}: ${message(err)}`);
      await sleep(spec.settleMs);
      return undefined;
    }
  };
  const textOnce = async (path: TextPath, pair: number, measured: boolean) => {
    const r = await windowed(`${measured ? '' : 'warm-up '}text ${path}`, () => clearAll(s.text, spec), () => textSet(path, s, spec));
    if (r && measured) out.text[path].push({ path, pair, ...r });
  };
  const relayOnce = (i: number) => async (path: RelayPath, pair: number, measured: boolean) => {
    const v = spec.relay[i]!;
    const r = await windowed(`${measured ? '' : 'warm-up '}relay ${path} (${v.words} words${v.delayMs > 0 ? `, ${v.delayMs} ms apart` : ''})`, () => clearAll(s[path], spec), () => relaySet(path, s, spec, v));
    if (r && measured) out.relay[i]![path].push({ path, pair, ...r });
  };
  const pairs = async <P>(n: number, paths: readonly P[], once: (p: P, pair: number, measured: boolean) => Promise<void>, measured: boolean) => {
    for (let i = 0; i < n; i++) for (const p of i % 2 === 0 ? paths : [...paths].reverse()) await once(p, i, measured);
  };
  try {
    await pairs(spec.warmup, TEXT_PATHS, textOnce, false);
    for (let i = 0; i < spec.relay.length; i++) await pairs(spec.warmup, RELAY_PATHS, relayOnce(i), false);
    if (spec.idleMs > 0) {
      const cpu0 = cpu();
      await sleep(spec.idleMs);
      out.idleCpuMsPerSec = ((cpu() - cpu0) * 1000) / (spec.idleMs / 1000);
    }
    await pairs(spec.textPairs, TEXT_PATHS, textOnce, true);
    for (let i = 0; i < spec.relay.length; i++) await pairs(spec.relay[i]!.pairs, RELAY_PATHS, relayOnce(i), true);
  } finally {
    await closeSockets(s);
  }
  return out;
}

/** How long a client may take at most: the warm-up, every exchange of every set at its time limit, the idle read, and a margin. */
export function realtimeClientLimitMs(spec: RealtimeSpec): number {
  const sets = 2 * ((1 + spec.relay.length) * spec.warmup + spec.textPairs + spec.relay.reduce((n, v) => n + v.pairs, 0));
  const perSet = 4 * spec.timeoutMs * Math.max(spec.turnsPerSet, spec.responsesPerSet) + spec.settleMs;
  return spec.warmupMs + spec.relayWarmupMs + 2 * perSet + spec.idleMs + sets * perSet + 30_000;
}

driverMain<RealtimeSpec>('realtime-client', import.meta.url, realtimeClientLimitMs, runRealtime);
