// What every fake writes on the wire the same way, whatever API it speaks: a JSON answer, paced frames, and the
// deterministic hash its ids come from (the same prompt gets the same ids, so an answer direct and an answer
// through a gateway can be compared whole).
import type * as http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/** FNV-1a, 32 bits: the same text always gets the same number. */
export function hash32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

export function sendJson(res: http.ServerResponse, status: number, payload: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(payload);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)), ...headers });
  res.end(text);
}

/**
 * Writes `frames`, then ends the response (or, with `end` false, half-closes the socket without ending the
 * chunked body: a stream cut short). One write per timer tick when paced (`delayMs` > 0), else batches of up to
 * 64 KiB per turn of the loop: a flood at line rate, not one syscall per token. Honours the reader's backpressure.
 */
export function writePaced(res: http.ServerResponse, frames: string[], delayMs: number, end = true): void {
  let i = 0;
  const next = () => {
    if (res.destroyed) return;
    if (i >= frames.length) {
      if (end) res.end();
      else res.socket?.end();
      return;
    }
    let out = '';
    do out += frames[i++]; while (delayMs === 0 && i < frames.length && out.length < 64 * 1024);
    const again = () => (delayMs > 0 ? setTimeout(next, delayMs) : setImmediate(next));
    if (res.write(out)) again();
    else res.once('drain', again);
  };
  next();
}

/** One request a fake received, as tests read it. */
export interface FakeRequest {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  // Tests read arbitrary fields of what was sent.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any;
  /** The text of the last (user) message: tests tag requests there, to count what reached the upstream. */
  prompt: string;
  /** The scenario the request asked for. */
  scenario: string;
  /** The client (a gateway, or a test talking directly) closed the connection before the answer was complete. */
  clientClosed: boolean;
  /** Resolves when the request's response is over: finished, or cut by the client. */
  closed: Promise<void>;
}

/** Records a request whose answer `res` is: whether its client left before the answer was whole, and when it ended. */
export function recordRequest(req: http.IncomingMessage, res: http.ServerResponse, fields: Pick<FakeRequest, 'path' | 'body' | 'prompt' | 'scenario'>): FakeRequest {
  let closed!: () => void;
  const rec: FakeRequest = { method: req.method ?? '', headers: req.headers, ...fields, clientClosed: false, closed: new Promise((r) => (closed = r)) };
  res.on('close', () => {
    if (!res.writableFinished) rec.clientClosed = true;
    closed();
  });
  return rec;
}

/** `server` listening on a loopback port; closing it destroys its connections, so a test never waits on a client's keep-alive. */
export async function listen(server: http.Server): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      }),
  };
}
