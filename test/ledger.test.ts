// The usage ledger end to end, over real HTTP, on both stores (the embedded file and a real PostgreSQL): a line per
// paid attempt with what was generated, delivered and heard, prices, the read API for admin and tenant keys, CSV,
// budgets, two instances on one ledger, and the store stopped and restarted while requests run.
import { createServer, type Server } from 'node:http';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postChat, user } from './support/chat.js';
import { startJarvis, type TestJarvis } from './support/jarvis.js';
import { SseReader } from './support/sse.js';
import { freshDatabase, type FreshDatabase } from './support/postgres.js';
import { startPrivatePostgres, type PrivatePostgres } from './support/private-postgres.js';
import { startMockUpstream, type MockUpstream } from '../fakes/openai/index.js';
import { pollUntil, startCluster, type TestCluster } from './support/cluster.js';
import { REDIS_URL } from './support/access.js';

const uid = () => randomBytes(4).toString('hex');
interface Line {
  id: string;
  request_id: string;
  attempt: number;
  outcome: string;
  input_tokens: number;
  output_tokens: number;
  delivered_tokens: number;
  delivered_chars: number;
  heard_chars: number;
  not_heard_tokens: number;
  not_heard_cost: number | null;
  cost: number | null;
  ttft_ms: number;
  duration_ms: number;
  [field: string]: unknown;
}

const PRICES = { 'good-model': { input: 1, output: 2 }, 'jarvis-sim': { input: 0.5, output: 1.5, cachedInput: 0.25 } };

/** An OpenAI-compatible upstream that never reports usage (as some servers do): three tokens and [DONE]. */
async function startUsagelessUpstream(): Promise<{ url: string; close(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const chunk = (delta: object, finish: string | null) =>
        `data: ${JSON.stringify({ id: 'chatcmpl-x', object: 'chat.completion.chunk', created: 1, model: 'bare-model', choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
      res.end(chunk({ role: 'assistant', content: '' }, null) + chunk({ content: 'one ' }, null) + chunk({ content: 'two ' }, null) + chunk({ content: 'three' }, null) + chunk({}, 'stop') + 'data: [DONE]\n\n');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}/v1`, close: () => new Promise((r) => server.close(() => r())) };
}

async function records(url: string, query: string, headers: Record<string, string> = {}): Promise<Line[]> {
  const res = await fetch(`${url}/v1/usage/records?${query}`, { headers });
  expect(res.status).toBe(200);
  return ((await res.json()) as { data: Line[] }).data;
}

/** The lines of one request, once as many as expected have been written (a cancelled stream's, a moment after its client saw it end). */
function linesOf(url: string, requestId: string, n = 1, headers: Record<string, string> = {}): Promise<Line[]> {
  return pollUntil(async () => {
    const lines = await records(url, `request_id=${requestId}`, headers);
    return lines.length >= n ? lines.sort((a, b) => a.attempt - b.attempt) : undefined;
  }, `${n} ledger line(s) of ${requestId}`);
}

let good: MockUpstream;
let failing: MockUpstream;
let slow: MockUpstream;
let bare: { url: string; close(): Promise<void> };
let pg: FreshDatabase;

beforeAll(async () => {
  [good, failing, slow, bare, pg] = await Promise.all([
    startMockUpstream({ defaults: { tokens: 5, delayMs: 2 } }),
    startMockUpstream({ defaults: { status: 503 } }),
    startMockUpstream({ defaults: { ttftMs: 30_000, tokens: 5 } }),
    startUsagelessUpstream(),
    freshDatabase(),
  ]);
});
afterAll(async () => {
  await Promise.all([good?.close(), failing?.close(), slow?.close(), bare?.close()]);
  await pg?.drop();
});

const upstreams = () => [
  { name: 'good', baseUrl: good.url, models: ['good-model'] },
  { name: 'failing', baseUrl: failing.url },
  { name: 'slow', baseUrl: slow.url },
  { name: 'bare', baseUrl: bare.url, models: ['bare-model'] },
];

