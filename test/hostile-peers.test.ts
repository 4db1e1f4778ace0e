// Clients and upstreams that misbehave: each case checks what the client ends up with, the log line that names
// the cause, and that every stream, session, batch and timer is released afterwards.
import { Agent, fetch as undiciFetch } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chunksOf, orFail, postChat, textOf, user, waitForIdle } from './support/chat.js';
import { startJarvis, type TestJarvis } from './support/jarvis.js';
import { readSse, sseData } from './support/sse.js';
import { startMockUpstream, type MockUpstream } from '../fakes/openai/index.js';
import { parseRawResponse, rawRequest, startRawUpstream, type RawUpstream } from './support/raw-peers.js';

const TIMEOUT_MS = 500;
const MAX_HEADER_BYTES = 4096;

let mock: MockUpstream;
let raw: RawUpstream;
let jarvis: TestJarvis;

beforeAll(async () => {
  [mock, raw] = await Promise.all([startMockUpstream(), startRawUpstream()]);
  jarvis = await startJarvis({
    upstreams: [
      { name: 'raw', baseUrl: raw.url, models: ['raw-model'] },
      { name: 'mock', baseUrl: mock.url, models: ['*'] },
    ],
    defaultModel: 'mock-model',
    simulator: { tokensPerSec: 2000, ttftMs: 0 },
    requestTimeoutMs: TIMEOUT_MS,
    maxHeaderBytes: MAX_HEADER_BYTES,
    upstreamTimeoutMs: TIMEOUT_MS,
    upstreamIdleMs: TIMEOUT_MS,
    // Batches go out on the timer only: a flood of large tokens would otherwise log a flush per token.
    events: { flushBytes: 1024 * 1024 },
  });
});
afterAll(async () => {
  await jarvis.close();
  await Promise.all([mock.close(), raw.close()]);
});

/** The log from now on: each case looks only at the lines it caused. */
async function logFromHere() {
  const offset = (await jarvis.logs()).length;
  return {
    text: async () => (await jarvis.logs()).slice(offset),
    waitFor: async (re: RegExp) => (await jarvis.waitForLog((l) => re.test(l.slice(offset)))).slice(offset),
  };
}

/** The mock's record of the request a test tagged, once it has arrived. */
function requestTagged(tag: string) {
  return orFail(
    (async () => {
      for (;;) {
        const rec = mock.requests.find((r) => r.body.tag === tag);
        if (rec) return rec;
        await new Promise((r) => setTimeout(r, 5));
      }
    })(),
    `the upstream request tagged ${tag}`,
  );
}

const expectIdle = async () => expect(await waitForIdle(jarvis.url)).toMatchObject({ streams: 0, sessions: 0, buffers: 0, timers: 0 });

function openAiError(body: string) {
  const parsed = JSON.parse(body) as { error: Record<string, unknown> };
  expect(Object.keys(parsed)).toEqual(['error']);
  expect(Object.keys(parsed.error).sort()).toEqual(['code', 'message', 'param', 'type']);
  return parsed.error;
}

const chatHead = (length: number) =>
  `POST /v1/chat/completions HTTP/1.1\r\nhost: jarvis\r\ncontent-type: application/json\r\ncontent-length: ${length}\r\n\r\n`;
const chatBody = JSON.stringify({ messages: user('hello there tokens:3'), stream: true });

