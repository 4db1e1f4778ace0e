import type { Logger } from 'pino';
import type { RouteConfig } from '../../config.js';
import { JarvisError } from '../../errors.js';
import type { Delta, ModelInfo, NativeResponsesRequest, Provider, RelayRequest, RelayResponse, StreamOptions } from '../provider.js';
import type { Circuit } from './circuit.js';
import { partsOf } from '../../streams/parts.js';
import type { AttemptHandle } from '../../streams/attempts.js';

/** A 429 whose retry-after is at most this long is waited out and retried at the same target; a longer one moves on. */
export const RETRY_AFTER_MAX_MS = 2000;

export interface RouteTarget {
  provider: Provider;
  upstream: string;
  model: string;
  weight: number;
  priority: number;
  circuit: Circuit | undefined;
  /** The API it speaks (openai, anthropic, gemini): what its attempts are billed and traced as. */
  kind: string;
}

/** The hooks /metrics implements. */
export interface RouteObserver {
  attempt(upstream: string, outcome: 'won' | 'failed' | 'deadline' | 'lost' | 'cancelled'): void;
  hedge(): void;
  upstreamFirstToken(upstream: string, ms: number): void;
}

/** Hedges running in the process, bounded (a hedge is a second paid request). */
export interface HedgeBudget {
  tryStart(): boolean;
  end(): void;
}

export interface RoutingDeps {
  log: Logger;
  hedges: HedgeBudget;
  observer?: RouteObserver | undefined;
  /** Orders targets of equal priority by weight; seeded in tests. */
  random?: () => number;
}

/** Whether a delta commits the answer: anything the client would see beyond an empty role chunk (or message start). */
function commits(d: Delta): boolean {
  if (d.text !== '' || d.finish !== undefined) return true;
  if (d.wire !== 'openai.chat') return partsOf(d).some((p) => p.type !== 'start' && p.type !== 'usage' && !((p.type === 'reasoning' || p.type === 'text') && p.text === ''));
  const choices = d.chunk?.choices;
  if (!Array.isArray(choices)) return d.chunk === undefined ? false : d.chunk.usage === undefined;
  for (const c of choices as unknown[]) {
    const delta = (c as { delta?: Record<string, unknown> } | null)?.delta;
    if (!delta) continue;
    for (const [k, v] of Object.entries(delta)) {
      if (k === 'role') continue;
      if ((typeof v === 'string' && v !== '') || (Array.isArray(v) && v.length > 0) || (typeof v === 'object' && v !== null && !Array.isArray(v))) return true;
    }
  }
  return false;
}

/** Whether a failure before the first token may go to another attempt: the upstream's trouble, not the request's. */
function retryable(err: unknown): err is JarvisError {
  if (!(err instanceof JarvisError)) return false;
  return err.status >= 500 || err.status === 429 || err.status === 408;
}

/** How long a 429 asked to wait, if it said. */
function retryAfterMs(err: JarvisError): number | undefined {
  const ms = Number(err.headers['retry-after-ms']);
  if (Number.isFinite(ms) && ms >= 0) return ms;
  const s = Number(err.headers['retry-after']);
  return Number.isFinite(s) && s >= 0 ? s * 1000 : undefined;
}

/** Targets by priority, and within one priority in a weighted random order. */
export function orderTargets(targets: RouteTarget[], random: () => number): RouteTarget[] {
  const byPriority = new Map<number, RouteTarget[]>();
  for (const t of targets) byPriority.set(t.priority, [...(byPriority.get(t.priority) ?? []), t]);
  const out: RouteTarget[] = [];
  for (const priority of [...byPriority.keys()].sort((a, b) => a - b)) {
    const left = [...byPriority.get(priority)!];
    while (left.length > 0) {
      let pick = random() * left.reduce((sum, t) => sum + t.weight, 0);
      let i = 0;
      while (i < left.length - 1 && (pick -= left[i]!.weight) >= 0) i++;
      out.push(...left.splice(i, 1));
    }
  }
  return out;
}

type Outcome = { kind: 'first' } | { kind: 'done' } | { kind: 'failed'; error: unknown } | { kind: 'deadline' };

interface Attempt {
  target: RouteTarget;
  controller: AbortController;
  iterator: AsyncIterator<Delta[]>;
  buffered: Delta[][];
  started: number;
  outcome: Promise<Outcome>;
  hedge: boolean;
  handle: AttemptHandle | undefined;
}

/** What an attempt that did not answer had generated: paid for all the same. */
function generatedBy(a: Attempt): { outputTokens: number; generatedChars: number; answered: boolean; durationMs: number } {
  let outputTokens = 0;
  let generatedChars = 0;
  for (const batch of a.buffered) {
    for (const d of batch) {
      if (d.text === '') continue;
      outputTokens++;
      generatedChars += d.text.length;
    }
  }
  return { outputTokens, generatedChars, answered: a.buffered.length > 0, durationMs: performance.now() - a.started };
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const t = setTimeout(done, ms);
    function done() {
      signal.removeEventListener('abort', aborted);
      resolve();
    }
    function aborted() {
      clearTimeout(t);
      reject(signal.reason);
    }
    signal.addEventListener('abort', aborted, { once: true });
  });

