// What reaches an upstream of what a client sent: Jarvis's own request id and a valid traceparent, nothing else.
// The client's Authorization (its Jarvis key) never does; the upstream gets the upstream's key or none.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { as } from './support/access.js';
import { postChat, user } from './support/chat.js';
import { startJarvis, type TestJarvis } from './support/jarvis.js';
import { startMockUpstream, type MockUpstream } from '../fakes/openai/index.js';

const KEY = 'sk-client-key-0001';
const TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

let keyed: MockUpstream;
let open: MockUpstream;
let jarvis: TestJarvis;

beforeAll(async () => {
  [keyed, open] = await Promise.all([startMockUpstream(), startMockUpstream()]);
  jarvis = await startJarvis({
    apiKeys: [KEY],
    defaultModel: 'keyed-model',
    upstreams: [
      { name: 'keyed', baseUrl: keyed.url, apiKey: 'sk-upstream-secret', models: ['keyed-model'] },
      { name: 'open', baseUrl: open.url, models: ['open-model'] },
    ],
  });
});
afterAll(async () => {
  await jarvis.close();
  await Promise.all([keyed.close(), open.close()]);
});

/** One chat through Jarvis with `headers`; the upstream request it caused and Jarvis's x-request-id. */
async function relay(model: string, headers: Record<string, string>) {
  const upstream = model === 'keyed-model' ? keyed : open;
  const before = upstream.requests.length;
  const res = await postChat(jarvis.url, { model, messages: user('hi tokens:1') }, { headers: { ...as(KEY), ...headers } });
  expect(res.status).toBe(200);
  await res.json();
  expect(upstream.requests.length).toBe(before + 1);
  return { sent: upstream.requests.at(-1)!.headers, requestId: res.headers.get('x-request-id') };
}

describe('headers sent upstream', () => {
  it('are Jarvis’s request id and the caller’s valid traceparent, with the upstream’s own key; nothing else of the client’s', async () => {
    const { sent, requestId } = await relay('keyed-model', {
      traceparent: TRACEPARENT,
      'x-request-id': 'client-chosen-id',
      'x-session-id': 'sess-1',
      cookie: 'session=abc',
      'x-forwarded-for': '203.0.113.9',
      'openai-organization': 'org-client',
      'x-custom': 'anything',
      'user-agent': 'client-agent/1.0',
    });
    expect(requestId).toMatch(/^req_/);
    expect(sent['x-request-id']).toBe(requestId);
    expect(sent.traceparent).toBe(TRACEPARENT);
    expect(sent.authorization).toBe('Bearer sk-upstream-secret');
    for (const name of ['x-session-id', 'cookie', 'x-forwarded-for', 'openai-organization', 'x-custom']) expect(sent[name], name).toBeUndefined();
    expect(sent['user-agent']).not.toBe('client-agent/1.0');
    expect(JSON.stringify(sent)).not.toContain(KEY);
  });

  it('carry no Authorization at all to an upstream without a key (never the client’s)', async () => {
    const { sent } = await relay('open-model', {});
    expect(sent.authorization).toBeUndefined();
    expect(JSON.stringify(sent)).not.toContain(KEY);
  });

  it.each([
    ['an all-zero trace id', '00-00000000000000000000000000000000-00f067aa0ba902b7-01'],
    ['an all-zero parent id', '00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01'],
    ['upper case', TRACEPARENT.toUpperCase()],
    ['another version', 'ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'],
    ['extra fields', `${TRACEPARENT}-extra`],
    ['garbage', 'not a trace'],
  ])('drop a traceparent with %s', async (_what, traceparent) => {
    const { sent, requestId } = await relay('keyed-model', { traceparent });
    expect(sent.traceparent).toBeUndefined();
    expect(sent['x-request-id']).toMatch(/^req_/);
    // Ignored for the log's trace too: the same check decides both.
    const log = await jarvis.waitForLog((l) => l.includes(`stream_id=${requestId} `));
    expect(new RegExp(`stream_start trace=4bf92f3577b34da6a3ce929d0e0e4736 stream_id=${requestId} `).test(log)).toBe(false);
  });
});

it('a valid traceparent gives the log its trace id', async () => {
  const { requestId } = await relay('keyed-model', { traceparent: TRACEPARENT });
  const log = await jarvis.waitForLog((l) => l.includes(`stream_id=${requestId} `));
  expect(log).toMatch(new RegExp(`stream_start trace=4bf92f3577b34da6a3ce929d0e0e4736 stream_id=${requestId} `));
});
