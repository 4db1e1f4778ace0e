// What Jarvis keeps of a native Responses upstream's stream (its events, to end an interrupted response and store
// what was delivered) is bounded by JARVIS_MAX_ANSWER_BYTES, streaming or not: past it the response ends with
// response_too_large (a 502 before anything was sent, an error event once the stream is under way), and the
// upstream request is aborted, instead of one upstream growing one stream's memory without limit.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { orFail, waitForIdle } from './support/chat.js';
import { startJarvis, type TestJarvis } from './support/jarvis.js';
import { startOpenAIUpstream, type OpenAIUpstream } from '../fakes/openai/index.js';
import { forEachSseBlock, parseSseBlock } from './support/sse.js';

const MAX_ANSWER_BYTES = 8 * 1024;

let up: OpenAIUpstream;
let jarvis: TestJarvis;

beforeAll(async () => {
  up = await startOpenAIUpstream();
  jarvis = await startJarvis({ upstreams: [{ name: 'openai', baseUrl: up.url, models: ['gpt-4o-mini'], responses: 'native' }], maxAnswerBytes: MAX_ANSWER_BYTES });
});
afterAll(async () => {
  await jarvis.close();
  await up.close();
});

const post = (body: Record<string, unknown>) => fetch(`${jarvis.url}/v1/responses`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'gpt-4o-mini', ...body }) });

/** The events of an SSE response, parsed, and how many bytes of data they carried. */
async function events(res: Response): Promise<{ events: { event: string; data: Record<string, unknown> }[]; bytes: number }> {
  const out: { event: string; data: Record<string, unknown> }[] = [];
  let bytes = 0;
  await forEachSseBlock(res.body!, (block) => {
    const { event, data } = parseSseBlock(block);
    if (event === undefined || !data) return;
    bytes += data.length;
    out.push({ event, data: JSON.parse(data) as Record<string, unknown> });
  });
  return { events: out, bytes };
}

async function upstreamAborted(tag: string): Promise<void> {
  const rec = up.requestsFor(tag)[0]!;
  await orFail(rec.closed, `the upstream request ${tag} closing`);
  expect(rec.clientClosed).toBe(true);
}

describe(`a native Responses answer larger than JARVIS_MAX_ANSWER_BYTES (${MAX_ANSWER_BYTES})`, () => {
  it('streaming: ends with an error event response_too_large once past the bound, and the upstream request is aborted', async () => {
    const res = await post({ input: 'scenario:long tokens:2000 delay:2 #native-big-sse', stream: true });
    expect(res.status).toBe(200);
    const { events: got, bytes } = await events(res);
    expect(got.at(-1)).toEqual({ event: 'error', data: { type: 'error', code: 'response_too_large', message: expect.stringContaining(String(MAX_ANSWER_BYTES)), param: null } });
    expect(got.some((e) => e.event === 'response.completed')).toBe(false);
    // Relayed up to the bound, not beyond: what Jarvis kept is what it relayed.
    expect(bytes).toBeLessThan(MAX_ANSWER_BYTES + 1024);
    expect(got.filter((e) => e.event === 'response.output_text.delta').length).toBeGreaterThan(10);
    await upstreamAborted('#native-big-sse');
    await jarvis.waitForLog((l) => /stream_error .*code=response_too_large/.test(l));
    await waitForIdle(jarvis.url);
  });

  it('not streaming: a 502 response_too_large, and the upstream request is aborted', async () => {
    const res = await post({ input: 'scenario:long tokens:2000 delay:2 #native-big-json' });
    expect(res.status).toBe(502);
    expect(await res.json()).toEqual({ error: { message: expect.stringContaining(String(MAX_ANSWER_BYTES)), type: 'api_error', param: null, code: 'response_too_large' } });
    await upstreamAborted('#native-big-json');
  });

  it('while an answer within the bound streams in full, and is stored', async () => {
    const res = await post({ input: 'scenario:long tokens:10 #native-small', stream: true });
    const { events: got } = await events(res);
    const last = got.at(-1)!;
    expect(last).toMatchObject({ event: 'response.completed', data: { response: { status: 'completed' } } });
    const id = (last.data.response as { id: string }).id;
    const stored = await fetch(`${jarvis.url}/v1/responses/${id}`);
    expect(stored.status).toBe(200);
    expect(await stored.json()).toMatchObject({ id, status: 'completed' });
  });
});