/**
 * A route (config `routes`) as one provider: each stream tries the route's targets in order, replacing an attempt
 * only while nothing has reached the client. An attempt that fails for the upstream's reasons (connection,
 * timeout, 5xx, 429) or sends no first token within `firstTokenTimeoutMs` gives way to a retry or the next target;
 * after `hedgeAfterMs` without a first token the next target starts too, and the first token wins. Once an
 * attempt has committed the answer, the stream stays with it. Every other attempt is aborted at once, so its
 * upstream connection closes; so are all of them when the stream is cancelled.
 */
export function routedProvider(route: RouteConfig, targets: RouteTarget[], deps: RoutingDeps): Provider {
  const random = deps.random ?? Math.random;
  const retries = route.retries ?? 0;
  const hedgeAfter = route.hedgeAfterMs ?? 0;

  /** How an attempt at one target starts: its chat stream, or its native Responses stream. */
  type Start = (target: RouteTarget, signal: AbortSignal, headers: Record<string, string> | undefined) => AsyncIterable<Delta[]>;

  async function* stream(open: Start, req: { headers?: Record<string, string> | undefined; hedge?: boolean | undefined }, { signal, served, attempts }: StreamOptions): AsyncGenerator<Delta[]> {
    const requestId = req.headers?.['x-request-id'];
    const log = deps.log;
    const order = orderTargets(targets, random);
    const allowed = order.filter((t) => t.circuit?.state !== 'open');
    // Every circuit open: the route is tried anyway rather than refused.
    const queue = allowed.length > 0 ? allowed : order.slice(0, 1);
    let next = 0;
    const tries = new Map<RouteTarget, number>();
    const live = new Set<Attempt>();
    let winner: Attempt | undefined;
    let hedged = false;
    let lastError: unknown;
    let started = 0;

    const start = (target: RouteTarget, hedge: boolean): void => {
      if (target.circuit && !target.circuit.allow() && allowed.length > 0) return;
      const n = (tries.get(target) ?? 0) + 1;
      tries.set(target, n);
      const controller = new AbortController();
      const handle = attempts?.started({ n: ++started, upstream: target.upstream, model: target.model, provider: target.kind, hedge });
      const headers = handle ? { ...req.headers, ...handle.headers } : req.headers;
      const iterator = open(target, controller.signal, headers)[Symbol.asyncIterator]();
      const attempt: Attempt = { target, controller, iterator, buffered: [], started: performance.now(), outcome: Promise.resolve({ kind: 'done' }), hedge, handle };
      log.info({ request_id: requestId, upstream: target.upstream, model: target.model, attempt: n }, hedge ? 'hedge_start' : 'attempt_start');
      if (hedge) deps.observer?.hedge();
      attempt.outcome = firstOf(attempt, route.firstTokenTimeoutMs);
      live.add(attempt);
    };

    const end = (a: Attempt, reason: 'lost' | 'cancelled'): void => {
      if (!live.delete(a)) return;
      a.controller.abort(new JarvisError('JARVIS_ERR_UPSTREAM_STREAM', `attempt ${reason}`));
      void a.iterator.return?.().catch(() => {});
      if (a.hedge) deps.hedges.end();
      log.info({ request_id: requestId, upstream: a.target.upstream, reason }, 'attempt_cancelled');
      deps.observer?.attempt(a.target.upstream, reason);
      a.handle?.ended({ outcome: 'cancelled', reason: reason === 'lost' ? 'hedge_lost' : 'cancelled', ...generatedBy(a) });
    };

    /** The next attempt after a failure: the same target while it has retries, else the next one. */
    const startNext = async (failed: RouteTarget | undefined, err: unknown): Promise<boolean> => {
      if (failed && (tries.get(failed) ?? 0) <= retries) {
        if (err instanceof JarvisError && err.status === 429) {
          const wait = retryAfterMs(err);
          if (wait !== undefined && wait > RETRY_AFTER_MAX_MS) return startNext(undefined, err);
          if (wait) await sleep(wait, signal);
        }
        start(failed, false);
        return true;
      }
      while (next < queue.length) {
        const before = live.size;
        start(queue[next++]!, false);
        if (live.size > before) return true;
      }
      return false;
    };

    const onAbort = () => {
      for (const a of [...live]) end(a, 'cancelled');
    };
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      await startNext(undefined, undefined);
      while (!winner) {
        if (live.size === 0) throw lastError ?? new JarvisError('JARVIS_ERR_UPSTREAM_UNREACHABLE', `No target of route '${route.model}' could be tried.`);
        const racers: Promise<{ a?: Attempt; o?: Outcome; hedge?: true }>[] = [...live].map((a) => a.outcome.then((o) => ({ a, o })));
        let hedgeTimer: NodeJS.Timeout | undefined;
        if (hedgeAfter > 0 && !hedged && req.hedge !== false && next < queue.length) {
          const newest = Math.max(...[...live].map((a) => a.started));
          racers.push(new Promise((resolve) => (hedgeTimer = setTimeout(() => resolve({ hedge: true }), Math.max(0, newest + hedgeAfter - performance.now())))));
        }
        const r = await Promise.race(racers);
        clearTimeout(hedgeTimer);
        signal.throwIfAborted();
        if (r.hedge) {
          hedged = true;
          if (deps.hedges.tryStart()) start(queue[next++]!, true);
          continue;
        }
        const { a, o } = r as { a: Attempt; o: Outcome };
        if (o.kind === 'first' || o.kind === 'done') {
          winner = a;
          live.delete(a);
          if (a.hedge) deps.hedges.end();
          for (const other of [...live]) end(other, 'lost');
          a.target.circuit?.succeeded();
          const ms = performance.now() - a.started;
          deps.observer?.upstreamFirstToken(a.target.upstream, ms);
          deps.observer?.attempt(a.target.upstream, 'won');
          log.info({ request_id: requestId, upstream: a.target.upstream, model: a.target.model, ttft_ms: Math.round(ms) }, 'attempt_won');
          a.handle?.won();
          served?.({ upstream: a.target.upstream, model: a.target.model });
          break;
        }
        live.delete(a);
        if (a.hedge) deps.hedges.end();
        a.controller.abort(new JarvisError('JARVIS_ERR_UPSTREAM_STREAM', 'attempt abandoned'));
        void a.iterator.return?.().catch(() => {});
        const error = o.kind === 'deadline' ? new JarvisError('JARVIS_ERR_UPSTREAM_TIMEOUT', `No first token from upstream ${a.target.upstream} within ${route.firstTokenTimeoutMs} ms.`) : o.error;
        const reason = o.kind === 'deadline' ? 'first_token_timeout' : error instanceof JarvisError ? error.code : 'error';
        log.warn({ request_id: requestId, upstream: a.target.upstream, reason, ...(error instanceof JarvisError ? { status: error.status } : {}) }, 'attempt_failed');
        deps.observer?.attempt(a.target.upstream, o.kind === 'deadline' ? 'deadline' : 'failed');
        a.handle?.ended({ outcome: 'error', reason, ...generatedBy(a) });
        if (o.kind !== 'deadline' && !retryable(error)) {
          // The request itself is wrong (400, 404, 413, 422): another target would say the same.
          throw error;
        }
        a.target.circuit?.failed();
        lastError = error;
        if (live.size === 0) await startNext(a.target, error);
      }
      for (const batch of winner.buffered) yield batch;
      winner.buffered = [];
      for (let n = await winner.iterator.next(); !n.done; n = await winner.iterator.next()) yield n.value;
    } finally {
      signal.removeEventListener('abort', onAbort);
      for (const a of [...live]) end(a, 'cancelled');
      if (winner) void winner.iterator.return?.().catch(() => {});
    }
  }

  /** An attempt's first batch that commits the answer (the batches before it held), its failure, or its deadline. */
  function firstOf(a: Attempt, deadlineMs: number | undefined): Promise<Outcome> {
    const pump = (async (): Promise<Outcome> => {
      try {
        for (;;) {
          const n = await a.iterator.next();
          if (n.done) return { kind: 'done' };
          a.buffered.push(n.value);
          if (n.value.some(commits)) return { kind: 'first' };
        }
      } catch (error) {
        return { kind: 'failed', error };
      }
    })();
    if (!deadlineMs) return pump;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<Outcome>((resolve) => (timer = setTimeout(() => resolve({ kind: 'deadline' }), deadlineMs)));
    return Promise.race([pump, deadline]).finally(() => clearTimeout(timer));
  }

  return {
    id: `route:${route.model}`,
    // What every target speaks: an answer may come from any of them.
    wires: targets.map((t) => t.provider.wires).reduce((all, w) => all.filter((x) => w.includes(x))),
    models: async (): Promise<ModelInfo[]> => [{ id: route.model, owned_by: 'jarvis' }],
    stream: (req, opts) => stream((t, signal, headers) => t.provider.stream({ ...req, model: t.model, ...(headers ? { headers } : {}) }, { signal }), req, opts),
    // A route whose every target serves the Responses API itself relays /v1/responses natively too, with the same
    // failover and hedges.
    ...(targets.every((t) => t.provider.streamResponses)
      ? { streamResponses: (req: NativeResponsesRequest, opts: StreamOptions) => stream((t, signal, headers) => t.provider.streamResponses!({ ...req, model: t.model, ...(headers ? { headers } : {}) }, { signal }), req, opts) }
      : {}),
    // Relays (completions, embeddings) go to the first target whose circuit lets them: no failover mid-answer.
    relay: (req: RelayRequest, opts): Promise<RelayResponse> => {
      const target = orderTargets(targets, random).find((t) => t.circuit?.state !== 'open') ?? targets[0]!;
      return target.provider.relay({ ...req, model: target.model }, opts);
    },
    ready: async ({ signal }) => {
      const results = await Promise.allSettled(targets.map((t) => t.provider.ready({ signal })));
      if (!results.some((r) => r.status === 'fulfilled')) throw new Error(`no target of route ${route.model} is ready`);
    },
  };
}
