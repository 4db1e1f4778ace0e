// The floor: the least any Node.js gateway does. node:http in, node:http out through a keep-alive agent, the
// upstream's response piped through untouched: no parsing, no events, no logs, no sessions. What it costs per
// chunk and per open stream on this machine is what two sockets and a pipe cost; a target below it is a target
// for the host, not for Jarvis. Barge-in at its barest: a request with an `X-Session-Id` destroys the upstream
// request of that session's stream in flight and ends its response, then goes on; nothing waits for anything.
//   node --import tsx bench/bare-relay.ts --port 0 --upstream http://127.0.0.1:PORT
// Prints `BARE_RELAY_READY <origin>` once listening on 127.0.0.1. `GET /metrics` answers the event loop's delay the
// two ways Jarvis's /metrics does, under the same names: p99 and max since the last scrape (prom-client's, 10 ms
// resolution) and a cumulative histogram of a 10 ms tick's lateness (Jarvis's watchdog), so the bench reads the
// floor's event loop exactly as it reads Jarvis's.
import { Agent, createServer, request, type ClientRequest, type ServerResponse } from 'node:http';
import { parseArgs } from 'node:util';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { pipeline } from 'node:stream';

const { values } = parseArgs({ options: { port: { type: 'string', default: '0' }, upstream: { type: 'string' } } });
if (!values.upstream) {
  process.stderr.write('--upstream is required\n');
  process.exit(2);
}
const upstream = new URL(values.upstream);
const agent = new Agent({ keepAlive: true, maxSockets: Infinity });

const inFlight = new Map<string, { out: ClientRequest; res: ServerResponse }>();

const loop = monitorEventLoopDelay({ resolution: 10 });
loop.enable();

// Jarvis's jarvis_event_loop_delay_seconds, bucket for bucket.
const BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, Infinity];
const counts = BUCKETS.map(() => 0);
const TICK_MS = 10;
let expected = performance.now() + TICK_MS;
setInterval(() => {
  const now = performance.now();
  const delay = Math.max(0, now - expected) / 1000;
  expected = now + TICK_MS;
  BUCKETS.forEach((le, i) => {
    if (delay <= le) counts[i]!++;
  });
}, TICK_MS).unref();

function metrics(res: ServerResponse): void {
  let body = `nodejs_eventloop_lag_p99_seconds ${loop.percentile(99) / 1e9}\nnodejs_eventloop_lag_max_seconds ${loop.max / 1e9}\n`;
  loop.reset();
  BUCKETS.forEach((le, i) => (body += `jarvis_event_loop_delay_seconds_bucket{le="${le === Infinity ? '+Inf' : le}"} ${counts[i]}\n`));
  res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(body);
}

const server = createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/metrics') return metrics(res);
  const session = req.headers['x-session-id'];
  const out = request(
    { agent, host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: { 'content-type': 'application/json', 'content-length': req.headers['content-length'] ?? '0' } },
    (up) => {
      res.writeHead(up.statusCode ?? 502, { 'content-type': up.headers['content-type'] ?? 'text/event-stream' });
      // pipe, not pipeline: a superseded response has been ended cleanly and must not be destroyed after.
      up.pipe(res);
      up.on('error', fail);
    },
  );
  const fail = () => {
    if (!res.writableEnded) res.destroy();
  };
  out.on('error', fail);
  // A client gone mid-answer frees the upstream too; a finished one leaves the connection to the agent.
  res.on('close', () => {
    if (!res.writableFinished) out.destroy();
    if (typeof session === 'string' && inFlight.get(session)?.res === res) inFlight.delete(session);
  });
  if (typeof session === 'string') {
    const prev = inFlight.get(session);
    if (prev) {
      prev.res.end();
      prev.out.destroy();
    }
    inFlight.set(session, { out, res });
  }
  pipeline(req, out, () => {});
});
server.keepAliveTimeout = 60_000;
server.listen(Number(values.port), '127.0.0.1', () => {
  const addr = server.address();
  if (addr && typeof addr === 'object') process.stdout.write(`BARE_RELAY_READY http://127.0.0.1:${addr.port}\n`);
});
process.on('SIGTERM', () => process.exit(0));
