import { afterAll, beforeAll, expect, it } from 'vitest';
import { startMockUpstream, type MockKnobs, type MockUpstream } from '../fakes/openai/index.js';

let up: MockUpstream;
beforeAll(async () => { up = await startMockUpstream(); });
afterAll(() => up.close());

function chat(target: MockUpstream, mock: MockKnobs, extra: object = {}, signal?: AbortSignal) {
  return fetch(`${target.url}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'm1', messages: [{ role: 'user', content: 'hello there' }], stream: true, mock, ...extra }),
    signal,
  });
}

function dataLines(sse: string): string[] {
  return sse.split('\n\n').filter(Boolean).map((e) => {
    expect(e.startsWith('data: ')).toBe(true);
    return e.slice('data: '.length);
  });
}

it('streams role chunk, tokens, finish_reason, usage and [DONE]', async () => {
  const res = await chat(up, { tokens: 3 }, { stream_options: { include_usage: true } });
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
  expect(rec.body.mock).toEqual({ tokens: 3 });
});

it('stops at max_tokens with finish_reason length', async () => {
  const data = dataLines(await (await chat(up, { tokens: 5 }, { max_tokens: 2 })).text());
  expect(data.slice(1, -2).map((d) => JSON.parse(d).choices[0].delta.content)).toEqual(['tok0 ', 'tok1 ']);
  expect(JSON.parse(data.at(-2)!).choices[0].finish_reason).toBe('length');
  await up.nextRequest();
});

it('answers the status knob with an OpenAI-shaped error', async () => {
  const res = await chat(up, { status: 429 });
  expect(res.status).toBe(429);
  expect(res.headers.get('retry-after')).toBe('1');
  expect(await res.json()).toEqual({
    error: { message: expect.any(String), type: 'rate_limit_error', param: null, code: 'rate_limit_exceeded' },
  });
  await up.nextRequest();
});

it('records a client abort mid-stream', async () => {
  const ac = new AbortController();
  const res = await chat(up, { tokens: 10, stallAfter: 2 }, {}, ac.signal);
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let text = '';
  while (!text.includes('tok1 ')) {
    const { done, value } = await reader.read();
    if (done) throw new Error(`stream ended early: ${text}`);
    text += decoder.decode(value, { stream: true });
  }
  const rec = await up.nextRequest();
  expect(rec.clientClosed).toBe(false);
  ac.abort();
  await rec.closed;
  expect(rec).toMatchObject({ tokensSent: 2, finished: false, clientClosed: true });
  expect(rec.closedAt).toBeGreaterThan(rec.receivedAt);
});

it('close() drops open streams and stops listening', async () => {
  const own = await startMockUpstream({ defaults: { stallAfter: 0 } });
  const res = await chat(own, {});
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
