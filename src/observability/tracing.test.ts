import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseTraceparent, SPAN_KIND, startOtlpReceiver, STATUS, type OtlpReceiver, type ReceivedSpan } from '../../test/support/otlp-receiver.js';
import type { AttemptStart } from '../streams/attempts.js';
import { createTracing, genAiProviderName, TRACE_CONTENT_CHARS, tracesEndpoint, tracingSettings } from './tracing.js';
import type { Tracing, TurnTraceStart } from './turn-trace.js';

const CLIENT_TRACE = '0af7651916cd43dd8448eb211c80319c';
const CLIENT_SPAN = 'b7ad6b7169203331';
const CLIENT_TRACEPARENT = `00-${CLIENT_TRACE}-${CLIENT_SPAN}-01`;

/** A pino logger whose lines a test can wait for. */
function capturingLog() {
  const lines: { msg: string; [k: string]: unknown }[] = [];
  const waiters = new Set<() => void>();
  const log = pino({ level: 'info', base: null }, {
    write(line: string) {
      lines.push(JSON.parse(line) as { msg: string });
      for (const w of [...waiters]) w();
    },
  });
  const waitFor = (msg: string, timeoutMs = 5000) =>
    new Promise<{ msg: string; [k: string]: unknown }>((resolve, reject) => {
      const check = () => {
        const found = lines.find((l) => l.msg === msg);
        if (!found) return false;
        clearTimeout(timer);
        waiters.delete(check);
        resolve(found);
        return true;
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`no ${msg} log line within ${timeoutMs} ms: ${JSON.stringify(lines)}`));
      }, timeoutMs);
      if (!check()) waiters.add(check);
    });
  return { log, lines, waitFor };
}

let receiver: OtlpReceiver;
const open: Tracing[] = [];

beforeAll(async () => {
  receiver = await startOtlpReceiver();
});
afterEach(async () => {
  await Promise.all(open.splice(0).map((t) => t.shutdown()));
});
afterAll(async () => {
  await receiver.close();
});

/** Tracing to the receiver, exporting every 20 ms; `env` adds to or overrides the variables. */
async function tracing(env: NodeJS.ProcessEnv = {}, logContent = false, log = pino({ enabled: false })): Promise<Tracing> {
  const t = await createTracing({ OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_BSP_SCHEDULE_DELAY: '20', OTEL_SERVICE_NAME: 'jarvis-test', ...env }, { logContent, log });
  expect(t).toBeDefined();
  open.push(t!);
  return t!;
}

let seq = 0;
function start(over: Partial<TurnTraceStart> = {}): TurnTraceStart {
  return {
    requestId: `req-${++seq}`,
    api: 'chat.completions',
    operation: 'chat',
    requestModel: 'gpt-4o-mini',
    sessionId: undefined,
    sessionKey: undefined,
    key: null,
    traceparent: undefined,
    tracestate: undefined,
    ...over,
  };
}

const attemptOf = (over: Partial<AttemptStart> = {}): AttemptStart => ({ n: 1, upstream: 'primary', model: 'gpt-4o-mini-2024', provider: 'openai', hedge: false, ...over });

const byRequest = (spans: ReceivedSpan[], id: string) => spans.find((s) => s.attributes['jarvis.request_id'] === id);
const childrenOf = (spans: ReceivedSpan[], parent: ReceivedSpan) => spans.filter((s) => s.parentSpanId === parent.spanId && s.traceId === parent.traceId);

