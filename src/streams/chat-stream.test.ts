// The stream's life as a state machine, without HTTP: a provider is an async generator, the sink records what it
// is told, the session registry, event bus and batcher are the in-process ones. Each test drives one path and
// reads the outcome, the states, the events and the sink's calls.
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { JarvisError, type CancelReason } from '../errors.js';
import type { Subscriber } from '../events/event-bus.js';
import { LocalEventBus } from '../events/local-bus.js';
import { TokenBatcher } from '../events/token-batcher.js';
import type { PublishedEvent } from '../events/types.js';
import type { ChatRequest, Delta, Provider, StreamOptions } from '../providers/provider.js';
import { LocalSessionRegistry } from '../sessions/local-registry.js';
import { ChatStream, STREAM_END_CHANNEL, type StreamState } from './chat-stream.js';
import { LiveStreams } from './live-streams.js';
import type { StreamSink } from './stream-sink.js';

const log = pino({ level: 'silent' });

function recordingSink(): StreamSink & { calls: string[]; chunks: Delta[] } {
  const calls: string[] = [];
  const chunks: Delta[] = [];
  return {
    wire: 'openai.chat',
    delivered: { tokens: 0, chars: 0 },
    calls,
    chunks,
    chunk(d) {
      chunks.push(d);
      if (d.text !== '') {
        this.delivered.tokens++;
        this.delivered.chars += d.text.length;
      }
    },
    flush: () => undefined,
    end: () => void calls.push('end'),
    cancelled: (reason: CancelReason) => void calls.push(`cancelled:${reason}`),
    fail: (e: JarvisError) => void calls.push(`fail:${e.code}`),
  };
}

const chat = (text: string, finish: string | null = null): Delta => {
  const chunk = { id: 'c1', object: 'chat.completion.chunk', created: 1, model: 'm-up', choices: [{ index: 0, delta: { content: text }, finish_reason: finish }] };
  return { wire: 'openai.chat', data: JSON.stringify(chunk), chunk, text, finish: finish ?? undefined };
};
const usageChunk = (): Delta => {
  const chunk = { id: 'c1', object: 'chat.completion.chunk', created: 1, model: 'm-up', choices: [], usage: { prompt_tokens: 11, completion_tokens: 2, total_tokens: 13 } };
  return { wire: 'openai.chat', data: JSON.stringify(chunk), chunk, text: '', finish: undefined };
};

/** A provider whose answer is `batches`; it may wait on `gate` before the rest, and says whether it was closed early. */
function provider(batches: Delta[][], opts: { gate?: Promise<void>; served?: { upstream: string; model: string }; fail?: JarvisError } = {}) {
  const state = { closed: false, finished: false };
  const p: Provider = {
    id: 'test',
    wires: ['openai.chat'],
    models: async () => [],
    ready: async () => {},
    relay: async () => {
      throw new Error('no relay');
    },
    async *stream(_req: ChatRequest, { signal, served }: StreamOptions) {
      try {
        if (opts.served) served?.(opts.served);
        for (const [i, b] of batches.entries()) {
          if (i === 1 && opts.gate) await Promise.race([opts.gate, new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason), { once: true }))]);
          yield b;
        }
        if (opts.fail) throw opts.fail;
        state.finished = true;
      } finally {
        if (!state.finished) state.closed = true;
      }
    },
  };
  return { p, state };
}

function harness(policy: 'cancel-previous' | 'reject' = 'cancel-previous') {
  const bus = new LocalEventBus({ replay: 100 });
  const events: PublishedEvent[] = [];
  const sub: Subscriber = { filter: {}, deliver: (e) => void events.push(e) };
  bus.subscribe(sub);
  const sessions = new LocalSessionRegistry({ prevStreamWaitMs: 1000 });
  const batcher = new TokenBatcher({ flushMs: 75, flushBytes: 1024, log, publish: (meta, text, tokens) => bus.publish(meta, 'chat.token', { text, tokens }) });
  const live = new LiveStreams();
  const deps = { sessions, batcher, bus, live, log };
  let n = 0;
  const start = (prov: Provider, sink: StreamSink, session = 's1') => {
    const id = `req_${++n}`;
    const request: ChatRequest = { model: 'm', messages: [{ role: 'user', content: 'hello there' }], body: {}, completionId: `chatcmpl-${id}`, created: 1 };
    return new ChatStream(deps, { meta: { request_id: id, session_id: session, trace: 't', owner: null }, sessionKey: `-/${session}`, policy, arrivedAt: Date.now() * 1000 + n, provider: prov, request }, sink);
  };
  return { start, events, live, types: (id: string) => events.filter((e) => e.event.request_id === id).map((e) => e.event.type) };
}

