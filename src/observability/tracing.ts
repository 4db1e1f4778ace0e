import type { Attributes, Context, Link, Span, SpanContext, TextMapGetter, TextMapPropagator, TextMapSetter, Tracer } from '@opentelemetry/api';
import type { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import type { SpanExporter } from '@opentelemetry/sdk-trace-base';
import type { Logger } from 'pino';
import type { AttemptEnd, AttemptStart } from '../streams/attempts.js';
import { excerpt } from './content-excerpt.js';
import type { AttemptTrace, Tracing, TurnTrace, TurnTraceEnd, TurnTraceStart } from './turn-trace.js';

/*
 * OpenTelemetry traces over OTLP/HTTP, on only when OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or
 * OTEL_EXPORTER_OTLP_ENDPOINT is set. The OpenTelemetry packages are loaded then and only then (`await import`):
 * they cost about 100 ms and 6 MB of heap to load, which an instance without tracing never pays.
 *
 * Nothing is registered globally (no global tracer provider, context manager, propagator, diag logger or error
 * handler): the tracer comes from this instance's provider and contexts are passed explicitly, so two Jarvis
 * instances in one process (the tests run several) each trace to their own endpoint.
 *
 * Every setting is read from the `env` given, not from process.env, and handed to the SDK as explicit options.
 * What the SDK still reads from process.env by itself: the OTLP client certificate files
 * (OTEL_EXPORTER_OTLP_*CERTIFICATE, *_CLIENT_KEY) and, when not set in `env`, the span limits.
 */

/** How many characters of a prompt or an answer a span carries with JARVIS_LOG_CONTENT=1. */
export const TRACE_CONTENT_CHARS = 1000;

/** At most this many sessions' live turns are remembered for barge-in links (the oldest is forgotten past it). */
export const MAX_LIVE_SESSIONS = 100_000;

/** How long shutdown waits for the last spans to be exported. */
const SHUTDOWN_WAIT_MS = 5000;

/** An export failure is logged at most this often (with how many failed meanwhile). */
const EXPORT_FAILURE_LOG_MS = 60_000;

export interface TracingOptions {
  /** JARVIS_LOG_CONTENT=1: the prompt and the answer (cut short) go into the turn's span. */
  logContent: boolean;
  log: Logger;
}

export type SamplerName = 'always_on' | 'always_off' | 'traceidratio' | 'parentbased_always_on' | 'parentbased_always_off' | 'parentbased_traceidratio';

/** What the standard OTEL_* variables ask for, read from the environment given. */
export interface TracingSettings {
  /** Where spans are POSTed. */
  url: string;
  serviceName: string;
  /** OTEL_RESOURCE_ATTRIBUTES (service.name is OTEL_SERVICE_NAME's when both say). */
  resourceAttributes: Record<string, string>;
  sampler: SamplerName;
  /** OTEL_TRACES_SAMPLER_ARG for the ratio samplers (1 when missing or out of [0, 1]). */
  ratio: number;
  headers: Record<string, string>;
  /** OTLP's encoding over HTTP: JSON (the default of OpenTelemetry JS's HTTP exporter) or protobuf. */
  protocol: 'http/json' | 'http/protobuf';
  compression: 'gzip' | 'none' | undefined;
  timeoutMillis: number | undefined;
  batch: { scheduledDelayMillis?: number; exportTimeoutMillis?: number; maxQueueSize?: number; maxExportBatchSize?: number };
  spanLimits: { attributeValueLengthLimit?: number; attributeCountLimit?: number; eventCountLimit?: number; linkCountLimit?: number };
  /** Settings given that Jarvis does not follow, each with what it does instead: logged at start. */
  ignored: string[];
}

const SAMPLERS = new Set<string>(['always_on', 'always_off', 'traceidratio', 'parentbased_always_on', 'parentbased_always_off', 'parentbased_traceidratio']);

/** A variable as the OpenTelemetry spec reads it: set and not blank, trimmed. */
function str(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const v = env[name]?.trim();
  return v ? v : undefined;
}

function num(env: NodeJS.ProcessEnv, name: string, ignored: string[]): number | undefined {
  const v = str(env, name);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (Number.isFinite(n) && n >= 0) return n;
  ignored.push(`${name}=${v} is not a number: default used`);
  return undefined;
}

/** `a=1,b=x%20y` (OTEL_EXPORTER_OTLP_HEADERS, OTEL_RESOURCE_ATTRIBUTES): each value percent-decoded. */
export function parseKeyValues(text: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of (text ?? '').split(',')) {
    const eq = item.indexOf('=');
    if (eq <= 0) continue;
    try {
      const key = decodeURIComponent(item.slice(0, eq).trim());
      const value = decodeURIComponent(item.slice(eq + 1).trim());
      if (key) out[key] = value;
    } catch {
      // A malformed escape: that pair is skipped, as the SDK does.
    }
  }
  return out;
}

