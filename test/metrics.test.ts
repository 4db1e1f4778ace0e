// /metrics moves with what happens: tokens relayed, cancellations by reason, flushes by kind, requests by
// route; the watchdog reports a blocked event loop (in the log and a cumulative histogram); optional load
// shedding answers 503 while it is blocked.
import { connect, type Socket } from 'node:net';
import { afterEach, expect, it } from 'vitest';
import { postChat, user, waitForIdle } from './support/chat.js';
import { pollUntil } from './support/cluster.js';
import { startJarvis, type TestJarvis } from './support/jarvis.js';
import { readSse, SseReader } from './support/sse.js';

let jarvis: TestJarvis | undefined;
afterEach(async () => {
  await jarvis?.close();
  jarvis = undefined;
});

/** The named series' values, all from one scrape. */
async function metrics(url: string, ...names: string[]): Promise<number[]> {
  const lines = (await (await fetch(`${url}/metrics`)).text()).split('\n');
  return names.map((name) => {
    const line = lines.find((l) => l.split(' ')[0] === name);
    return line === undefined ? 0 : Number(line.split(' ')[1]);
  });
}

async function metric(url: string, name: string): Promise<number> {
  return (await metrics(url, name))[0]!;
}

/** Blocks this process's event loop (which hosts the server) on purpose, as a stalled loop would. */
function blockLoop(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until);
}

it('a stream increments tokens, requests and flushes; a barge-in increments cancellations', async () => {
  jarvis = await startJarvis({ simulator: { tokensPerSec: 400, ttftMs: 5 } });
  const { url } = jarvis;
  const tokensBefore = await metric(url, 'jarvis_tokens_relayed_total');

  const res = await postChat(url, { messages: user('hello there friend'), stream: true, stream_options: { include_usage: true } });
  const data = await readSse(res);
  const usage = JSON.parse(data.at(-2)!) as { usage: { completion_tokens: number } };
  await waitForIdle(url);

  expect(await metric(url, 'jarvis_tokens_relayed_total')).toBe(tokensBefore + usage.usage.completion_tokens);
  expect(await metric(url, 'jarvis_streams_total{outcome="end"}')).toBe(1);
  expect(await metric(url, 'jarvis_http_requests_total{route="/v1/chat/completions",method="POST",status="200"}')).toBe(1);
  const flushes = (await Promise.all(['scheduled', 'immediate', 'on_end'].map((k) => metric(url, `jarvis_event_flushes_total{kind="${k}"}`)))).reduce((a, b) => a + b);
  expect(flushes).toBeGreaterThanOrEqual(1);
  expect(await metric(url, 'jarvis_time_to_first_token_seconds_count')).toBe(1);
  expect(await metric(url, 'jarvis_added_first_token_latency_seconds_count')).toBe(1);

  // Barge-in: A is mid-stream when B arrives in the same session.
  const headers = { 'x-session-id': 'metrics-s1' };
  const a = await postChat(url, { messages: user('Long essay'), stream: true }, { headers });
  const reader = new SseReader(a.body!);
  await reader.until((text) => text !== '', 'its first bytes');
  const b = await postChat(url, { messages: user('2+2?'), stream: true }, { headers });
  await readSse(b);
  await reader.rest();
  await waitForIdle(url);
  expect(await metric(url, 'jarvis_cancellations_total{reason="superseded"}')).toBe(1);
  expect(await metric(url, 'jarvis_streams_total{outcome="cancelled"}')).toBe(1);
  expect(await metric(url, 'jarvis_live_streams')).toBe(0);
});

it.runIf(process.platform === 'linux')('process_open_fds counts open connections; handles are counted by nodejs_active_resources, not nodejs_active_handles', async () => {
  jarvis = await startJarvis();
  const { url } = jarvis;
  // The ledger's store opens in the background (a worker thread reading its files): counted once it is open.
  await pollUntil(async () => ((await (await fetch(`${url}/healthz`)).json()) as { ledger: { state: string } }).ledger.state === 'up' || undefined, 'the ledger open');
  const before = await metric(url, 'process_open_fds');
  expect(before).toBeGreaterThan(0);
  const port = Number(new URL(url).port);
  const sockets = await Promise.all(
    Array.from({ length: 20 }, () => new Promise<Socket>((resolve, reject) => {
      const s = connect(port, '127.0.0.1', () => resolve(s));
      s.on('error', reject);
    })),
  );
  try {
    // Each connection is two descriptors in this process (client and server side); at least one each counts.
    expect(await metric(url, 'process_open_fds')).toBeGreaterThanOrEqual(before + 20);
  } finally {
    for (const s of sockets) s.destroy();
  }
  const text = await (await fetch(`${url}/metrics`)).text();
  expect(text).toMatch(/^nodejs_active_resources_total \d+$/m);
  expect(text).not.toMatch(/^nodejs_active_handles/m);
});

it('the watchdog logs event_loop_blocked with the delay when the loop stalls, and counts it in the delay histogram', async () => {
  jarvis = await startJarvis({ eventLoopBlockedMs: 100 });
  // One scrape for both series: the watchdog ticks every 10 ms, so two scrapes would see different totals.
  const above250ms = async () => {
    const [count, upTo250ms] = await metrics(jarvis!.url, 'jarvis_event_loop_delay_seconds_count', 'jarvis_event_loop_delay_seconds_bucket{le="0.25"}');
    return count! - upTo250ms!;
  };
  const before = await above250ms();
  blockLoop(300);
  const log = await jarvis.waitForLog((l) => l.includes('event_loop_blocked'));
  const delay = Number(/event_loop_blocked delay_ms=(\d+)/.exec(log)?.[1]);
  expect(delay).toBeGreaterThan(100);
  // Cumulative, unlike prom-client's per-scrape nodejs_eventloop_lag_*: the stall stays counted.
  expect(await above250ms()).toBeGreaterThanOrEqual(before + 1);
  expect(await metric(jarvis.url, 'jarvis_event_loop_delay_seconds_count')).toBeGreaterThan(0);
});

it('load shedding (opt-in) answers 503 overloaded with Retry-After while the loop is saturated, then recovers', async () => {
  jarvis = await startJarvis({ shedEventLoopDelayMs: 50 });
  const { url } = jarvis;
  blockLoop(200);
  // The overdue watchdog timer runs (timers phase) before the request is read (poll phase), so it sees the stall.
  const shed = await postChat(url, { messages: user('hi') });
  expect(shed.status).toBe(503);
  expect(shed.headers.get('retry-after')).toBe('1');
  expect(((await shed.json()) as { error: { code: string } }).error.code).toBe('overloaded');

  // Once the loop turns freely again, requests are served.
  let status = 0;
  for (let i = 0; i < 50 && status !== 200; i++) {
    await new Promise((r) => setTimeout(r, 60));
    status = (await postChat(url, { messages: user('hi') })).status;
  }
  expect(status).toBe(200);
});
