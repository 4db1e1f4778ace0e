// A native Responses upstream whose events' data spans several `data:` lines (pretty-printed JSON, which SSE
// joins with \n): Jarvis relays each event as a well-formed SSE event, one `data:` line per line of its data, so
// a client parses every event, the upstream's error event included, as it would directly.
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startJarvis, type TestJarvis } from './support/jarvis.js';
import { startOpenAIUpstream, type OpenAIUpstream } from '../fakes/openai/index.js';
import { forEachSseBlock, parseSseBlock } from './support/sse.js';

/** An upstream that answers every POST /v1/responses with a compact response.created, then a pretty-printed error event. */
const PRETTY_ERROR = { type: 'error', sequence_number: 1, code: 'server_error', message: 'The server had an error.', param: null };
let failing: http.Server;
let failingUrl: string;
let up: OpenAIUpstream;
let jarvis: TestJarvis;

beforeAll(async () => {
  up = await startOpenAIUpstream();
  failing = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const pretty = (type: string, data: unknown) => `event: ${type}\ndata: ${JSON.stringify(data, null, 2).replaceAll('\n', '\ndata: ')}\n\n`;
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const created = { type: 'response.created', sequence_number: 0, response: { id: 'resp_pretty', object: 'response', status: 'in_progress', output: [] } };
      res.write(`event: response.created\ndata: ${JSON.stringify(created)}\n\n`);
      res.end(pretty('error', PRETTY_ERROR));
    });
  });
  await new Promise<void>((r) => failing.listen(0, '127.0.0.1', r));
  failingUrl = `http://127.0.0.1:${(failing.address() as AddressInfo).port}/v1`;
  jarvis = await startJarvis({
    upstreams: [
      { name: 'openai', baseUrl: up.url, models: ['gpt-4o-mini'], responses: 'native' },
      { name: 'failing', baseUrl: failingUrl, models: ['failing-model'], responses: 'native' },
    ],
  });
});
afterAll(async () => {
  await jarvis.close();
  await up.close();
  await new Promise((r) => failing.close(r));
});

interface RawEvent {
  event: string | undefined;
  data: unknown;
}

/** Every event of an SSE body, each block held to SSE's shape: `event:` and `data:` lines only, its data JSON. */
async function rawEvents(base: string, body: Record<string, unknown>): Promise<RawEvent[]> {
  const res = await fetch(`${base}/responses`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer sk-test' }, body: JSON.stringify({ ...body, stream: true }) });
  expect(res.status).toBe(200);
  const events: RawEvent[] = [];
  await forEachSseBlock(res.body!, (block) => {
    // Comments (heartbeats) aside, `event: ` and `data: ` lines only.
    const { event, data, id, retry, other } = parseSseBlock(block);
    expect({ id, retry, other }, block).toEqual({ id: undefined, retry: undefined, other: [] });
    expect(block, 'a field without its space').not.toMatch(/^(?:event|data):(?! )/m);
    if (data === undefined) return;
    events.push({ event, data: JSON.parse(data) });
  });
  return events;
}

describe('a native Responses upstream whose event data spans several data: lines', () => {
  it('reaches the client as well-formed SSE: every event parses, the same events as directly', async () => {
    const body = { model: 'gpt-4o-mini', input: 'scenario:pretty Hello there', store: false };
    const [through, straight] = await Promise.all([rawEvents(`${jarvis.url}/v1`, body), rawEvents(up.url, body)]);
    expect(straight.length).toBeGreaterThan(5);
    expect(through).toEqual(straight);
    for (const e of through) expect(e.event).toBe((e.data as { type: string }).type);
    expect(through.at(-1)).toMatchObject({ event: 'response.completed', data: { response: { status: 'completed' } } });
  });

  it('the openai SDK reads the stream through Jarvis as it does directly', async () => {
    const collect = async (client: OpenAI) => {
      const events = [];
      for await (const e of await client.responses.create({ model: 'gpt-4o-mini', input: 'scenario:pretty Hello again', stream: true, store: false })) events.push(e);
      return events;
    };
    const through = await collect(new OpenAI({ baseURL: `${jarvis.url}/v1`, apiKey: 'sk-test', maxRetries: 0 }));
    expect(through).toEqual(await collect(new OpenAI({ baseURL: up.url, apiKey: 'sk-test', maxRetries: 0 })));
    expect(through.at(-1)?.type).toBe('response.completed');
  });

  it("relays the upstream's pretty-printed error event as one well-formed event", async () => {
    const events = await rawEvents(`${jarvis.url}/v1`, { model: 'failing-model', input: 'Hello', store: false });
    expect(events).toEqual([
      { event: 'response.created', data: expect.objectContaining({ type: 'response.created', sequence_number: 0 }) },
      { event: 'error', data: PRETTY_ERROR },
    ]);
  });
});
