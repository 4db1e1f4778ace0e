// OpenTelemetry traces end to end: a real Jarvis started with the OTEL_* variables, real fake upstreams, and a real
// OTLP/HTTP receiver collecting what Jarvis exports. Each request is found by its x-request-id (jarvis.request_id).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMockUpstream, type MockUpstream, type RecordedRequest } from '../fakes/openai/index.js';
import { createJarvis, type Jarvis } from '../src/app.js';
import { makeConfig, type Config, type DeepPartial } from '../src/config.js';
import { createLogger } from '../src/observability/logger.js';
import { chunksOf, orFail, postChat, user, waitForIdle } from './support/chat.js';
import { parseTraceparent, SPAN_KIND, startOtlpReceiver, STATUS, type OtlpReceiver, type ReceivedSpan } from './support/otlp-receiver.js';
import { readSse } from './support/sse.js';

interface TracedJarvis {
  url: string;
  jarvis: Jarvis;
  close(): Promise<void>;
}

/** A Jarvis on loopback whose environment points OpenTelemetry at `receiver` (process.env is left alone). */
async function startTracedJarvis(receiver: OtlpReceiver, overrides: DeepPartial<Config>): Promise<TracedJarvis> {
  const dir = await mkdtemp(join(tmpdir(), 'jarvis-tracing-'));
  const config = makeConfig({ dataDir: dir, ...overrides, host: '127.0.0.1', port: 0, log: { level: 'info', format: 'logfmt', stdout: false, file: join(dir, 'system.log') } });
  const { logger, close: closeLog } = createLogger(config.log);
  const env = { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_SERVICE_NAME: 'jarvis-it', OTEL_BSP_SCHEDULE_DELAY: '20' };
  const jarvis = await createJarvis({ config, log: logger, env });
  const url = await jarvis.listen();
  return {
    url,
    jarvis,
    async close() {
      await jarvis.shutdown();
      await closeLog();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

const CLIENT_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const CLIENT_SPAN = '00f067aa0ba902b7';

let receiver: OtlpReceiver;
let good: MockUpstream;
let failing: MockUpstream;
let slow: MockUpstream;
let j: TracedJarvis;
let withContent: TracedJarvis;

beforeAll(async () => {
  receiver = await startOtlpReceiver();
  [good, failing, slow] = await Promise.all([
    startMockUpstream({ defaults: { tokens: 5, delayMs: 2 } }),
    startMockUpstream({ defaults: { status: 503 } }),
    startMockUpstream({ defaults: { ttftMs: 30_000, tokens: 5 } }),
  ]);
  const overrides: DeepPartial<Config> = {
    simulator: { tokensPerSec: 2000, ttftMs: 0 },
    upstreams: [
      { name: 'good', baseUrl: good.url, models: ['mock-model'] },
      { name: 'failing', baseUrl: failing.url },
      { name: 'slow', baseUrl: slow.url },
    ],
    routes: [
      {
        model: 'r-traced',
        hedgeAfterMs: 100,
        targets: [
          { upstream: 'failing', model: 'm-failing' },
          { upstream: 'slow', model: 'm-slow', priority: 1 },
          { upstream: 'good', model: 'm-good', priority: 2 },
        ],
      },
    ],
  };
  [j, withContent] = await Promise.all([startTracedJarvis(receiver, overrides), startTracedJarvis(receiver, { ...overrides, logContent: true })]);
});
afterAll(async () => {
  await Promise.all([j?.close(), withContent?.close()]);
  await Promise.all([good, failing, slow].map((m) => m?.close()));
  await receiver?.close();
});

/** A streamed chat request read to its end: its request id and its SSE data. */
async function chat(url: string, body: Record<string, unknown>, headers: Record<string, string> = {}): Promise<{ requestId: string; data: string[] }> {
  const res = await postChat(url, { stream: true, ...body }, { headers });
  expect(res.status).toBe(200);
  return { requestId: res.headers.get('x-request-id')!, data: await readSse(res) };
}

const turnOf = (spans: ReceivedSpan[], requestId: string) => spans.find((s) => s.attributes['jarvis.request_id'] === requestId && s.kind === SPAN_KIND.SERVER);
const childrenOf = (spans: ReceivedSpan[], parent: ReceivedSpan) => spans.filter((s) => s.traceId === parent.traceId && s.parentSpanId === parent.spanId);
const upstreamRequest = (m: MockUpstream, tag: string): RecordedRequest => {
  const r = m.requests.find((x) => x.prompt.includes(tag));
  if (!r) throw new Error(`no upstream request for ${tag}`);
  return r;
};
const spanText = (spans: ReceivedSpan[]) => JSON.stringify(spans, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v));

describe('tracing over HTTP', () => {
  it("gives a chat request a SERVER span with the GenAI attributes and session.id, continuing the client's trace; the upstream's parent is Jarvis's span", async () => {
    const tag = `hello-${Date.now()}`;
    const { requestId, data } = await chat(
      j.url,
      { model: 'mock-model', messages: user(`${tag} tokens:5`), stream_options: { include_usage: true } },
      { 'x-session-id': 'call-traced-1', traceparent: `00-${CLIENT_TRACE}-${CLIENT_SPAN}-01` },
    );
    expect(chunksOf(data).length).toBeGreaterThan(0);
    const spans = await receiver.waitFor((all) => turnOf(all, requestId) !== undefined);
    const turn = turnOf(spans, requestId)!;
    expect(turn).toMatchObject({ name: 'chat mock-model', traceId: CLIENT_TRACE, parentSpanId: CLIENT_SPAN, status: { code: STATUS.UNSET } });
    expect(turn.resource['service.name']).toBe('jarvis-it');
    expect(turn.attributes).toMatchObject({
      'gen_ai.operation.name': 'chat',
      'gen_ai.request.model': 'mock-model',
      'gen_ai.provider.name': 'openai',
      'gen_ai.response.finish_reasons': ['stop'],
      'session.id': 'call-traced-1',
      'jarvis.request_id': requestId,
      'jarvis.api': 'chat.completions',
      'jarvis.outcome': 'end',
      'jarvis.upstream': 'good',
    });
    expect(turn.attributes['gen_ai.usage.input_tokens']).toEqual(expect.any(Number));
    expect(turn.attributes['gen_ai.usage.output_tokens']).toBeGreaterThan(0);
    expect(turn.attributes['gen_ai.response.time_to_first_chunk']).toEqual(expect.any(Number));
    expect(turn.attributes['jarvis.usage.estimated']).toEqual(expect.any(Boolean));

    // The upstream request carries Jarvis's span as its parent, in the client's trace.
    const sent = parseTraceparent(upstreamRequest(good, tag).headers.traceparent as string);
    expect(sent).toEqual({ traceId: CLIENT_TRACE, spanId: turn.spanId, sampled: true });
    // No content without JARVIS_LOG_CONTENT.
    expect(spanText(receiver.spans)).not.toContain(tag);
  });

  it('starts a trace of its own without a traceparent, and the upstream request continues it', async () => {
    const tag = `own-${Date.now()}`;
    const { requestId } = await chat(j.url, { model: 'mock-model', messages: user(`${tag} tokens:3`) });
    const turn = turnOf(await receiver.waitFor((all) => turnOf(all, requestId) !== undefined), requestId)!;
    expect(turn.parentSpanId).toBe('');
    expect(turn.attributes['session.id']).toBeUndefined();
    expect(parseTraceparent(upstreamRequest(good, tag).headers.traceparent as string)).toEqual({ traceId: turn.traceId, spanId: turn.spanId, sampled: true });
  });

  it('names the simulator as the provider of a simulated answer', async () => {
    const { requestId } = await chat(j.url, { model: 'jarvis-sim', messages: user('sim please') });
    const turn = turnOf(await receiver.waitFor((all) => turnOf(all, requestId) !== undefined), requestId)!;
    expect(turn.attributes).toMatchObject({ 'gen_ai.provider.name': 'jarvis.simulator', 'jarvis.outcome': 'end' });
  });

  it("gives a route's attempts sibling CLIENT spans under the turn: the failed first target, the slow one and the hedge that won", async () => {
    const tag = `route-${Date.now()}`;
    const { requestId, data } = await chat(j.url, { model: 'r-traced', messages: user(`${tag} tokens:5`) }, { traceparent: `00-${CLIENT_TRACE}-${CLIENT_SPAN}-01` });
    expect(chunksOf(data).length).toBeGreaterThan(0);
    const spans = await receiver.waitFor((all) => {
      const turn = turnOf(all, requestId);
      return turn !== undefined && childrenOf(all, turn).length === 3;
    });
    const turn = turnOf(spans, requestId)!;
    expect(turn).toMatchObject({ name: 'chat r-traced', traceId: CLIENT_TRACE, parentSpanId: CLIENT_SPAN });
    expect(turn.attributes).toMatchObject({ 'jarvis.outcome': 'end', 'jarvis.upstream': 'good', 'gen_ai.response.model': 'm-good' });
    const attempts = childrenOf(spans, turn).sort((a, b) => Number(a.attributes['jarvis.attempt']) - Number(b.attributes['jarvis.attempt']));
    expect(attempts.map((a) => [a.name, a.kind, a.attributes['jarvis.upstream'], a.attributes['jarvis.hedge'], a.attributes['jarvis.outcome']])).toEqual([
      ['chat m-failing', SPAN_KIND.CLIENT, 'failing', false, 'error'],
      ['chat m-slow', SPAN_KIND.CLIENT, 'slow', false, 'cancelled'],
      ['chat m-good', SPAN_KIND.CLIENT, 'good', true, 'end'],
    ]);
    expect(attempts[0]!.status.code).toBe(STATUS.ERROR);
    expect(attempts[0]!.attributes['error.type']).toEqual(expect.any(String));
    expect(attempts[1]!.attributes['jarvis.cancel_reason']).toBe('hedge_lost');
    expect(attempts[1]!.status.code).toBe(STATUS.UNSET);
    expect(attempts[2]!.attributes).toMatchObject({ 'gen_ai.request.model': 'm-good', 'gen_ai.provider.name': 'openai' });
    // Each upstream request's parent is its attempt's span.
    const parentOf = (m: MockUpstream) => parseTraceparent(upstreamRequest(m, tag).headers.traceparent as string);
    expect(parentOf(failing)).toEqual({ traceId: CLIENT_TRACE, spanId: attempts[0]!.spanId, sampled: true });
    expect(parentOf(slow)).toEqual({ traceId: CLIENT_TRACE, spanId: attempts[1]!.spanId, sampled: true });
    expect(parentOf(good)).toEqual({ traceId: CLIENT_TRACE, spanId: attempts[2]!.spanId, sampled: true });
  });

  it('puts a barge-in on the superseded span as an event, linked to the request that superseded it', async () => {
    const session = `call-barge-${Date.now()}`;
    const first = await postChat(j.url, { stream: true, model: 'mock-model', messages: user('first: long answer tokens:2000 delay:10') }, { headers: { 'x-session-id': session } });
    expect(first.status).toBe(200);
    const firstId = first.headers.get('x-request-id')!;
    // The first answer is streaming (its headers came with its first frame); the second supersedes it.
    const firstBody = readSse(first);
    const second = await chat(j.url, { model: 'mock-model', messages: user('second tokens:3') }, { 'x-session-id': session });
    await orFail(firstBody, 'the superseded stream ending');
    const spans = await receiver.waitFor((all) => turnOf(all, firstId) !== undefined && turnOf(all, second.requestId) !== undefined);
    const superseded = turnOf(spans, firstId)!;
    const superseding = turnOf(spans, second.requestId)!;
    expect(superseded.attributes).toMatchObject({ 'jarvis.outcome': 'cancelled', 'jarvis.cancel_reason': 'superseded', 'session.id': session });
    expect(superseded.status.code).toBe(STATUS.UNSET);
    expect(superseded.events).toEqual([{ name: 'jarvis.barge_in', attributes: { 'jarvis.superseded_by': second.requestId } }]);
    expect(superseded.links).toEqual([{ traceId: superseding.traceId, spanId: superseding.spanId, attributes: { 'jarvis.link': 'superseded_by' } }]);
    expect(superseding.attributes).toMatchObject({ 'jarvis.outcome': 'end', 'session.id': session });
    expect(superseding.links).toEqual([]);
    await waitForIdle(j.url);
  });

  it('puts the prompt in the span only with JARVIS_LOG_CONTENT=1', async () => {
    const tag = `content-${Date.now()}`;
    const without = await chat(j.url, { model: 'mock-model', messages: user(`${tag} A tokens:2`) });
    const withIt = await chat(withContent.url, { model: 'mock-model', messages: user(`${tag} B tokens:2`) });
    const spans = await receiver.waitFor((all) => turnOf(all, without.requestId) !== undefined && turnOf(all, withIt.requestId) !== undefined);
    expect(spanText([turnOf(spans, without.requestId)!])).not.toContain(tag);
    const input = JSON.parse(turnOf(spans, withIt.requestId)!.attributes['gen_ai.input.messages'] as string) as { role: string; parts: { content: string }[] }[];
    expect(input[0]!.role).toBe('user');
    expect(input[0]!.parts[0]!.content).toContain(`${tag} B`);
  });
});