describe('settings from the environment given', () => {
  it('is off without an OTLP endpoint, or when the spec says off', async () => {
    expect(tracesEndpoint({})).toBeUndefined();
    expect(tracingSettings({ OTEL_SERVICE_NAME: 'x', OTEL_TRACES_SAMPLER: 'always_on' })).toBeUndefined();
    expect(await createTracing({}, { logContent: false, log: pino({ enabled: false }) })).toBeUndefined();
    expect(await createTracing({ OTEL_EXPORTER_OTLP_ENDPOINT: '  ' }, { logContent: false, log: pino({ enabled: false }) })).toBeUndefined();
    // The spec's switches for turning the SDK or the exporter off.
    expect(tracingSettings({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_SDK_DISABLED: 'true' })).toBeUndefined();
    expect(tracingSettings({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_TRACES_EXPORTER: 'none' })).toBeUndefined();
  });

  it('appends v1/traces to OTEL_EXPORTER_OTLP_ENDPOINT and takes OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as it is', () => {
    expect(tracesEndpoint({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' })).toBe('http://collector:4318/v1/traces');
    expect(tracesEndpoint({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/base/' })).toBe('http://collector:4318/base/v1/traces');
    expect(tracesEndpoint({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://collector:4318/custom' })).toBe('http://collector:4318/custom');
    expect(tracesEndpoint({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a:4318', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://b:4318/t' })).toBe('http://b:4318/t');
  });

  it('reads the service name, the sampler, headers, compression and the batch delays', () => {
    const base = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' };
    const defaults = tracingSettings(base)!;
    expect(defaults).toMatchObject({ serviceName: 'jarvis', sampler: 'parentbased_always_on', ratio: 1, headers: {}, compression: undefined, batch: {}, ignored: [] });
    const s = tracingSettings({
      ...base,
      OTEL_SERVICE_NAME: 'voice-gw',
      OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment.name=prod,service.name=ignored',
      OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
      OTEL_TRACES_SAMPLER_ARG: '0.25',
      OTEL_EXPORTER_OTLP_HEADERS: 'authorization=Bearer%20abc,x-a=1',
      OTEL_EXPORTER_OTLP_TRACES_HEADERS: 'x-a=2',
      OTEL_EXPORTER_OTLP_COMPRESSION: 'gzip',
      OTEL_BSP_SCHEDULE_DELAY: '50',
      OTEL_BSP_MAX_QUEUE_SIZE: '100',
    })!;
    expect(s).toMatchObject({
      serviceName: 'voice-gw',
      resourceAttributes: { 'deployment.environment.name': 'prod' },
      sampler: 'parentbased_traceidratio',
      ratio: 0.25,
      headers: { authorization: 'Bearer abc', 'x-a': '2' },
      compression: 'gzip',
      batch: { scheduledDelayMillis: 50, maxQueueSize: 100 },
      ignored: [],
    });
    expect(tracingSettings({ ...base, OTEL_RESOURCE_ATTRIBUTES: 'service.name=from-resource' })!.serviceName).toBe('from-resource');
  });

  it('says what it does not follow, and does the default instead', () => {
    const s = tracingSettings({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_TRACES_SAMPLER: 'xray', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc', OTEL_EXPORTER_OTLP_COMPRESSION: 'zstd' })!;
    expect(s.sampler).toBe('parentbased_always_on');
    expect(s.compression).toBeUndefined();
    expect(s.ignored).toEqual([expect.stringContaining('OTEL_EXPORTER_OTLP_PROTOCOL=grpc'), expect.stringContaining('OTEL_TRACES_SAMPLER=xray'), expect.stringContaining('OTEL_EXPORTER_OTLP_COMPRESSION=zstd')]);
    expect(tracingSettings({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '7' })!).toMatchObject({ ratio: 1, ignored: [expect.stringContaining('OTEL_TRACES_SAMPLER_ARG=7')] });
    expect(tracingSettings({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'not a url' })).toBeUndefined();
  });

  it('names providers as the GenAI conventions do', () => {
    expect(['openai', 'anthropic', 'gemini', 'simulator'].map(genAiProviderName)).toEqual(['openai', 'anthropic', 'gcp.gemini', 'jarvis.simulator']);
  });
});

describe('a turn and its attempts', () => {
  it("continues the client's trace: a SERVER span named for the operation and model, with the GenAI attributes", async () => {
    const { log, waitFor } = capturingLog();
    const t = await tracing({}, false, log);
    expect(await waitFor('tracing_on')).toMatchObject({ endpoint: `${receiver.url}/v1/traces`, service: 'jarvis-test', sampler: 'parentbased_always_on' });
    const s = start({ traceparent: CLIENT_TRACEPARENT, tracestate: 'vendor=x', sessionId: 'call-42', sessionKey: 't1:call-42', key: 'team-a' });
    const turn = t.startTurn(s);
    const tp = parseTraceparent(turn.traceparent);
    expect(tp).toMatchObject({ traceId: CLIENT_TRACE, sampled: true });
    turn.end({
      outcome: 'end',
      status: 200,
      responseModel: 'gpt-4o-mini-2024-07-18',
      provider: 'openai',
      upstream: 'openai-main',
      usage: { input: 12, output: 34, cacheRead: 4, reasoning: 2, estimated: false },
      finishReason: 'stop',
      ttftMs: 250,
    });
    const spans = await receiver.waitFor((all) => byRequest(all, s.requestId) !== undefined);
    const span = byRequest(spans, s.requestId)!;
    expect(span).toMatchObject({ name: 'chat gpt-4o-mini', kind: SPAN_KIND.SERVER, traceId: CLIENT_TRACE, parentSpanId: CLIENT_SPAN, spanId: tp!.spanId, scope: 'jarvis' });
    expect(span.resource['service.name']).toBe('jarvis-test');
    expect(span.status.code).toBe(STATUS.UNSET);
    expect(span.attributes).toEqual({
      'gen_ai.operation.name': 'chat',
      'gen_ai.request.model': 'gpt-4o-mini',
      'gen_ai.response.model': 'gpt-4o-mini-2024-07-18',
      'gen_ai.provider.name': 'openai',
      'gen_ai.usage.input_tokens': 12,
      'gen_ai.usage.output_tokens': 34,
      'gen_ai.usage.cache_read.input_tokens': 4,
      'gen_ai.usage.reasoning.output_tokens': 2,
      'gen_ai.response.finish_reasons': ['stop'],
      'gen_ai.response.time_to_first_chunk': 0.25,
      'gen_ai.conversation.id': 'call-42',
      'session.id': 'call-42',
      'http.response.status_code': 200,
      'jarvis.request_id': s.requestId,
      'jarvis.api': 'chat.completions',
      'jarvis.key': 'team-a',
      'jarvis.outcome': 'end',
      'jarvis.upstream': 'openai-main',
      'jarvis.usage.estimated': false,
    });
  });

  it('starts a trace of its own without a traceparent, or with one that is not valid', async () => {
    const t = await tracing();
    const a = start();
    const b = start({ traceparent: '00-00000000000000000000000000000000-b7ad6b7169203331-01' });
    const c = start({ traceparent: 'garbage', requestModel: undefined, operation: 'embeddings' });
    for (const s of [a, b, c]) t.startTurn(s).end({ outcome: 'end' });
    const spans = await receiver.waitFor((all) => [a, b, c].every((s) => byRequest(all, s.requestId)));
    const [sa, sb, sc] = [a, b, c].map((s) => byRequest(spans, s.requestId)!);
    for (const span of [sa!, sb!, sc!]) {
      expect(span.parentSpanId).toBe('');
      expect(span.traceId).toMatch(/^[0-9a-f]{32}$/);
      expect(span.traceId).not.toBe(CLIENT_TRACE);
    }
    expect(new Set([sa!.traceId, sb!.traceId, sc!.traceId]).size).toBe(3);
    // No model: the span is named for the operation alone.
    expect(sc!.name).toBe('embeddings');
  });

  it('gives each route attempt a CLIENT child of the turn: a failover and a hedge are siblings, each traceparent names its span', async () => {
    const t = await tracing();
    const s = start({ traceparent: CLIENT_TRACEPARENT });
    const turn = t.startTurn(s);
    const first = turn.attempt(attemptOf({ n: 1, upstream: 'primary', model: 'gpt-4o-mini-2024', provider: 'openai' }));
    first.end({ outcome: 'error', reason: 'upstream_unreachable', outputTokens: 0, generatedChars: 0, answered: false, durationMs: 3 });
    const second = turn.attempt(attemptOf({ n: 2, upstream: 'claude', model: 'claude-haiku', provider: 'anthropic' }));
    const hedge = turn.attempt(attemptOf({ n: 3, upstream: 'gemini', model: 'gemini-flash', provider: 'gemini', hedge: true }));
    hedge.end({ outcome: 'cancelled', reason: 'hedge_lost', outputTokens: 0, generatedChars: 0, answered: true, durationMs: 40 });
    turn.end({ outcome: 'end', provider: 'anthropic', upstream: 'claude', responseModel: 'claude-haiku-4-5', finishReason: 'stop', usage: { input: 5, output: 6, estimated: true } });

    const tps = [turn.traceparent, first.traceparent, second.traceparent, hedge.traceparent].map(parseTraceparent);
    for (const tp of tps) expect(tp).toMatchObject({ traceId: CLIENT_TRACE, sampled: true });
    expect(new Set(tps.map((tp) => tp!.spanId)).size).toBe(4);

    const spans = await receiver.waitFor((all) => {
      const turnSpan = byRequest(all, s.requestId);
      return turnSpan !== undefined && childrenOf(all, turnSpan).length === 3;
    });
    const turnSpan = byRequest(spans, s.requestId)!;
    expect(turnSpan.spanId).toBe(tps[0]!.spanId);
    expect(turnSpan.attributes).toMatchObject({ 'gen_ai.provider.name': 'anthropic', 'jarvis.usage.estimated': true });
    const children = childrenOf(spans, turnSpan);
    const child = (n: number) => children.find((c) => c.attributes['jarvis.attempt'] === n)!;
    expect(child(1)).toMatchObject({ name: 'chat gpt-4o-mini-2024', kind: SPAN_KIND.CLIENT, spanId: tps[1]!.spanId, status: { code: STATUS.ERROR, message: 'upstream_unreachable' } });
    expect(child(1).attributes).toEqual({
      'gen_ai.operation.name': 'chat',
      'gen_ai.provider.name': 'openai',
      'gen_ai.request.model': 'gpt-4o-mini-2024',
      'jarvis.upstream': 'primary',
      'jarvis.attempt': 1,
      'jarvis.hedge': false,
      'jarvis.outcome': 'error',
      'error.type': 'upstream_unreachable',
      'jarvis.attempt.answered': false,
      'jarvis.attempt.output_tokens': 0,
    });
    // The winner ends with the turn, with what its upstream answered.
    expect(child(2)).toMatchObject({ name: 'chat claude-haiku', kind: SPAN_KIND.CLIENT, spanId: tps[2]!.spanId, status: { code: STATUS.UNSET } });
    expect(child(2).attributes).toMatchObject({ 'gen_ai.provider.name': 'anthropic', 'jarvis.outcome': 'end', 'gen_ai.response.model': 'claude-haiku-4-5', 'gen_ai.response.finish_reasons': ['stop'], 'jarvis.hedge': false });
    // Usage is the turn's: counted once in a trace.
    expect(child(2).attributes['gen_ai.usage.output_tokens']).toBeUndefined();
    // A lost hedge is cancelled, not failed.
    expect(child(3)).toMatchObject({ name: 'chat gemini-flash', spanId: tps[3]!.spanId, status: { code: STATUS.UNSET } });
    expect(child(3).attributes).toMatchObject({ 'gen_ai.provider.name': 'gcp.gemini', 'jarvis.hedge': true, 'jarvis.outcome': 'cancelled', 'jarvis.cancel_reason': 'hedge_lost', 'jarvis.attempt.answered': true });
  });

  it('marks an error as ERROR with error.type, a refusal of the request only with error.type, a cancellation as neither', async () => {
    const t = await tracing();
    const failed = start();
    const refused = start();
    const shed = start();
    const gone = start();
    t.startTurn(failed).end({ outcome: 'error', reason: 'upstream_error', status: 502 });
    t.startTurn(refused).end({ outcome: 'rejected', reason: 'session_busy', status: 409 });
    t.startTurn(shed).end({ outcome: 'rejected', reason: 'overloaded', status: 503 });
    const goneTurn = t.startTurn(gone);
    const a = goneTurn.attempt(attemptOf());
    goneTurn.end({ outcome: 'cancelled', reason: 'client_disconnected' });
    a.end({ outcome: 'cancelled', reason: 'cancelled', outputTokens: 1, generatedChars: 3, answered: true, durationMs: 1 });
    const spans = await receiver.waitFor((all) => [failed, refused, shed, gone].every((s) => byRequest(all, s.requestId)));
    expect(byRequest(spans, failed.requestId)).toMatchObject({ status: { code: STATUS.ERROR, message: 'upstream_error' }, attributes: { 'error.type': 'upstream_error', 'jarvis.outcome': 'error', 'http.response.status_code': 502 } });
    expect(byRequest(spans, refused.requestId)).toMatchObject({ status: { code: STATUS.UNSET }, attributes: { 'error.type': 'session_busy', 'jarvis.outcome': 'rejected' } });
    expect(byRequest(spans, shed.requestId)).toMatchObject({ status: { code: STATUS.ERROR }, attributes: { 'error.type': 'overloaded' } });
    const goneSpan = byRequest(spans, gone.requestId)!;
    expect(goneSpan).toMatchObject({ status: { code: STATUS.UNSET }, attributes: { 'jarvis.outcome': 'cancelled', 'jarvis.cancel_reason': 'client_disconnected' } });
    expect(goneSpan.attributes['error.type']).toBeUndefined();
    // The attempt still running ended with its turn; the route's later end() changes nothing.
    const [attempt] = await receiver.waitFor((all) => childrenOf(all, goneSpan).length === 1).then((all) => childrenOf(all, goneSpan));
    expect(attempt!.attributes).toMatchObject({ 'jarvis.outcome': 'cancelled', 'jarvis.cancel_reason': 'client_disconnected' });
  });

  it('ends once: a second end and an attempt after the end change nothing', async () => {
    const t = await tracing();
    const s = start();
    const turn = t.startTurn(s);
    turn.end({ outcome: 'end' });
    turn.end({ outcome: 'error', reason: 'late' });
    const late = turn.attempt(attemptOf());
    expect(late.traceparent).toBe(turn.traceparent);
    late.end({ outcome: 'error', reason: 'x', outputTokens: 0, generatedChars: 0, answered: false, durationMs: 0 });
    await t.shutdown();
    const mine = receiver.spans.filter((x) => x.traceId === parseTraceparent(turn.traceparent)!.traceId);
    expect(mine).toHaveLength(1);
    expect(mine[0]!.attributes['jarvis.outcome']).toBe('end');
  });
});

describe('barge-in', () => {
  it('puts an event on the superseded span and links it to the request that superseded it', async () => {
    const t = await tracing();
    const first = start({ sessionId: 'call-7', sessionKey: 'tenant:call-7' });
    const second = start({ sessionId: 'call-7', sessionKey: 'tenant:call-7' });
    const firstTurn = t.startTurn(first);
    const secondTurn = t.startTurn(second);
    firstTurn.end({ outcome: 'cancelled', reason: 'superseded' });
    secondTurn.end({ outcome: 'end' });
    const spans = await receiver.waitFor((all) => byRequest(all, first.requestId) !== undefined && byRequest(all, second.requestId) !== undefined);
    const superseded = byRequest(spans, first.requestId)!;
    const superseding = byRequest(spans, second.requestId)!;
    expect(superseded.status.code).toBe(STATUS.UNSET);
    expect(superseded.attributes).toMatchObject({ 'jarvis.outcome': 'cancelled', 'jarvis.cancel_reason': 'superseded', 'session.id': 'call-7' });
    expect(superseded.events).toEqual([{ name: 'jarvis.barge_in', attributes: { 'jarvis.superseded_by': second.requestId } }]);
    expect(superseded.links).toEqual([{ traceId: superseding.traceId, spanId: superseding.spanId, attributes: { 'jarvis.link': 'superseded_by' } }]);
    expect(superseding.events).toEqual([]);
    expect(superseding.links).toEqual([]);
    expect((t as unknown as { liveSessions: number }).liveSessions).toBe(0);
  });

  it('links to the turn that did supersede it, not to one that was refused meanwhile or one of another session', async () => {
    const t = await tracing();
    const key = 'tenant:call-8';
    const running = start({ sessionKey: key });
    const refused = start({ sessionKey: key });
    const other = start({ sessionKey: 'tenant:call-9' });
    const winner = start({ sessionKey: key });
    const runningTurn = t.startTurn(running);
    t.startTurn(refused).end({ outcome: 'rejected', reason: 'session_busy', status: 409 });
    const otherTurn = t.startTurn(other);
    const winnerTurn = t.startTurn(winner);
    runningTurn.end({ outcome: 'cancelled', reason: 'superseded' });
    winnerTurn.end({ outcome: 'end' });
    otherTurn.end({ outcome: 'end' });
    const spans = await receiver.waitFor((all) => [running, winner, other].every((s) => byRequest(all, s.requestId)));
    const w = byRequest(spans, winner.requestId)!;
    expect(byRequest(spans, running.requestId)!.links).toEqual([{ traceId: w.traceId, spanId: w.spanId, attributes: { 'jarvis.link': 'superseded_by' } }]);
    expect(byRequest(spans, running.requestId)!.events[0]!.attributes).toEqual({ 'jarvis.superseded_by': winner.requestId });
    expect(byRequest(spans, other.requestId)!.links).toEqual([]);
    expect((t as unknown as { liveSessions: number }).liveSessions).toBe(0);
  });

  it('links a request that arrived after a newer one to that newer one, which is superseded in turn by the next', async () => {
    const t = await tracing();
    const key = 'tenant:call-10';
    const newer = start({ sessionKey: key });
    const late = start({ sessionKey: key });
    const next = start({ sessionKey: key });
    const newerTurn = t.startTurn(newer);
    // `late` carries a lower X-Session-Seq: it is cancelled at once, superseded by the one already running.
    t.startTurn(late).end({ outcome: 'cancelled', reason: 'superseded' });
    const nextTurn = t.startTurn(next);
    newerTurn.end({ outcome: 'cancelled', reason: 'superseded' });
    nextTurn.end({ outcome: 'end' });
    const spans = await receiver.waitFor((all) => [newer, late, next].every((s) => byRequest(all, s.requestId)));
    const [n, l, x] = [newer, late, next].map((s) => byRequest(spans, s.requestId)!);
    expect(l!.links).toEqual([{ traceId: n!.traceId, spanId: n!.spanId, attributes: { 'jarvis.link': 'superseded_by' } }]);
    expect(n!.links).toEqual([{ traceId: x!.traceId, spanId: x!.spanId, attributes: { 'jarvis.link': 'superseded_by' } }]);
    expect(n!.events[0]!.attributes).toEqual({ 'jarvis.superseded_by': next.requestId });
  });

  it('without a known superseder (a request on another instance), has the event and no link', async () => {
    const t = await tracing();
    const s = start({ sessionKey: 'tenant:call-11' });
    t.startTurn(s).end({ outcome: 'cancelled', reason: 'superseded' });
    const spans = await receiver.waitFor((all) => byRequest(all, s.requestId) !== undefined);
    const span = byRequest(spans, s.requestId)!;
    expect(span.events).toEqual([{ name: 'jarvis.barge_in', attributes: {} }]);
    expect(span.links).toEqual([]);
  });
});

describe('content', () => {
  const prompt = 'My secret prompt about the weather in Paris';
  const completion = 'A secret answer: it rains in Paris';

  it('keeps prompt and answer text out of spans without JARVIS_LOG_CONTENT', async () => {
    const t = await tracing({}, false);
    const s = start({ prompt });
    t.startTurn(s).end({ outcome: 'end', completion, finishReason: 'stop' });
    const spans = await receiver.waitFor((all) => byRequest(all, s.requestId) !== undefined);
    const text = JSON.stringify(byRequest(spans, s.requestId), (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v));
    expect(text).not.toContain('secret');
    expect(byRequest(spans, s.requestId)!.attributes['gen_ai.input.messages']).toBeUndefined();
  });

  it('records them, cut short, as gen_ai.input.messages and gen_ai.output.messages with JARVIS_LOG_CONTENT=1', async () => {
    const t = await tracing({}, true);
    const s = start({ prompt });
    const long = 'x'.repeat(TRACE_CONTENT_CHARS + 50);
    t.startTurn(s).end({ outcome: 'end', completion: long, finishReason: 'length' });
    const spans = await receiver.waitFor((all) => byRequest(all, s.requestId) !== undefined);
    const attrs = byRequest(spans, s.requestId)!.attributes;
    expect(JSON.parse(attrs['gen_ai.input.messages'] as string)).toEqual([{ role: 'user', parts: [{ type: 'text', content: prompt }] }]);
    expect(JSON.parse(attrs['gen_ai.output.messages'] as string)).toEqual([{ role: 'assistant', parts: [{ type: 'text', content: `${'x'.repeat(TRACE_CONTENT_CHARS)}…` }], finish_reason: 'length' }]);
  });
});

describe('sampling and export', () => {
  it('follows OTEL_TRACES_SAMPLER: always_off exports nothing but still propagates a valid, unsampled traceparent', async () => {
    const before = receiver.spans.length;
    const t = await tracing({ OTEL_TRACES_SAMPLER: 'always_off' });
    const turn = t.startTurn(start({ traceparent: CLIENT_TRACEPARENT }));
    const attempt = turn.attempt(attemptOf());
    expect(parseTraceparent(turn.traceparent)).toMatchObject({ traceId: CLIENT_TRACE, sampled: false });
    expect(parseTraceparent(attempt.traceparent)).toMatchObject({ traceId: CLIENT_TRACE, sampled: false });
    turn.end({ outcome: 'end' });
    const ratio = await tracing({ OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '0' });
    ratio.startTurn(start()).end({ outcome: 'end' });
    // Shutdown exports whatever is pending: nothing was.
    await Promise.all([t.shutdown(), ratio.shutdown()]);
    expect(receiver.spans.length).toBe(before);
  });

  it('follows the parent with parentbased_always_off: a sampled client trace is recorded', async () => {
    const t = await tracing({ OTEL_TRACES_SAMPLER: 'parentbased_always_off' });
    const sampled = start({ traceparent: CLIENT_TRACEPARENT });
    const unsampled = start({ traceparent: `00-${CLIENT_TRACE}-${CLIENT_SPAN}-00` });
    t.startTurn(unsampled).end({ outcome: 'end' });
    t.startTurn(sampled).end({ outcome: 'end' });
    await t.shutdown();
    expect(byRequest(receiver.spans, sampled.requestId)).toBeDefined();
    expect(byRequest(receiver.spans, unsampled.requestId)).toBeUndefined();
  });

  it('posts to OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as it is, gzipped and with the headers asked for', async () => {
    const t = await tracing({
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9/never',
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${receiver.url}/custom/traces`,
      OTEL_EXPORTER_OTLP_COMPRESSION: 'gzip',
      OTEL_EXPORTER_OTLP_HEADERS: 'authorization=Bearer%20otel-token',
    });
    const s = start();
    t.startTurn(s).end({ outcome: 'end' });
    await receiver.waitFor((all) => byRequest(all, s.requestId) !== undefined);
    const post = receiver.exports.find((e) => byRequest(e.spans, s.requestId))!;
    expect(post.path).toBe('/custom/traces');
    expect(post.headers['content-encoding']).toBe('gzip');
    expect(post.headers['content-type']).toBe('application/json');
    expect(post.headers.authorization).toBe('Bearer otel-token');
    const plain = await tracing();
    const p = start();
    plain.startTurn(p).end({ outcome: 'end' });
    await receiver.waitFor((all) => byRequest(all, p.requestId) !== undefined);
    expect(receiver.exports.find((e) => byRequest(e.spans, p.requestId))!.path).toBe('/v1/traces');
  });

  it('sends OTLP/protobuf when OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf', async () => {
    const t = await tracing({ OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf' });
    const s = start({ traceparent: CLIENT_TRACEPARENT });
    t.startTurn(s).end({ outcome: 'end' });
    // The span's request id and the client's trace id (16 raw bytes) are in the message as protobuf carries them.
    const traceId = Buffer.from(CLIENT_TRACE, 'hex');
    const sent = () => receiver.exports.find((e) => e.body.includes(s.requestId));
    await receiver.waitFor(() => sent() !== undefined);
    const post = sent()!;
    expect(post.headers['content-type']).toBe('application/x-protobuf');
    expect(post.path).toBe('/v1/traces');
    expect(post.body.includes(traceId)).toBe(true);
    expect(tracingSettings({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' })!.protocol).toBe('http/json');
  });

  it('exports what is pending on shutdown', async () => {
    const t = await tracing({ OTEL_BSP_SCHEDULE_DELAY: '600000' });
    const s = start();
    t.startTurn(s).end({ outcome: 'end' });
    expect(byRequest(receiver.spans, s.requestId)).toBeUndefined();
    await t.shutdown();
    expect(byRequest(receiver.spans, s.requestId)).toBeDefined();
  });

  it('logs a failed export (the collector refusing it) and goes on exporting', async () => {
    const { log, waitFor } = capturingLog();
    const t = await tracing({}, false, log);
    receiver.failNext(1, 400);
    t.startTurn(start()).end({ outcome: 'end' });
    expect(await waitFor('tracing_export_failed')).toMatchObject({ level: 40, spans_dropped: 1 });
    const s = start();
    t.startTurn(s).end({ outcome: 'end' });
    await receiver.waitFor((all) => byRequest(all, s.requestId) !== undefined);
  });
});
