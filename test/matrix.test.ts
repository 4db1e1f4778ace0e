// Every client API over every provider, cell by cell: Chat Completions and the Responses API through the `openai`
// SDK, the Messages API through `@anthropic-ai/sdk`, each over an OpenAI-compatible upstream, an Anthropic one, a
// Gemini one (each a fake proven with its provider's own SDK) and the simulator. In each cell, streamed and not:
// text; a tool round trip and two parallel calls; reasoning, then a second tool turn that needs its signature;
// usage, estimated where the upstream gave none; an HTTP error and a mid-stream error keeping their meaning; an
// abort that closes the upstream request; a barge-in, with what was heard. What each cell supports is SUPPORT
// (test/support/matrix.ts), which docs/providers.md shows: the first test fails when the two disagree.
import { readFileSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ERRORS as ANTHROPIC_ERRORS, STREAM_ERROR as ANTHROPIC_STREAM_ERROR, TEXT as ANTHROPIC_TEXT, THINKING_TOOL as ANTHROPIC_THINKING, signatureValid as anthropicSignatureValid, type AnthropicUpstream } from '../fakes/anthropic/index.js';
import type { FakeRequest } from '../fakes/http.js';
import { ERRORS as GEMINI_ERRORS, INTERNAL_MESSAGE, SKIP_SIGNATURE, TEXT as GEMINI_TEXT, THINKING_TOOL as GEMINI_THINKING, signatureValid as geminiSignatureValid, type GeminiUpstream } from '../fakes/gemini/index.js';
import { ERRORS as OPENAI_ERRORS, STREAM_ERROR as OPENAI_STREAM_ERROR, type OpenAIUpstream } from '../fakes/openai/index.js';
import { simulatedAnswer } from '../src/providers/simulated/answer.js';
import { INTERRUPTED_MARK } from '../src/responses/translate.js';
import { orFail, waitForIdle } from './support/chat.js';
import { startJarvis, type TestJarvis } from './support/jarvis.js';
import {
  chatClient,
  CLIENTS,
  messagesClient,
  responsesClient,
  sentOf,
  startProviders,
  supports,
  supportTable,
  tableAfter,
  UPSTREAMS,
  type Answer,
  type Client,
  type ClientName,
  type Providers,
  type UpstreamName,
} from './support/matrix.js';
import { BusSubscriber } from './support/messages.js';

const GPT = 'gpt-4o-mini';
const CLAUDE = 'claude-sonnet-5-5';
const GEMINI = 'gemini-3-flash-preview';
const SIM = 'jarvis-sim';
/** Hundreds of simulator tokens, seconds at its pace here: a stream still going when it is cut. */
const LONG = 'Long essay about the history of clocks';

let providers: Providers;
let openai: OpenAIUpstream;
let anthropic: AnthropicUpstream;
let gemini: GeminiUpstream;
let j: TestJarvis;

beforeAll(async () => {
  providers = await startProviders();
  ({ openai, anthropic, gemini } = providers);
  j = await startJarvis({ simulator: { tokensPerSec: 200, ttftMs: 0 }, upstreams: providers.upstreams({ openai: [GPT], anthropic: [CLAUDE], gemini: [GEMINI] }), defaultModel: GPT });
});
afterEach(async () => {
  await waitForIdle(j.url, 10_000, { subscribers: true });
});
afterAll(async () => {
  await j?.close();
  await providers?.close();
});

let tags = 0;
/** Also a session id: letters, digits and '-' only. */
const tag = () => `m${++tags}x${process.pid}`;

interface Up {
  name: UpstreamName;
  model: string;
  /** The requests the upstream got whose prompt holds the tag (none for the simulator). */
  requestsFor(t: string): FakeRequest[];
  /** Every request the upstream got. */
  requests(): FakeRequest[];
  /** The answer to a plain prompt. */
  text(prompt: string): string;
  /** A prompt whose answer streams for seconds. */
  slow(t: string): string;
  /** A prompt the upstream reasons about, whether it calls a tool then, what its reasoning says, and whether the request got its signature back. */
  reasoning?: { prompt: string; tools: boolean; text: string; signedBack?: (req: FakeRequest) => boolean };
  /** The message of its HTTP errors and of its mid-stream error. */
  errors?: { http400: string; http429: string; mid: string };
}

