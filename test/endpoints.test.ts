// The other endpoints a client expects of an OpenAI-compatible gateway: the model list as the upstreams report
// it, one model by id, and /v1/completions and /v1/embeddings relayed to the upstream that serves the model (or
// answered by the simulator where it can), each as the upstream answers it directly.
import { once } from 'node:events';
import { connect } from 'node:net';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { orFail, waitForIdle } from './support/chat.js';
import { startJarvis, type TestJarvis } from './support/jarvis.js';
import { readSse, SseReader } from './support/sse.js';
import { ERRORS, MODELS, startOpenAIUpstream, type OpenAIUpstream } from '../fakes/openai/index.js';

let up: OpenAIUpstream;
let jarvis: TestJarvis;

beforeAll(async () => {
  up = await startOpenAIUpstream();
  jarvis = await startJarvis({
    upstreams: [
      { name: 'local', baseUrl: up.url, models: ['llama-local'] },
      { name: 'openai', baseUrl: up.url, models: ['*'] },
    ],
    defaultModel: 'gpt-4o-mini',
  });
});
afterAll(async () => {
  await jarvis.close();
  await up.close();
});

const post = (base: string, path: string, body: unknown, signal?: AbortSignal) =>
  fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), ...(signal ? { signal } : {}) });
const direct = (path: string, body: unknown) => post(up.url, path, body);
const through = (path: string, body: unknown, signal?: AbortSignal) => post(`${jarvis.url}/v1`, path, body, signal);

describe('GET /v1/models', () => {
  it('lists what the catch-all upstream says it serves, beside the configured models and the simulator', async () => {
    const list = (await (await fetch(`${jarvis.url}/v1/models`)).json()) as { object: string; data: { id: string; owned_by: string; created: number }[] };
    expect(list.object).toBe('list');
    const ids = list.data.map((m) => m.id);
    expect(ids).toEqual(expect.arrayContaining(['jarvis-sim', 'llama-local', ...MODELS.map((m) => m.id)]));
    expect(new Set(ids).size).toBe(ids.length);
    // The upstream's own description of its models, not one Jarvis made up.
    expect(list.data.find((m) => m.id === 'gpt-4o-mini')).toEqual({ ...MODELS[0], object: 'model' });
  });

  it('asks the upstream at most once in a while, however often it is asked', async () => {
    await fetch(`${jarvis.url}/v1/models`).then((r) => r.arrayBuffer());
    const before = up.modelListRequests;
    await Promise.all(Array.from({ length: 20 }, () => fetch(`${jarvis.url}/v1/models`).then((r) => r.arrayBuffer())));
    expect(up.modelListRequests).toBe(before);
  });
});