describe('a client that', () => {
  it('connects and sends nothing is answered 408 and disconnected: a silent socket is not held open', async () => {
    const log = await logFromHere();
    const ex = await rawRequest(jarvis.url, '');
    const res = parseRawResponse(await orFail(ex.closed, 'the server closing a silent connection'));
    expect(res.status).toBe(408);
    expect(openAiError(res.body)).toMatchObject({ code: 'request_timeout' });
    await log.waitFor(/client_error status=408 code=request_timeout/);
  });

  it('sends its headers too slowly gets a 408 request_timeout and is disconnected', async () => {
    const log = await logFromHere();
    const ex = await rawRequest(jarvis.url, 'POST /v1/chat/completions HTTP/1.1\r\nhost: jarvis\r\n');
    const res = parseRawResponse(await orFail(ex.closed, 'the server closing a slow-headers connection'));
    expect(res.status).toBe(408);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(openAiError(res.body)).toMatchObject({ type: 'invalid_request_error', code: 'request_timeout', param: null });
    expect(await log.waitFor(/client_error status=408 code=request_timeout reason=ERR_HTTP_REQUEST_TIMEOUT/)).not.toMatch(/stream_start|request_failed/);
    await expectIdle();
  });

  it('sends its body too slowly gets a 408 request_timeout, and no stream starts', async () => {
    const log = await logFromHere();
    const ex = await rawRequest(jarvis.url, chatHead(chatBody.length) + chatBody.slice(0, 10));
    const res = parseRawResponse(await orFail(ex.closed, 'the server closing a slow-body connection'));
    expect(res.status).toBe(408);
    expect(openAiError(res.body)).toMatchObject({ code: 'request_timeout' });
    const text = await log.waitFor(/client_error status=408 code=request_timeout/);
    expect(text).not.toMatch(/stream_start|request_failed/);
    await expectIdle();
  });

  it(`sends headers over ${MAX_HEADER_BYTES} bytes gets an OpenAI-shaped 431, and the server keeps serving`, async () => {
    const log = await logFromHere();
    const ex = await rawRequest(jarvis.url, `GET /healthz HTTP/1.1\r\nhost: jarvis\r\nx-filler: ${'a'.repeat(MAX_HEADER_BYTES * 2)}\r\n\r\n`);
    const res = parseRawResponse(await orFail(ex.closed, 'the server closing an oversized-headers connection'));
    expect(res.status).toBe(431);
    expect(openAiError(res.body)).toMatchObject({ type: 'invalid_request_error', code: 'headers_too_large' });
    await log.waitFor(/client_error status=431 code=headers_too_large reason=HPE_HEADER_OVERFLOW/);
    // The same through an ordinary client, with many headers instead of one long one.
    const headers = Object.fromEntries(Array.from({ length: 400 }, (_, i) => [`x-h${i}`, 'value']));
    const viaFetch = await fetch(`${jarvis.url}/healthz`, { headers });
    expect(viaFetch.status).toBe(431);
    expect(openAiError(await viaFetch.text())).toMatchObject({ code: 'headers_too_large' });
    expect((await fetch(`${jarvis.url}/healthz`)).status).toBe(200);
    await expectIdle();
  });

  it('disconnects in the middle of its body leaves a request_aborted line and nothing else behind', async () => {
    const log = await logFromHere();
    // `Expect: 100-continue` makes Node say "100 Continue" as it hands the request to Fastify, which then reads the
    // body: past that line the request is Jarvis's, and only then does the client vanish, mid-body.
    const head = chatHead(chatBody.length).replace('\r\n\r\n', '\r\nexpect: 100-continue\r\n\r\n');
    const ex = await rawRequest(jarvis.url, head);
    await orFail(
      new Promise<void>((resolve) => {
        const check = () => ex.received().includes('100 Continue') && resolve();
        ex.socket.on('data', check);
        check();
      }),
      'the server accepting the request',
    );
    ex.socket.write(chatBody.slice(0, 10));
    ex.socket.destroy();
    const text = await log.waitFor(/request_aborted request_id=req_/);
    expect(text).not.toMatch(/stream_start|request_failed|request_rejected|client_error/);
    await expectIdle();
  });

  it('stops reading its stream is cancelled with client_backpressure, and the upstream request is closed', async () => {
    const log = await logFromHere();
    // Loopback sockets absorb megabytes before Node's own buffer grows: a long, fast stream of large tokens.
    const body = JSON.stringify({ messages: user(`flood tokens:1000000 delay:0 text:${'x'.repeat(1000)}`), stream: true, tag: 'backpressure' });
    const ex = await rawRequest(jarvis.url, chatHead(Buffer.byteLength(body)) + body);
    ex.socket.pause();
    const rec = await requestTagged('backpressure');
    const text = await log.waitFor(/stream_end .*outcome=cancelled/);
    expect(text).toMatch(/stream_cancelled .*reason=client_backpressure request_id=req_/);
    await orFail(rec.closed, 'the upstream request closing');
    expect(rec.clientClosed).toBe(true);
    expect(rec.tokensSent).toBeLessThan(1_000_000);
    // What it does read later is a cut-off stream: it never gets [DONE].
    ex.socket.resume();
    expect(await orFail(ex.closed, 'the client connection closing')).not.toContain('[DONE]');
    await expectIdle();
  });
});

