// A client that goes away mid-stream releases the upstream at once and leaves nothing behind.
import { performance } from 'node:perf_hooks';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { orFail, postChat, user, waitForIdle } from './support/chat.js';
import { startJarvis, throughMock, type TestJarvis } from './support/jarvis.js';
import { startMockUpstream, type MockUpstream } from '../fakes/openai/index.js';
import { SseReader } from './support/sse.js';

/** The bound: from the client's abort to the upstream connection closing. */
const UPSTREAM_CLOSE_MS = 100;

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

/** Reads the SSE body until `count` content deltas have arrived, so the abort lands mid-stream. */
async function readTokens(res: Response, count: number): Promise<void> {
  await new SseReader(res.body!).until((text) => (text.match(/"content":"[^"]+"/g) ?? []).length >= count, `${count} tokens`);
}

it.each<{ name: string; knobs: string }>([
  { name: 'stalled upstream (stall-after)', knobs: 'tokens:1000 stall-after:3' },
  { name: 'slow upstream (delay)', knobs: 'tokens:1000 delay:20' },
])('an abort mid-stream closes the $name within 100 ms and releases everything', async ({ name, knobs }) => {
  const ac = new AbortController();
  const res = await postChat(jarvis.url, { messages: user(`hello there ${knobs}`), stream: true, tag: name }, { signal: ac.signal });
  expect(res.status).toBe(200);
  const requestId = res.headers.get('x-request-id')!;
  await readTokens(res, 3);
  const rec = mock.requests.find((r) => r.body.tag === name)!;
  expect(rec.clientClosed).toBe(false);

  const abortedAt = performance.now();
  ac.abort();
  await orFail(rec.closed, 'the upstream connection closing');

  expect(rec.clientClosed).toBe(true);
  expect(rec.finished).toBe(false);
  expect(rec.closedAt! - abortedAt).toBeLessThan(UPSTREAM_CLOSE_MS);

  expect(await waitForIdle(jarvis.url)).toMatchObject({ streams: 0, sessions: 0, buffers: 0, timers: 0 });
  const log = await jarvis.waitForLog((l) => new RegExp(`stream_end .*stream_id=${requestId} .*outcome=cancelled`).test(l));
  expect(log).toMatch(new RegExp(`stream_cancelled .*reason=client_disconnected request_id=${requestId}`));
});

it('an abort of a simulator stream releases everything too', async () => {
  const ac = new AbortController();
  const res = await postChat(jarvis.url, { model: 'jarvis-sim', messages: user('Long essay about rivers'), stream: true }, { signal: ac.signal });
  await readTokens(res, 3);
  ac.abort();
  expect(await waitForIdle(jarvis.url)).toMatchObject({ streams: 0, sessions: 0, buffers: 0, timers: 0 });
});