describe('GET /v1/models/{id}', () => {
  it('returns one model, ids with slashes included, and 404 model_not_found for one nobody serves', async () => {
    const client = new OpenAI({ baseURL: `${jarvis.url}/v1`, apiKey: 'x', maxRetries: 0 });
    expect(await client.models.retrieve('gpt-4o-mini')).toMatchObject({ id: 'gpt-4o-mini', object: 'model', owned_by: 'system' });
    expect(await client.models.retrieve('jarvis-sim')).toMatchObject({ id: 'jarvis-sim', owned_by: 'jarvis' });
    const missing = await fetch(`${jarvis.url}/v1/models/nobody/serves-this`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({ error: { message: expect.stringContaining('nobody/serves-this'), type: 'invalid_request_error', param: 'model', code: 'model_not_found' } });
    await expect(client.models.retrieve('no-such-model')).rejects.toBeInstanceOf(OpenAI.NotFoundError);
  });
});

describe('POST /v1/completions', () => {
  const body = (prompt: string, extra: Record<string, unknown> = {}) => ({ model: 'gpt-4o-mini', prompt, max_tokens: 16, ...extra });

  it('answers as the upstream does, streaming or not', async () => {
    const [a, b] = await Promise.all([direct('/completions', body('The capital of France is')), through('/completions', body('The capital of France is'))]);
    expect(b.status).toBe(200);
    expect(await b.json()).toEqual(await a.json());
    const streamed = body('Streamed:', { stream: true, stream_options: { include_usage: true } });
    const [c, d] = await Promise.all([direct('/completions', streamed), through('/completions', streamed)]);
    expect(d.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(await readSse(d)).toEqual(await readSse(c));
  });

  it("passes the upstream's errors through as it sent them", async () => {
    const [a, b] = await Promise.all([direct('/completions', body('scenario:http-400')), through('/completions', body('scenario:http-400'))]);
    expect(b.status).toBe(400);
    expect(await b.json()).toEqual(await a.json());
  });

  it('closes the upstream request when the client aborts mid-stream', async () => {
    const ac = new AbortController();
    const res = await through('/completions', body('scenario:long tokens:500 delay:20 #abort-completion', { stream: true }), ac.signal);
    await new SseReader(res.body!).until((text) => text !== '', 'its first bytes');
    ac.abort();
    const rec = up.requestsFor('#abort-completion')[0]!;
    await orFail(rec.closed, 'the upstream request closing');
    expect(rec.clientClosed).toBe(true);
    await jarvis.waitForLog((l) => /relay_end .*endpoint=completions .*outcome=client_disconnected/.test(l));
    await waitForIdle(jarvis.url);
  });

  it('closes the upstream request when the client half-closes mid-stream, as a chat stream does', async () => {
    const body = JSON.stringify({ model: 'gpt-4o-mini', prompt: 'scenario:long tokens:500 delay:20 #half-close-completion', stream: true });
    const { port } = new URL(jarvis.url);
    const socket = connect(Number(port), '127.0.0.1');
    socket.write(`POST /v1/completions HTTP/1.1\r\nhost: j\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    // The answer has begun: then the client sends its FIN and reads on.
    await once(socket, 'data');
    socket.end();
    socket.resume();
    const rec = up.requestsFor('#half-close-completion')[0]!;
    await orFail(rec.closed, 'the upstream request closing');
    expect(rec.clientClosed).toBe(true);
    await jarvis.waitForLog((l) => /relay_end .*endpoint=completions .*outcome=client_disconnected/.test(l));
    socket.destroy();
    await waitForIdle(jarvis.url);
  });

  it('is refused by the simulator with a clear 400', async () => {
    const res = await through('/completions', { model: 'jarvis-sim', prompt: 'hi' });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ error: { message: expect.stringContaining('/v1/chat/completions'), type: 'invalid_request_error', param: 'model', code: 'unsupported_value' } });
  });
});

describe('POST /v1/embeddings', () => {
  it('answers as the upstream does, through the openai SDK too', async () => {
    const request = { model: 'text-embedding-3-small', input: ['one', 'three'] };
    const [a, b] = await Promise.all([direct('/embeddings', request), through('/embeddings', request)]);
    expect(b.status).toBe(200);
    expect(await b.json()).toEqual(await a.json());
    const client = new OpenAI({ baseURL: `${jarvis.url}/v1`, apiKey: 'x', maxRetries: 0 });
    const res = await client.embeddings.create({ model: 'text-embedding-3-small', input: 'hello', encoding_format: 'float' });
    expect(res.data[0]!.embedding).toHaveLength(3);
  });

  it('on the simulator: small deterministic vectors, labelled as simulated, float or base64 (the SDK default)', async () => {
    const res = await through('/embeddings', { model: 'jarvis-sim', input: ['the cat sat', 'the cat sat', 'quantum flux'] });
    expect(res.headers.get('x-jarvis-simulated')).toBe('true');
    const body = (await res.json()) as { model: string; data: { index: number; embedding: number[] }[]; usage: { prompt_tokens: number } };
    expect(body.model).toBe('jarvis-sim');
    const [a, b, c] = body.data.map((d) => d.embedding);
    expect(a).toHaveLength(16);
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
    expect(Math.hypot(...a!)).toBeCloseTo(1, 5);
    const client = new OpenAI({ baseURL: `${jarvis.url}/v1`, apiKey: 'x', maxRetries: 0 });
    const viaSdk = await client.embeddings.create({ model: 'jarvis-sim', input: 'the cat sat', dimensions: 16 });
    for (const [i, v] of viaSdk.data[0]!.embedding.entries()) expect(v).toBeCloseTo(a![i]!, 5);
  });

  it('refuses bad input with a 400 naming the parameter', async () => {
    const res = await through('/embeddings', { model: 'jarvis-sim', input: [] });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: { param: 'input', code: 'invalid_value' } });
    const upstream = await through('/embeddings', { model: 'text-embedding-3-small', input: 'scenario:http-429' });
    expect(upstream.status).toBe(429);
    expect(upstream.headers.get('retry-after')).toBe(ERRORS['http-429']!.headers!['retry-after']);
    await upstream.arrayBuffer();
  });
});
