// count_tokens against an Anthropic upstream that answers it badly: Jarvis reads a bounded amount of the answer and
// says the upstream failed (502, Anthropic's api_error), never blaming the client's request or holding an endless body.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startJarvis, type TestJarvis } from './support/jarvis.js';

let upstream: Server;
let jarvis: TestJarvis;
let currentCase: 'garbage' | 'endless' = 'garbage';
beforeAll(async () => {
  upstream = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      if (req.url === '/v1/models') return void res.writeHead(200, { 'content-type': 'application/json' }).end('{"data":[]}');
      // How the test's current case answers: not JSON, or a JSON body that never ends.
      res.writeHead(200, { 'content-type': 'application/json' });
      if (currentCase === 'garbage') return void res.end('<html>not a count</html>');
      res.write(`{"input_tokens":1,"padding":"`);
      const chunk = 'x'.repeat(64 * 1024);
      const more = () => {
        while (!res.destroyed && res.write(chunk));
        if (!res.destroyed) res.once('drain', more);
      };
      more();
    });
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  const { port } = upstream.address() as AddressInfo;
  jarvis = await startJarvis({ upstreams: [{ name: 'claude', baseUrl: `http://127.0.0.1:${port}`, provider: 'anthropic', models: ['claude-x'] }], defaultModel: 'claude-x' });
});
afterAll(async () => {
  await jarvis?.close();
  upstream.closeAllConnections();
  await new Promise<void>((resolve) => upstream.close(() => resolve()));
});

const count = () =>
  fetch(`${jarvis.url}/v1/messages/count_tokens`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'claude-x', messages: [{ role: 'user', content: 'hi' }] }) });

describe('count_tokens over an Anthropic upstream that answers badly', () => {
  it.each(['garbage', 'endless'] as const)('%s: a 502 api_error in Anthropic\'s shape', async (c) => {
    currentCase = c;
    const res = await count();
    expect(res.status).toBe(502);
    expect(await res.json()).toMatchObject({ type: 'error', error: { type: 'api_error', message: expect.stringContaining('input_tokens') } });
  });
});
