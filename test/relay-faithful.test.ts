// A faithful gateway, below any client library: for each answer an OpenAI-shaped upstream can give, the client
// gets through Jarvis what it gets talking to the upstream directly. Streams are compared byte for byte (Jarvis
// relays each chunk as the upstream sent it), JSON answers field by field (Jarvis assembles them from the stream
// the way openai-node's ChatCompletionStream does). docs/api.md lists what Jarvis does rewrite.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startJarvis, type TestJarvis } from './support/jarvis.js';
import { readSse, SseReader } from './support/sse.js';
import { ERRORS, STREAM_ERROR, snapshotOf, startOpenAIUpstream, type OpenAIUpstream } from '../fakes/openai/index.js';

let up: OpenAIUpstream;
let jarvis: TestJarvis;

beforeAll(async () => {
  up = await startOpenAIUpstream();
  jarvis = await startJarvis({ upstreams: [{ name: 'openai', baseUrl: up.url, models: ['*'] }], defaultModel: 'gpt-4o-mini' });
});
afterAll(async () => {
  await jarvis.close();
  await up.close();
});

let tags = 0;
/** A chat body whose prompt picks the upstream's answer and carries a tag unique to this call. */
function chat(scenario: string, extra: Record<string, unknown> = {}) {
  const tag = `#${++tags}`;
  return { tag, body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: `scenario:${scenario} ${tag}` }], ...extra } };
}

const post = (base: string, path: string, body: unknown) => fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
const direct = (body: unknown, path = '/chat/completions') => post(up.url, path, body);
const through = (body: unknown, path = '/chat/completions') => post(`${jarvis.url}/v1`, path, body);

const SCENARIOS = ['text', 'tool', 'tools-2', 'reasoning', 'reasoning-alt', 'refusal', 'logprobs', 'annotations', 'vendor'];

