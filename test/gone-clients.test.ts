// A client that sends its request and leaves at once (a disconnect storm: a voice client killed, a page closed)
// must not cost an upstream request. The server here is busy when the requests arrive, as in a storm: another
// process writes each request and its FIN while this process (Jarvis's) is blocked, so Jarvis reads the request
// and learns of the FIN only on a later turn of its loop. Nothing may reach the upstream for them.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startJarvis, throughMock, type TestJarvis } from './support/jarvis.js';
import { startMockUpstream, type MockUpstream } from '../fakes/openai/index.js';

const CLIENTS = 5;

let mock: MockUpstream;
let jarvis: TestJarvis;
let dir: string;

beforeAll(async () => {
  mock = await startMockUpstream();
  jarvis = await startJarvis(throughMock(mock.url));
  dir = mkdtempSync(join(tmpdir(), 'jarvis-gone-'));
});
afterAll(async () => {
  await jarvis.close();
  await mock.close();
  rmSync(dir, { recursive: true, force: true });
});

/**
 * The clients, in a child process: they connect, and on "go" each writes its whole request and closes its side
 * (data and FIN), then the child touches `flag`. Returns the child's "go" and its exit.
 */
function clients(port: number, flag: string, tag: string): { go(): void; exited: Promise<void>; connected: Promise<void> } {
  const body = JSON.stringify({ model: 'mock-model', stream: true, messages: [{ role: 'user', content: 'hi' }], tag });
  const request = `POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
  const script = `
    const net = require('node:net'), fs = require('node:fs');
    const sockets = [];
    let up = 0;
    for (let i = 0; i < ${CLIENTS}; i++) {
      const s = net.connect(${port}, '127.0.0.1', () => { if (++up === ${CLIENTS}) process.send('connected'); });
      s.on('error', () => {}); s.on('data', () => {});
      sockets.push(s);
    }
    process.on('message', async () => {
      await Promise.all(sockets.map((s) => new Promise((r) => s.end(${JSON.stringify(request)}, r))));
      fs.writeFileSync(${JSON.stringify(flag)}, '1');
      setTimeout(() => process.exit(0), 500);
    });`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  return {
    connected: new Promise((resolve) => child.once('message', () => resolve())),
    go: () => child.send('go'),
    exited: new Promise((resolve) => child.once('exit', () => resolve())),
  };
}

it('a request whose client left as it sent it never reaches the upstream', async () => {
  const flag = join(dir, 'sent');
  const tag = 'gone-at-once';
  const port = Number(new URL(jarvis.url).port);
  const c = clients(port, flag, tag);
  await c.connected;
  c.go();
  // Busy, as a server in a storm is: this loop (Jarvis's) runs nothing until every request and FIN has arrived.
  const deadline = Date.now() + 10_000;
  while (!existsSync(flag) && Date.now() < deadline);
  expect(existsSync(flag)).toBe(true);

  const log = await jarvis.waitForLog((l) => (l.match(/stream_end .*outcome=cancelled/g) ?? []).length >= CLIENTS);
  expect((log.match(/stream_cancelled .*reason=client_disconnected/g) ?? []).length).toBe(CLIENTS);
  expect(mock.requests.filter((r) => r.body.tag === tag)).toEqual([]);
  await c.exited;
});
