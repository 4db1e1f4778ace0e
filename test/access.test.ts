// Keys, scopes and model allow-lists over real HTTP: what each kind of key may reach, what it may not and how
// it is told (401, 403, a 404 indistinguishable from a model that does not exist), and that no key is ever logged.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '../src/access/keys.js';
import { as, Events, upgrade } from './support/access.js';
import { postChat, user } from './support/chat.js';
import { startJarvis, type TestJarvis } from './support/jarvis.js';
import { startMockUpstream, type MockUpstream } from '../fakes/openai/index.js';

const ALL = 'sk-all-scopes-0001';
const CHAT = 'sk-chat-only-0002';
const EVENTS = 'sk-events-only-0003';
const LIMITED = 'sk-limited-model-0004';
const WRONG = 'sk-wrong-guess-0005';

let mock: MockUpstream;
let jarvis: TestJarvis;

beforeAll(async () => {
  mock = await startMockUpstream();
  jarvis = await startJarvis({
    apiKeys: [`ops=${ALL}`],
    access: {
      keys: [
        { name: 'chatter', key: CHAT, scopes: ['chat'] },
        { name: 'watcher', key: EVENTS, scopes: ['events'] },
        // By digest, with the default scopes (chat, events) and one model.
        { name: 'limited', sha256: sha256Hex(LIMITED), models: ['jarvis-sim'] },
      ],
    },
    upstreams: [{ name: 'mock', baseUrl: mock.url, models: ['mock-model'] }],
    simulator: { tokensPerSec: 2000, ttftMs: 0 },
    // Everything there is to log: no level may let a key through.
    log: { level: 'trace' },
  });
});
afterAll(async () => {
  await jarvis.close();
  await mock.close();
});

const ok = { model: 'jarvis-sim', messages: user('hi'), max_tokens: 2 };
const get = (path: string, headers: Record<string, string> = {}) => fetch(`${jarvis.url}${path}`, { headers });

async function expectError(res: Response, status: number, error: Record<string, unknown>): Promise<void> {
  expect(res.status).toBe(status);
  expect(res.headers.get('x-should-retry')).toBe('false');
  expect(await res.json()).toEqual({ error: { message: expect.any(String), param: null, ...error } });
}
const forbidden = { type: 'permission_error', code: 'insufficient_scope' };
const unauthorized = { type: 'authentication_error', code: 'invalid_api_key' };

/** GET /v1/events answers 200 (then is closed) or an error; returns the status and, for errors, the body. */
async function eventsStatus(headers: Record<string, string>): Promise<number> {
  const controller = new AbortController();
  const res = await fetch(`${jarvis.url}/v1/events`, { headers, signal: controller.signal });
  if (res.status === 200) controller.abort();
  else await res.arrayBuffer();
  return res.status;
}

describe('open routes', () => {
  it('/healthz and /readyz answer without a key', async () => {
    expect((await get('/healthz')).status).toBe(200);
    expect((await get('/readyz')).status).toBe(200);
  });
});

describe('scopes', () => {
  it('a chat-only key: completions and models, but 403 on events (SSE and WebSocket) and /metrics', async () => {
    expect((await postChat(jarvis.url, ok, { headers: as(CHAT) })).status).toBe(200);
    expect((await get('/v1/models', as(CHAT))).status).toBe(200);
    await expectError(await get('/v1/events', as(CHAT)), 403, forbidden);
    const ws = await upgrade(jarvis.url, '/v1/events', as(CHAT));
    expect(ws.status).toBe(403);
    expect(JSON.parse(ws.body)).toMatchObject({ error: forbidden });
    await expectError(await get('/metrics', as(CHAT)), 403, forbidden);
  });

  it('an events-only key: events over SSE and WebSocket, but 403 on completions, models and /metrics', async () => {
    expect(await eventsStatus(as(EVENTS))).toBe(200);
    expect((await upgrade(jarvis.url, '/v1/events', as(EVENTS))).status).toBe(101);
    await expectError(await postChat(jarvis.url, ok, { headers: as(EVENTS) }), 403, forbidden);
    await expectError(await get('/v1/models', as(EVENTS)), 403, forbidden);
    await expectError(await get('/metrics', as(EVENTS)), 403, forbidden);
  });

  it('an environment key has every scope, /metrics included', async () => {
    expect((await postChat(jarvis.url, ok, { headers: as(ALL) })).status).toBe(200);
    expect(await eventsStatus(as(ALL))).toBe(200);
    const metrics = await get('/metrics', as(ALL));
    expect(metrics.status).toBe(200);
    expect(await metrics.text()).toContain('jarvis_http_requests_total');
  });

  it('no key, or a wrong one, is 401 before any scope is considered', async () => {
    for (const headers of [{}, as(WRONG)]) {
      await expectError(await get('/metrics', headers), 401, unauthorized);
      await expectError(await get('/v1/events', headers), 401, unauthorized);
      expect((await upgrade(jarvis.url, '/v1/events', headers)).status).toBe(401);
    }
  });
});

