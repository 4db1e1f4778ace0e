// X-Session-Seq: a client numbers the requests of a session, and Jarvis follows its order rather than the order
// requests happen to arrive in. A request whose seq is not above the highest seen is refused 409 stale_request
// before anything reaches the upstream, and cancels nothing; a higher one supersedes as any newer request does.
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chunksOf, orFail, postChat, user, waitForIdle } from './support/chat.js';
import { startJarvis, throughMock, type TestJarvis } from './support/jarvis.js';
import { readSse, SseReader } from './support/sse.js';
import { startMockUpstream, type MockUpstream } from '../fakes/openai/index.js';

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

let sessions = 0;
const ask = (session: string, seq: string | undefined, tag: string, tokens = 40, delayMs = 20) =>
  postChat(jarvis.url, { messages: user(`hello there tokens:${tokens} delay:${delayMs}`), stream: true, tag }, { headers: { 'x-session-id': session, ...(seq === undefined ? {} : { 'x-session-seq': seq }) } });
const tagged = (tag: string) => mock.requests.filter((r) => r.body.tag === tag);
const finishOf = async (res: Response) => chunksOf(await readSse(res)).filter((c) => c.choices[0]?.finish_reason).at(-1)?.choices[0]?.finish_reason;

describe('X-Session-Seq', () => {
  it('a request with a lower seq than one already running is refused 409 stale_request, reaches no upstream, and cancels nothing', async () => {
    const session = `seq-${++sessions}`;
    const newer = await ask(session, '4', 'seq-newer');
    expect(newer.status).toBe(200);
    // Request 3 of the session arrives after 4 (two connections, a busy server): it is the stale one.
    const stale = await ask(session, '3', 'seq-stale');
    expect(stale.status).toBe(409);
    expect(stale.headers.get('x-should-retry')).toBe('false');
    expect(await stale.json()).toEqual({ error: { message: expect.stringMatching(/X-Session-Seq 3/), type: 'invalid_request_error', param: 'X-Session-Seq', code: 'stale_request' } });
    const equal = await ask(session, '4', 'seq-equal');
    expect(equal.status).toBe(409);
    await equal.arrayBuffer();
    expect(await finishOf(newer)).toBe('stop');
    expect(tagged('seq-stale')).toHaveLength(0);
    expect(tagged('seq-equal')).toHaveLength(0);
    await jarvis.waitForLog((l) => /stream_rejected .*code=stale_request/.test(l));
  });

  it('a higher seq supersedes the running request, and the seq is remembered after both are done', async () => {
    const session = `seq-${++sessions}`;
    const first = await ask(session, '10', 'seq-10');
    const reader = new SseReader(first.body!);
    const before = (await reader.until((text) => text !== '', 'its first bytes')).length;
    const second = await ask(session, '11', 'seq-11', 3, 0);
    const rest = (await reader.rest()).slice(before);
    expect(rest).toContain('"finish_reason":"cancelled"');
    expect(await finishOf(second)).toBe('stop');
    await waitForIdle(jarvis.url);
    const late = await ask(session, '10', 'seq-late');
    expect(late.status).toBe(409);
    await late.arrayBuffer();
  });

  it('without the header a session keeps arrival order, as before; a bad value is a 400 naming the header', async () => {
    const session = `seq-${++sessions}`;
    const a = await ask(session, undefined, 'noseq-a');
    const b = await ask(session, undefined, 'noseq-b', 3, 0);
    expect(await finishOf(b)).toBe('stop');
    expect(await finishOf(a)).toBe('cancelled');
    for (const bad of ['abc', '-1', '1.5', '99999999999999999']) {
      const res = await ask(session, bad, 'bad');
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({ error: { code: 'invalid_value', param: 'X-Session-Seq' } });
    }
  });

  it('the openai SDK sends it as a header, and gets the 409 as a typed error it does not retry', async () => {
    const session = `seq-${++sessions}`;
    const client = new OpenAI({ baseURL: `${jarvis.url}/v1`, apiKey: 'x', defaultHeaders: { 'x-session-id': session } });
    const params = { model: 'mock-model', messages: user('hi'), tag: 'sdk-seq' } as OpenAI.Chat.ChatCompletionCreateParamsNonStreaming;
    await client.chat.completions.create(params, { headers: { 'x-session-seq': '7' } });
    const before = tagged('sdk-seq').length;
    const err = await client.chat.completions.create(params, { headers: { 'x-session-seq': '6' } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.ConflictError);
    expect(tagged('sdk-seq').length).toBe(before);
    await orFail(waitForIdle(jarvis.url), 'idle');
  });
});
