// The edges of relaying: a non-streaming answer too large to assemble, JSON nested too deep to forward, and a
// pipelined request whose client has gone. Each ends cleanly, with a clear error where anyone is left to get one.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_JSON_DEPTH } from '../src/http/body-parser.js';
import { orFail, waitForIdle } from './support/chat.js';
import { startJarvis, type TestJarvis } from './support/jarvis.js';
import { startOpenAIUpstream, type OpenAIUpstream } from '../fakes/openai/index.js';
import { rawRequest } from './support/raw-peers.js';

const MAX_ANSWER_BYTES = 8 * 1024;

let up: OpenAIUpstream;
let jarvis: TestJarvis;

beforeAll(async () => {
  up = await startOpenAIUpstream();
  jarvis = await startJarvis({ upstreams: [{ name: 'openai', baseUrl: up.url, models: ['*'] }], defaultModel: 'gpt-4o-mini', maxAnswerBytes: MAX_ANSWER_BYTES });
});
afterAll(async () => {
  await jarvis.close();
  await up.close();
});

const post = (path: string, body: unknown) => fetch(`${jarvis.url}/v1${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: typeof body === 'string' ? body : JSON.stringify(body) });
const ask = (content: string, extra: Record<string, unknown> = {}) => ({ model: 'gpt-4o-mini', messages: [{ role: 'user', content }], ...extra });
/** `[[[...0...]]]`, `depth` levels of arrays. */
const nested = (depth: number) => `${'['.repeat(depth)}0${']'.repeat(depth)}`;

describe('a non-streaming answer larger than JARVIS_MAX_ANSWER_BYTES', () => {
  it('ends with 502 response_too_large, and the upstream request is aborted', async () => {
    const res = await post('/chat/completions', ask('scenario:long tokens:2000 delay:2 #big'));
    expect(res.status).toBe(502);
    expect(res.headers.get('x-should-retry')).toBe('false');
    expect(await res.json()).toEqual({ error: { message: expect.stringContaining('stream: true'), type: 'api_error', param: null, code: 'response_too_large' } });
    const rec = up.requestsFor('#big')[0]!;
    await orFail(rec.closed, 'the upstream request closing');
    expect(rec.clientClosed).toBe(true);
    await jarvis.waitForLog((l) => /stream_error .*code=response_too_large/.test(l));
  });

  it('while the same answer streams in full', async () => {
    const res = await post('/chat/completions', ask('scenario:long tokens:2000', { stream: true }));
    const text = await res.text();
    expect(text.match(/"content":"t\d+ "/g)).toHaveLength(2000);
  });
});

describe(`JSON nested deeper than ${MAX_JSON_DEPTH} levels`, () => {
  it.each([['/chat/completions'], ['/embeddings'], ['/completions']])('is a 400 invalid_value on %s, and nothing reaches the upstream', async (path) => {
    const before = up.requests.length;
    for (const depth of [MAX_JSON_DEPTH, 5000, 100_000]) {
      const body = `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"input":"x","prompt":"x","extra":${nested(depth)}}`;
      const res = await post(path, body);
      expect(res.status).toBe(400);
      expect(await res.json()).toEqual({ error: { message: expect.stringContaining(String(MAX_JSON_DEPTH)), type: 'invalid_request_error', param: null, code: 'invalid_value' } });
    }
    expect(up.requests.length).toBe(before);
    expect(await jarvis.logs()).not.toMatch(/request_failed|internal_error/);
  });

  it(`while ${MAX_JSON_DEPTH} levels in all are served`, async () => {
    // The body, messages, a message and its content are four levels; the extra field takes the rest.
    const body = `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"extra":${nested(MAX_JSON_DEPTH - 1)}}`;
    const res = await post('/chat/completions', body);
    expect(res.status).toBe(200);
    await res.arrayBuffer();
  });
});

describe('a pipelined request whose client has gone', () => {
  it('is cancelled (client_disconnected) like the one ahead of it, and its upstream request closed', async () => {
    const request = (content: string) => {
      const body = JSON.stringify(ask(content, { stream: true }));
      return `POST /v1/chat/completions HTTP/1.1\r\nhost: j\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
    };
    // Both are sent at once on one connection; the second waits for the first's response to finish.
    const ex = await rawRequest(jarvis.url, request('scenario:long tokens:400 delay:10 #pipe-1') + request('scenario:long tokens:400 delay:10 #pipe-2'));
    await orFail(
      (async () => {
        while (up.requestsFor('#pipe-').length < 2) await new Promise((r) => setTimeout(r, 5));
      })(),
      'both requests reaching the upstream',
    );
    ex.socket.destroy();
    for (const tag of ['#pipe-1', '#pipe-2']) {
      const rec = up.requestsFor(tag)[0]!;
      await orFail(rec.closed, `the upstream request ${tag} closing`);
      expect(rec.clientClosed).toBe(true);
    }
    const log = await jarvis.waitForLog((l) => (l.match(/stream_cancelled .*reason=client_disconnected/g) ?? []).length >= 2);
    expect(log).not.toMatch(/outcome=end .*#pipe/);
    await waitForIdle(jarvis.url);
  });
});
