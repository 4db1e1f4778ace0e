// What an open stream holds in Jarvis's heap: a heap snapshot with a few streams warm, another with N idle streams
// open (each past its first token, its upstream silent), and the difference per stream by object kind.
//   npx tsx bench/stream-heap.ts [--streams 2000] [--floor] [--keep DIR]
// Jarvis runs as the bench runs it (dist/main.js, info logging to a temp file; npm run build first); --floor measures
// the floor relay (bench/bare-relay.ts) instead, for what any Node.js relay holds per stream.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';
import { startMockUpstream } from '../fakes/openai/index.js';
import { killAllChildren } from './processes.js';
import { chatBody } from './stream-client.js';
import { startFloor, startJarvis } from './targets.js';

const { values } = parseArgs({ options: { streams: { type: 'string', default: '2000' }, floor: { type: 'boolean', default: false }, keep: { type: 'string' } } });
const N = Number(values.streams);

interface Kind {
  count: number;
  bytes: number;
}

/** Self sizes and counts by node type and constructor/name, from a .heapsnapshot file. */
function summarize(file: string): Map<string, Kind> {
  const snap = JSON.parse(readFileSync(file, 'utf8')) as {
    snapshot: { meta: { node_fields: string[]; node_types: [string[]] } };
    nodes: number[];
    strings: string[];
  };
  const f = snap.snapshot.meta.node_fields;
  const width = f.length;
  const [iType, iName, iSize] = [f.indexOf('type'), f.indexOf('name'), f.indexOf('self_size')];
  const types = snap.snapshot.meta.node_types[0];
  const out = new Map<string, Kind>();
  for (let i = 0; i < snap.nodes.length; i += width) {
    const type = types[snap.nodes[i + iType]!]!;
    // Strings and code are grouped by type: their names are their contents.
    const name = type === 'object' || type === 'closure' || type === 'native' ? snap.strings[snap.nodes[i + iName]!]! : '';
    const key = `${type}${name ? ` ${name}` : ''}`;
    const k = out.get(key) ?? { count: 0, bytes: 0 };
    k.count++;
    k.bytes += snap.nodes[i + iSize]!;
    out.set(key, k);
  }
  return out;
}

async function snapshot(pid: number, origin: string, dir: string): Promise<string> {
  const before = new Set(readdirSync(dir));
  process.kill(pid, 'SIGUSR2');
  // The gateway writes the snapshot on its main thread: once it answers again, the file is whole.
  for (let i = 0; i < 600; i++) {
    await new Promise((r) => setTimeout(r, 100));
    const added = readdirSync(dir).filter((f) => !before.has(f) && f.endsWith('.heapsnapshot'));
    if (added.length === 0) continue;
    await fetch(`${origin}/metrics`);
    return join(dir, added[0]!);
  }
  throw new Error('no heap snapshot appeared');
}

async function main(): Promise<void> {
  const dir = values.keep ?? mkdtempSync(join(tmpdir(), 'jarvis-heap-'));
  const mock = await startMockUpstream({ host: '127.0.0.1', defaults: { tokens: 1000, delayMs: 120_000 } });
  const nodeArgs = ['--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${dir}`];
  const jarvis = values.floor ? await startFloor(new URL(mock.url).origin, nodeArgs) : await startJarvis({ upstreamBaseUrl: mock.url, from: 'dist', nodeArgs });
  const pool = new Pool(jarvis.origin, { connections: N + 16, pipelining: 1 });
  const open: Array<{ abort(): void }> = [];
  /** Opens one stream and resolves once its first token arrived; the stream stays open. */
  const openStream = async (i: number) => {
    const controller = new AbortController();
    open.push(controller);
    const res = await pool.request({
      path: '/v1/chat/completions',
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-session-id': `heap-${i}` },
      body: chatBody(),
      signal: controller.signal,
    });
    await new Promise<void>((resolve, reject) => {
      let text = '';
      const onData = (c: Buffer) => {
        text += c.toString('latin1');
        if (/"content":"[^"]/.test(text)) {
          res.body.off('data', onData);
          res.body.resume();
          resolve();
        }
      };
      res.body.on('data', onData);
      res.body.once('error', reject);
    });
    res.body.on('error', () => {});
  };
  try {
    // Warm: the route compiled, a few streams opened and closed, so the baseline is a running gateway.
    const warm = Array.from({ length: 32 }, (_, i) => openStream(N + i));
    await Promise.all(warm);
    for (const c of open.splice(0)) c.abort();
    await new Promise((r) => setTimeout(r, 1000));
    const base = summarize(await snapshot(jarvis.child.pid!, jarvis.origin, dir));
    for (let i = 0; i < N; i += 200) await Promise.all(Array.from({ length: Math.min(200, N - i) }, (_, j) => openStream(i + j)));
    const full = summarize(await snapshot(jarvis.child.pid!, jarvis.origin, dir));
    const rows: Array<[string, number, number]> = [];
    let total = 0;
    for (const [key, k] of full) {
      const b = base.get(key) ?? { count: 0, bytes: 0 };
      const bytes = (k.bytes - b.bytes) / N;
      const count = (k.count - b.count) / N;
      total += bytes;
      if (Math.abs(bytes) >= 8 || Math.abs(count) >= 0.5) rows.push([key, count, bytes]);
    }
    rows.sort((a, b) => b[2] - a[2]);
    process.stdout.write(`${N} idle streams through ${values.floor ? 'the floor relay' : 'Jarvis'}: ${total.toFixed(0)} heap bytes per stream (self sizes, snapshot difference)\n\n| object | per stream | bytes per stream |\n|---|--:|--:|\n`);
    for (const [key, count, bytes] of rows) process.stdout.write(`| ${key.slice(0, 80).replace(/\|/g, '\\|')} | ${count.toFixed(2)} | ${bytes.toFixed(0)} |\n`);
  } finally {
    for (const c of open) c.abort();
    await pool.destroy().catch(() => {});
    await jarvis.stop();
    await mock.close();
    if (!values.keep) rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`stream-heap: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  killAllChildren();
  process.exit(1);
});
