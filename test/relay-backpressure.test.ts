// Backpressure stops only real slow readers: a client reading as fast as it can gets every token, however much
// one upstream read carries and however fast the upstream floods; a client that stops reading is cancelled
// (test/hostile-peers.test.ts) and Jarvis holds only a bounded amount for it meanwhile.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { orFail, waitForIdle } from './support/chat.js';
import { startJarvis, type TestJarvis } from './support/jarvis.js';
import { startOpenAIUpstream, type OpenAIUpstream } from '../fakes/openai/index.js';
import { rawRequest } from './support/raw-peers.js';

let up: OpenAIUpstream;
let jarvis: TestJarvis;

beforeAll(async () => {
  up = await startOpenAIUpstream();
  // Batches on the timer only: a flood would otherwise log a flush for every KiB.
  jarvis = await startJarvis({ upstreams: [{ name: 'openai', baseUrl: up.url, models: ['*'] }], defaultModel: 'gpt-4o-mini', events: { flushBytes: 1024 * 1024 } });
});
afterAll(async () => {
  await jarvis.close();
  await up.close();
});

/** Reads a chat stream to its end as fast as the client can, counting token chunks without parsing them all. */
async function readAll(prompt: string): Promise<{ tokens: number; done: boolean; last: number }> {
  const res = await fetch(`${jarvis.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: prompt }] }),
  });
  expect(res.status).toBe(200);
  const text = await res.text();
  const tokens = [...text.matchAll(/"content":"t(\d+) "/g)].map((m) => Number(m[1]));
  return { tokens: tokens.length, done: text.endsWith('data: [DONE]\n\n'), last: tokens.at(-1) ?? -1 };
}

describe('a client reading at full speed', () => {
  it('gets every token of a 2,000-token answer the upstream sends in one write', async () => {
    expect(await readAll('scenario:one-write tokens:2000')).toEqual({ tokens: 2000, done: true, last: 1999 });
    const log = await jarvis.logs();
    expect(log).not.toMatch(/client_backpressure/);
  });

  it('gets every token of a 50,000-token flood at line rate', async () => {
    expect(await readAll('scenario:flood tokens:50000')).toEqual({ tokens: 50_000, done: true, last: 49_999 });
    expect(await jarvis.logs()).not.toMatch(/client_backpressure/);
    await waitForIdle(jarvis.url);
  });
});

describe('a client that stops reading', () => {
  it('makes Jarvis stop reading its upstream (bounded memory) until, having taken nothing for a while, it is cancelled', async () => {
    const body = JSON.stringify({ model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: 'scenario:flood tokens:2000000 #stop' }] });
    const ex = await rawRequest(jarvis.url, `POST /v1/chat/completions HTTP/1.1\r\nhost: j\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    ex.socket.pause();
    const text = await jarvis.waitForLog((l) => /stream_cancelled .*reason=client_backpressure/.test(l), 15_000);
    expect(text).toMatch(/stream_end .*outcome=cancelled/);
    const rec = up.requestsFor('#stop')[0]!;
    await orFail(rec.closed, 'the upstream request closing');
    expect(rec.clientClosed).toBe(true);
    ex.socket.destroy();
    await waitForIdle(jarvis.url);
  });
});
