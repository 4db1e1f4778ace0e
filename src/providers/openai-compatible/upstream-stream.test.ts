import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { knobText, startMockUpstream, type MockKnobs, type MockUpstream } from '../../../fakes/openai/index.js';
import { JarvisError } from '../../errors.js';
import type { ChatRequest, Delta, Provider } from '../provider.js';
import { openAICompatibleProvider } from './index.js';

let mock: MockUpstream;
let provider: Provider;

beforeAll(async () => {
  mock = await startMockUpstream();
  provider = openAICompatibleProvider({ name: 'mock', baseUrl: mock.url }, { timeoutMs: 5000, idleMs: 5000, advertise: [] });
});
afterAll(async () => {
  await provider.close?.();
  await mock.close();
});

/** A request to the mock whose prompt carries `knobs` (`hi tokens:5 delay:2`), in the body sent upstream as in the messages. */
const request = (knobs: MockKnobs): ChatRequest => {
  const messages = [{ role: 'user' as const, content: `hi ${knobText(knobs)}` }];
  return { model: 'm', messages, body: { messages }, completionId: 'c', created: 0 };
};

async function texts(source: AsyncIterable<Delta[]>): Promise<string[]> {
  const out: string[] = [];
  for await (const batch of source) for (const d of batch) if (d.text !== '') out.push(d.text);
  return out;
}

describe('openAICompatibleProvider.stream', () => {
  it('relays every token of a paced answer and reads its response to the end, so the connection can be reused', async () => {
    expect(await texts(provider.stream(request({ tokens: 5, delayMs: 2 }), { signal: new AbortController().signal }))).toHaveLength(5);
    const rec = mock.requests.at(-1)!;
    await rec.closed;
    expect(rec).toMatchObject({ finished: true, clientClosed: false });
  });

  it('closes the upstream request when the consumer stops mid-answer', async () => {
    const iterator = provider.stream(request({ tokens: 1000, delayMs: 5 }), { signal: new AbortController().signal })[Symbol.asyncIterator]();
    expect((await iterator.next()).done).toBe(false);
    await iterator.return!();
    const rec = mock.requests.at(-1)!;
    await rec.closed;
    expect(rec.clientClosed).toBe(true);
    expect(rec.finished).toBe(false);
    expect((await iterator.next()).done).toBe(true);
  });

  it('closes the upstream request when the consumer stops before the response headers, and ends a waiting next()', async () => {
    // Its own upstream, so the request it waits for is the first that upstream sees.
    const slow = await startMockUpstream();
    const p = openAICompatibleProvider({ name: 'slow', baseUrl: slow.url }, { timeoutMs: 60_000, idleMs: 5000, advertise: [] });
    try {
      const iterator = p.stream(request({ tokens: 5, headersDelayMs: 60_000 }), { signal: new AbortController().signal })[Symbol.asyncIterator]();
      const pending = iterator.next();
      const rec = await slow.nextRequest();
      await iterator.return!();
      expect(await pending).toEqual({ value: undefined, done: true });
      await rec.closed;
      expect(rec.clientClosed).toBe(true);
    } finally {
      await p.close?.();
      await slow.close();
    }
  });

  it('rejects with the signal\'s reason when it is aborted mid-answer, and closes the upstream request', async () => {
    const ac = new AbortController();
    const reason = new Error('barged in');
    // The second token is a minute away: the next() below is surely still waiting when the abort comes (with a
    // 5 ms pace, a busy machine had the token queued already, and next() resolved with it).
    const iterator = provider.stream(request({ tokens: 1000, delayMs: 60_000 }), { signal: ac.signal })[Symbol.asyncIterator]();
    await iterator.next();
    const pending = iterator.next();
    ac.abort(reason);
    await expect(pending).rejects.toBe(reason);
    const rec = mock.requests.at(-1)!;
    await rec.closed;
    expect(rec.clientClosed).toBe(true);
  });

  it('sends nothing upstream for a signal aborted before it starts', async () => {
    const seen = mock.requests.length;
    const ac = new AbortController();
    ac.abort(new Error('gone'));
    await expect(texts(provider.stream(request({ tokens: 5 }), { signal: ac.signal }))).rejects.toThrow('gone');
    // A request made after it is the next one the mock sees.
    await texts(provider.stream(request({ tokens: 1 }), { signal: new AbortController().signal }));
    expect(mock.requests.length).toBe(seen + 1);
  });

  it("fails with the upstream's status, error object and retry headers", async () => {
    const err = await texts(provider.stream(request({ status: 429, retryAfterMs: 1500 }), { signal: new AbortController().signal })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(JarvisError);
    expect(err).toMatchObject({ jarvisCode: 'JARVIS_ERR_UPSTREAM_STATUS', status: 429, headers: { 'retry-after-ms': '1500' } });
  });

  it('fails as cut short when the body ends without [DONE], after the tokens that came', async () => {
    const got: string[] = [];
    const err = await (async () => {
      for await (const batch of provider.stream(request({ tokens: 3, noDone: true }), { signal: new AbortController().signal })) for (const d of batch) if (d.text) got.push(d.text);
    })().catch((e: unknown) => e);
    expect(got).toHaveLength(3);
    expect(err).toMatchObject({ jarvisCode: 'JARVIS_ERR_UPSTREAM_STREAM', status: 502 });
  });
});