describe('an upstream that', () => {
  const ask = (knobs: string, tag: string) => postChat(jarvis.url, { messages: user(`hello there ${knobs}`), stream: true, tag });

  it('stalls before its headers: 504 upstream_timeout, upstream request aborted', async () => {
    const log = await logFromHere();
    const res = await ask('headers-delay:60000', 'stall-headers');
    expect(res.status).toBe(504);
    expect(openAiError(await res.text())).toMatchObject({ type: 'api_error', code: 'upstream_timeout' });
    await log.waitFor(/stream_error .*code=upstream_timeout/);
    const rec = await requestTagged('stall-headers');
    await orFail(rec.closed, 'the upstream request closing');
    expect(rec.clientClosed).toBe(true);
    await expectIdle();
  });

  it.each<{ name: string; knobs: string; code: string; type?: string }>([
    { name: 'stalls mid-stream', knobs: 'tokens:5 stall-after:2', code: 'upstream_idle_timeout' },
    { name: 'sends malformed SSE', knobs: 'tokens:5 malformed-after:2', code: 'upstream_stream_error' },
    // The upstream's own error event, relayed as it was sent.
    { name: 'sends an error event mid-stream', knobs: 'tokens:5 error-after:2', code: 'mock_error', type: 'server_error' },
    { name: 'closes its connection early', knobs: 'tokens:5 fail-after:2', code: 'upstream_stream_error' },
    { name: 'ends without [DONE]', knobs: 'tokens:2 no-done', code: 'upstream_stream_error' },
  ])('$name: the tokens so far, one error line with $code, [DONE], upstream closed', async ({ name, knobs, code, type }) => {
    const log = await logFromHere();
    const res = await ask(knobs, name);
    expect(res.status).toBe(200);
    const requestId = res.headers.get('x-request-id')!;
    const chunks = chunksOf(await readSse(res));
    expect(textOf(chunks.slice(0, -1))).toBe('tok0 tok1 ');
    expect(chunks.at(-1)).toEqual({ error: { message: expect.stringMatching(/\S/), type: type ?? 'api_error', ...(type ? {} : { param: null }), code } });
    await log.waitFor(new RegExp(`stream_error .*request_id=${requestId} code=${code}`));
    await log.waitFor(new RegExp(`stream_end .*stream_id=${requestId} outcome=error`));
    await orFail((await requestTagged(name)).closed, 'the upstream request closing');
    await expectIdle();
  });

  it('answers 200 with a non-SSE body: 502 upstream_stream_error before anything was streamed', async () => {
    const log = await logFromHere();
    raw.script('garbage', { headers: { 'content-type': 'text/html' }, chunks: ['<html><body>', 'Service temporarily unavailable', '</body></html>\n'], then: 'end' });
    const res = await postChat(jarvis.url, { model: 'raw-model', messages: user('hi'), stream: true, script: 'garbage' });
    expect(res.status).toBe(502);
    expect(openAiError(await res.text())).toMatchObject({ type: 'api_error', code: 'upstream_stream_error' });
    await log.waitFor(/stream_error .*code=upstream_stream_error/);
    await orFail(raw.closedFor('garbage'), 'the upstream response closing');
    await expectIdle();
  });

  it('sends one endless line: cut off past 1 MiB with upstream_stream_error, connection closed', async () => {
    const log = await logFromHere();
    const token = `data: ${JSON.stringify({ choices: [{ index: 0, delta: { content: 'first' }, finish_reason: null }] })}\n\n`;
    const endless = Array.from({ length: 48 }, () => 'y'.repeat(64 * 1024));
    raw.script('endless', { chunks: [token, 'data: {"choices":[{"delta":{"content":"', ...endless], then: 'hang' });
    const res = await postChat(jarvis.url, { model: 'raw-model', messages: user('hi'), stream: true, script: 'endless' });
    expect(res.status).toBe(200);
    const chunks = chunksOf(await readSse(res));
    expect(textOf(chunks.slice(0, -1))).toBe('first');
    expect(chunks.at(-1)!.error).toMatchObject({ code: 'upstream_stream_error', message: expect.stringMatching(/without completing an event/) });
    await log.waitFor(/stream_error .*code=upstream_stream_error/);
    await orFail(raw.closedFor('endless'), 'the upstream response closing');
    await expectIdle();
  });

  it('sends a huge but complete single chunk: relayed whole to a client that reads', async () => {
    const big = 'z'.repeat(512 * 1024);
    raw.script('big', { chunks: [`data: ${JSON.stringify({ choices: [{ index: 0, delta: { content: big }, finish_reason: 'stop' }] })}\n\n`, 'data: [DONE]\n\n'], then: 'end' });
    const res = await postChat(jarvis.url, { model: 'raw-model', messages: user('hi'), stream: true, script: 'big' });
    expect(res.status).toBe(200);
    const chunks = chunksOf(await readSse(res));
    expect(textOf(chunks)).toBe(big);
    expect(chunks.at(-1)!.choices[0]!.finish_reason).toBe('stop');
    await expectIdle();
  });
});

describe('after an error mid-stream', () => {
  it('the response ends after the error line and [DONE], and the connection stays usable for the next request', async () => {
    const agent = new Agent({ connections: 1, pipelining: 1 });
    let accepted = 0;
    const onConnection = () => accepted++;
    jarvis.jarvis.app.server.on('connection', onConnection);
    try {
      const post = (knobs: string) =>
        undiciFetch(`${jarvis.url}/v1/chat/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ messages: user(`hi ${knobs}`), stream: true }),
          dispatcher: agent,
        });
      const failed = await post('tokens:5 error-after:1');
      const text = await orFail(failed.text(), 'the failed response ending');
      expect(text.endsWith('data: [DONE]\n\n')).toBe(true);
      expect(text.match(/^data: \{"error"/gm)).toHaveLength(1);
      const next = await post('tokens:2');
      const data = sseData(await next.text());
      expect(chunksOf(data).at(-1)!.choices[0]!.finish_reason).toBe('stop');
      // Both on the one connection: the error ended its response cleanly instead of breaking the connection.
      expect(accepted).toBe(1);
    } finally {
      jarvis.jarvis.app.server.off('connection', onConnection);
      await agent.close();
    }
  });
});