describe('a key limited to some models', () => {
  it('gets for any other model exactly the 404 of a model that does not exist, and nothing goes upstream', async () => {
    // The model exists: a key without a list uses it.
    expect((await postChat(jarvis.url, { ...ok, model: 'mock-model' }, { headers: as(CHAT) })).status).toBe(200);
    const upstreamCalls = mock.requests.length;

    const hidden = await postChat(jarvis.url, { ...ok, model: 'mock-model' }, { headers: as(LIMITED) });
    const missing = await postChat(jarvis.url, { ...ok, model: 'no-such-model' }, { headers: as(LIMITED) });
    expect(hidden.status).toBe(404);
    expect(missing.status).toBe(404);
    const [h, m] = [(await hidden.json()) as { error: { message: string } }, (await missing.json()) as { error: { message: string } }];
    expect(h).toEqual({ error: { message: expect.any(String), type: 'invalid_request_error', param: 'model', code: 'model_not_found' } });
    expect({ ...h.error, message: h.error.message.replace('mock-model', 'X') }).toEqual({ ...m.error, message: m.error.message.replace('no-such-model', 'X') });
    const headersOf = (r: Response) => [...r.headers.keys()].filter((k) => k !== 'date' && k !== 'x-request-id' && k !== 'content-length').sort();
    expect(headersOf(hidden)).toEqual(headersOf(missing));
    expect(mock.requests.length).toBe(upstreamCalls);
  });

  it('uses its models, the default model included when it names none', async () => {
    expect((await postChat(jarvis.url, ok, { headers: as(LIMITED) })).status).toBe(200);
    const res = await postChat(jarvis.url, { messages: user('hi'), max_tokens: 2 }, { headers: as(LIMITED) });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ model: 'jarvis-sim' });
  });

  it('sees only its models in /v1/models', async () => {
    const ids = async (key: string) => ((await (await get('/v1/models', as(key))).json()) as { data: { id: string }[] }).data.map((m) => m.id).sort();
    expect(await ids(LIMITED)).toEqual(['jarvis-sim']);
    expect(await ids(CHAT)).toEqual(['jarvis-sim', 'mock-model']);
  });

  it('has the events scope by default (a keys-file entry without scopes)', async () => {
    const sub = await Events.open(jarvis.url, as(LIMITED));
    await sub.close();
  });
});

describe('the log', () => {
  it('never contains a key, right or wrong, whatever happened', async () => {
    // A few more ways a key could leak: in a malformed header, twice, in an error.
    await get('/v1/models', { authorization: LIMITED });
    await get('/v1/models', { authorization: `Bearer ${WRONG} ${ALL}` });
    await postChat(jarvis.url, '{broken', { headers: as(ALL) });
    await postChat(jarvis.url, { ...ok, model: 'mock-model', messages: user('hi status:500') }, { headers: as(ALL) });
    const log = await jarvis.waitForLog((l) => l.includes('request_rejected') && l.includes('stream_end'));
    expect(log).toMatch(/status=40[134]/);
    for (const secret of [ALL, CHAT, EVENTS, LIMITED, WRONG, sha256Hex(LIMITED)]) expect(log).not.toContain(secret);
  });
});
