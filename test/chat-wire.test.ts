// What is on the wire, below any SDK: SSE headers, request ids, the curl quick-reference case, pass-through.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chunksOf, postChat, textOf, user } from './support/chat.js';
import { startJarvis, throughMock, type TestJarvis } from './support/jarvis.js';
import { readSse } from './support/sse.js';
import { startMockUpstream, type MockUpstream } from '../fakes/openai/index.js';

const REQUEST_ID = /^req_[0-9a-f]{24}$/;

let mock: MockUpstream;
let jarvis: TestJarvis;

beforeAll(async () => {
  mock = await startMockUpstream();
  jarvis = await startJarvis(throughMock(mock.url));
});
afterAll(async () => {
  await jarvis.close();
  await mock.close();
});

describe('SSE responses', () => {
  it('carry the streaming headers and the request id, which the chunk ids derive from', async () => {
    const res = await postChat(jarvis.url, { model: 'jarvis-sim', messages: user('hi'), stream: true });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(res.headers.get('cache-control')).toBe('no-cache');
    expect(res.headers.get('x-accel-buffering')).toBe('no');
    const requestId = res.headers.get('x-request-id');
    expect(requestId).toMatch(REQUEST_ID);
    const chunks = chunksOf(await readSse(res));
    expect(chunks[0]!.id).toBe(`chatcmpl-${requestId!.slice(4)}`);
  });

  it('end with exactly one data: [DONE] and nothing after it', async () => {
    const res = await postChat(jarvis.url, { messages: user('hi tokens:3'), stream: true });
    const text = await res.text();
    expect(text.endsWith('\n\ndata: [DONE]\n\n')).toBe(true);
    expect(text.split('data: [DONE]')).toHaveLength(2);
  });

  it('stream a JSON body sent as application/x-www-form-urlencoded (curl -d)', async () => {
    const res = await postChat(jarvis.url, JSON.stringify({ model: 'jarvis-sim', messages: user('Tell me a joke'), stream: true }), {
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const data = await readSse(res);
    expect(data.at(-1)).toBe('[DONE]');
    expect(textOf(chunksOf(data)).length).toBeGreaterThan(0);
  });
});

describe('x-request-id', () => {
  it('is on every response: JSON, errors, 404s, /v1/models, /healthz and /readyz, and unique per request', async () => {
    const responses = await Promise.all([
      postChat(jarvis.url, { model: 'jarvis-sim', messages: user('hi') }),
      postChat(jarvis.url, { messages: [] }),
      postChat(jarvis.url, '{oops'),
      fetch(`${jarvis.url}/v1/nope`),
      fetch(`${jarvis.url}/v1/models`),
      fetch(`${jarvis.url}/healthz`),
      fetch(`${jarvis.url}/readyz`),
    ]);
    expect(responses.map((r) => r.status)).toEqual([200, 400, 400, 404, 200, 200, 200]);
    const ids = responses.map((r) => r.headers.get('x-request-id'));
    for (const id of ids) expect(id).toMatch(REQUEST_ID);
    expect(new Set(ids).size).toBe(ids.length);
    await Promise.all(responses.map((r) => r.arrayBuffer()));
  });
});

describe('pass-through to the upstream', () => {
  it('forwards unknown and untyped body fields as sent', async () => {
    const extra = { tag: 'pass-through', seed: 7, logit_bias: { '50256': -100 }, vendor_options: { nested: [1, 'two', null] }, stop: ['\n\n'] };
    const res = await postChat(jarvis.url, { model: 'mock-model', messages: user('hello there tokens:5'), max_tokens: 3, temperature: 0.2, stream: true, ...extra });
    expect(textOf(chunksOf(await readSse(res)))).toBe('tok0 tok1 tok2 ');

    const forwarded = mock.requests.find((r) => r.body.tag === 'pass-through');
    expect(forwarded?.body).toMatchObject({ ...extra, model: 'mock-model', messages: user('hello there tokens:5'), max_tokens: 3, temperature: 0.2 });
    // Jarvis always streams from the upstream and asks for usage, whatever the client asked for.
    expect(forwarded?.body).toMatchObject({ stream: true, stream_options: { include_usage: true } });
  });

  it('names the default model upstream when the client omits it', async () => {
    const res = await postChat(jarvis.url, { messages: user('hello there tokens:1'), tag: 'no-model' });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ model: 'mock-model', choices: [{ message: { content: 'tok0 ' } }] });
    expect(mock.requests.find((r) => r.body.tag === 'no-model')?.body.model).toBe('mock-model');
  });
});