const UPS: Record<UpstreamName, Up> = {
  'OpenAI-compatible': {
    name: 'OpenAI-compatible',
    model: GPT,
    requestsFor: (t) => openai.requestsFor(t),
    requests: () => openai.requests,
    text: () => 'The answer is 42.',
    slow: (t) => `scenario:long tokens:400 delay:10 ${t}`,
    reasoning: { prompt: 'scenario:reasoning', tools: false, text: 'The user wants a sum.' },
    errors: { http400: OPENAI_ERRORS['http-400']!.error.message as string, http429: OPENAI_ERRORS['http-429']!.error.message as string, mid: OPENAI_STREAM_ERROR.error.message },
  },
  Anthropic: {
    name: 'Anthropic',
    model: CLAUDE,
    requestsFor: (t) => anthropic.requestsFor(t),
    requests: () => anthropic.requests,
    text: () => ANTHROPIC_TEXT.join(''),
    slow: (t) => `scenario:long tokens:400 delay:10 ${t}`,
    reasoning: {
      prompt: 'scenario:thinking-tool',
      tools: true,
      text: ANTHROPIC_THINKING.join(''),
      signedBack: (req) => {
        const turn = (req.body.messages as { role: string; content: { type: string; thinking?: string; signature?: string }[] }[]).find((m) => m.role === 'assistant')!;
        const first = turn.content[0]!;
        return first.type === 'thinking' && anthropicSignatureValid(first.thinking!, first.signature);
      },
    },
    errors: { http400: ANTHROPIC_ERRORS['http-400']!.message, http429: ANTHROPIC_ERRORS['http-429']!.message, mid: ANTHROPIC_STREAM_ERROR.error.message },
  },
  Gemini: {
    name: 'Gemini',
    model: GEMINI,
    requestsFor: (t) => gemini.requestsFor(t),
    requests: () => gemini.requests,
    text: () => GEMINI_TEXT.join(''),
    slow: (t) => `scenario:long tokens:400 delay:10 ${t}`,
    reasoning: {
      prompt: 'scenario:thinking-tool',
      tools: true,
      text: GEMINI_THINKING.join(''),
      signedBack: (req) => {
        const turn = (req.body.contents as { role: string; parts: { functionCall?: { name: string }; thoughtSignature?: string }[] }[]).find((c) => c.role === 'model')!;
        const call = turn.parts.find((p) => p.functionCall)!;
        return call.thoughtSignature !== SKIP_SIGNATURE && geminiSignatureValid(call.functionCall!.name, call.thoughtSignature);
      },
    },
    errors: { http400: GEMINI_ERRORS['http-400']!.message, http429: GEMINI_ERRORS['http-429']!.message, mid: INTERNAL_MESSAGE },
  },
  Simulator: {
    name: 'Simulator',
    model: SIM,
    requestsFor: () => [],
    requests: () => [],
    text: (prompt) => simulatedAnswer(prompt).join(''),
    slow: (t) => `${LONG} ${t}`,
  },
};

/** The last request whose conversation holds the tag: a tool loop's later turns end with tool results, not the tagged prompt. */
const lastWith = (up: Up, t: string): FakeRequest => up.requests().filter((r) => JSON.stringify(r.body).includes(t)).at(-1)!;

const CLIENT_OF: Record<ClientName, () => Client> = {
  'Chat Completions': () => chatClient(j.url),
  'Responses API': () => responsesClient(j.url),
  'Messages API': () => messagesClient(j.url),
};

/** What an SDK's error says: its status and the upstream's message as the client API carries it. */
function meaningOf(err: unknown): { status: number | undefined; message: string } {
  const e = err as { status?: number; error?: { message?: string; error?: { message?: string } }; message?: string };
  return { status: e.status, message: e.error?.error?.message ?? e.error?.message ?? e.message ?? '' };
}

async function failing(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => {
      throw new Error('expected the request to fail');
    },
    (err: unknown) => err,
  );
}

