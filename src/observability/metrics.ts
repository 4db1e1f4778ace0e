import type { LedgerObserver } from '../ledger/ledger.js';
import { readdir } from 'node:fs/promises';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { StreamObserver, StreamOutcome } from '../streams/chat-stream.js';

export interface LiveCounts {
  streams: number;
  sessions: number;
  buffers: number;
  timers: number;
  subscribers: number;
  /** Per-key stream slots held by this instance's running streams. */
  quota_slots: number;
}

const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const DURATION_BUCKETS = [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900];
const LOOP_DELAY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

/**
 * Jarvis's Prometheus metrics, on a registry of its own (several servers can run in one process). Gauges are
 * read at scrape time, so the hot path pays only for counters and histograms.
 */
export class Metrics implements StreamObserver {
  readonly registry = new Registry();
  /** This process's slot among JARVIS_WORKERS workers: the `worker` label of every series. */
  readonly worker: number | undefined;
  readonly #requests: Counter<'route' | 'method' | 'status'>;
  readonly #streams: Counter<'outcome'>;
  readonly #duration: Histogram<'outcome'>;
  readonly #ttft: Histogram;
  readonly #ttftAdded: Histogram;
  readonly #tokens: Counter;
  readonly #cancellations: Counter<'reason'>;
  readonly #flushes: Counter<'kind'>;
  readonly #eventsDropped: Counter;
  readonly #subscribersDropped: Counter<'reason'>;
  readonly #controlLatency: Histogram;
  readonly #degraded: Counter;
  readonly #eventReadFailures: Counter;
  readonly #quotaExceeded: Counter<'quota'>;
  readonly #attempts: Counter<'upstream' | 'outcome'>;
  readonly #hedges: Counter;
  readonly #hedgeLosers: Counter;
  readonly #upstreamTtft: Histogram<'upstream'>;
  readonly #circuitOpen: Gauge<'upstream'>;
  readonly #loopDelay: Histogram;