describe.each([
  { store: 'embedded', databaseUrl: () => null },
  { store: 'postgres', databaseUrl: () => pg.url },
])('the ledger on the $store store', ({ databaseUrl }) => {
  let jarvis: TestJarvis;
  beforeAll(async () => {
    jarvis = await startJarvis({
      databaseUrl: databaseUrl(),
      prices: PRICES,
      simulator: { tokensPerSec: 400, ttftMs: 0 },
      upstreams: upstreams(),
      routes: [
        {
          model: 'r-paid',
          hedgeAfterMs: 150,
          targets: [
            { upstream: 'failing', model: 'm-failing' },
            { upstream: 'slow', model: 'm-slow', priority: 1 },
            { upstream: 'good', model: 'good-model', priority: 2 },
          ],
        },
      ],
    });
  });
  afterAll(async () => {
    await jarvis?.close();
  });

  it('writes a completed stream: tokens as reported, all delivered and heard, priced', async () => {
    const res = await postChat(jarvis.url, { model: 'jarvis-sim', messages: user('Hello there'), stream: true }, { headers: { 'x-session-id': `done-${uid()}` } });
    const requestId = res.headers.get('x-request-id')!;
    await res.text();
    const [line] = await linesOf(jarvis.url, requestId);
    expect(line).toMatchObject({ api: 'chat.completions', model: 'jarvis-sim', upstream: 'simulator', provider: 'simulator', outcome: 'end', reason: 'stop', attempt: 1, estimated: false });
    const l = line!;
    expect(l.output_tokens).toBeGreaterThan(0);
    expect(l.delivered_tokens).toBe(l.output_tokens);
    expect(l.heard_chars).toBe(l.delivered_chars);
    expect(l.not_heard_tokens).toBe(0);
    expect(l.cost).toBeCloseTo((l.input_tokens * 0.5 + l.output_tokens * 1.5) / 1e6, 12);
    expect(l.duration_ms).toBeGreaterThanOrEqual(l.ttft_ms);
  });

  it('writes a barge-in: generated more than heard, cut further by a truncate, the rest priced as not heard', async () => {
    const session = `barge-${uid()}`;
    const sdk = new OpenAI({ baseURL: `${jarvis.url}/v1`, apiKey: 'unused', defaultHeaders: { 'x-session-id': session }, maxRetries: 0 });
    const first = await sdk.responses.create({ model: 'good-model', input: 'tokens:300 delay:5 tell me a story', stream: true });
    let id = '';
    let delivered = '';
    let barged: Promise<unknown> | undefined;
    for await (const e of first) {
      if (e.type === 'response.created') id = e.response.id;
      if (e.type === 'response.output_text.delta') {
        delivered += e.delta;
        if (delivered.length > 20) barged ??= sdk.responses.create({ model: 'good-model', input: 'tokens:2 stop' });
      }
    }
    await barged;
    const requestId = `req_${id.slice(5)}`;
    let [line] = await linesOf(jarvis.url, requestId);
    expect(line).toMatchObject({ api: 'responses', outcome: 'cancelled', reason: 'superseded', session, estimated: true });
    const before = line!;
    expect(before.output_tokens).toBeGreaterThanOrEqual(before.delivered_tokens);
    expect(before.delivered_chars).toBe(delivered.length);
    expect(before.heard_chars).toBe(delivered.length);

    const cut = await fetch(`${jarvis.url}/v1/responses/${id}/truncate`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ heard_chars: 5 }) });
    expect(cut.status).toBe(200);
    line = (await pollUntil(async () => {
      const [l] = await records(jarvis.url, `request_id=${requestId}`);
      return l && l.heard_chars === 5 ? l : undefined;
    }, 'the truncate on the line'))!;
    const after = line;
    expect(after.not_heard_tokens).toBeGreaterThan(before.not_heard_tokens);
    expect(after.not_heard_tokens).toBeLessThanOrEqual(after.output_tokens);
    expect(after.not_heard_cost).toBeCloseTo((after.not_heard_tokens * 2) / 1e6, 12);

    // What the interruption cost shows in the totals of its session.
    const totals = (await (await fetch(`${jarvis.url}/v1/usage?group_by=session`)).json()) as { group_by: string; data: Record<string, unknown>[] };
    expect(totals.group_by).toBe('session');
    const mine = totals.data.find((d) => d.session === session)!;
    expect(mine).toMatchObject({ requests: 2 });
    expect(mine.not_heard_tokens).toBeGreaterThanOrEqual(after.not_heard_tokens);
    expect(mine.not_heard_cost).toBeGreaterThan(0);
  });

  it('writes a stream whose client went away: cancelled, client_disconnected', async () => {
    const controller = new AbortController();
    const res = await postChat(jarvis.url, { model: 'good-model', messages: user('tokens:500 delay:5 go'), stream: true }, { signal: controller.signal });
    const requestId = res.headers.get('x-request-id')!;
    await new SseReader(res.body!).until((t) => t.includes('"content"'), 'a first token');
    controller.abort();
    const [line] = await linesOf(jarvis.url, requestId);
    expect(line).toMatchObject({ outcome: 'cancelled', reason: 'client_disconnected', upstream: 'good', provider: 'openai' });
    expect(line!.output_tokens).toBeGreaterThan(0);
  });

  it("writes each of a route's attempts as its own line: the failed one, the lost hedge, the winner", async () => {
    const res = await postChat(jarvis.url, { model: 'r-paid', messages: user('tokens:4 hello'), stream: true });
    const requestId = res.headers.get('x-request-id')!;
    await res.text();
    const lines = await linesOf(jarvis.url, requestId, 3);
    expect(lines.map((l) => [l.attempt, l.upstream, l.served_model, l.outcome, l.reason, l.answered])).toEqual([
      // An upstream's error keeps its own code.
      [1, 'failing', 'm-failing', 'error', 'mock_503', false],
      [2, 'slow', 'm-slow', 'cancelled', 'hedge_lost', false],
      [3, 'good', 'good-model', 'end', 'stop', true],
    ]);
    expect(lines.every((l) => l.model === 'r-paid')).toBe(true);
    // The lost hedge paid its input; the failed attempt (a 503) paid nothing.
    expect(lines[1]!.input_tokens).toBeGreaterThan(0);
    expect(lines[0]!.input_tokens).toBe(0);
    expect(lines[2]!.cost).toBeGreaterThan(0);
  });

  it('marks the counts of an upstream that reports no usage as estimated', async () => {
    const res = await postChat(jarvis.url, { model: 'bare-model', messages: user('count to three'), stream: true });
    const requestId = res.headers.get('x-request-id')!;
    await res.text();
    const [line] = await linesOf(jarvis.url, requestId);
    expect(line).toMatchObject({ outcome: 'end', estimated: true, output_tokens: 3, delivered_tokens: 3, cost: null });
  });

  it('writes relayed embeddings with the usage the upstream reported', async () => {
    const res = await fetch(`${jarvis.url}/v1/embeddings`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'good-model', input: 'hello' }) });
    const requestId = res.headers.get('x-request-id')!;
    await res.text();
    const [line] = await linesOf(jarvis.url, requestId);
    expect(line).toMatchObject({ api: 'embeddings', upstream: 'good' });
  });

  it('counts a line made in the second that `end` names (epoch seconds or ISO 8601): the end is that whole second', async () => {
    const session = `end-${uid()}`;
    const res = await postChat(jarvis.url, { model: 'jarvis-sim', messages: user('Hi'), stream: true }, { headers: { 'x-session-id': session } });
    await res.text();
    const [line] = await linesOf(jarvis.url, res.headers.get('x-request-id')!);
    const second = line!.created as number;
    for (const end of [String(second), new Date(second * 1000).toISOString().replace('.000', '')]) {
      const totals = (await (await fetch(`${jarvis.url}/v1/usage?group_by=session&start=${second}&end=${end}`)).json()) as { data: { session: string }[] };
      expect(totals.data.map((d) => d.session)).toContain(session);
      expect((await records(jarvis.url, `session=${session}&start=${second}&end=${end}`)).map((l) => l.request_id)).toEqual([line!.request_id]);
    }
  });

  it('pages the records newest first, as JSON and as CSV, and refuses bad parameters in OpenAI shape', async () => {
    const first = await records(jarvis.url, 'limit=2');
    expect(first).toHaveLength(2);
    const page = (await (await fetch(`${jarvis.url}/v1/usage/records?limit=2`)).json()) as { has_more: boolean; last_id: string };
    expect(page.has_more).toBe(true);
    const next = await records(jarvis.url, `limit=2&after=${page.last_id}`);
    expect(next[0]!.id < page.last_id).toBe(true);
    const csv = await fetch(`${jarvis.url}/v1/usage/records?limit=3`, { headers: { accept: 'text/csv' } });
    expect(csv.headers.get('content-type')).toMatch(/^text\/csv/);
    const rows = (await csv.text()).trim().split('\r\n');
    expect(rows[0]).toBe(
      'id,request_id,created,key,session,api,model,upstream,provider,outcome,reason,input_tokens,cached_tokens,output_tokens,reasoning_tokens,delivered_tokens,delivered_chars,heard_chars,estimated,ttft_ms,duration_ms,cost,attempt',
    );
    expect(rows).toHaveLength(4);
    for (const bad of ['limit=0', 'limit=x', 'after=../x', 'start=yesterday', 'group=1']) {
      const r = await fetch(`${jarvis.url}/v1/usage/records?${bad}`);
      expect(r.status).toBe(400);
      expect(((await r.json()) as { error: { type: string } }).error.type).toBe('invalid_request_error');
    }
    const badGroup = await fetch(`${jarvis.url}/v1/usage?group_by=color`);
    expect(badGroup.status).toBe(400);
  });
});

