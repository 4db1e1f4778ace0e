// CORS: off unless JARVIS_CORS_ORIGINS names origins, and then for exactly those. Browsers' WebSocket upgrades
// (which CORS does not cover) are held to the same list.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { as, upgrade } from './support/access.js';
import { postChat, user } from './support/chat.js';
import { startJarvis, type TestJarvis } from './support/jarvis.js';

const KEY = 'sk-cors-key-00001';
const APP = 'https://app.example.com';
const EVIL = 'https://evil.example.net';
const ok = { model: 'jarvis-sim', messages: user('hi'), max_tokens: 2 };

function preflight(url: string, origin: string, headers = 'authorization, content-type, x-session-id, x-session-policy'): Promise<Response> {
  return fetch(`${url}/v1/chat/completions`, {
    method: 'OPTIONS',
    headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': headers },
  });
}

describe('by default', () => {
  let jarvis: TestJarvis;
  beforeAll(async () => {
    jarvis = await startJarvis({ apiKeys: [KEY], simulator: { tokensPerSec: 2000, ttftMs: 0 } });
  });
  afterAll(() => jarvis.close());

  it('grants no origin anything: no CORS headers, and preflights are unknown routes', async () => {
    const res = await postChat(jarvis.url, ok, { headers: { ...as(KEY), origin: APP } });
    expect(res.status).toBe(200);
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
    const pre = await preflight(jarvis.url, APP);
    expect(pre.status).toBe(404);
    expect(pre.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('refuses a browser’s WebSocket (it sends an Origin), and serves clients that send none', async () => {
    const refused = await upgrade(jarvis.url, '/v1/events', { ...as(KEY), origin: APP });
    expect(refused.status).toBe(403);
    expect(JSON.parse(refused.body)).toMatchObject({ error: { type: 'permission_error', code: 'origin_not_allowed' } });
    expect((await upgrade(jarvis.url, '/v1/events', as(KEY))).status).toBe(101);
  });
});

describe('with JARVIS_CORS_ORIGINS', () => {
  let jarvis: TestJarvis;
  beforeAll(async () => {
    jarvis = await startJarvis({ apiKeys: [KEY], access: { corsOrigins: [APP, 'http://localhost:5173'] }, simulator: { tokensPerSec: 2000, ttftMs: 0 } });
  });
  afterAll(() => jarvis.close());

  it('answers a listed origin’s preflight for POST with Authorization, X-Session-Id and X-Session-Policy, without a key', async () => {
    const res = await preflight(jarvis.url, APP);
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe(APP);
    expect(res.headers.get('access-control-allow-methods')).toMatch(/POST/);
    const allowed = res.headers.get('access-control-allow-headers')!.toLowerCase();
    for (const h of ['authorization', 'content-type', 'x-session-id', 'x-session-policy']) expect(allowed).toContain(h);
    expect(res.headers.get('access-control-max-age')).toBe('600');
    expect(res.headers.get('vary')).toMatch(/Origin/);
  });

  it('gives any other origin’s preflight nothing', async () => {
    const res = await preflight(jarvis.url, EVIL);
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
    expect(res.headers.get('access-control-allow-headers')).toBeNull();
  });

  it('lets a listed origin read responses and x-request-id: JSON, SSE streams and errors alike', async () => {
    const json = await postChat(jarvis.url, ok, { headers: { ...as(KEY), origin: APP } });
    const sse = await postChat(jarvis.url, { ...ok, stream: true }, { headers: { ...as(KEY), origin: APP } });
    const denied = await postChat(jarvis.url, ok, { headers: { origin: APP } });
    expect([json.status, sse.status, denied.status]).toEqual([200, 200, 401]);
    for (const res of [json, sse, denied]) {
      expect(res.headers.get('access-control-allow-origin')).toBe(APP);
      expect(res.headers.get('access-control-expose-headers')).toMatch(/x-request-id.*retry-after-ms.*x-should-retry/);
      await res.arrayBuffer();
    }
    expect(sse.headers.get('content-type')).toMatch(/text\/event-stream/);
  });

  it('grants nothing to an origin not on the list (nor to a near miss)', async () => {
    for (const origin of [EVIL, 'https://app.example.com.evil.net', 'http://app.example.com']) {
      const res = await postChat(jarvis.url, ok, { headers: { ...as(KEY), origin } });
      expect(res.headers.get('access-control-allow-origin')).toBeNull();
      await res.arrayBuffer();
    }
  });

  it('lets a listed origin open the events WebSocket, and no other', async () => {
    expect((await upgrade(jarvis.url, '/v1/events', { ...as(KEY), origin: APP })).status).toBe(101);
    expect((await upgrade(jarvis.url, '/v1/events', { ...as(KEY), origin: EVIL })).status).toBe(403);
  });
});
