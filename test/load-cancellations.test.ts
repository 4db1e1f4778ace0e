// 1,000 streams cancelled at random points (client aborts before and after the first byte, barge-ins on reused
// session ids) leave nothing behind: no live stream, session, token buffer or flush timer, and every
// stream_start in the log has its stream_end ... cleanup_done=true.
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startJarvis, type TestJarvis } from './support/jarvis.js';
import { seededRandom as rng } from '../src/providers/simulated/answer.js';

const TOTAL = 1000;
const CONCURRENCY = 100;
const SESSIONS = 30;
// Seeded: the random cancellation points are the same on every run.
const SEED = 0x5eed1234;

type Plan =
  | { kind: 'abort-after-chunks'; chunks: number; session?: string; maxTokens: number }
  | { kind: 'abort-after-ms'; ms: number; session?: string; maxTokens: number }
  | { kind: 'read-to-end'; session?: string; maxTokens: number };

type Outcome = 'aborted' | 'stop' | 'length' | 'cancelled' | 'unexpected';

interface Result {
  plan: Plan;
  outcome: Outcome;
  gotHeaders: boolean;
  detail?: string;
}

function plans(): Plan[] {
  const random = rng(SEED);
  const int = (lo: number, hi: number) => lo + Math.floor(random() * (hi - lo + 1));
  return Array.from({ length: TOTAL }, (): Plan => {
    // Most requests reuse one of a few session ids, so later ones barge in on earlier ones.
    const session = random() < 0.7 ? `load-${int(0, SESSIONS - 1)}` : undefined;
    const maxTokens = int(10, 80);
    const r = random();
    if (r < 0.4) return { kind: 'abort-after-chunks', chunks: int(1, 40), session, maxTokens };
    if (r < 0.7) return { kind: 'abort-after-ms', ms: int(0, 40), session, maxTokens };
    return { kind: 'read-to-end', session, maxTokens };
  });
}

let jarvis: TestJarvis;
let agent: Agent;

beforeAll(async () => {
  jarvis = await startJarvis({
    simulator: { tokensPerSec: 200, ttftMs: 5 },
    // Short flush interval: most cancellations land while a flush timer is pending.
    events: { flushMs: 20 },
  });
  agent = new Agent({ connections: CONCURRENCY * 2 });
});
afterAll(async () => {
  await agent?.destroy();
  await jarvis?.close();
});

async function run(plan: Plan, i: number): Promise<Result> {
  const abort = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  if (plan.kind === 'abort-after-ms') timer = setTimeout(() => abort.abort(), plan.ms);
  let gotHeaders = false;
  try {
    const res = await request(`${jarvis.url}/v1/chat/completions`, {
      dispatcher: agent,
      method: 'POST',
      signal: abort.signal,
      headers: { 'content-type': 'application/json', ...(plan.session ? { 'x-session-id': plan.session } : {}) },
      body: JSON.stringify({ model: 'jarvis-sim', stream: true, max_tokens: plan.maxTokens, messages: [{ role: 'user', content: `Write a long essay about load ${i}` }] }),
    });
    gotHeaders = true;
    if (res.statusCode !== 200) return { plan, outcome: 'unexpected', gotHeaders, detail: `status ${res.statusCode}: ${await res.body.text()}` };
    let tail = '';
    let chunks = 0;
    for await (const piece of res.body) {
      const text = (piece as Buffer).toString('utf8');
      tail = (tail + text).slice(-400);
      if (plan.kind === 'abort-after-chunks') {
        chunks += text.split('data: ').length - 1;
        if (chunks >= plan.chunks) {
          abort.abort();
          break;
        }
      }
    }
    if (abort.signal.aborted) return { plan, outcome: 'aborted', gotHeaders };
    const finish = [...tail.matchAll(/"finish_reason":"(\w+)"/g)].at(-1)?.[1];
    if (!tail.endsWith('data: [DONE]\n\n') || (finish !== 'stop' && finish !== 'length' && finish !== 'cancelled')) {
      return { plan, outcome: 'unexpected', gotHeaders, detail: tail };
    }
    return { plan, outcome: finish, gotHeaders };
  } catch (err) {
    if (abort.signal.aborted) return { plan, outcome: 'aborted', gotHeaders };
    return { plan, outcome: 'unexpected', gotHeaders, detail: String(err) };
  } finally {
    clearTimeout(timer);
  }
}

async function health(): Promise<Record<string, number>> {
  const res = await request(`${jarvis.url}/healthz`, { dispatcher: agent });
  return (await res.body.json()) as Record<string, number>;
}

const count = (log: string, re: RegExp) => (log.match(re) ?? []).length;
const STARTS = /^\S+ info stream_start /gm;
const CLEAN_ENDS = /^\S+ info stream_end .*\bcleanup_done=true\b/gm;

describe('1,000 streams cancelled at random points', () => {
  it('leave zero streams, sessions, buffers and timers, and a stream_end cleanup_done=true for every stream_start', async () => {
    const all = plans();
    const results: Result[] = new Array(TOTAL);
    let next = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < TOTAL) {
          const i = next++;
          results[i] = await run(all[i]!, i);
        }
      }),
    );

    const by = (o: Outcome) => results.filter((r) => r.outcome === o).length;
    const summary = { aborted: by('aborted'), cancelled: by('cancelled'), stop: by('stop'), length: by('length'), unexpected: by('unexpected') };
    console.log('load-cancellations outcomes:', JSON.stringify(summary));
    expect(results.filter((r) => r.outcome === 'unexpected').slice(0, 5)).toEqual([]);
    // Both kinds of cancellation really happened, many times.
    expect(summary.aborted).toBeGreaterThan(100);
    expect(summary.cancelled).toBeGreaterThan(50);

    const deadline = Date.now() + 10_000;
    let h = await health();
    while ((h.streams !== 0 || h.sessions !== 0 || h.buffers !== 0 || h.timers !== 0) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
      h = await health();
    }
    expect(h).toMatchObject({ streams: 0, sessions: 0, buffers: 0, timers: 0 });

    // Every stream that started has ended (streams is 0), so the counter of ended streams is the number of
    // stream_start lines the log must get; the log file is written asynchronously, so wait for it.
    const metrics = await (await request(`${jarvis.url}/metrics`, { dispatcher: agent })).body.text();
    const ended = [...metrics.matchAll(/^jarvis_streams_total\{outcome="\w+"\} (\d+)/gm)].reduce((n, m) => n + Number(m[1]), 0);
    expect(ended).toBeGreaterThanOrEqual(results.filter((r) => r.gotHeaders).length);
    expect(ended).toBeLessThanOrEqual(TOTAL);
    const log = await jarvis.waitForLog((l) => count(l, STARTS) >= ended && count(l, CLEAN_ENDS) >= ended, 10_000);
    expect(count(log, STARTS)).toBe(ended);
    expect(count(log, CLEAN_ENDS)).toBe(count(log, STARTS));
    expect(log).not.toMatch(/ stream_end .*outcome=(error|rejected)/);
    expect(log).not.toMatch(/ (error|fatal) /);
  }, 60_000);
});