describe('the read API and budgets, by key', () => {
  const ADMIN = 'sk-admin-0123456789';
  const A = 'sk-tenant-a-0123456789';
  const B = 'sk-tenant-b-0123456789';
  const THRIFTY = 'sk-thrifty-0123456789';
  const bearer = (k: string) => ({ authorization: `Bearer ${k}` });
  let jarvis: TestJarvis;
  let dir: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'jarvis-ledger-keys-'));
    jarvis = await startJarvis({
      apiKeys: [`admin=${ADMIN}`],
      access: {
        keys: [
          { name: 'tenant-a', key: A },
          { name: 'tenant-b', key: B },
          { name: 'thrifty', key: THRIFTY, budget: { tokensPerDay: 10 } },
        ],
      },
      prices: PRICES,
      simulator: { tokensPerSec: 1000, ttftMs: 0 },
      upstreams: upstreams(),
    });
  });
  afterAll(async () => {
    await jarvis?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('shows a tenant only its own lines and totals, and an admin everyone', async () => {
    for (const k of [A, B]) await (await postChat(jarvis.url, { model: 'jarvis-sim', messages: user('hi'), stream: true }, { headers: bearer(k) })).text();
    const mine = await records(jarvis.url, 'limit=100', bearer(A));
    expect(mine.length).toBeGreaterThan(0);
    expect(new Set(mine.map((l) => l.key))).toEqual(new Set(['tenant-a']));
    const totals = (await (await fetch(`${jarvis.url}/v1/usage`, { headers: bearer(A) })).json()) as { data: { key: string }[] };
    expect(totals.data.map((d) => d.key)).toEqual(['tenant-a']);
    const theirs = await fetch(`${jarvis.url}/v1/usage/records?key=tenant-b`, { headers: bearer(A) });
    expect(theirs.status).toBe(403);
    const all = (await (await fetch(`${jarvis.url}/v1/usage`, { headers: bearer(ADMIN) })).json()) as { data: { key: string }[] };
    expect(all.data.map((d) => d.key).sort()).toEqual(['tenant-a', 'tenant-b']);
    expect((await fetch(`${jarvis.url}/v1/usage`)).status).toBe(401);
  });

  it('refuses a key past its budget with 429 insufficient_quota before any upstream request, in each API shape', async () => {
    const before = good.requests.length;
    const spend = await postChat(jarvis.url, { model: 'good-model', messages: user('tokens:20 spend it'), stream: true }, { headers: bearer(THRIFTY) });
    expect(spend.status).toBe(200);
    await spend.text();
    expect(good.requests.length).toBe(before + 1);
    const refused = await postChat(jarvis.url, { model: 'good-model', messages: user('again'), stream: true }, { headers: bearer(THRIFTY) });
    expect(refused.status).toBe(429);
    expect(refused.headers.get('x-should-retry')).toBe('false');
    expect(((await refused.json()) as { error: { type: string; code: string } }).error).toMatchObject({ type: 'insufficient_quota', code: 'insufficient_quota' });
    const messages = await fetch(`${jarvis.url}/v1/messages`, {
      method: 'POST',
      headers: { ...bearer(THRIFTY), 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'good-model', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect(messages.status).toBe(429);
    expect(await messages.json()).toMatchObject({ type: 'error', error: { type: 'rate_limit_error' } });
    expect(good.requests.length).toBe(before + 1);
    // Another key is not affected.
    expect((await postChat(jarvis.url, { model: 'good-model', messages: user('tokens:2 hi'), stream: true }, { headers: bearer(A) })).status).toBe(200);
  });
});

describe('several instances on one PostgreSQL ledger and one Redis', () => {
  let cluster: TestCluster;
  let db: FreshDatabase;
  let dir: string;
  const KEY = 'sk-shared-budget-0123';
  beforeAll(async () => {
    db = await freshDatabase();
    dir = mkdtempSync(join(tmpdir(), 'jarvis-ledger-cluster-'));
    const keysFile = join(dir, 'keys.json');
    writeFileSync(keysFile, JSON.stringify([{ name: 'shared', key: KEY, budget: { tokensPerDay: 30 } }, { name: 'other', key: 'sk-other-0123456789' }]));
    cluster = await startCluster({
      n: 2,
      redisUrl: REDIS_URL,
      prefix: `jarvis-ledger-${uid()}:`,
      env: { JARVIS_DATABASE_URL: db.url, JARVIS_KEYS_FILE: keysFile, JARVIS_UPSTREAM_BASE_URL: good.url, JARVIS_DEFAULT_MODEL: 'good-model' },
    });
  }, 60_000);
  afterAll(async () => {
    await cluster?.stop();
    await db?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('both write one ledger, and a budget spent on one is refused on the other before any upstream request', async () => {
    const [a, b] = cluster.instances;
    const h = { authorization: `Bearer ${KEY}` };
    const ra = await postChat(a!.url, { model: 'good-model', messages: user('tokens:20 first'), stream: true }, { headers: h });
    await ra.text();
    const rb = await postChat(b!.url, { model: 'good-model', messages: user('tokens:20 second'), stream: true }, { headers: h });
    await rb.text();
    const ids = [ra.headers.get('x-request-id')!, rb.headers.get('x-request-id')!];
    // Either instance reads both lines (each flushes its own before reading; the other's within a flush).
    const lines = await pollUntil(async () => {
      const l = await records(a!.url, 'limit=10', h);
      return ids.every((id) => l.some((x) => x.request_id === id)) ? l : undefined;
    }, 'both instances’ lines in one ledger');
    expect(lines.filter((l) => ids.includes(l.request_id))).toHaveLength(2);
    const before = good.requests.length;
    const refused = await pollUntil(async () => {
      const r = await postChat(a!.url, { model: 'good-model', messages: user('tokens:2 third'), stream: true }, { headers: h });
      if (r.status === 429) return r;
      await r.text();
      return undefined;
    }, 'the shared budget spent');
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('insufficient_quota');
    const onB = await postChat(b!.url, { model: 'good-model', messages: user('tokens:2 fourth'), stream: true }, { headers: h });
    expect(onB.status).toBe(429);
    await onB.text();
    // The only upstream requests since were ones made before the budget was known spent (none once it was).
    const afterRefusal = good.requests.length;
    await (await postChat(b!.url, { model: 'good-model', messages: user('tokens:2 fifth'), stream: true }, { headers: h })).text();
    expect(good.requests.length).toBe(afterRefusal);
    expect(afterRefusal - before).toBeLessThanOrEqual(1);
  }, 60_000);
});

describe('the store stopped and restarted while requests run', () => {
  let server: PrivatePostgres;
  let jarvis: TestJarvis;
  beforeAll(async () => {
    server = await startPrivatePostgres();
    jarvis = await startJarvis({ databaseUrl: server.url, ledger: { flushMs: 50 }, simulator: { tokensPerSec: 2000, ttftMs: 0 } });
  }, 60_000);
  afterAll(async () => {
    await jarvis?.close();
    await server?.destroy();
  });

  it('fails no request, says so, and writes every line once the store is back', async () => {
    const ids: string[] = [];
    const chat = async () => {
      const res = await postChat(jarvis.url, { model: 'jarvis-sim', messages: user('Hi'), stream: true });
      expect(res.status).toBe(200);
      expect(await res.text()).toContain('[DONE]');
      ids.push(res.headers.get('x-request-id')!);
    };
    for (let i = 0; i < 5; i++) await chat();
    await records(jarvis.url, 'limit=1');
    await server.stop();
    // Requests run on while the store is away; the ledger says it is down.
    for (let i = 0; i < 10; i++) await chat();
    await jarvis.waitForLog((log) => log.includes('ledger_store_down'), 10_000);
    const metrics = await (await fetch(`${jarvis.url}/metrics`)).text();
    expect(metrics).toMatch(/^jarvis_ledger_store_up 0$/m);
    expect(Number(/^jarvis_ledger_queue_depth (\d+)$/m.exec(metrics)?.[1])).toBeGreaterThan(0);
    const unreadable = await fetch(`${jarvis.url}/v1/usage`);
    expect(unreadable.status).toBe(503);
    await server.start();
    for (let i = 0; i < 5; i++) await chat();
    await jarvis.waitForLog((log) => log.includes('ledger_store_up'), 20_000);
    const lines = await pollUntil(async () => {
      const l = await records(jarvis.url, 'limit=100');
      return l.length >= ids.length ? l : undefined;
    }, 'every line written', 20_000);
    expect(new Set(lines.map((l) => l.request_id))).toEqual(new Set(ids));
  }, 90_000);
});

describe('graceful shutdown', () => {
  it('writes every queued line before it exits, and a restart on the same data folder reads them', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'jarvis-ledger-shutdown-'));
    try {
      // A flush interval no test waits for: only the shutdown can have written these lines.
      const first = await startJarvis({ dataDir, ledger: { flushMs: 60_000 }, simulator: { tokensPerSec: 2000, ttftMs: 0 } });
      await pollUntil(async () => ((await (await fetch(`${first.url}/healthz`)).json()) as { ledger: { state: string } }).ledger.state === 'up' || undefined, 'the ledger open');
      const ids: string[] = [];
      for (let i = 0; i < 3; i++) {
        const res = await postChat(first.url, { model: 'jarvis-sim', messages: user('Hi'), stream: true });
        await res.text();
        ids.push(res.headers.get('x-request-id')!);
      }
      await first.close();
      const second = await startJarvis({ dataDir });
      try {
        const lines = await records(second.url, 'limit=10');
        expect(lines.map((l) => l.request_id).sort()).toEqual([...ids].sort());
      } finally {
        await second.close();
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
