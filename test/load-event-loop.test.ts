// The event loop stays responsive under load: while 200 streams run and 20 sessions barge in over and over,
// the p99 event-loop delay of this process (which hosts the server) stays under 100 ms. Barged-in clients end
// with `cancelled`, each session's last request completes, and everything drains to zero afterwards.
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startJarvis, type TestJarvis } from './support/jarvis.js';

const BACKGROUND = 200;
/**
 * 320 tokens at 40 tokens/s: the background streams run ~8 s, past the end of the barge-in phase. A long window
 * (~800 samples at 10 ms) keeps p99 about the process, not one moment when the shared machine was busy.
 */
const BACKGROUND_TOKENS = 320;
const SESSIONS = 20;
const REQUESTS_PER_SESSION = 10;
/** ~1 s per session request: each is still streaming when the next one (100-150 ms later) barges in. */
const SESSION_TOKENS = 40;
/**
 * A guard against blocking, not a performance target (npm run bench measures that): what it catches is the
 * failure Jarvis replaces, a publisher that sleeps on the loop, which stalls it for whole batching windows and
 * more. Measured here at 15-20 ms on a quiet 2-core machine (the 10 ms resolution included), so a busy CI host
 * stays far inside the bound while a real block breaks it by far.
 */
const P99_LIMIT_MS = 100;

let jarvis: TestJarvis;
let agent: Agent;

beforeAll(async () => {
  jarvis = await startJarvis({ simulator: { tokensPerSec: 40, ttftMs: 50 } });
  agent = new Agent({ connections: null });
});
afterAll(async () => {
  await agent?.destroy();
  await jarvis?.close();
});

interface Stream {
  /** Resolves when the response headers arrive: the stream has started (it opens on its first output). */
  started: Promise<void>;
  done: Promise<{ status: number; dataLines: number; finishReason: string | undefined; doneFrame: boolean }>;
}

/** One streaming request, read cheaply: `data:` lines counted in the raw bytes, only the tail kept. */
function stream(body: Record<string, unknown>, headers: Record<string, string> = {}): Stream {
  let onStarted!: () => void;
  const started = new Promise<void>((resolve) => (onStarted = resolve));
  const done = (async () => {
    const res = await request(`${jarvis.url}/v1/chat/completions`, {
      dispatcher: agent,
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify({ model: 'jarvis-sim', stream: true, ...body }),
    });
    onStarted();
    let dataLines = 0;
    let tail = '';
    for await (const chunk of res.body) {
      const text = (chunk as Buffer).toString('latin1');
      for (let i = text.indexOf('data: '); i >= 0; i = text.indexOf('data: ', i + 6)) dataLines++;
      tail = (tail + text).slice(-300);
    }
    const finishReason = [...tail.matchAll(/"finish_reason":"(\w+)"/g)].at(-1)?.[1];
    return { status: res.statusCode, dataLines, finishReason, doneFrame: tail.endsWith('data: [DONE]\n\n') };
  })();
  done.catch(() => onStarted());
  return { started, done };
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('event-loop delay under load', () => {
  it(`stays under ${P99_LIMIT_MS} ms at p99 with ${BACKGROUND} streams and ${SESSIONS} sessions barging in`, async () => {
    const background = Array.from({ length: BACKGROUND }, (_, i) =>
      stream({ messages: [{ role: 'user', content: `Write a long essay about background topic ${i}` }], max_tokens: BACKGROUND_TOKENS }),
    );
    await Promise.all(background.map((s) => s.started));

    // Measured only while the load runs.
    const h = monitorEventLoopDelay({ resolution: 10 });
    h.enable();

    const sessions = await Promise.all(
      Array.from({ length: SESSIONS }, async (_, s) => {
        const sent: Stream[] = [];
        for (let k = 0; k < REQUESTS_PER_SESSION; k++) {
          const st = stream({ messages: [{ role: 'user', content: `Explain barge-in ${s}, take ${k}` }], max_tokens: SESSION_TOKENS }, { 'x-session-id': `loop-${s}` });
          sent.push(st);
          // The next request barges in only once this one has started, 50-100 ms later (pacing, not sync).
          await st.started;
          if (k < REQUESTS_PER_SESSION - 1) await pause(50 + Math.random() * 50);
        }
        return Promise.all(sent.map((st) => st.done));
      }),
    );
    const backgroundResults = await Promise.all(background.map((s) => s.done));
    h.disable();

    const p99 = h.percentile(99) / 1e6;
    console.log(`event-loop delay under load: p50 ${(h.percentile(50) / 1e6).toFixed(2)} ms, p99 ${p99.toFixed(2)} ms, max ${(h.max / 1e6).toFixed(2)} ms (${h.count} samples)`);

    for (const r of backgroundResults) {
      expect(r).toMatchObject({ status: 200, finishReason: 'length', doneFrame: true });
      // Role chunk, one chunk per token, the finish chunk and [DONE].
      expect(r.dataLines).toBe(BACKGROUND_TOKENS + 3);
    }
    for (const results of sessions) {
      const last = results.at(-1)!;
      for (const r of results.slice(0, -1)) expect(r).toMatchObject({ status: 200, finishReason: 'cancelled', doneFrame: true });
      expect(last).toMatchObject({ status: 200, finishReason: 'length', doneFrame: true });
      expect(last.dataLines).toBe(SESSION_TOKENS + 3);
    }

    const deadline = Date.now() + 10_000;
    let health: Record<string, number>;
    for (;;) {
      health = (await (await request(`${jarvis.url}/healthz`, { dispatcher: agent })).body.json()) as Record<string, number>;
      if ((health.streams === 0 && health.sessions === 0 && health.buffers === 0 && health.timers === 0) || Date.now() > deadline) break;
      await pause(20);
    }
    expect(health).toMatchObject({ streams: 0, sessions: 0, buffers: 0, timers: 0 });

    expect(p99).toBeLessThan(P99_LIMIT_MS);
  }, 30_000);
});
