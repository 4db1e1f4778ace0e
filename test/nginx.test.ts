// nginx (Debian's package) in front of two Jarvis processes on the Redis at 127.0.0.1:6379 (this file's own key
// prefix), running deploy/nginx/jarvis.conf, the compose file's configuration, with only the upstream addresses and
// the listen port replaced: a chat streams through it token by token, a WebSocket upgrades through it, a barge-in
// crosses the two instances behind it, an events subscriber gets every instance's chat.* events through it, and its
// body limit is Jarvis's.
import { fileURLToPath } from 'node:url';
import { Agent, fetch } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { defaultConfig } from '../src/config.js';
import { simulatedAnswer } from '../src/providers/simulated/answer.js';
import {
  findLog,
  orFail,
  pollUntil,
  sessionId,
  startCluster,
  StreamingChat,
  user,
  type JarvisEvent,
  type JarvisProcess,
  type TestCluster,
} from './support/cluster.js';
import { startNginx, type NginxProcess } from './support/nginx.js';
import { forEachSseBlock, parseSseBlock } from './support/sse.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const REDIS_URL = 'redis://127.0.0.1:6379';
/** Hundreds of tokens: seconds at 50 tokens/s, so a stream is always running when the next request comes. */
const LONG = 'Long essay about the history of clocks';
const SHORT = '2+2?';
const TOKENS_PER_SEC = 50;

let cluster: TestCluster;
let nginx: NginxProcess;
let agent: Agent;

beforeAll(async () => {
  cluster = await startCluster({ n: 2, redisUrl: REDIS_URL, env: { JARVIS_SIM_TOKENS_PER_SEC: String(TOKENS_PER_SEC), JARVIS_SIM_TTFT_MS: '10' } });
  nginx = await startNginx({ root: ROOT, upstreams: cluster.instances.map((i) => `127.0.0.1:${i.port}`) });
  agent = new Agent({ keepAliveTimeout: 1000 });
}, 60_000);

afterAll(async () => {
  await agent?.destroy().catch(() => {});
  const errors = nginx ? await nginx.errorLog() : '';
  await nginx?.stop();
  await cluster?.stop();
  // nginx logged no failure talking to an instance (an upstream error, a timeout, a buffering to a temporary file);
  // the body one byte over the limit is the one error expected.
  const failures = errors.split('\n').filter((l) => /\[(error|crit|alert|emerg)\]|temporary file/.test(l) && !l.includes('client intended to send too large body'));
  expect(failures).toEqual([]);
});

const through = (body: Record<string, unknown>, headers: Record<string, string> = {}) => new StreamingChat(nginx.url, body, headers, agent);

/** Which instance served a request: the one whose log has its stream_start. */
async function servedBy(requestId: string): Promise<JarvisProcess> {
  return pollUntil(async () => {
    for (const i of cluster.instances) if (findLog(await i.logs(), { event: 'stream_start', fields: { stream_id: requestId } })) return i;
    return undefined;
  }, `the instance that served ${requestId}`);
}

