// Graceful shutdown: streams get the grace period, then a clean cancelled ending, and nothing holds it up.
import { Agent, fetch as undiciFetch } from 'undici';
import { afterAll, afterEach, expect, it } from 'vitest';
import { chunksOf, orFail, user } from './support/chat.js';
import { startJarvis, type TestJarvis } from './support/jarvis.js';
import { SseReader } from './support/sse.js';

// Clients such as the openai SDK keep connections alive for a long time; a shutdown must not wait for them.
const keepAlive = new Agent({ keepAliveTimeout: 600_000, keepAliveMaxTimeout: 600_000 });

let jarvis: TestJarvis | undefined;
afterEach(async () => {
  await jarvis?.close();
  jarvis = undefined;
});
afterAll(() => keepAlive.close());

async function openStream(url: string, prompt: string) {
  const res = await undiciFetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'jarvis-sim', messages: user(prompt), stream: true }),
    dispatcher: keepAlive,
  });
  expect(res.status).toBe(200);
  const body = new SseReader(res.body!);
  // Returns once the first content token is in: the stream is under way.
  const firstToken = async () => {
    await body.until((text) => /"content":"[^"]+"/.test(text), 'its first token');
  };
  // The whole response's `data:` payloads, once it has ended.
  const data = async () => {
    await body.rest();
    return body.data;
  };
  return { requestId: res.headers.get('x-request-id')!, firstToken, data };
}

it('cancels a stream still running after the grace period with finish_reason "cancelled" and [DONE]', async () => {
  // 20 tokens/s for a several-hundred-token essay: far longer than the grace period.
  jarvis = await startJarvis({ simulator: { tokensPerSec: 20, ttftMs: 0 }, shutdownGraceMs: 50 });
  const stream = await openStream(jarvis.url, 'Long essay about lighthouses');
  await stream.firstToken();

  await orFail(jarvis.jarvis.shutdown(), 'shutdown');

  const chunks = chunksOf(await stream.data());
  expect(chunks.at(-1)!.choices[0]!.finish_reason).toBe('cancelled');
  const log = await jarvis.waitForLog((l) => l.includes('shutdown_done'));
  const id = stream.requestId;
  expect(log).toMatch(new RegExp(`stream_cancelled .*reason=shutdown request_id=${id}`));
  expect(log).toMatch(new RegExp(`stream_end .*cleanup_done=true stream_id=${id} outcome=cancelled`));
  // Cancelled first, cleaned up after, and only then is the shutdown done.
  expect(log.indexOf('stream_cancelled')).toBeLessThan(log.indexOf('stream_end'));
  expect(log.indexOf('stream_end')).toBeLessThan(log.indexOf('shutdown_done'));
  expect(jarvis.jarvis.ctx.live.size).toBe(0);
});

it('lets a stream that finishes within the grace period end normally', async () => {
  jarvis = await startJarvis({ simulator: { tokensPerSec: 200, ttftMs: 0 }, shutdownGraceMs: 30_000 });
  const stream = await openStream(jarvis.url, 'What is the capital of France?');
  await stream.firstToken();

  const shutdown = orFail(jarvis.jarvis.shutdown(), 'shutdown');
  const chunks = chunksOf(await stream.data());
  await shutdown;

  expect(chunks.at(-1)!.choices[0]!.finish_reason).toBe('stop');
  expect(await jarvis.logs()).not.toMatch(/stream_cancelled/);
});

it('refuses new connections once shut down', async () => {
  jarvis = await startJarvis({ simulator: { tokensPerSec: 2000, ttftMs: 0 } });
  await jarvis.jarvis.shutdown();
  await expect(fetch(`${jarvis.url}/healthz`)).rejects.toThrow();
});
