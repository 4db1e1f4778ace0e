// Peers that do not behave: a raw-socket HTTP client that can stall, stop reading or vanish mid-request, and a
// raw upstream that answers with whatever bytes a test scripts (garbage, a half event, one endless line).
import * as http from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';

// ---------------------------------------------------------------------------------------------------------------
// Client side

export interface RawExchange {
  socket: Socket;
  /** Everything the server sent so far. */
  received(): string;
  /** Resolves with everything received once the server (or the network) closed the connection. */
  closed: Promise<string>;
}

/** Connects to `url`'s host and port and writes `text` as is; the socket stays open until either side closes it. */
export function rawRequest(url: string, text: string | Buffer): Promise<RawExchange> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    let out = '';
    socket.on('data', (d: Buffer) => (out += d.toString('utf8')));
    // A reset is one way a server closes on a peer: what was received before it is still the answer.
    socket.on('error', () => {});
    const closed = new Promise<string>((r) => socket.once('close', () => r(out)));
    socket.once('connect', () => {
      socket.write(text);
      resolve({ socket, received: () => out, closed });
    });
    socket.once('error', reject);
  });
}

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** Parses one HTTP/1.1 response with a content-length body, as the server wrote it on the socket. */
export function parseRawResponse(text: string): RawResponse {
  const end = text.indexOf('\r\n\r\n');
  if (end < 0) throw new Error(`no complete HTTP response in ${JSON.stringify(text.slice(0, 200))}`);
  const [statusLine, ...lines] = text.slice(0, end).split('\r\n');
  const status = Number(/^HTTP\/1\.1 (\d{3}) /.exec(statusLine ?? '')?.[1]);
  const headers: Record<string, string> = {};
  for (const l of lines) {
    const i = l.indexOf(':');
    headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  return { status, headers, body: text.slice(end + 4) };
}

// ---------------------------------------------------------------------------------------------------------------
// Upstream side

export interface RawScript {
  status?: number;
  headers?: Record<string, string>;
  /** Written one per event-loop turn, so they reach Jarvis as separate reads where the network allows. */
  chunks: (string | Buffer)[];
  /** After the chunks: end the response properly, cut the connection, or keep it open and silent. */
  then: 'end' | 'destroy' | 'hang';
}

export interface RawUpstream {
  /** Base URL, ending in /v1. */
  url: string;
  /** The script a request runs is named by its body's `script` field (Jarvis passes unknown fields through). */
  script(name: string, script: RawScript): void;
  /** Resolves once the response to the request naming `name` has closed, however it closed. */
  closedFor(name: string): Promise<void>;
  /** Open connections from Jarvis right now. */
  connections(): number;
  close(): Promise<void>;
}

export async function startRawUpstream(): Promise<RawUpstream> {
  const scripts = new Map<string, RawScript>();
  const closed = new Map<string, { promise: Promise<void>; resolve: () => void }>();
  const sockets = new Set<Socket>();
  const closedEntry = (name: string) => {
    let entry = closed.get(name);
    if (!entry) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => (resolve = r));
      entry = { promise, resolve };
      closed.set(name, entry);
    }
    return entry;
  };

  const server = http.createServer((req, res) => {
    req.on('error', () => {});
    const parts: Buffer[] = [];
    req.on('data', (d: Buffer) => parts.push(d));
    req.on('end', () => {
      let name = '';
      try {
        name = String((JSON.parse(Buffer.concat(parts).toString('utf8')) as { script?: unknown }).script ?? '');
      } catch {
        // not JSON: no script
      }
      const script = scripts.get(name);
      res.once('close', () => closedEntry(name).resolve());
      if (!script) {
        res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":{"message":"no such script","type":"invalid_request_error"}}');
        return;
      }
      res.writeHead(script.status ?? 200, script.headers ?? { 'content-type': 'text/event-stream' });
      res.flushHeaders();
      let i = 0;
      const step = () => {
        if (res.destroyed) return;
        if (i < script.chunks.length) {
          res.write(script.chunks[i++]!);
          setImmediate(step);
          return;
        }
        if (script.then === 'end') res.end();
        else if (script.then === 'destroy') res.socket?.destroy();
      };
      step();
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    script: (name, script) => void scripts.set(name, script),
    closedFor: (name) => closedEntry(name).promise,
    connections: () => sockets.size,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
