// The edges of HTTP, as a hostile or just unusual client meets them: every one gets an OpenAI-shaped answer, a
// valid request is answered whatever follows it on the connection, and the connection is closed only when it
// must be (docs/errors.md says which).
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { orFail } from './support/chat.js';
import { parseRawResponse, rawRequest } from './support/raw-peers.js';
import { startJarvis, type TestJarvis } from './support/jarvis.js';

let jarvis: TestJarvis;
/** One whose request timeout is far longer than any test here waits. */
let slow: TestJarvis;

beforeAll(async () => {
  [jarvis, slow] = await Promise.all([startJarvis({ simulator: { tokensPerSec: 2000, ttftMs: 0 } }), startJarvis({ requestTimeoutMs: 60_000 })]);
});
afterAll(async () => {
  await Promise.all([jarvis?.close(), slow?.close()]);
});

const chatBody = JSON.stringify({ model: 'jarvis-sim', messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 });
const post = (body: string, extra = '') =>
  `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`;

/** Splits what a connection received into its responses (each with a content-length body). */
function responses(text: string): ReturnType<typeof parseRawResponse>[] {
  const out = [];
  let rest = text;
  while (rest.startsWith('HTTP/1.1')) {
    const r = parseRawResponse(rest);
    const length = Number(r.headers['content-length']);
    const head = rest.indexOf('\r\n\r\n') + 4;
    out.push({ ...r, body: rest.slice(head, head + length) });
    rest = rest.slice(head + length);
  }
  return out;
}