/** The states a stream passes through, sampled whenever its sink is called and at the end. */
function watchStates(stream: ChatStream, sink: ReturnType<typeof recordingSink>): StreamState[] {
  const seen: StreamState[] = [stream.state];
  const note = () => {
    if (seen.at(-1) !== stream.state) seen.push(stream.state);
  };
  const chunk = sink.chunk.bind(sink);
  sink.chunk = (d) => {
    note();
    chunk(d);
  };
  for (const k of ['end', 'cancelled', 'fail'] as const) {
    const f = sink[k] as (...a: unknown[]) => void;
    (sink as unknown as Record<string, unknown>)[k] = (...a: unknown[]) => {
      note();
      f(...a);
    };
  }
  return seen;
}

const ended: unknown[] = [];
const onEnd = (m: unknown) => void ended.push(m);
afterEach(() => {
  unsubscribe(STREAM_END_CHANNEL, onEnd);
  ended.length = 0;
});

describe('ChatStream', () => {
  it('created → acquiring → streaming → ended: the outcome carries the reported usage, the target that served and timings', async () => {
    subscribe(STREAM_END_CHANNEL, onEnd);
    const h = harness();
    const sink = recordingSink();
    const { p } = provider([[chat('Hel')], [chat('lo'), chat('', 'stop')], [usageChunk()]], { served: { upstream: 'a', model: 'm-a' } });
    const stream = h.start(p, sink);
    const states = watchStates(stream, sink);
    const outcome = await stream.run();
    states.push(stream.state);
    expect(states).toEqual(['created', 'streaming', 'ended']);
    expect(outcome).toMatchObject({ kind: 'end', finishReason: 'stop', usage: { input: 11, output: 2, estimated: false }, served: { upstream: 'a', model: 'm-a' } });
    expect(outcome.timings.durationMs).toBeGreaterThanOrEqual(outcome.timings.firstTokenMs!);
    expect(sink.calls).toEqual(['end']);
    expect(h.types('req_1')).toEqual(['chat.start', 'chat.token', 'chat.end']);
    expect(h.events.at(-1)!.event.data).toMatchObject({ finish_reason: 'stop', usage: { input_tokens: 11, output_tokens: 2, estimated: false }, upstream: 'a', model: 'm-a' });
    expect(ended).toEqual([expect.objectContaining({ outcome, model: 'm', delivered: { tokens: 2, chars: 5 } })]);
    expect(h.live.size).toBe(0);
  });

  it('an upstream that reports no usage: the outcome says Jarvis estimated it, and the client gets it marked so', async () => {
    const h = harness();
    const { p } = provider([[chat('a'), chat('b', 'stop')]]);
    const sink = recordingSink();
    const outcome = await h.start(p, sink).run();
    expect(outcome.usage).toEqual({ input: 3, output: 2, estimated: true });
    expect(outcome.served).toBeUndefined();
    // Named after the upstream's chunks, as the usage chunk an upstream sends would be.
    expect(sink.chunks.at(-1)!.chunk).toEqual({ id: 'c1', object: 'chat.completion.chunk', created: 1, model: 'm-up', choices: [], usage: expect.objectContaining({ prompt_tokens: 3, completion_tokens: 2, estimated: true }) });
  });

  it("a native Responses upstream's usage, on the event that ends its stream, is the outcome's", async () => {
    const h = harness();
    const event = (type: string, fields: Record<string, unknown>, finish?: string): Delta => {
      const chunk = { type, ...fields };
      return { wire: 'openai.responses', event: type, data: JSON.stringify(chunk), chunk, text: typeof fields.delta === 'string' ? fields.delta : '', finish };
    };
    const { p } = provider([
      [event('response.output_text.delta', { delta: 'Hi' })],
      [event('response.completed', { response: { status: 'completed', usage: { input_tokens: 7, output_tokens: 1, input_tokens_details: { cached_tokens: 0 }, output_tokens_details: { reasoning_tokens: 0 } } } }, 'stop')],
    ]);
    const sink = { ...recordingSink(), wire: 'openai.responses' as const };
    const outcome = await h.start(p, sink).run();
    expect(outcome.usage).toMatchObject({ input: 7, output: 1, estimated: false });
  });

  it('superseded mid-answer: cancelled, its upstream closed, chat.cancelled with what was heard', async () => {
    const h = harness();
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    const first = provider([[chat('Hello')], [chat(' never')]], { gate });
    const sinkA = recordingSink();
    const a = h.start(first.p, sinkA);
    const runA = a.run();
    // A's first token is out: B supersedes it.
    while (sinkA.chunks.length === 0) await new Promise((r) => setImmediate(r));
    const b = h.start(provider([[chat('B', 'stop')]]).p, recordingSink());
    const [outA, outB] = await Promise.all([runA, b.run()]);
    open();
    expect(outA).toMatchObject({ kind: 'cancelled', reason: 'superseded' });
    expect(a.state).toBe('cancelled');
    expect(first.state.closed).toBe(true);
    expect(sinkA.calls).toEqual(['cancelled:superseded']);
    expect(h.events.find((e) => e.event.type === 'chat.cancelled')!.event.data).toMatchObject({ reason: 'superseded', heard_chars: 5, delivered_tokens: 1 });
    expect(outB.kind).toBe('end');
  });

  it('refused by its session (reject policy, busy): rejected, with no usage and no events', async () => {
    const h = harness('reject');
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    const sinkA = recordingSink();
    const a = h.start(provider([[chat('a')], [chat('b', 'stop')]], { gate }).p, sinkA);
    const runA = a.run();
    while (sinkA.chunks.length === 0) await new Promise((r) => setImmediate(r));
    const sinkB = recordingSink();
    const b = h.start(provider([[chat('x', 'stop')]]).p, sinkB);
    const outB = await b.run();
    open();
    await runA;
    expect(outB).toMatchObject({ kind: 'rejected', usage: undefined });
    expect(b.state).toBe('rejected');
    expect(sinkB.calls).toEqual(['fail:session_busy']);
    expect(h.types('req_2')).toEqual([]);
  });

  it("an upstream's failure mid-answer: failed, the sink told, chat.error published", async () => {
    const h = harness();
    const sink = recordingSink();
    const stream = h.start(provider([[chat('a')]], { fail: new JarvisError('JARVIS_ERR_UPSTREAM_STREAM', 'broke') }).p, sink);
    const outcome = await stream.run();
    expect(outcome).toMatchObject({ kind: 'error', error: { code: 'upstream_stream_error' } });
    expect(stream.state).toBe('failed');
    expect(sink.calls).toEqual(['fail:upstream_stream_error']);
    expect(h.types('req_1')).toEqual(['chat.start', 'chat.token', 'chat.error']);
  });

  it('a sink that throws while told of a failure: the stream still cleans up and releases its session', async () => {
    const h = harness();
    const sink = recordingSink();
    sink.fail = () => {
      throw new Error('the sink broke');
    };
    const broken = h.start(provider([[chat('a')]], { fail: new JarvisError('JARVIS_ERR_UPSTREAM_STREAM', 'broke') }).p, sink);
    await expect(broken.run()).rejects.toThrow('the sink broke');
    expect(broken.state).toBe('failed');
    expect(h.live.size).toBe(0);
    expect(h.types('req_1')).toEqual(['chat.start', 'chat.token', 'chat.error']);
    // The session is free: the next stream in it runs at once.
    expect((await h.start(provider([[chat('b', 'stop')]]).p, recordingSink()).run()).kind).toBe('end');
  });

  it("an answer in another wire reaches the sink in the sink's own (Anthropic events as chat chunks)", async () => {
    const h = harness();
    const sink = recordingSink();
    const ev = (type: string, body: Record<string, unknown>, parts: Delta['parts'], text = '', finish?: string): Delta => ({ wire: 'anthropic.messages', event: type, data: JSON.stringify({ type, ...body }), chunk: { type, ...body }, text, finish, parts });
    const { p } = provider([
      [ev('message_start', { message: { id: 'msg_1', model: 'claude' } }, [{ type: 'start', id: 'msg_1', model: 'claude', usage: { input: 7, output: 1 } }])],
      [ev('content_block_delta', { index: 0, delta: { type: 'text_delta', text: 'Hi' } }, [{ type: 'text', text: 'Hi' }], 'Hi')],
      [ev('message_delta', { delta: { stop_reason: 'end_turn' }, usage: { output_tokens: 1 } }, [{ type: 'finish', reason: 'stop', native: 'end_turn' }, { type: 'usage', usage: { input: 7, output: 1 } }], '', 'stop')],
    ]);
    const outcome = await h.start(p, sink).run();
    expect(sink.chunks.every((d) => d.wire === 'openai.chat')).toBe(true);
    const parsed = sink.chunks.map((d) => JSON.parse(d.data) as { id: string; model: string; choices: { delta: Record<string, unknown>; finish_reason: string | null }[]; usage?: unknown });
    expect(parsed.map((c) => c.choices[0]?.delta ?? 'usage')).toEqual([{ role: 'assistant', content: '' }, { content: 'Hi' }, {}, 'usage']);
    expect(parsed[2]!.choices[0]!.finish_reason).toBe('stop');
    expect(parsed.every((c) => c.id === 'msg_1' && c.model === 'claude')).toBe(true);
    expect(outcome).toMatchObject({ kind: 'end', usage: { input: 7, output: 1, estimated: false } });
  });
});