describe('nginx with deploy/nginx/jarvis.conf in front of two Jarvis instances on Redis', () => {
  it('streams a chat token by token: the first token arrives long before the stream ends, in many reads', async () => {
    const started = performance.now();
    const res = await fetch(`${nginx.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'jarvis-sim', stream: true, max_tokens: 40, messages: user(LONG) }),
      dispatcher: agent,
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    // Jarvis's own request id comes back through nginx.
    expect(res.headers.get('x-request-id')).toMatch(/^req_/);
    const tokenAt: number[] = [];
    let reads = 0;
    let done = false;
    await forEachSseBlock(
      res.body!,
      (block) => {
        const { data } = parseSseBlock(block);
        if (data === '[DONE]') done = true;
        else if (data && (JSON.parse(data) as { choices: { delta: { content?: string } }[] }).choices[0]?.delta.content) tokenAt.push(performance.now() - started);
      },
      () => reads++,
    );
    const ended = performance.now() - started;
    expect(done).toBe(true);
    expect(tokenAt.length).toBeGreaterThanOrEqual(30);
    // 40 tokens at 50 a second take about 0.8 s: a buffering proxy would hand them over together at the end.
    const spread = tokenAt.at(-1)! - tokenAt[0]!;
    expect(spread).toBeGreaterThan((tokenAt.length / TOKENS_PER_SEC) * 1000 * 0.5);
    expect(ended - tokenAt[0]!).toBeGreaterThan(300);
    expect(reads).toBeGreaterThan(tokenAt.length / 2);
  });

  it('upgrades a WebSocket: an events subscriber over /v1/events gets a chat sent through nginx, event by event', async () => {
    const session = sessionId('ngx-ws');
    const ws = new WebSocket(`${nginx.url.replace(/^http/, 'ws')}/v1/events?session_id=${session}`);
    const events: JarvisEvent[] = [];
    ws.on('message', (data) => events.push(JSON.parse(String(data)) as JarvisEvent));
    const opened = new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    await orFail(opened, 'the WebSocket upgrade through nginx');
    try {
      // A subscriber is attached when its upgrade is answered; a chat in its session now is seen whole.
      const chat = through({ messages: user(SHORT) }, { 'x-session-id': session });
      const result = await orFail(chat.result, 'the chat');
      expect(result.finishReason).toBe('stop');
      await pollUntil(() => (events.some((e) => e.type === 'chat.end' && e.request_id === result.requestId) ? true : undefined), 'chat.end over the WebSocket');
      const mine = events.filter((e) => e.request_id === result.requestId);
      expect(mine[0]?.type).toBe('chat.start');
      expect(mine.some((e) => e.type === 'chat.token')).toBe(true);
      expect(mine.at(-1)?.type).toBe('chat.end');
    } finally {
      ws.close();
    }
  });

  it('carries a barge-in across the two instances: the second request in a session supersedes the first on the other instance', async () => {
    const session = sessionId('ngx-bi');
    // One nginx worker hands consecutive requests to the instances in turn (round robin): A and B land on both.
    const a = through({ messages: user(LONG) }, { 'x-session-id': session });
    await orFail(a.firstToken, "A's first token");
    const b = through({ messages: user(SHORT) }, { 'x-session-id': session });
    const [ra, rb] = await orFail(Promise.all([a.result, b.result]), 'both responses');
    const [onA, onB] = await Promise.all([servedBy(ra.requestId), servedBy(rb.requestId)]);
    expect(onA.id).not.toBe(onB.id);

    // A, on one instance, was cancelled mid-answer and ended cleanly through nginx.
    expect(ra.status).toBe(200);
    expect(ra.finishReason).toBe('cancelled');
    expect(ra.done).toBe(true);
    expect(ra.text.length).toBeLessThan(simulatedAnswer(LONG).join('').length);
    await onA.waitForLog({ event: 'stream_cancelled', fields: { request_id: ra.requestId, reason: 'superseded' } });
    // B, on the other, answered in full.
    expect(rb.status).toBe(200);
    expect(rb.finishReason).toBe('stop');
    expect(rb.done).toBe(true);
    expect(rb.text).toBe(simulatedAnswer(SHORT).join(''));
  });

  it('feeds an events subscriber (SSE through nginx) the chat.* events of chats served by either instance', async () => {
    const session = sessionId('ngx-ev');
    const controller = new AbortController();
    const res = await fetch(`${nginx.url}/v1/events?session_id=${session}`, { signal: controller.signal, dispatcher: agent });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const events: JarvisEvent[] = [];
    let connected = false;
    const pump = forEachSseBlock(res.body!, (block) => {
      const { data, comments } = parseSseBlock(block);
      if (comments.includes(': connected')) connected = true;
      if (data !== undefined) events.push(JSON.parse(data) as JarvisEvent);
    }).catch(() => {});
    try {
      // Through nginx, unbuffered: the subscriber's first comment arrives while the stream stays open.
      await pollUntil(() => (connected ? true : undefined), 'the connected comment through nginx');
      // Two chats one after the other in the session: round robin sends them to both instances.
      const first = await orFail(through({ messages: user(SHORT), max_tokens: 8 }, { 'x-session-id': session }).result, 'the first chat');
      const second = await orFail(through({ messages: user(SHORT), max_tokens: 8 }, { 'x-session-id': session }).result, 'the second chat');
      const [on1, on2] = await Promise.all([servedBy(first.requestId), servedBy(second.requestId)]);
      expect(on1.id).not.toBe(on2.id);
      for (const r of [first, second]) {
        await pollUntil(() => (events.some((e) => e.type === 'chat.end' && e.request_id === r.requestId) ? true : undefined), `chat.end of ${r.requestId}`);
        const types = events.filter((e) => e.request_id === r.requestId).map((e) => e.type);
        expect(types[0]).toBe('chat.start');
        expect(types).toContain('chat.token');
        expect(types.at(-1)).toBe('chat.end');
      }
    } finally {
      controller.abort();
      await pump;
    }
  });

  it("takes a body of JARVIS_BODY_LIMIT's default (1 MiB) on to Jarvis, and refuses one byte more", async () => {
    const limit = defaultConfig().bodyLimit;
    const body = (size: number) => {
      const json = JSON.stringify({ model: 'jarvis-sim', max_tokens: 1, messages: user(SHORT) });
      // JSON allows whitespace: padding makes the body exactly `size` bytes without touching the content limits.
      return `${json.slice(0, -1)}${' '.repeat(size - json.length)}}`;
    };
    const post = (text: string) =>
      fetch(`${nginx.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: text, dispatcher: agent });
    const atLimit = await post(body(limit));
    expect(Buffer.byteLength(body(limit))).toBe(limit);
    expect(atLimit.status).toBe(200);
    expect(((await atLimit.json()) as { object: string }).object).toBe('chat.completion');
    const over = await post(body(limit + 1));
    await over.arrayBuffer();
    expect(over.status).toBe(413);
  });

  it('logs each request with Jarvis\'s request id (jarvis_req=) in its access log', async () => {
    const r = await orFail(through({ messages: user(SHORT), max_tokens: 4 }).result, 'a chat');
    await pollUntil(async () => ((await nginx.stdout()).includes(`jarvis_req=${r.requestId}`) ? true : undefined), 'the access log line');
  });
});
