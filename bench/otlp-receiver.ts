// Scenario 11's trace collector, a process of its own on the load CPU like the bench's upstreams:
//   node --import tsx bench/otlp-receiver.ts
// Accepts OTLP/HTTP JSON exports (POST /v1/traces, gzipped or not), answers each 200 `{}` as a collector does, and
// counts what arrived: the POSTs, their bytes, and the spans in them by kind (each body is parsed, so a count is of
// spans, not of guesses). GET /bench/spans answers the counts so far. Keeps nothing else. Prints one line,
// `OTLP_RECEIVER_READY http://127.0.0.1:PORT` (what OTEL_EXPORTER_OTLP_ENDPOINT takes).
import { createServer } from 'node:http';
import { gunzipSync } from 'node:zlib';
import { serveMockProcess } from './mock-process.js';

export interface ReceiverCounts {
  posts: number;
  bytes: number;
  spans: number;
  /** Spans by OTLP kind: 1 internal, 2 server, 3 client. */
  byKind: Record<string, number>;
  /** POSTs that were not OTLP/JSON trace exports (wrong path, unreadable body). */
  refused: number;
}

const counts: ReceiverCounts = { posts: 0, bytes: 0, spans: 0, byKind: {}, refused: 0 };

interface ExportBody {
  resourceSpans?: { scopeSpans?: { spans?: { kind?: number }[] }[] }[];
}

const server = createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/bench/spans') {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(counts));
    return;
  }
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    if (req.method !== 'POST' || req.url !== '/v1/traces') {
      counts.refused++;
      res.writeHead(404).end();
      return;
    }
    try {
      const raw = Buffer.concat(chunks);
      const body = JSON.parse((req.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw).toString('utf8')) as ExportBody;
      counts.posts++;
      counts.bytes += raw.length;
      for (const rs of body.resourceSpans ?? []) {
        for (const ss of rs.scopeSpans ?? []) {
          for (const s of ss.spans ?? []) {
            counts.spans++;
            const kind = String(s.kind ?? 0);
            counts.byKind[kind] = (counts.byKind[kind] ?? 0) + 1;
          }
        }
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    } catch {
      counts.refused++;
      res.writeHead(400).end();
    }
  });
});

serveMockProcess(server, '127.0.0.1', 0, 'OTLP_RECEIVER_READY');