/**
 * The OTLP/HTTP traces URL: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as it is, or OTEL_EXPORTER_OTLP_ENDPOINT with
 * `v1/traces` appended (as the spec says); undefined when neither is set, which leaves tracing off.
 */
export function tracesEndpoint(env: NodeJS.ProcessEnv): string | undefined {
  const traces = str(env, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT');
  if (traces !== undefined) return traces;
  const base = str(env, 'OTEL_EXPORTER_OTLP_ENDPOINT');
  if (base === undefined) return undefined;
  return `${base.endsWith('/') ? base : `${base}/`}v1/traces`;
}

/** The settings tracing runs with, or undefined when it is off (no endpoint, OTEL_SDK_DISABLED, OTEL_TRACES_EXPORTER=none). */
export function tracingSettings(env: NodeJS.ProcessEnv): TracingSettings | undefined {
  const url = tracesEndpoint(env);
  if (url === undefined) return undefined;
  if (str(env, 'OTEL_SDK_DISABLED')?.toLowerCase() === 'true') return undefined;
  const exporters = (str(env, 'OTEL_TRACES_EXPORTER') ?? 'otlp').split(',').map((e) => e.trim().toLowerCase());
  if (exporters.includes('none')) return undefined;
  const ignored: string[] = [];
  for (const e of exporters) if (e !== 'otlp') ignored.push(`OTEL_TRACES_EXPORTER=${e}: only otlp is supported`);
  try {
    new URL(url);
  } catch {
    ignored.push(`the traces endpoint ${url} is not a URL: tracing is off`);
    return undefined;
  }
  const askedProtocol = str(env, 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL') ?? str(env, 'OTEL_EXPORTER_OTLP_PROTOCOL');
  const protocol = askedProtocol === 'http/protobuf' ? 'http/protobuf' : 'http/json';
  if (askedProtocol !== undefined && askedProtocol !== protocol) ignored.push(`OTEL_EXPORTER_OTLP_PROTOCOL=${askedProtocol}: spans are sent as http/json`);

  let sampler: SamplerName = 'parentbased_always_on';
  const askedSampler = str(env, 'OTEL_TRACES_SAMPLER');
  if (askedSampler !== undefined) {
    if (SAMPLERS.has(askedSampler)) sampler = askedSampler as SamplerName;
    else ignored.push(`OTEL_TRACES_SAMPLER=${askedSampler}: not supported, parentbased_always_on used`);
  }
  let ratio = 1;
  if (sampler.endsWith('traceidratio')) {
    const arg = str(env, 'OTEL_TRACES_SAMPLER_ARG');
    const n = arg === undefined ? NaN : Number(arg);
    if (n >= 0 && n <= 1) ratio = n;
    else ignored.push(`OTEL_TRACES_SAMPLER_ARG=${arg ?? ''}: not a ratio in [0, 1], 1 used`);
  }

  let compression: TracingSettings['compression'];
  const askedCompression = str(env, 'OTEL_EXPORTER_OTLP_TRACES_COMPRESSION') ?? str(env, 'OTEL_EXPORTER_OTLP_COMPRESSION');
  if (askedCompression === 'gzip' || askedCompression === 'none') compression = askedCompression;
  else if (askedCompression !== undefined) ignored.push(`OTEL_EXPORTER_OTLP_COMPRESSION=${askedCompression}: none used`);

  const defined = <T extends object>(o: T): T => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
  const resourceAttributes = parseKeyValues(str(env, 'OTEL_RESOURCE_ATTRIBUTES'));
  return {
    url,
    serviceName: str(env, 'OTEL_SERVICE_NAME') ?? resourceAttributes['service.name'] ?? 'jarvis',
    resourceAttributes,
    sampler,
    ratio,
    headers: { ...parseKeyValues(str(env, 'OTEL_EXPORTER_OTLP_HEADERS')), ...parseKeyValues(str(env, 'OTEL_EXPORTER_OTLP_TRACES_HEADERS')) },
    protocol,
    compression,
    timeoutMillis: num(env, 'OTEL_EXPORTER_OTLP_TRACES_TIMEOUT', ignored) ?? num(env, 'OTEL_EXPORTER_OTLP_TIMEOUT', ignored),
    batch: defined({
      scheduledDelayMillis: num(env, 'OTEL_BSP_SCHEDULE_DELAY', ignored),
      exportTimeoutMillis: num(env, 'OTEL_BSP_EXPORT_TIMEOUT', ignored),
      maxQueueSize: num(env, 'OTEL_BSP_MAX_QUEUE_SIZE', ignored),
      maxExportBatchSize: num(env, 'OTEL_BSP_MAX_EXPORT_BATCH_SIZE', ignored),
    }),
    spanLimits: defined({
      attributeValueLengthLimit: num(env, 'OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT', ignored) ?? num(env, 'OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT', ignored),
      attributeCountLimit: num(env, 'OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT', ignored) ?? num(env, 'OTEL_ATTRIBUTE_COUNT_LIMIT', ignored),
      eventCountLimit: num(env, 'OTEL_SPAN_EVENT_COUNT_LIMIT', ignored),
      linkCountLimit: num(env, 'OTEL_SPAN_LINK_COUNT_LIMIT', ignored),
    }),
    ignored,
  };
}

/** gen_ai.provider.name for a Jarvis provider kind: the GenAI conventions' values, `jarvis.simulator` for the simulator. */
export function genAiProviderName(provider: string): string {
  switch (provider) {
    case 'gemini':
      return 'gcp.gemini';
    case 'simulator':
    case 'simulated':
      return 'jarvis.simulator';
    default:
      // openai, anthropic: already the conventions' names.
      return provider;
  }
}

/** The endpoint as logged: without credentials or a query. */
function shownUrl(url: string): string {
  const u = new URL(url);
  return `${u.protocol}//${u.host}${u.pathname}`;
}

/**
 * Tracing for this instance, or undefined (loading nothing) when no OTLP traces endpoint is set. Async because the
 * OpenTelemetry packages are imported only then.
 */
export async function createTracing(env: NodeJS.ProcessEnv, opts: TracingOptions): Promise<Tracing | undefined> {
  const settings = tracingSettings(env);
  if (!settings) return undefined;
  const [api, sdk, otlp, resources, core] = await Promise.all([
    import('@opentelemetry/api'),
    import('@opentelemetry/sdk-trace-base'),
    settings.protocol === 'http/protobuf' ? import('@opentelemetry/exporter-trace-otlp-proto') : import('@opentelemetry/exporter-trace-otlp-http'),
    import('@opentelemetry/resources'),
    import('@opentelemetry/core'),
  ]);

  const ratio = () => new sdk.TraceIdRatioBasedSampler(settings.ratio);
  const sampler = {
    always_on: () => new sdk.AlwaysOnSampler(),
    always_off: () => new sdk.AlwaysOffSampler(),
    traceidratio: ratio,
    parentbased_always_on: () => new sdk.ParentBasedSampler({ root: new sdk.AlwaysOnSampler() }),
    parentbased_always_off: () => new sdk.ParentBasedSampler({ root: new sdk.AlwaysOffSampler() }),
    parentbased_traceidratio: () => new sdk.ParentBasedSampler({ root: ratio() }),
  }[settings.sampler]();

  const exporter = new otlp.OTLPTraceExporter({
    url: settings.url,
    headers: settings.headers,
    // The exporter's CompressionAlgorithm enum has exactly these two values.
    ...(settings.compression ? { compression: settings.compression as ExporterConfig['compression'] } : {}),
    ...(settings.timeoutMillis !== undefined ? { timeoutMillis: settings.timeoutMillis } : {}),
  });
  const resource = resources.defaultResource().merge(resources.resourceFromAttributes({ ...settings.resourceAttributes, 'service.name': settings.serviceName }));
  const provider = new sdk.BasicTracerProvider({
    resource,
    sampler,
    spanLimits: settings.spanLimits,
    spanProcessors: [new sdk.BatchSpanProcessor(loggingExporter(exporter, core.ExportResultCode.SUCCESS, opts.log), settings.batch)],
  });
  opts.log[settings.ignored.length ? 'warn' : 'info'](
    { endpoint: shownUrl(settings.url), service: settings.serviceName, sampler: settings.sampler, ...(settings.ignored.length ? { ignored: settings.ignored } : {}) },
    'tracing_on',
  );

  const otel: Otel = {
    tracer: provider.getTracer('jarvis'),
    propagator: new core.W3CTraceContextPropagator(),
    root: api.ROOT_CONTEXT,
    setSpan: (ctx, span) => api.trace.setSpan(ctx, span),
    getter: api.defaultTextMapGetter,
    setter: api.defaultTextMapSetter,
    SERVER: api.SpanKind.SERVER,
    CLIENT: api.SpanKind.CLIENT,
    ERROR: api.SpanStatusCode.ERROR,
  };
  return new OtelTracing(otel, opts, async () => {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => {
      timer = setTimeout(() => resolve('late'), SHUTDOWN_WAIT_MS);
      timer.unref();
    });
    try {
      const done = await Promise.race([provider.shutdown().then(() => 'done' as const), late]);
      if (done === 'late') opts.log.warn({ waited_ms: SHUTDOWN_WAIT_MS }, 'tracing_shutdown_timeout');
    } catch (err) {
      opts.log.warn({ err }, 'tracing_export_failed');
    } finally {
      clearTimeout(timer);
    }
  });
}

type ExporterConfig = NonNullable<ConstructorParameters<typeof OTLPTraceExporter>[0]>;

/** The exporter, telling the log when an export fails (the SDK would only tell its global diag logger). */
function loggingExporter(inner: SpanExporter, success: number, log: Logger): SpanExporter {
  let lastLogged = 0;
  let failed = 0;
  return {
    export(spans, done) {
      inner.export(spans, (result) => {
        if (result.code !== success) {
          failed += spans.length;
          const now = Date.now();
          if (now - lastLogged >= EXPORT_FAILURE_LOG_MS) {
            lastLogged = now;
            log.warn({ spans_dropped: failed, err: result.error?.message }, 'tracing_export_failed');
            failed = 0;
          }
        }
        done(result);
      });
    },
    shutdown: () => inner.shutdown(),
    forceFlush: () => inner.forceFlush?.() ?? Promise.resolve(),
  };
}

/** The pieces of the OpenTelemetry API a turn needs, loaded once by createTracing. */
interface Otel {
  tracer: Tracer;
  propagator: TextMapPropagator;
  root: Context;
  setSpan(ctx: Context, span: Span): Context;
  getter: TextMapGetter;
  setter: TextMapSetter;
  SERVER: number;
  CLIENT: number;
  ERROR: number;
}

class OtelTracing implements Tracing {
  /** Each session's latest live turn (by the registry's session key): what tells which turn superseded which. */
  readonly #live = new Map<string, TurnSpan>();

  constructor(
    readonly otel: Otel,
    readonly opts: TracingOptions,
    readonly shutdown: () => Promise<void>,
  ) {}

  startTurn(s: TurnTraceStart): TurnTrace {
    const turn = new TurnSpan(this, s);
    const key = s.sessionKey;
    if (key !== undefined) {
      const prev = this.#live.get(key);
      if (prev) {
        // A turn starting while another of its session runs: when that one ends superseded, this is who did it.
        prev.supersededBy ??= { requestId: s.requestId, context: turn.span.spanContext() };
        turn.displaced = prev;
        this.#live.delete(key);
      }
      this.#live.set(key, turn);
      if (this.#live.size > MAX_LIVE_SESSIONS) {
        const oldest = this.#live.keys().next().value;
        if (oldest !== undefined) this.#live.delete(oldest);
      }
    }
    return turn;
  }

  /** A turn ended: its session's entry goes, or goes back to the turn it displaced when that one still runs. */
  ended(turn: TurnSpan): void {
    const key = turn.sessionKey;
    const prev = turn.displaced;
    turn.displaced = undefined;
    if (key === undefined || this.#live.get(key) !== turn) return;
    this.#live.delete(key);
    if (prev && !prev.isEnded) {
      // It never took the session from `prev` (it was refused, or it arrived after a newer one): `prev` runs on.
      if (prev.supersededBy?.requestId === turn.requestId) prev.supersededBy = undefined;
      this.#live.set(key, prev);
    }
  }

  /** For tests: how many sessions have a live turn remembered. */
  get liveSessions(): number {
    return this.#live.size;
  }
}

interface Superseder {
  requestId: string;
  context: SpanContext;
}

/** The traceparent (W3C, version 00) naming `span`. */
function traceparentOf(otel: Otel, span: Span): string | undefined {
  const carrier: Record<string, string> = {};
  otel.propagator.inject(otel.setSpan(otel.root, span), carrier, otel.setter);
  return carrier.traceparent;
}

/** gen_ai.input.messages / gen_ai.output.messages: the conventions' message shape, as a JSON string on a span. */
function messages(role: 'user' | 'assistant', text: string, finishReason?: string): string {
  const message: Record<string, unknown> = { role, parts: [{ type: 'text', content: excerpt(text, TRACE_CONTENT_CHARS) }] };
  if (role === 'assistant') message.finish_reason = finishReason ?? 'stop';
  return JSON.stringify([message]);
}

class TurnSpan implements TurnTrace {
  readonly span: Span;
  readonly traceparent: string | undefined;
  readonly requestId: string;
  readonly sessionKey: string | undefined;
  readonly #tracing: OtelTracing;
  readonly #context: Context;
  readonly #operation: string;
  readonly #attempts = new Set<AttemptSpan>();
  #ended = false;
  /** The turn of the same session that started next, while this one ran. */
  supersededBy: Superseder | undefined;
  /** The live turn of the session this one took the place of (see OtelTracing.ended). */
  displaced: TurnSpan | undefined;

  constructor(tracing: OtelTracing, s: TurnTraceStart) {
    const { otel, opts } = tracing;
    this.#tracing = tracing;
    this.requestId = s.requestId;
    this.sessionKey = s.sessionKey;
    this.#operation = s.operation;
    const parent = s.traceparent ? otel.propagator.extract(otel.root, { traceparent: s.traceparent, ...(s.tracestate ? { tracestate: s.tracestate } : {}) }, otel.getter) : otel.root;
    const attributes: Attributes = {
      'gen_ai.operation.name': s.operation,
      'jarvis.request_id': s.requestId,
      'jarvis.api': s.api,
    };
    if (s.requestModel !== undefined) attributes['gen_ai.request.model'] = s.requestModel;
    if (s.sessionId !== undefined) {
      attributes['session.id'] = s.sessionId;
      attributes['gen_ai.conversation.id'] = s.sessionId;
    }
    if (s.key !== null) attributes['jarvis.key'] = s.key;
    if (opts.logContent && s.prompt !== undefined) attributes['gen_ai.input.messages'] = messages('user', s.prompt);
    const name = s.requestModel ? `${s.operation} ${s.requestModel}` : s.operation;
    this.span = otel.tracer.startSpan(name, { kind: otel.SERVER, attributes }, parent);
    this.#context = otel.setSpan(parent, this.span);
    this.traceparent = traceparentOf(otel, this.span);
  }

  get isEnded(): boolean {
    return this.#ended;
  }

  attempt(a: AttemptStart): AttemptTrace {
    if (this.#ended) return { traceparent: this.traceparent, end() {} };
    const attempt = new AttemptSpan(this.#tracing.otel, this.#operation, a, this.#context, (x) => this.#attempts.delete(x));
    this.#attempts.add(attempt);
    return attempt;
  }

  end(e: TurnTraceEnd): void {
    if (this.#ended) return;
    this.#ended = true;
    const { otel, opts } = this.#tracing;
    const span = this.span;
    if (span.isRecording()) {
      span.setAttributes(endAttributes(e));
      if (opts.logContent && e.completion !== undefined) span.setAttribute('gen_ai.output.messages', messages('assistant', e.completion, e.finishReason));
      setStatus(span, e, otel.ERROR);
      if (e.outcome === 'cancelled' && e.reason === 'superseded') {
        // Barge-in: told on this span, linked to the request that superseded it when this instance ran that one.
        const by = this.supersededBy ?? (this.displaced && !this.displaced.isEnded ? { requestId: this.displaced.requestId, context: this.displaced.span.spanContext() } : undefined);
        span.addEvent('jarvis.barge_in', by ? { 'jarvis.superseded_by': by.requestId } : {});
        if (by) span.addLink({ context: by.context, attributes: { 'jarvis.link': 'superseded_by' } } satisfies Link);
      }
    }
    // The attempt that won (and any the route did not end) ends with the turn.
    for (const attempt of this.#attempts) attempt.endWithTurn(e);
    this.#attempts.clear();
    this.#tracing.ended(this);
    span.end();
  }
}

/** The GenAI and Jarvis attributes of a turn's end. */
function endAttributes(e: TurnTraceEnd): Attributes {
  const a: Attributes = { 'jarvis.outcome': e.outcome };
  if (e.provider !== undefined) a['gen_ai.provider.name'] = genAiProviderName(e.provider);
  if (e.responseModel !== undefined) a['gen_ai.response.model'] = e.responseModel;
  if (e.upstream !== undefined) a['jarvis.upstream'] = e.upstream;
  if (e.finishReason !== undefined) a['gen_ai.response.finish_reasons'] = [e.finishReason];
  if (e.ttftMs !== undefined) a['gen_ai.response.time_to_first_chunk'] = e.ttftMs / 1000;
  if (e.status !== undefined) a['http.response.status_code'] = e.status;
  if (e.usage) {
    a['gen_ai.usage.input_tokens'] = e.usage.input;
    a['gen_ai.usage.output_tokens'] = e.usage.output;
    if (e.usage.cacheRead !== undefined) a['gen_ai.usage.cache_read.input_tokens'] = e.usage.cacheRead;
    if (e.usage.reasoning !== undefined) a['gen_ai.usage.reasoning.output_tokens'] = e.usage.reasoning;
    a['jarvis.usage.estimated'] = e.usage.estimated;
  }
  if (e.outcome === 'cancelled') {
    if (e.reason !== undefined) a['jarvis.cancel_reason'] = e.reason;
  } else if (e.outcome === 'error' || e.outcome === 'rejected') {
    a['error.type'] = e.reason ?? (e.status !== undefined ? String(e.status) : '_OTHER');
  }
  return a;
}

/**
 * An error is the span's ERROR status; a cancellation (a barge-in, a client gone) is not an error, and neither is a
 * refusal of the client's request (4xx), as for any server span; a refusal Jarvis answered with a 5xx is.
 */
function setStatus(span: Span, e: { outcome: string; reason?: string | undefined; status?: number | undefined }, ERROR: number): void {
  const failed = e.outcome === 'error' || (e.outcome === 'rejected' && (e.status === undefined || e.status >= 500));
  if (failed) span.setStatus({ code: ERROR, ...(e.reason !== undefined ? { message: e.reason } : {}) });
}

class AttemptSpan implements AttemptTrace {
  readonly span: Span;
  readonly traceparent: string | undefined;
  readonly #otel: Otel;
  readonly #done: (a: AttemptSpan) => void;
  #ended = false;

  constructor(otel: Otel, operation: string, a: AttemptStart, parent: Context, done: (a: AttemptSpan) => void) {
    this.#otel = otel;
    this.#done = done;
    this.span = otel.tracer.startSpan(
      `${operation} ${a.model}`,
      {
        kind: otel.CLIENT,
        attributes: {
          'gen_ai.operation.name': operation,
          'gen_ai.provider.name': genAiProviderName(a.provider),
          'gen_ai.request.model': a.model,
          'jarvis.upstream': a.upstream,
          'jarvis.attempt': a.n,
          'jarvis.hedge': a.hedge,
        },
      },
      parent,
    );
    this.traceparent = traceparentOf(otel, this.span);
  }

  end(e: AttemptEnd): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#done(this);
    const span = this.span;
    if (span.isRecording()) {
      span.setAttributes({
        'jarvis.outcome': e.outcome,
        [e.outcome === 'error' ? 'error.type' : 'jarvis.cancel_reason']: e.reason,
        'jarvis.attempt.answered': e.answered,
        'jarvis.attempt.output_tokens': e.outputTokens,
      });
      setStatus(span, e, this.#otel.ERROR);
    }
    span.end();
  }

  /** The winner (or one the route did not end): it ends as the turn did, with what its upstream answered. */
  endWithTurn(e: TurnTraceEnd): void {
    if (this.#ended) return;
    this.#ended = true;
    const span = this.span;
    if (span.isRecording()) {
      const a: Attributes = { 'jarvis.outcome': e.outcome };
      if (e.responseModel !== undefined) a['gen_ai.response.model'] = e.responseModel;
      if (e.finishReason !== undefined) a['gen_ai.response.finish_reasons'] = [e.finishReason];
      if (e.outcome === 'cancelled' && e.reason !== undefined) a['jarvis.cancel_reason'] = e.reason;
      if (e.outcome === 'error' || e.outcome === 'rejected') a['error.type'] = e.reason ?? (e.status !== undefined ? String(e.status) : '_OTHER');
      span.setAttributes(a);
      setStatus(span, e, this.#otel.ERROR);
    }
    span.end();
  }
}