  /** With `worker` (JARVIS_WORKERS), every series carries a `worker` label: each worker answers for itself. */
  constructor(live: () => LiveCounts, opts: { worker?: number | undefined } = {}) {
    this.worker = opts.worker;
    if (opts.worker !== undefined) this.registry.setDefaultLabels({ worker: String(opts.worker) });
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: 10 });
    // Two default collectors walk every open handle on the event loop at each scrape: process_open_fds with a
    // readdirSync of /proc/self/fd, nodejs_active_handles through process._getActiveHandles(). With 15,500
    // descriptors open (under 8,000 streams) that blocked the loop for 20-60 ms per scrape. The fd count is read
    // off the loop instead, and nodejs_active_resources (a default too) already counts handles by type.
    for (const name of ['process_open_fds', 'nodejs_active_handles', 'nodejs_active_handles_total']) this.registry.removeSingleMetric(name);
    if (process.platform === 'linux') {
      new Gauge({
        name: 'process_open_fds',
        help: 'Number of open file descriptors.',
        registers,
        async collect() {
          // Minus the descriptor readdir itself held open.
          const fds = await readdir('/proc/self/fd').catch(() => undefined);
          if (fds) this.set(fds.length - 1);
        },
      });
    }
    this.#requests = new Counter({ name: 'jarvis_http_requests_total', help: 'HTTP requests by route, method and status', labelNames: ['route', 'method', 'status'], registers });
    this.#streams = new Counter({ name: 'jarvis_streams_total', help: 'Chat streams by outcome (end, cancelled, error, rejected)', labelNames: ['outcome'], registers });
    this.#duration = new Histogram({ name: 'jarvis_stream_duration_seconds', help: 'Chat stream duration from stream_start to stream_end', labelNames: ['outcome'], buckets: DURATION_BUCKETS, registers });
    this.#ttft = new Histogram({ name: 'jarvis_time_to_first_token_seconds', help: 'Time from stream_start to the first token written to the client', buckets: LATENCY_BUCKETS, registers });
    this.#ttftAdded = new Histogram({
      name: 'jarvis_added_first_token_latency_seconds',
      help: "The part of time to first token that Jarvis adds on top of the provider's own (includes barge-in waits)",
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.#tokens = new Counter({ name: 'jarvis_tokens_relayed_total', help: 'Tokens relayed to clients (counted per event batch)', registers });
    this.#cancellations = new Counter({ name: 'jarvis_cancellations_total', help: 'Cancelled streams by reason', labelNames: ['reason'], registers });
    this.#flushes = new Counter({ name: 'jarvis_event_flushes_total', help: 'Token batch flushes by kind', labelNames: ['kind'], registers });
    this.#eventsDropped = new Counter({
      name: 'jarvis_events_dropped_total',
      help: 'Events that overflowed a slow subscriber, which was then disconnected (what it had not read is lost with it; Last-Event-ID replay recovers it)',
      registers,
    });
    this.#subscribersDropped = new Counter({ name: 'jarvis_event_subscribers_dropped_total', help: 'Event subscribers disconnected, by reason', labelNames: ['reason'], registers });
    this.#controlLatency = new Histogram({
      name: 'jarvis_redis_control_latency_seconds',
      help: 'Cross-instance control round trip: cancel request sent to the owning instance until its answer (after cleanup)',
      buckets: LATENCY_BUCKETS,
      registers,
    });
    // prom-client's nodejs_eventloop_lag_* are percentiles of the time since the last scrape: they cannot be added up
    // over an hour or across instances. This histogram can (histogram_quantile over any range).
    this.#loopDelay = new Histogram({
      name: 'jarvis_event_loop_delay_seconds',
      help: 'How late the event-loop watchdog tick (every 10 ms) fired: event-loop delay, cumulative',
      buckets: LOOP_DELAY_BUCKETS,
      registers,
    });
    this.#degraded = new Counter({
      name: 'jarvis_barge_in_degraded_total',
      help: 'Session claims this instance decided alone, Redis being away (redis_unavailable) or too slow to answer (redis_timeout)',
      labelNames: ['reason'],
      registers,
    });
    this.#eventReadFailures = new Counter({ name: 'jarvis_event_read_failures_total', help: 'Failed reads of the Redis event stream (retried every 250 ms)', registers });
    this.#attempts = new Counter({
      name: 'jarvis_upstream_attempts_total',
      help: 'Attempts of routed streams, by upstream and outcome: won, failed, deadline (no first token in time), lost (a hedge or the first attempt beaten), cancelled',
      labelNames: ['upstream', 'outcome'],
      registers,
    });
    this.#hedges = new Counter({ name: 'jarvis_hedges_total', help: 'Hedged starts: a second target started because the first gave no token in hedgeAfterMs', registers });
    this.#hedgeLosers = new Counter({ name: 'jarvis_hedge_losers_total', help: 'Attempts aborted because another attempt of the same stream produced the first token', registers });
    this.#upstreamTtft = new Histogram({
      name: 'jarvis_upstream_first_token_seconds',
      help: 'Time from an attempt starting to its first token, by upstream (routed streams)',
      labelNames: ['upstream'],
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.#circuitOpen = new Gauge({ name: 'jarvis_circuit_open', help: 'Whether an upstream circuit breaker is open (1) or closed (0)', labelNames: ['upstream'], registers });
    this.#quotaExceeded = new Counter({ name: 'jarvis_quota_exceeded_total', help: 'Chat requests refused 429 by a key quota, by quota (rpm, streams)', labelNames: ['quota'], registers });
    const gauge = (name: string, help: string, read: (c: LiveCounts) => number) =>
      new Gauge({
        name,
        help,
        registers,
        collect() {
          this.set(read(live()));
        },
      });
    gauge('jarvis_live_streams', 'Streams between stream_start and stream_end', (c) => c.streams);
    gauge('jarvis_live_sessions', 'Sessions with a stream in flight', (c) => c.sessions);
    gauge('jarvis_event_buffers', 'Token batches held for live streams', (c) => c.buffers);
    gauge('jarvis_event_flush_timers', 'Pending batch flush timers', (c) => c.timers);
    gauge('jarvis_event_subscribers', 'Connected /v1/events subscribers', (c) => c.subscribers);
    gauge('jarvis_quota_stream_slots', 'Per-key stream slots held by running streams on this instance', (c) => c.quota_slots);
  }

  request(route: string, method: string, status: number): void {
    this.#requests.inc({ route, method, status: String(status) });
  }

  started(): void {}

  firstToken(totalMs: number, providerMs: number): void {
    this.#ttft.observe(totalMs / 1000);
    this.#ttftAdded.observe(Math.max(0, totalMs - providerMs) / 1000);
  }

  ended(outcome: StreamOutcome['kind'], durationMs: number, _tokens: number, reason?: string): void {
    this.#streams.inc({ outcome });
    this.#duration.observe({ outcome }, durationMs / 1000);
    if (reason) this.#cancellations.inc({ reason });
  }

  flushed(kind: string, tokens: number): void {
    this.#flushes.inc({ kind });
    this.#tokens.inc(tokens);
  }

  /** Exposes jarvis_redis_up (1 linked, 0 degraded); only instances configured with Redis have it. */
  trackRedis(available: () => boolean): void {
    new Gauge({
      name: 'jarvis_redis_up',
      help: 'Whether the Redis link is up (0: sessions and events degraded to this instance)',
      registers: [this.registry],
      collect() {
        this.set(available() ? 1 : 0);
      },
    });
  }

  /** The usage ledger's hooks: lines written, failed writes, dropped lines, and its queue and store read at scrape. */
  ledger(): LedgerObserver {
    const registers = [this.registry];
    const written = new Counter({ name: 'jarvis_ledger_lines_written_total', help: 'Usage ledger lines written to its store', registers });
    const failed = new Counter({ name: 'jarvis_ledger_write_failures_total', help: 'Failed writes of a batch of ledger lines (kept and retried every flush)', registers });
    const dropped = new Counter({ name: 'jarvis_ledger_lines_dropped_total', help: 'Ledger lines dropped because the queue was full while the store was down', registers });
    return {
      written: (n) => written.inc(n),
      failed: () => failed.inc(),
      dropped: (n) => dropped.inc(n),
      queueDepth: (read) =>
        void new Gauge({ name: 'jarvis_ledger_queue_depth', help: 'Ledger lines waiting to be written', registers, collect() { this.set(read()); } }),
      storeUp: (read) =>
        void new Gauge({ name: 'jarvis_ledger_store_up', help: 'Whether the ledger store (embedded file or PostgreSQL) takes writes', registers, collect() { this.set(read() ? 1 : 0); } }),
    };
  }

  budgetExceeded(): void {
    this.#quotaExceeded.inc({ quota: 'budget' });
  }

  controlLatency(ms: number): void {
    this.#controlLatency.observe(ms / 1000);
  }

  attempt(upstream: string, outcome: string): void {
    this.#attempts.inc({ upstream, outcome });
    if (outcome === 'lost') this.#hedgeLosers.inc();
  }

  hedge(): void {
    this.#hedges.inc();
  }

  upstreamFirstToken(upstream: string, ms: number): void {
    this.#upstreamTtft.observe({ upstream }, ms / 1000);
  }

  circuit(upstream: string, state: string): void {
    this.#circuitOpen.set({ upstream }, state === 'open' ? 1 : 0);
  }

  bargeInDegraded(reason: string): void {
    this.#degraded.inc({ reason });
  }

  eventReadFailed(): void {
    this.#eventReadFailures.inc();
  }

  loopDelay(ms: number): void {
    this.#loopDelay.observe(ms / 1000);
  }

  quotaExceeded(quota: string): void {
    this.#quotaExceeded.inc({ quota });
  }

  subscriberDropped(reason: string): void {
    this.#subscribersDropped.inc({ reason });
    this.#eventsDropped.inc();
  }
}
