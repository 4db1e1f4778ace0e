// What Fastify costs a chat request, measured rather than estimated from a profile's share: one POST route that
// parses the body, validates it against Jarvis's own request schema and answers with a short SSE stream, served by
// Fastify as Jarvis configures it (ajv options, catch-all JSON parser, an onRequest hook, reply.hijack()) and by a
// bare node:http handler that does the same work, the schema compiled by TypeBox. The difference is what a raw
// node:http chat route could save at most. Not part of `npm run bench`; bench/README.md, tenth round.
//   npx tsx bench/route-path.ts [--connections 16] [--phase-ms 4000] [--rounds 3]
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { parseArgs } from 'node:util';
import { cpuSeconds } from './proc-stats.js';
import { REPO_DIR } from './preloads.js';
import type { Pool } from 'undici';
import { pinningAvailable, setPinning, spawnChild, stopAll, type Child } from './processes.js';
import { spread } from './stats.js';
import { chatBody, closedLoop, streamPool } from './stream-client.js';
import { GATEWAY_CPU } from './targets.js';

const { values } = parseArgs({
  options: {
    serve: { type: 'string' },
    connections: { type: 'string', default: '16' },
    'phase-ms': { type: 'string', default: '4000' },
    rounds: { type: 'string', default: '3' },
  },
});

const SSE_HEAD = { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' };
const FRAMES = ['data: {"choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}\n\n', 'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n', 'data: [DONE]\n\n'];
const answer = (res: ServerResponse) => {
  res.writeHead(200, SSE_HEAD);
  for (const f of FRAMES) res.write(f);
  res.end();
};
let ids = 0;

async function serveFastify(): Promise<number> {
  const { default: Fastify } = await import('fastify');
  const { ChatCompletionRequest } = await import('../src/http/chat-request.js');
  const app = Fastify({ ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false } }, genReqId: () => `req_${++ids}` });
  const json = app.getDefaultJsonParser('error', 'error');
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, (request, body, done) => json(request, body as string, done));
  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id);
    reply.raw.once('close', () => {});
  });
  app.post('/v1/chat/completions', { schema: { body: ChatCompletionRequest } }, async (_request, reply) => {
    reply.hijack();
    answer(reply.raw);
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  return typeof address === 'object' && address ? address.port : 0;
}

async function serveRaw(): Promise<number> {
  // TypeBox's own compiled check (ajv is Fastify's, not a dependency of Jarvis's): the same schema, compiled.
  const { TypeCompiler } = await import('@sinclair/typebox/compiler');
  const { ChatCompletionRequest } = await import('../src/http/chat-request.js');
  const schema = TypeCompiler.Compile(ChatCompletionRequest);
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    if (req.method !== 'POST' || req.url !== '/v1/chat/completions') {
      res.writeHead(404).end();
      return;
    }
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (s: string) => (body += s));
    req.on('end', () => {
      let value: unknown;
      try {
        value = JSON.parse(body);
      } catch {
        res.writeHead(400).end();
        return;
      }
      if (!schema.Check(value)) {
        res.writeHead(400).end();
        return;
      }
      res.setHeader('x-request-id', `req_${++ids}`);
      res.once('close', () => {});
      answer(res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  return typeof address === 'object' && address ? address.port : 0;
}

if (values.serve) {
  const port = values.serve === 'raw' ? await serveRaw() : await serveFastify();
  console.log(`ROUTE_PATH_READY ${port}`);
} else {
  setPinning(pinningAvailable());
  const connections = Number(values.connections);
  const phaseMs = Number(values['phase-ms']);
  const body = chatBody();
  const servers: { kind: string; child: Child; pool: Pool }[] = [];
  for (const kind of ['fastify', 'raw']) {
    const child = spawnChild(kind, process.execPath, ['--import', 'tsx', 'bench/route-path.ts', '--serve', kind], { cpu: GATEWAY_CPU, cwd: REPO_DIR, stdout: 'lines' });
    const port = Number((await child.waitForLine(/^ROUTE_PATH_READY (\d+)$/, 30_000))[1]);
    servers.push({ kind, child, pool: streamPool(`http://127.0.0.1:${port}`, connections) });
  }
  /** A closed loop of requests for `ms`: the server's CPU µs per request. */
  const phase = async (s: (typeof servers)[number], ms: number) => {
    let done = 0;
    const cpu0 = cpuSeconds(s.child.pid);
    await closedLoop(connections, ms, async () => {
      const res = await s.pool.request({ path: '/v1/chat/completions', method: 'POST', headers: { 'content-type': 'application/json' }, body });
      await res.body.text();
      if (res.statusCode === 200) done++;
    });
    return ((cpuSeconds(s.child.pid) - cpu0) * 1e6) / done;
  };
  for (const s of servers) await phase(s, 2000);
  const results = new Map(servers.map((s) => [s.kind, [] as number[]]));
  for (let round = 0; round < Number(values.rounds); round++) {
    for (let i = 0; i < servers.length; i++) {
      const s = servers[(i + round) % servers.length]!;
      results.get(s.kind)!.push(await phase(s, phaseMs));
    }
  }
  for (const [kind, us] of results) {
    const sp = spread(us);
    console.log(`${kind.padEnd(8)} CPU per request ${sp.median.toFixed(1)} µs (${sp.min.toFixed(1)}–${sp.max.toFixed(1)})`);
  }
  for (const s of servers) await s.pool.close();
  await stopAll();
  process.exit(0);
}
