import { createServer, type Server } from 'node:http';
import { once } from 'node:events';
import type { AddressInfo, Socket } from 'node:net';
import { request } from 'undici';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { IdlePool } from './idle-pool.js';

let server: Server;
let origin: string;
const sockets = new Set<Socket>();
let connections = 0;
/** Requests held open until released, to have many in flight at once. */
let held: (() => void)[] = [];
let hold = false;

beforeEach(async () => {
  connections = 0;
  held = [];
  hold = false;
  server = createServer((req, res) => {
    const answer = () => res.end(`port ${req.socket.remotePort}`);
    if (hold) held.push(answer);
    else answer();
  });
  server.on('connection', (s: Socket) => {
    connections++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterEach(async () => {
  for (const s of sockets) s.destroy();
  server.close();
});

/** Until `n` requests wait at the server. */
const untilHeld = async (n: number) => {
  while (held.length < n) await new Promise((r) => setImmediate(r));
};
const get = async (pool: IdlePool) => (await request(`${origin}/`, { dispatcher: pool })).body.text();

describe('IdlePool', () => {
  it('reuses a freed connection for the next request', async () => {
    const pool = new IdlePool(origin, { keepAliveTimeout: 10_000 });
    const first = await get(pool);
    // 'drain' (the connection is free again) comes a microtask after the response ends.
    await new Promise((r) => setImmediate(r));
    expect(await get(pool)).toBe(first);
    expect(connections).toBe(1);
    await pool.close();
  });

  it('opens a connection per request in flight, and the next wave takes the freed ones', async () => {
    const pool = new IdlePool(origin, { keepAliveTimeout: 10_000 });
    hold = true;
    const wave = () => Array.from({ length: 20 }, () => get(pool));
    const first = wave();
    await untilHeld(20);
    for (const answer of held.splice(0)) answer();
    await Promise.all(first);
    await new Promise((r) => setImmediate(r));
    expect(pool.size).toBe(20);
    const second = wave();
    await untilHeld(20);
    for (const answer of held.splice(0)) answer();
    await Promise.all(second);
    expect(connections).toBe(20);
    await pool.close();
  });

  it('forgets a connection the server closed, and connects again for the next request', async () => {
    const pool = new IdlePool(origin, { keepAliveTimeout: 10_000 });
    await get(pool);
    const closed = [...sockets].map((s) => once(s, 'close'));
    for (const s of sockets) s.destroy();
    await Promise.all(closed);
    while (pool.size > 0) await new Promise((r) => setImmediate(r));
    await get(pool);
    expect(connections).toBe(2);
    expect(pool.size).toBe(1);
    await pool.close();
  });

  it('serves a request that takes a connection just freed by an aborted one (a barge-in), though that connection drops', async () => {
    const pool = new IdlePool(origin, { keepAliveTimeout: 10_000 });
    for (let i = 0; i < 20; i++) {
      hold = true;
      const ac = new AbortController();
      const old = request(`${origin}/`, { dispatcher: pool, signal: ac.signal }).then((r) => r.body.text());
      await untilHeld(1);
      hold = false;
      ac.abort(new Error('barged in'));
      // As a barge-in does: the next request goes out at once, and takes the connection the aborted one freed
      // (free again a microtask after the abort), whose socket closes only later.
      const next = Promise.resolve().then(() => get(pool));
      await expect(old).rejects.toThrow('barged in');
      expect(await next).toMatch(/^port /);
      held = [];
    }
    await pool.close();
  });

  it('refuses requests once closed', async () => {
    const pool = new IdlePool(origin, {});
    await get(pool);
    await pool.close();
    await expect(get(pool)).rejects.toMatchObject({ name: 'ClientClosedError' });
  });
});
