import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';

/** An attribute value as OTLP/JSON carries it, decoded: string, number, boolean, or an array of them. */
export type AttrValue = string | number | boolean | AttrValue[] | Record<string, unknown> | null;

/** A span as the receiver got it, with its attributes as a plain object. */
export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  /** '' for a root span. */
  parentSpanId: string;
  name: string;
  /** 1 internal, 2 server, 3 client, 4 producer, 5 consumer. */
  kind: number;
  attributes: Record<string, AttrValue>;
  events: { name: string; attributes: Record<string, AttrValue> }[];
  links: { traceId: string; spanId: string; attributes: Record<string, AttrValue> }[];
  /** 0 unset, 1 ok, 2 error. */
  status: { code: number; message?: string };
  startNs: bigint;
  endNs: bigint;
  /** The resource attributes of the batch it came in (service.name...). */
  resource: Record<string, AttrValue>;
  scope: string;
}

/** One POST as it arrived. */
export interface ReceivedExport {
  path: string;
  headers: IncomingHttpHeaders;
  /** Decoded from OTLP/JSON; none for OTLP/protobuf, which is kept as it came (`body`). */
  spans: ReceivedSpan[];
  body: Buffer;
}

export const SPAN_KIND = { INTERNAL: 1, SERVER: 2, CLIENT: 3 } as const;
export const STATUS = { UNSET: 0, OK: 1, ERROR: 2 } as const;

interface OtlpAnyValue {
  stringValue?: string;
  intValue?: number | string;
  doubleValue?: number;
  boolValue?: boolean;
  arrayValue?: { values?: OtlpAnyValue[] };
  kvlistValue?: { values?: OtlpKeyValue[] };
  bytesValue?: string;
}
interface OtlpKeyValue {
  key: string;
  value?: OtlpAnyValue;
}

function valueOf(v: OtlpAnyValue | undefined): AttrValue {
  if (!v) return null;
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.intValue !== undefined) return Number(v.intValue);
  if (v.doubleValue !== undefined) return v.doubleValue;
  if (v.boolValue !== undefined) return v.boolValue;
  if (v.arrayValue) return (v.arrayValue.values ?? []).map(valueOf);
  if (v.kvlistValue) return attrsOf(v.kvlistValue.values);
  if (v.bytesValue !== undefined) return v.bytesValue;
  return null;
}

function attrsOf(kvs: OtlpKeyValue[] | undefined): Record<string, AttrValue> {
  return Object.fromEntries((kvs ?? []).map((kv) => [kv.key, valueOf(kv.value)]));
}

/** OTLP/JSON ids are hex; a receiver given base64 (protobuf-style JSON) gets them as hex too. */
function idOf(id: unknown): string {
  if (typeof id !== 'string' || id === '') return '';
  if (/^[0-9a-f]+$/i.test(id) && (id.length === 32 || id.length === 16)) return id.toLowerCase();
  return Buffer.from(id, 'base64').toString('hex');
}

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  startTimeUnixNano: string | number;
  endTimeUnixNano: string | number;
  attributes?: OtlpKeyValue[];
  events?: { name: string; attributes?: OtlpKeyValue[] }[];
  links?: { traceId: string; spanId: string; attributes?: OtlpKeyValue[] }[];
  status?: { code?: number; message?: string };
}
interface OtlpRequest {
  resourceSpans?: { resource?: { attributes?: OtlpKeyValue[] }; scopeSpans?: { scope?: { name?: string }; spans?: OtlpSpan[] }[] }[];
}

/** The spans of an ExportTraceServiceRequest in OTLP/JSON. */
export function decodeExport(body: OtlpRequest): ReceivedSpan[] {
  const out: ReceivedSpan[] = [];
  for (const rs of body.resourceSpans ?? []) {
    const resource = attrsOf(rs.resource?.attributes);
    for (const ss of rs.scopeSpans ?? []) {
      for (const s of ss.spans ?? []) {
        out.push({
          traceId: idOf(s.traceId),
          spanId: idOf(s.spanId),
          parentSpanId: idOf(s.parentSpanId),
          name: s.name,
          kind: s.kind,
          attributes: attrsOf(s.attributes),
          events: (s.events ?? []).map((e) => ({ name: e.name, attributes: attrsOf(e.attributes) })),
          links: (s.links ?? []).map((l) => ({ traceId: idOf(l.traceId), spanId: idOf(l.spanId), attributes: attrsOf(l.attributes) })),
          status: { code: s.status?.code ?? 0, ...(s.status?.message ? { message: s.status.message } : {}) },
          startNs: BigInt(s.startTimeUnixNano),
          endNs: BigInt(s.endTimeUnixNano),
          resource,
          scope: ss.scope?.name ?? '',
        });
      }
    }
  }
  return out;
}