describe('a stream is relayed as the upstream sent it', () => {
  it.each(SCENARIOS)('%s: the same data lines, byte for byte, without usage when none was asked for', async (scenario) => {
    const { body } = chat(scenario, { stream: true });
    const [a, b] = await Promise.all([direct(body), through(body)]);
    expect(b.status).toBe(200);
    const [mine, theirs] = await Promise.all([readSse(b), readSse(a)]);
    expect(mine).toEqual(theirs);
    expect(mine.some((d) => d.includes('"usage"'))).toBe(false);
  });

  it.each(SCENARIOS)('%s: the same data lines with stream_options.include_usage, usage details and all', async (scenario) => {
    const { body } = chat(scenario, { stream: true, stream_options: { include_usage: true } });
    const [a, b] = await Promise.all([direct(body), through(body)]);
    const [mine, theirs] = await Promise.all([readSse(b), readSse(a)]);
    expect(mine).toEqual(theirs);
    const last = JSON.parse(mine.at(-2)!) as { choices: unknown[]; usage: { completion_tokens_details: unknown } };
    expect(last.choices).toEqual([]);
    expect(last.usage.completion_tokens_details).toMatchObject({ reasoning_tokens: 0 });
  });

  it("keeps the upstream's model, system_fingerprint and service_tier, and its first chunk whole", async () => {
    const { body } = chat('tool', { stream: true, tools: [{ type: 'function', function: { name: 'lookup', parameters: { type: 'object' } } }] });
    const chunks = (await readSse(await through(body))).slice(0, -1).map((d) => JSON.parse(d) as Record<string, unknown>);
    for (const c of chunks) expect(c).toMatchObject({ model: snapshotOf('gpt-4o-mini'), system_fingerprint: expect.any(String), service_tier: 'default' });
    // A tool call's first chunk says content: null, and nothing is sent before it.
    expect(chunks[0]).toMatchObject({ choices: [{ index: 0, delta: { role: 'assistant', content: null, tool_calls: [{ index: 0, function: { name: 'lookup' } }] } }] });
  });

  it('n: 2 streams both choices by index', async () => {
    const { body } = chat('n', { stream: true, n: 2 });
    const [a, b] = await Promise.all([direct(body), through(body)]);
    const mine = await readSse(b);
    expect(mine).toEqual(await readSse(a));
    const indexes = new Set(mine.slice(0, -1).map((d) => (JSON.parse(d) as { choices: { index: number }[] }).choices[0]!.index));
    expect([...indexes].sort()).toEqual([0, 1]);
  });

  it("a barge-in ends every open choice with finish_reason cancelled, under the upstream's id and model", async () => {
    const session = { 'x-session-id': `faithful-${++tags}` };
    const first = await fetch(`${jarvis.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', ...session }, body: JSON.stringify(chat('n delay:200', { stream: true, n: 2 }).body) });
    const reader = new SseReader(first.body!);
    // Both choices have begun (each has sent its role chunk) before the barge-in.
    await reader.until((text) => text.includes('"index":1'), 'both choices');
    const second = await fetch(`${jarvis.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', ...session }, body: JSON.stringify(chat('text', { stream: true }).body) });
    await reader.rest();
    const data = reader.data;
    expect(data.at(-1)).toBe('[DONE]');
    const last = JSON.parse(data.at(-2)!) as { id: string; model: string; choices: { index: number; finish_reason: string }[] };
    expect(last).toMatchObject({ id: expect.stringMatching(/^chatcmpl-up/), model: snapshotOf('gpt-4o-mini') });
    expect(last.choices.map((c) => [c.index, c.finish_reason])).toEqual([[0, 'cancelled'], [1, 'cancelled']]);
    expect(second.status).toBe(200);
    await second.text();
  });

  it('passes the other stream_options keys through, and always asks the upstream for usage', async () => {
    const { tag, body } = chat('text', { stream: true, stream_options: { include_usage: false, include_obfuscation: false } });
    await (await through(body)).text();
    expect(up.requestsFor(tag)[0]!.body.stream_options).toEqual({ include_usage: true, include_obfuscation: false });
  });
});

describe('a JSON answer is the stream assembled as OpenAI would have answered it', () => {
  it.each(SCENARIOS)('%s: the same chat.completion as the upstream returns', async (scenario) => {
    const { body } = chat(scenario);
    const [a, b] = await Promise.all([direct(body), through(body)]);
    expect(b.status).toBe(200);
    expect(await b.json()).toEqual(await a.json());
  });

  it('n: 2 returns both choices by index', async () => {
    const { body } = chat('n', { n: 2 });
    const [a, b] = await Promise.all([direct(body), through(body)]);
    const mine = (await b.json()) as { choices: { index: number; message: { content: string } }[] };
    expect(mine).toEqual(await a.json());
    expect(mine.choices.map((c) => c.message.content)).toEqual(['Choice 0 says hi.', 'Choice 1 says hi.']);
  });

  it('a tool call comes back as message.tool_calls with content null', async () => {
    const { body } = chat('tool', { tools: [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object' } } }] });
    const completion = (await (await through(body)).json()) as { choices: { finish_reason: string; message: Record<string, unknown> }[] };
    expect(completion.choices[0]).toMatchObject({
      finish_reason: 'tool_calls',
      message: { role: 'assistant', content: null, tool_calls: [{ type: 'function', function: { name: 'get_weather', arguments: '{"location":"Paris"}' } }] },
    });
  });
});

describe('an upstream error keeps its meaning', () => {
  const cases = Object.entries(ERRORS).filter(([name]) => name !== 'http-401' && name !== 'http-403');

  it.each(cases)('%s passes through with its status, error object and retry headers, streaming or not', async (name, spec) => {
    for (const stream of [true, false]) {
      const { body } = chat(name, { stream });
      const [a, b] = await Promise.all([direct(body), through(body)]);
      expect(b.status).toBe(a.status);
      expect(await b.json()).toEqual(await a.json());
      for (const h of ['retry-after', 'retry-after-ms']) expect(b.headers.get(h)).toBe(spec.headers?.[h] ?? (h === 'retry-after-ms' && spec.headers?.['retry-after'] ? '1000' : null));
    }
  });

  it.each(['http-401', 'http-403'])("%s (Jarvis's own upstream key is refused) is a 502 upstream_auth_failed that says nothing of the key", async (name) => {
    for (const stream of [true, false]) {
      const res = await through(chat(name, { stream }).body);
      expect(res.status).toBe(502);
      const text = await res.text();
      expect(JSON.parse(text)).toEqual({ error: { message: expect.any(String), type: 'api_error', param: null, code: 'upstream_auth_failed' } });
      expect(text).not.toMatch(/sk-|proj_|wxyz|invalid_api_key/);
      expect(res.headers.get('x-should-retry')).toBe('false');
    }
  });

  it('a non-JSON error page keeps its status, as an OpenAI-shaped error', async () => {
    const res = await through(chat('http-502-html').body);
    expect(res.status).toBe(502);
    expect(await res.json()).toEqual({ error: { message: expect.stringMatching(/502/), type: 'server_error', param: null, code: null } });
  });

  it('an error event as the first event: a 200 stream carrying that event, as the upstream sent it', async () => {
    const { body } = chat('error-first', { stream: true });
    const [a, b] = await Promise.all([direct(body), through(body)]);
    expect(b.status).toBe(200);
    const theirs = await readSse(a);
    expect(theirs).toEqual([JSON.stringify(STREAM_ERROR)]);
    expect(await readSse(b)).toEqual([...theirs, '[DONE]']);
  });

  it('an error event mid-stream: the chunks so far, then that event as sent', async () => {
    const { body } = chat('error-mid', { stream: true });
    const [a, b] = await Promise.all([direct(body), through(body)]);
    const theirs = await readSse(a);
    expect(theirs.at(-1)).toBe(JSON.stringify(STREAM_ERROR));
    expect(await readSse(b)).toEqual([...theirs, '[DONE]']);
    await jarvis.waitForLog((l) => /stream_error .*code=upstream_error/.test(l));
  });

  it('an error event without streaming: the status and error object the upstream gives for it', async () => {
    for (const scenario of ['error-first', 'error-mid']) {
      const { body } = chat(scenario);
      const [a, b] = await Promise.all([direct(body), through(body)]);
      expect(b.status).toBe(a.status);
      expect(await b.json()).toEqual(await a.json());
    }
  });
});
