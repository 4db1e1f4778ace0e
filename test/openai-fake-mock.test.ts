// The mock OpenAI upstream (fakes/openai/mock.ts) on its own: its stream, its failure modes and its records, and the
// knobs it is steered by (fakes/openai/knobs.ts), read from the last message as the faithful fake reads them.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { knobText, mockKnobsIn, startMockUpstream, type MockKnobs, type MockUpstream } from '../fakes/openai/index.js';
import { sseBlocks, sseData, SseReader } from './support/sse.js';

let up: MockUpstream;
beforeAll(async () => { up = await startMockUpstream(); });
afterAll(() => up.close());

/** A streamed chat request whose last message is `hello there` and the knobs. */
function chat(target: MockUpstream, knobs: string, extra: object = {}, signal?: AbortSignal) {
  return fetch(`${target.url}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'm1', messages: [{ role: 'user', content: `hello there ${knobs}`.trim() }], stream: true, ...extra }),
    signal,
  });
}

/** The data payloads of a stream in which every event is one `data: ` line. */
function dataLines(sse: string): string[] {
  for (const block of sseBlocks(sse)) expect(block).toMatch(/^data: [^\n]*$/);
  return sseData(sse);
}

it('streams role chunk, tokens, finish_reason, usage and [DONE]', async () => {
  const res = await chat(up, 'tokens:3', { stream_options: { include_usage: true } });
  expect(res.headers.get('content-type')).toBe('text/event-stream');
  const data = dataLines(await res.text());
  expect(data.at(-1)).toBe('[DONE]');
  const chunks = data.slice(0, -1).map((d) => JSON.parse(d));
  expect(chunks[0]).toMatchObject({ object: 'chat.completion.chunk', model: 'm1', choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }] });
  expect(chunks.slice(1, 4).map((c) => c.choices[0].delta.content).join('')).toBe('tok0 tok1 tok2 ');
  expect(chunks[4].choices[0]).toEqual({ index: 0, delta: {}, finish_reason: 'stop' });
  expect(chunks[5]).toMatchObject({ choices: [], usage: { prompt_tokens: 2, completion_tokens: 3, total_tokens: 5 } });
  expect(chunks).toHaveLength(6);

  const rec = await up.nextRequest();
  await rec.closed;
  expect(rec).toMatchObject({ path: '/v1/chat/completions', tokensSent: 3, finished: true, clientClosed: false });
  expect(rec.prompt).toBe('hello there tokens:3');
  expect(rec.knobs).toEqual({ tokens: 3 });
});

it('stops at max_tokens with finish_reason length', async () => {
  const data = dataLines(await (await chat(up, 'tokens:5', { max_tokens: 2 })).text());
  expect(data.slice(1, -2).map((d) => JSON.parse(d).choices[0].delta.content)).toEqual(['tok0 ', 'tok1 ']);
  expect(JSON.parse(data.at(-2)!).choices[0].finish_reason).toBe('length');
  await up.nextRequest();
});

it('answers the status knob with an OpenAI-shaped error', async () => {
  const res = await chat(up, 'status:429');
  expect(res.status).toBe(429);
  expect(res.headers.get('retry-after')).toBe('1');
  expect(await res.json()).toEqual({
    error: { message: expect.any(String), type: 'rate_limit_error', param: null, code: 'rate_limit_exceeded' },
  });
  await up.nextRequest();
});

it('records a client abort mid-stream', async () => {
  const ac = new AbortController();
  const res = await chat(up, 'tokens:10 stall-after:2', {}, ac.signal);
  await new SseReader(res.body!).until((text) => text.includes('tok1 '), 'the second token');
  const rec = await up.nextRequest();
  expect(rec.clientClosed).toBe(false);
  ac.abort();
  await rec.closed;
  expect(rec).toMatchObject({ tokensSent: 2, finished: false, clientClosed: true });
  expect(rec.closedAt).toBeGreaterThan(rec.receivedAt);
});

it('close() drops open streams and stops listening', async () => {
  const own = await startMockUpstream({ defaults: { stallAfter: 0 } });
  const res = await chat(own, '');
  const rec = await own.nextRequest();
  await own.close();
  await rec.closed;
  expect(rec).toMatchObject({ finished: false, clientClosed: false });
  expect(own.server.listening).toBe(false);
  const connections = await new Promise<number>((resolve, reject) =>
    own.server.getConnections((err, n) => (err ? reject(err) : resolve(n))));
  expect(connections).toBe(0);
  await expect(res.text()).rejects.toThrow();
  await expect(fetch(`${own.url}/models`)).rejects.toThrow();
  await expect(own.nextRequest()).rejects.toThrow(/closed/);
});

describe('knobs in the last message', () => {
  const EVERY: MockKnobs = {
    tokens: 7, delayMs: 1, ttftMs: 2, headersDelayMs: 3, failAfter: 4, stallAfter: 5, errorAfter: 6, malformedAfter: 8,
    noDone: true, endDelayMs: 9, status: 429, retryAfterMs: 10, noRetryAfter: true, text: 'word',
  };

  it('are read back as written, each by its own name', () => {
    expect(knobText(EVERY)).toBe('tokens:7 delay:1 ttft:2 headers-delay:3 fail-after:4 stall-after:5 error-after:6 malformed-after:8 no-done end-delay:9 status:429 retry-after-ms:10 no-retry-after text:word');
    expect(mockKnobsIn(`Hi there ${knobText(EVERY)}, thanks`)).toEqual({ ...EVERY, text: 'word,' });
    expect(mockKnobsIn(knobText(EVERY))).toEqual(EVERY);
    // `delay:` is not read inside `end-delay:`, nor `ttft:` inside `x-ttft:`; the first occurrence counts.
    expect(mockKnobsIn('end-delay:50 x-ttft:3 tokens:2 tokens:9')).toEqual({ endDelayMs: 50, tokens: 2 });
    expect(mockKnobsIn('no-done-yet tokens:x delay:-1 (stall-after:2)')).toEqual({ stallAfter: 2 });
    expect(() => knobText({ text: 'two words' })).toThrow();
  });

  it('steer the answer, over the defaults, from text parts too, and are not counted as prompt tokens', async () => {
    const own = await startMockUpstream({ defaults: { tokens: 9, text: 'dflt' } });
    try {
      const ask = async (content: unknown) => {
        const res = await fetch(`${own.url}/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content }] }) });
        return (await res.json()) as { choices: { message: { content: string } }[]; usage: { prompt_tokens: number; completion_tokens: number } };
      };
      const plain = await ask('say something');
      expect(plain.choices[0]!.message.content).toBe('dflt0 dflt1 dflt2 dflt3 dflt4 dflt5 dflt6 dflt7 dflt8 ');
      expect(plain.usage).toMatchObject({ prompt_tokens: 4, completion_tokens: 9 });
      const steered = await ask([{ type: 'text', text: 'say something' }, { type: 'text', text: ' tokens:2 text:up' }]);
      expect(steered.choices[0]!.message.content).toBe('up0 up1 ');
      expect(steered.usage).toMatchObject({ prompt_tokens: 4, completion_tokens: 2 });
      expect(own.requests.map((r) => r.knobs)).toEqual([{}, { tokens: 2, text: 'up' }]);
    } finally {
      await own.close();
    }
  });

  it('ignore a `mock` object in the body: the prompt is the only steering', async () => {
    const res = await fetch(`${up.url}/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ messages: [{ role: 'user', content: 'hi tokens:1' }], mock: { tokens: 3, status: 500 } }) });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { choices: { message: { content: string } }[] }).choices[0]!.message.content).toBe('tok0 ');
    await up.nextRequest();
  });
});
