// Bad requests get the documented 4xx with an OpenAI-shaped error, never a 500, and the server keeps serving.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postChat, user } from './support/chat.js';
import { startJarvis, type TestJarvis } from './support/jarvis.js';

interface Case {
  name: string;
  send: (url: string) => Promise<Response>;
  status: number;
  type: string;
  code: string;
  /** Checked when given; `null` asserts the error names no parameter. */
  param?: string | null;
}

const ok = { model: 'jarvis-sim', messages: user('hi') };
const raw = (body: string, contentType = 'application/json') => (url: string) =>
  fetch(`${url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': contentType }, body });
const chat = (body: unknown, headers: Record<string, string> = {}) => (url: string) => postChat(url, body, { headers });
const invalid = (param: string | null) => ({ status: 400, type: 'invalid_request_error', code: 'invalid_value', param });

const CASES: Case[] = [
  { name: 'malformed JSON', send: raw('{"messages": [{"role": "user"'), status: 400, type: 'invalid_request_error', code: 'invalid_json', param: null },
  { name: 'empty body', send: raw(''), status: 400, type: 'invalid_request_error', code: 'invalid_json', param: null },
  { name: 'no body and no Content-Type (curl -X POST)', send: (url) => fetch(`${url}/v1/chat/completions`, { method: 'POST' }), status: 400, type: 'invalid_request_error', code: 'invalid_json', param: null },
  { name: 'body is a JSON array', send: chat([ok]), ...invalid(null) },
  { name: 'body is a JSON string', send: chat(JSON.stringify('hello')), ...invalid(null) },
  { name: 'body is JSON null', send: raw('null'), ...invalid(null) },
  { name: 'empty messages', send: chat({ messages: [] }), ...invalid('messages') },
  { name: 'missing messages', send: chat({ model: 'jarvis-sim' }), ...invalid('messages') },
  { name: 'messages not an array', send: chat({ messages: 'hi' }), ...invalid('messages') },
  { name: 'bad role', send: chat({ messages: [{ role: 'wizard', content: 'hi' }] }), ...invalid('messages[0].role') },
  { name: 'negative max_tokens', send: chat({ ...ok, max_tokens: -1 }), ...invalid('max_tokens') },
  { name: 'max_tokens: "5" (a string)', send: chat({ ...ok, max_tokens: '5' }), ...invalid('max_tokens') },
  { name: 'temperature: 3', send: chat({ ...ok, temperature: 3 }), ...invalid('temperature') },
  // OpenAI's own bound. Unbounded, n: 1e308 passed as an integer and the simulator built choices until the heap ran out.
  { name: 'n: 1e308', send: chat({ ...ok, n: 1e308 }), ...invalid('n') },
  { name: 'n: 129', send: chat({ ...ok, n: 129 }), ...invalid('n') },
  { name: 'stream: "yes"', send: chat({ ...ok, stream: 'yes' }), ...invalid('stream') },
  { name: 'X-Session-Id of 200 characters', send: chat(ok, { 'x-session-id': 'a'.repeat(200) }), status: 400, type: 'invalid_request_error', code: 'invalid_session_id', param: 'X-Session-Id' },
  { name: 'X-Session-Id with a space', send: chat(ok, { 'x-session-id': 'two words' }), status: 400, type: 'invalid_request_error', code: 'invalid_session_id', param: 'X-Session-Id' },
  { name: 'unknown X-Session-Policy', send: chat(ok, { 'x-session-policy': 'whatever' }), ...invalid('X-Session-Policy') },
  { name: 'unknown model', send: chat({ ...ok, model: 'gpt-nonexistent' }), status: 404, type: 'invalid_request_error', code: 'model_not_found', param: 'model' },
  { name: 'unknown route', send: (url) => fetch(`${url}/v1/audio/speech`, { method: 'POST', body: '{}' }), status: 404, type: 'invalid_request_error', code: 'unknown_url', param: null },
  { name: 'GET on the chat route', send: (url) => fetch(`${url}/v1/chat/completions`), status: 404, type: 'invalid_request_error', code: 'unknown_url', param: null },
];

/** The exact OpenAI error shape: a client parsing OpenAI errors parses these. */
async function expectError(res: Response, c: Omit<Case, 'name' | 'send'>): Promise<void> {
  const body = (await res.json()) as { error: Record<string, unknown> };
  expect({ status: res.status, type: body.error?.type, code: body.error?.code }).toEqual({ status: c.status, type: c.type, code: c.code });
  expect(Object.keys(body)).toEqual(['error']);
  expect(Object.keys(body.error).sort()).toEqual(['code', 'message', 'param', 'type']);
  expect(body.error.message).toEqual(expect.stringMatching(/\S/));
  if (c.param !== undefined) expect(body.error.param).toBe(c.param);
  expect(res.headers.get('content-type')).toMatch(/^application\/json/);
  expect(res.headers.get('x-request-id')).toMatch(/^req_/);
}

async function expectHealthy(url: string): Promise<void> {
  const res = await fetch(`${url}/healthz`);
  expect(res.status).toBe(200);
  expect(await res.json()).toMatchObject({ status: 'ok' });
}

describe('bad requests', () => {
  let jarvis: TestJarvis;
  beforeAll(async () => {
    jarvis = await startJarvis({ simulator: { tokensPerSec: 2000, ttftMs: 0 } });
  });
  afterAll(() => jarvis.close());

  it.each(CASES)('$name → $status $code', async (c) => {
    await expectError(await c.send(jarvis.url), c);
    await expectHealthy(jarvis.url);
  });

  it('are logged as rejections, never as server failures', async () => {
    await Promise.all(CASES.map(async (c) => (await c.send(jarvis.url)).arrayBuffer()));
    const log = await jarvis.waitForLog((l) => (l.match(/ request_rejected /g) ?? []).length >= CASES.length);
    expect(log).not.toMatch(/ request_failed /);
    expect(log).not.toMatch(/status=5\d\d/);
  });

  it('still leave the server answering real requests', async () => {
    const res = await postChat(jarvis.url, { ...ok, stream: false });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ object: 'chat.completion' });
  });
});

describe('a body over the limit', () => {
  let jarvis: TestJarvis;
  beforeAll(async () => {
    jarvis = await startJarvis({ bodyLimit: 1024, simulator: { tokensPerSec: 2000, ttftMs: 0 } });
  });
  afterAll(() => jarvis.close());

  it('is refused with 413 request_too_large', async () => {
    const res = await postChat(jarvis.url, { ...ok, messages: user('x'.repeat(4096)) });
    await expectError(res, { status: 413, type: 'invalid_request_error', code: 'request_too_large', param: null });
    await expectHealthy(jarvis.url);
  });

  it('while a body under the limit is served', async () => {
    const res = await postChat(jarvis.url, { ...ok, messages: user('x'.repeat(512)) });
    expect(res.status).toBe(200);
    await res.arrayBuffer();
  });
});

describe('with API keys configured', () => {
  const key = 'test-key-123456';
  let jarvis: TestJarvis;
  beforeAll(async () => {
    jarvis = await startJarvis({ apiKeys: [key], simulator: { tokensPerSec: 2000, ttftMs: 0 } });
  });
  afterAll(() => jarvis.close());

  const unauthorized = { status: 401, type: 'authentication_error', code: 'invalid_api_key', param: null };

  it.each([
    ['no Authorization header', {}],
    ['a wrong key', { authorization: 'Bearer wrong-key-654321' }],
    ['the key without "Bearer"', { authorization: key }],
  ])('refuses %s with 401', async (_name, headers: Record<string, string>) => {
    await expectError(await postChat(jarvis.url, ok, { headers }), unauthorized);
    await expectError(await fetch(`${jarvis.url}/v1/models`, { headers }), unauthorized);
    await expectHealthy(jarvis.url);
  });

  it('checks the key before the body, so an unauthenticated bad body is still a 401', async () => {
    await expectError(await raw('{oops')(jarvis.url), unauthorized);
  });

  it('serves the right key', async () => {
    const res = await postChat(jarvis.url, ok, { headers: { authorization: `Bearer ${key}` } });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ object: 'chat.completion' });
  });
});