export interface OtlpReceiver {
  /** http://127.0.0.1:PORT (no path): what OTEL_EXPORTER_OTLP_ENDPOINT takes. */
  url: string;
  /** Every span received so far, in the order they arrived. */
  readonly spans: ReceivedSpan[];
  /** Every POST received so far. */
  readonly exports: ReceivedExport[];
  /**
   * Resolves with the spans received once `predicate` holds of them (at once if it already does); rejects after
   * `timeoutMs` with what arrived, so a test fails with something to read rather than hanging.
   */
  waitFor(predicate: (spans: ReceivedSpan[]) => boolean, timeoutMs?: number): Promise<ReceivedSpan[]>;
  /** The spans of one trace received so far. */
  trace(traceId: string): ReceivedSpan[];
  /** Answers the next `n` exports with this HTTP status instead of 200 (to test failing collectors). */
  failNext(n: number, status?: number): void;
  close(): Promise<void>;
}

/**
 * A real OTLP/HTTP receiver on loopback: accepts POSTs of OTLP/JSON on any path (`/v1/traces` for
 * OTEL_EXPORTER_OTLP_ENDPOINT, whatever OTEL_EXPORTER_OTLP_TRACES_ENDPOINT names), gunzipped when
 * Content-Encoding says gzip, and keeps the spans.
 */
export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const spans: ReceivedSpan[] = [];
  const exports: ReceivedExport[] = [];
  const waiters = new Set<() => void>();
  let failing = 0;
  let failStatus = 503;
  const server: Server = createServer((req, res) => {
    if (req.method !== 'POST') {
      res.writeHead(405).end();
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (failing > 0) {
        failing--;
        res.writeHead(failStatus, { 'content-type': 'application/json' }).end('{}');
        return;
      }
      let received: ReceivedSpan[];
      let body = Buffer.concat(chunks);
      try {
        if (req.headers['content-encoding'] === 'gzip') body = gunzipSync(body);
        received = /protobuf/.test(req.headers['content-type'] ?? '') ? [] : decodeExport(JSON.parse(body.toString('utf8')) as OtlpRequest);
      } catch (err) {
        res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ message: String(err) }));
        return;
      }
      exports.push({ path: req.url ?? '', headers: req.headers, spans: received, body });
      spans.push(...received);
      // An ExportTraceServiceResponse with nothing rejected.
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      for (const wake of [...waiters]) wake();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    spans,
    exports,
    waitFor(predicate, timeoutMs = 5000) {
      if (predicate(spans)) return Promise.resolve(spans);
      return new Promise((resolve, reject) => {
        const check = () => {
          if (!predicate(spans)) return;
          finish();
          resolve(spans);
        };
        const timer = setTimeout(() => {
          finish();
          reject(new Error(`spans not received within ${timeoutMs} ms; got:\n${spans.map((s) => `${s.name} ${s.traceId}/${s.spanId}<-${s.parentSpanId} ${JSON.stringify(s.attributes)}`).join('\n')}`));
        }, timeoutMs);
        const finish = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
      });
    },
    trace(traceId) {
      return spans.filter((s) => s.traceId === traceId);
    },
    failNext(n, status = 503) {
      failing = n;
      failStatus = status;
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** The parts of a W3C traceparent (version 00), or undefined if it is not one. */
export function parseTraceparent(tp: string | undefined): { traceId: string; spanId: string; sampled: boolean } | undefined {
  const m = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/.exec(tp ?? '');
  if (!m || /^0+$/.test(m[1]!) || /^0+$/.test(m[2]!)) return undefined;
  return { traceId: m[1]!, spanId: m[2]!, sampled: (parseInt(m[3]!, 16) & 1) === 1 };
}
