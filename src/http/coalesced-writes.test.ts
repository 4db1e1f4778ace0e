import { createServer, request, type ServerResponse } from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { CoalescedWrites } from './coalesced-writes.js';

describe('CoalescedWrites', () => {
  const closers: Array<() => void> = [];
  afterEach(() => {
    for (const c of closers.splice(0)) c();
  });

  /** A real response on loopback, its write() counted. */
  async function response(method = 'GET'): Promise<{ res: ServerResponse; writes: string[]; body: Promise<string> }> {
    const server = createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    closers.push(() => server.close());
    const port = (server.address() as AddressInfo).port;
    const req = request({ host: '127.0.0.1', port, path: '/', method });
    // The second test destroys the response: the client's hang-up is expected there.
    req.on('error', () => {});
    req.end();
    const [, res] = (await once(server, 'request')) as [unknown, ServerResponse];
    res.writeHead(200, { 'content-type': 'text/plain' });
    const writes: string[] = [];
    const write = res.write.bind(res) as (chunk: string) => boolean;
    res.write = ((chunk: string) => {
      writes.push(chunk);
      return write(chunk);
    }) as typeof res.write;
    const body = once(req, 'response').then(async ([incoming]) => {
      let text = '';
      for await (const c of incoming as AsyncIterable<Buffer>) text += c.toString();
      return text;
    });
    return { res, writes, body };
  }

  it('sends the writes made before its deferred flush as one write, in order, and counts them as pending until then', async () => {
    const { res, writes, body } = await response();
    const out = new CoalescedWrites(res, setImmediate);
    out.write('a');
    out.write('b');
    out.write('c');
    expect(writes).toEqual([]);
    expect(out.pending).toBe(3);
    await new Promise((r) => setImmediate(r));
    expect(writes).toEqual(['abc']);
    out.write('d');
    out.end('e');
    expect(await body).toBe('abcde');
  });

  it('writes nothing once the response is gone', async () => {
    const { res, writes, body } = await response();
    body.catch(() => {});
    const out = new CoalescedWrites(res, setImmediate);
    out.write('a');
    res.destroy();
    await new Promise((r) => setImmediate(r));
    expect(writes).toEqual([]);
  });

  it('sends the flushes after the first as chunks of their own, straight to the socket, and the client reads the same body', async () => {
    const { res, writes, body } = await response();
    const out = new CoalescedWrites(res, setImmediate);
    const flushed = () => new Promise((r) => setImmediate(r));
    out.write('head');
    await flushed();
    out.write('✓ é');
    out.write('x'.repeat(70_000));
    await flushed();
    out.write('tail');
    await flushed();
    out.end('!');
    expect(writes).toEqual(['head']);
    expect(await body).toBe('head✓ é' + 'x'.repeat(70_000) + 'tail!');
  });

  it('never writes a body to the socket for a HEAD request', async () => {
    const { res, body } = await response('HEAD');
    const socketWrites: unknown[] = [];
    const socket = res.socket!;
    const write = socket.write.bind(socket) as (chunk: unknown) => boolean;
    socket.write = ((chunk: unknown) => {
      socketWrites.push(chunk);
      return write(chunk);
    }) as typeof socket.write;
    const out = new CoalescedWrites(res, setImmediate);
    out.write('a');
    await new Promise((r) => setImmediate(r));
    out.write('b');
    await new Promise((r) => setImmediate(r));
    out.end();
    expect(await body).toBe('');
    expect(socketWrites.join('')).not.toMatch(/\r\nb\r\n/);
  });
});
