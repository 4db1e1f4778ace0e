// One route over an OpenAI-compatible, an Anthropic and a Gemini upstream: failover from each provider to the
// next and hedged first tokens between them, with each client API unchanged whichever target served; the answer's
// `model` field and chat.end say which.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TEXT as CLAUDE_TEXT } from '../fakes/anthropic/index.js';
import { TEXT as GEMINI_TEXT } from '../fakes/gemini/index.js';
import { orFail, waitForIdle } from './support/chat.js';
import { startJarvis, type TestJarvis } from './support/jarvis.js';
import { chatClient, messagesClient, responsesClient, startProviders, type Client, type Providers } from './support/matrix.js';
import { BusSubscriber } from './support/messages.js';

let providers: Providers;
let j: TestJarvis;

const CLAUDE = 'claude-sonnet-5-5';
const GEMINI = 'gemini-3-flash-preview';
const GPT = 'gpt-4o-mini';

beforeAll(async () => {
  providers = await startProviders();
  const targets = { openai: { upstream: 'openai', model: GPT }, anthropic: { upstream: 'anthropic', model: CLAUDE }, gemini: { upstream: 'gemini', model: GEMINI } };
  j = await startJarvis({
    upstreams: providers.upstreams(),
    routes: [
      // Each failure below is one that only the targets tried first have (http-529 is Anthropic's alone; http-503
      // the OpenAI and Gemini fakes have, Anthropic's has not): the next target answers it as plain text.
      { model: 'assistant', targets: [{ ...targets.anthropic, priority: 0 }, { ...targets.gemini, priority: 1 }, { ...targets.openai, priority: 2 }] },
      { model: 'assistant-g', targets: [{ ...targets.gemini, priority: 0 }, { ...targets.openai, priority: 1 }, { ...targets.anthropic, priority: 2 }] },
      { model: 'assistant-o', targets: [{ ...targets.openai, priority: 0 }, { ...targets.gemini, priority: 1 }, { ...targets.anthropic, priority: 2 }] },
      // Hedged at once: both start long before Anthropic's first text (its events paced by delay:); Gemini's first
      // chunk holds text already, so either may win.
      { model: 'assistant-hedged', hedgeAfterMs: 1, targets: [{ ...targets.anthropic, priority: 0 }, { ...targets.gemini, priority: 1 }] },
    ],
    defaultModel: 'assistant',
  });
});
afterEach(async () => {
  await waitForIdle(j.url, 10_000, { subscribers: true });
});
afterAll(async () => {
  await j?.close();
  await providers?.close();
});

let tags = 0;
const tag = () => `r${++tags}x${process.pid}`;

const CLIENTS: [string, () => Client][] = [
  ['Chat Completions', () => chatClient(j.url)],
  ['Responses API', () => responsesClient(j.url)],
  ['Messages API', () => messagesClient(j.url)],
];

describe.each(CLIENTS)('%s', (_, client) => {
  it.each([
    ['Anthropic 529 → Gemini', 'assistant', 'http-529', { upstream: 'gemini', model: GEMINI, text: GEMINI_TEXT.join(''), served: GEMINI }],
    ['Gemini 503, OpenAI 503 → Anthropic', 'assistant-g', 'http-503', { upstream: 'anthropic', model: CLAUDE, text: CLAUDE_TEXT.join(''), served: CLAUDE }],
    ['OpenAI 503, Gemini 503 → Anthropic', 'assistant-o', 'http-503', { upstream: 'anthropic', model: CLAUDE, text: CLAUDE_TEXT.join(''), served: CLAUDE }],
  ])('fails over: %s, the answer whole in the client\'s API, model and chat.end naming the target', async (_, route, scenario, want) => {
    for (const stream of [false, true]) {
      const t = tag();
      const bus = new BusSubscriber(j.url, t);
      await bus.connected;
      try {
        const a = await client().ask(route, `scenario:${scenario} ${t}`, { stream, headers: { 'X-Session-Id': t } });
        expect(a.text).toBe(want.text);
        expect(a.model).toBe(want.served);
        const end = await orFail(bus.until((e) => e.type === 'chat.end', 'chat.end'), 'chat.end');
        expect(end.data).toMatchObject({ upstream: want.upstream, model: want.model });
      } finally {
        await bus.close();
      }
    }
  });

  it('hedges: the first token wins whichever provider sends it, the other request is closed', async () => {
    const t = tag();
    const a = await client().ask('assistant-hedged', `delay:100 ${t}`, { stream: true });
    const [g, c] = [providers.gemini.requestsFor(t), providers.anthropic.requestsFor(t)];
    expect([g.length, c.length]).toEqual([1, 1]);
    await orFail(Promise.all([g[0]!.closed, c[0]!.closed]), 'both upstream requests ending');
    const lost = g[0]!.clientClosed ? 'gemini' : 'anthropic';
    expect([g[0]!.clientClosed, c[0]!.clientClosed].sort()).toEqual([false, true]);
    // The client got the winner's answer whole, in its own API.
    expect(a.text).toBe(lost === 'gemini' ? CLAUDE_TEXT.join('') : GEMINI_TEXT.join(''));
    expect(a.model).toBe(lost === 'gemini' ? CLAUDE : GEMINI);
  });
});

it('a route over every provider lists as one model', async () => {
  const models = (await (await fetch(`${j.url}/v1/models`)).json()) as { data: { id: string }[] };
  expect(models.data.map((m) => m.id)).toEqual(expect.arrayContaining(['assistant', 'assistant-g', 'assistant-o', 'assistant-hedged']));
});