it('docs/providers.md shows the matrix this suite tests, cell for cell', () => {
  const docs = readFileSync(new URL('../docs/providers.md', import.meta.url), 'utf8');
  expect(tableAfter(docs, '## Every client API over every provider')).toEqual(supportTable());
});

describe.each(CLIENTS.flatMap((c) => UPSTREAMS.map((u) => [c, u] as const)))('%s over %s', (clientName, upstreamName) => {
  const up = UPS[upstreamName];
  const client = () => CLIENT_OF[clientName]();

  describe.each([false, true])('stream: %s', (stream) => {
    it('1. text', async () => {
      const t = tag();
      const prompt = `Hello ${t}`;
      const a = await client().ask(up.model, prompt, { stream });
      expect(a.text).toBe(up.text(prompt));
      expect(a.calls).toEqual([]);
      if (up.name !== 'Simulator') expect(up.requestsFor(t)).toHaveLength(1);
    });

    it.runIf(supports(upstreamName, 'Tools'))('2. a tool round trip, and two parallel calls', async () => {
      const t = tag();
      const first = await client().ask(up.model, `What is the weather in Paris? ${t}`, { stream, tools: true });
      expect(first.calls).toHaveLength(1);
      expect(first.calls[0]).toMatchObject({ name: 'get_weather', id: expect.any(String) });
      expect(JSON.parse(first.calls[0]!.arguments)).toMatchObject({ location: 'Paris' });
      const second = await first.answerCalls(['{"temperature":21}']);
      expect(second.text).toContain('21');
      expect(second.calls).toEqual([]);

      const u = tag();
      const both = await client().ask(up.model, `scenario:tools-2 Paris and Tokyo? ${u}`, { stream, tools: true });
      expect(both.calls.map((c) => JSON.parse(c.arguments).location)).toEqual(['Paris', 'Tokyo']);
      expect(new Set(both.calls.map((c) => c.id)).size).toBe(2);
      const answered = await both.answerCalls(['{"temperature":21}', '{"temperature":9}']);
      expect(answered.text).not.toBe('');
      const sent = lastWith(up, u);
      expect(sentOf(upstreamName, sent).toolResults).toBe(2);
    });

    it.runIf(supports(upstreamName, 'Reasoning'))('3. reasoning, then the tool turn that needs it', async () => {
      const r = up.reasoning!;
      const t = tag();
      const first = await client().ask(up.model, `${r.prompt} What is the weather in Paris? ${t}`, { stream, tools: r.tools, reasoning: true });
      expect(first.reasoning).toBe(r.text);
      if (!r.tools) return;
      expect(first.calls).toHaveLength(1);
      const second = await first.answerCalls(['{"temperature":21}']);
      expect(second.text).toContain('21');
      // The upstream got its own signature back, not a placeholder: the loop is what the model would see directly.
      const sent = lastWith(up, t);
      expect(r.signedBack!(sent)).toBe(true);
    });

    it('4. usage as the client API reports it', async () => {
      const t = tag();
      const a = await client().ask(up.model, `Hello ${t}`, { stream });
      expect(a.usage).toBeDefined();
      expect(a.usage!.input).toBeGreaterThan(0);
      expect(a.usage!.output).toBeGreaterThan(0);
      expect(a.usage!.estimated).toBe(false);
    });

    it.runIf(UPS[upstreamName].name !== 'Simulator' && supports(upstreamName, 'Usage') && upstreamName !== 'Anthropic')('4. usage marked estimated where the upstream gave none', async () => {
      const t = tag();
      const a = await client().ask(up.model, `scenario:no-usage Hello ${t}`, { stream });
      expect(a.text).not.toBe('');
      expect(a.usage).toMatchObject({ estimated: true });
      expect(a.usage!.input).toBeGreaterThan(0);
      expect(a.usage!.output).toBeGreaterThan(0);
    });

    it.runIf(supports(upstreamName, 'Errors'))('5. an HTTP error keeps its status and message', async () => {
      const e = up.errors!;
      const rateLimited = await failing(client().ask(up.model, `scenario:http-429 ${tag()}`, { stream }));
      expect(meaningOf(rateLimited)).toEqual({ status: 429, message: e.http429 });
      // When to retry, as the upstream said it (Gemini in its error's RetryInfo).
      expect(Number((rateLimited as { headers: Headers }).headers.get('retry-after'))).toBeGreaterThan(0);
      const bad = meaningOf(await failing(client().ask(up.model, `scenario:http-400 ${tag()}`, { stream })));
      expect(bad).toEqual({ status: 400, message: e.http400 });
    });

    it.runIf(supports(upstreamName, 'Errors'))('5. a mid-stream error keeps its meaning', async () => {
      const t = tag();
      let text = '';
      const err = meaningOf(await failing(client().ask(up.model, `scenario:error-mid ${t}`, { stream, onText: (s) => (text += s) })));
      expect(err.message).toBe(up.errors!.mid);
      // Streamed, the text so far arrived first; not streamed, the error is the answer's HTTP status, a server-side one.
      if (stream) expect(text).not.toBe('');
      else expect(err.status).toBeGreaterThanOrEqual(500);
    });
  });

  it('6. an abort closes the upstream request', async () => {
    const t = tag();
    const bus = new BusSubscriber(j.url, t);
    await bus.connected;
    try {
      const controller = new AbortController();
      const asked = client().ask(up.model, up.slow(t), { stream: true, signal: controller.signal, headers: { 'X-Session-Id': t }, onText: () => controller.abort() });
      // The openai SDK ends an aborted stream's iteration quietly; the Anthropic SDK throws its abort error.
      await asked.catch(() => {});
      const cancelled = await orFail(bus.until((e) => e.type === 'chat.cancelled', 'chat.cancelled'), 'chat.cancelled');
      expect(cancelled.data.reason).toBe('client_disconnected');
      if (up.name !== 'Simulator') {
        const [rec] = up.requestsFor(t);
        await orFail(rec!.closed, 'the upstream request closing');
        expect(rec!.clientClosed).toBe(true);
      }
    } finally {
      await bus.close();
    }
  });

  it('7. a barge-in: the older upstream request closed, the newer answered in full, what was heard told and remembered', async () => {
    const t = tag();
    const session = { 'X-Session-Id': t };
    const bus = new BusSubscriber(j.url, t);
    await bus.connected;
    try {
      let newer: Promise<Answer> | undefined;
      const prompt = `Hello again ${t}`;
      let heard = '';
      const older = await client().ask(up.model, up.slow(t), {
        stream: true,
        headers: session,
        onText: (s) => {
          heard += s;
          newer ??= client().ask(up.model, prompt, { stream: true, headers: session });
        },
      });
      expect(newer).toBeDefined();
      const b = await newer!;
      expect(b.text).toBe(up.text(prompt));
      expect(older.text).toBe(heard);
      const cancelled = await orFail(bus.until((e) => e.type === 'chat.cancelled', 'chat.cancelled'), 'chat.cancelled');
      expect(cancelled.data).toMatchObject({ reason: 'superseded', heard_chars: heard.length });
      if (up.name !== 'Simulator') {
        const [rec] = up.requestsFor(t);
        await orFail(rec!.closed, 'the older upstream request closing');
        expect(rec!.clientClosed).toBe(true);
      }
      if (clientName !== 'Responses API') return;
      // The interrupted response is stored as it was heard; the next turn, chained to it, holds only that, marked.
      const stored = (await (await fetch(`${j.url}/v1/responses/${older.id}`)).json()) as { status: string; output: { type: string; content?: { text: string }[] }[] };
      expect(stored.status).toBe('incomplete');
      expect(stored.output.filter((o) => o.type === 'message').flatMap((o) => o.content!.map((c) => c.text)).join('')).toBe(heard);
      const u = tag();
      const next = await client().ask(up.model, `And then? ${u}`, { stream: false, previousResponseId: older.id });
      expect(next.text).toBe(up.text(`And then? ${u}`));
      if (up.name !== 'Simulator') expect(sentOf(upstreamName, up.requestsFor(u)[0]!).assistantText[0]).toBe(heard + INTERRUPTED_MARK);
    } finally {
      await bus.close();
    }
  });
});