describe('HTTP edges', () => {
  it('CONNECT is answered 405 method_not_allowed, OpenAI-shaped, and the connection closed', async () => {
    const ex = await rawRequest(jarvis.url, 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n');
    const [res] = responses(await ex.closed);
    expect(res?.status).toBe(405);
    expect(res?.headers['connection']).toBe('close');
    expect(JSON.parse(res!.body)).toEqual({ error: { message: expect.any(String), type: 'invalid_request_error', param: null, code: 'method_not_allowed' } });
  });

  it('a WebSocket upgrade with a bad Sec-WebSocket-Key gets an OpenAI-shaped 400 naming the header', async () => {
    const ex = await rawRequest(
      jarvis.url,
      'GET /v1/events HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: bad\r\nSec-WebSocket-Version: 13\r\n\r\n',
    );
    const [res] = responses(await ex.closed);
    expect(res?.status).toBe(400);
    expect(res?.headers['content-type']).toMatch(/^application\/json/);
    expect(res?.headers['connection']).toBe('close');
    expect(JSON.parse(res!.body)).toMatchObject({ error: { type: 'invalid_request_error', code: 'invalid_value', param: 'Sec-WebSocket-Key' } });
  });

  it('a valid request followed by garbage on the same connection is answered, then the garbage gets its 400', async () => {
    const ex = await rawRequest(jarvis.url, `${post(chatBody)}GARBAGE \x01\x02\r\n\r\n`);
    const [first, second, ...more] = responses(await ex.closed);
    expect(first?.status).toBe(200);
    expect(JSON.parse(first!.body)).toMatchObject({ object: 'chat.completion' });
    expect(second?.status).toBe(400);
    expect(JSON.parse(second!.body)).toMatchObject({ error: { code: 'bad_request' } });
    expect(more).toEqual([]);
  });

  it('a chunked body with a malformed chunk size gets its 400 at once, not the request timeout\'s 408', async () => {
    // The server's request timeout is a minute: an answer that waited for it could not come within orFail's bound.
    const ex = await rawRequest(
      slow.url,
      'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{"a":1}\r\n0\r\n\r\n',
    );
    const [res, ...more] = responses(await orFail(ex.closed, 'the answer to a malformed chunk'));
    expect(res?.status).toBe(400);
    expect(res?.headers['connection']).toBe('close');
    expect(JSON.parse(res!.body)).toEqual({ error: { message: expect.any(String), type: 'invalid_request_error', param: null, code: 'bad_request' } });
    expect(more).toEqual([]);
    expect(await slow.waitForLog((l) => /client_error status=400 code=bad_request reason=HPE_INVALID_CHUNK_SIZE/.test(l))).not.toMatch(/stream_start/);
  });

  it('a 400 invalid_json leaves the connection open: the next request on it is answered', async () => {
    const ex = await rawRequest(jarvis.url, `${post('{bad}')}GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n`);
    const done = new Promise<void>((resolve) => {
      const check = () => responses(ex.received()).length >= 2 && resolve();
      ex.socket.on('data', check);
      check();
    });
    await Promise.race([done, ex.closed]);
    const [bad, health] = responses(ex.received());
    expect(bad?.status).toBe(400);
    expect(bad?.headers['connection']).not.toBe('close');
    expect(JSON.parse(bad!.body)).toMatchObject({ error: { code: 'invalid_json' } });
    expect(health?.status).toBe(200);
    expect(ex.socket.destroyed).toBe(false);
    ex.socket.destroy();
  });

  it('a body far over the limit, still being sent, gets its 413 rather than a reset', async () => {
    const { hostname, port } = new URL(jarvis.url);
    // More than loopback socket buffers hold, so the client is still sending well after the answer.
    const size = 16 * 1024 * 1024;
    const socket = connect(Number(port), hostname);
    let received = '';
    let writeError: Error | undefined;
    socket.on('error', (err) => (writeError = err));
    await new Promise<void>((resolve) => socket.once('connect', resolve));
    // The client does not read until it has sent everything, as a simple uploader does.
    socket.pause();
    socket.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${size}\r\n\r\n`);
    const chunk = Buffer.alloc(64 * 1024, 'a');
    for (let sent = 0; sent < size && !writeError; sent += chunk.length) {
      await new Promise<void>((resolve) => socket.write(chunk, () => resolve()));
    }
    expect(writeError).toBeUndefined();
    socket.on('data', (d: Buffer) => (received += d.toString()));
    socket.resume();
    await new Promise<void>((resolve) => {
      const check = () => (received.includes('\r\n\r\n') && responses(received).length > 0 ? resolve() : undefined);
      socket.on('data', check);
      socket.once('close', resolve);
    });
    const [res] = responses(received);
    expect(res?.status).toBe(413);
    expect(JSON.parse(res!.body)).toMatchObject({ error: { code: 'request_too_large' } });
    socket.destroy();
  });
});

describe('a shutdown', () => {
  it('answers a request pipelined behind a running stream (503 server_shutting_down) before closing the connection', async () => {
    const j = await startJarvis({ simulator: { tokensPerSec: 50, ttftMs: 0 }, shutdownGraceMs: 200 });
    const stream = post(JSON.stringify({ model: 'jarvis-sim', stream: true, messages: [{ role: 'user', content: 'Write a long essay about rivers' }] }));
    const ex = await rawRequest(j.url, stream);
    await new Promise<void>((resolve) => {
      const check = () => ex.received().includes('data: ') && resolve();
      ex.socket.on('data', check);
    });
    const shutdown = j.jarvis.shutdown();
    await j.waitForLog((l) => l.includes('shutdown_start'));
    // Not /healthz: the probes answer while draining (liveness 200, readiness 503), every other request is refused.
    ex.socket.write('GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n');
    await j.waitForLog((l) => /request_rejected .*server_shutting_down/.test(l));
    const text = await ex.closed;
    await shutdown;
    await j.close();
    expect(text).toContain('data: [DONE]');
    const after = text.slice(text.indexOf('\r\n0\r\n\r\n') + 7);
    const [res] = responses(after);
    expect(res?.status).toBe(503);
    expect(JSON.parse(res!.body)).toMatchObject({ error: { code: 'server_shutting_down' } });
  });
});
