// A chat stream whose first token is slow (a long prefill) still keeps proxies from timing it out: after one
// idle heartbeat interval the response opens and pings until the first chunk (which Jarvis relays, it does not
// invent one). A stream whose upstream fails fast still gets a plain HTTP status.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { postChat, user } from './support/chat.js';
import { startJarvis, type TestJarvis } from './support/jarvis.js';
import { readSse } from './support/sse.js';
import { startMockUpstream, type MockUpstream } from '../fakes/openai/index.js';

let jarvis: TestJarvis;
let mock: MockUpstream;
beforeAll(async () => {
  mock = await startMockUpstream();
  jarvis = await startJarvis({
    heartbeatMs: 20,
    simulator: { tokensPerSec: 1000, ttftMs: 300 },
    upstreams: [{ name: 'mock', baseUrl: mock.url, models: ['mock-model'] }],
  });
});
afterAll(async () => {
  await jarvis.close();
  await mock.close();
});

it('pings before a slow first token, then streams normally', async () => {
  const res = await postChat(jarvis.url, { messages: user('hello there'), stream: true });
  expect(res.status).toBe(200);
  const lines = await readSse(res, { comments: true });
  const firstContent = lines.findIndex((l) => l.includes('"content":"') && !l.includes('"content":""'));
  const pings = lines.slice(0, firstContent).filter((l) => l === ': ping');
  expect(pings.length).toBeGreaterThan(0);
  expect(lines[0]).toBe(': ping');
  expect(lines.find((l) => !l.startsWith(':'))).toContain('"role":"assistant"');
  expect(lines.at(-1)).toBe('[DONE]');
});

it('an upstream error before the first token is still an HTTP status, not a broken stream', async () => {
  const res = await postChat(jarvis.url, { model: 'mock-model', messages: user('hi status:429'), stream: true });
  expect(res.status).toBe(429);
  expect(((await res.json()) as { error: { code: string } }).error.code).toBe('rate_limit_exceeded');
});
