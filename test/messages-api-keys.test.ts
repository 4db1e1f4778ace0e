// POST /v1/messages with keys configured, and with bodies Jarvis must refuse: a Messages client authenticates as
// Anthropic's do (x-api-key, or Authorization: Bearer, which the SDK sends), a wrong key is the SDK's
// AuthenticationError, and a malformed request is a 400 invalid_request_error in Anthropic's shape, whatever
// upstream the model is on: never a 500.
import Anthropic, { AuthenticationError, BadRequestError } from '@anthropic-ai/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAnthropicUpstream, type AnthropicUpstream } from '../fakes/anthropic/index.js';
import { failure } from './support/faithful.js';
import { startJarvis, type TestJarvis } from './support/jarvis.js';
import { postMessages } from './support/messages.js';
import { startOpenAIUpstream, type OpenAIUpstream } from '../fakes/openai/index.js';

const KEY = 'sk-jarvis-messages-key';
const CLAUDE = 'claude-sonnet-5-5';
const GPT = 'gpt-4o-mini';
const SIM = 'jarvis-sim';

let openai: OpenAIUpstream;
let claude: AnthropicUpstream;
let j: TestJarvis;
beforeAll(async () => {
  [openai, claude] = await Promise.all([startOpenAIUpstream(), startAnthropicUpstream()]);
  j = await startJarvis({
    apiKeys: [KEY],
    simulator: { tokensPerSec: 2000, ttftMs: 0 },
    upstreams: [
      { name: 'openai', baseUrl: openai.url, models: [GPT] },
      { name: 'claude', baseUrl: claude.url, provider: 'anthropic', models: [CLAUDE] },
    ],
    defaultModel: SIM,
  });
});
afterAll(async () => {
  await j?.close();
  await Promise.all([openai?.close(), claude?.close()]);
});

/** The SDK sending its key one way or the other, with the headers of each request it made recorded. */
function client(key: string, via: 'x-api-key' | 'bearer') {
  const sent: Headers[] = [];
  const sdk = new Anthropic({
    baseURL: j.url,
    maxRetries: 2,
    ...(via === 'bearer' ? { apiKey: key } : { apiKey: null, authToken: null, defaultHeaders: { 'x-api-key': key } }),
    fetch: (url: string | URL | Request, init?: RequestInit) => {
      sent.push(new Headers(init?.headers));
      return fetch(url, init);
    },
  });
  return { sdk, sent };
}

const hi = (model: string) => ({ model, max_tokens: 64, messages: [{ role: 'user' as const, content: 'What is the capital of France?' }] });

describe('keys on /v1/messages', () => {
  describe.each(['x-api-key', 'bearer'] as const)('sent as %s', (via) => {
    it.each([SIM, GPT, CLAUDE])('the right key is served (model %s), streamed and not, and count_tokens too', async (model) => {
      const { sdk, sent } = client(KEY, via);
      const created = await sdk.messages.create(hi(model));
      expect(created.stop_reason).toBe('end_turn');
      const streamed = await sdk.messages.stream(hi(model)).finalMessage();
      expect(streamed.content).toEqual(created.content);
      const counted = await sdk.messages.countTokens({ model, messages: hi(model).messages });
      expect(counted.input_tokens).toBeGreaterThan(0);
      // The key went the way this case says, and only that way.
      expect(sent).toHaveLength(3);
      for (const h of sent) {
        expect(h.get('x-api-key')).toBe(via === 'x-api-key' ? KEY : null);
        expect(h.get('authorization')).toBe(via === 'bearer' ? `Bearer ${KEY}` : null);
      }
    });

    it("a wrong key is the SDK's AuthenticationError: 401 authentication_error in Anthropic's shape, not retried", async () => {
      const { sdk, sent } = client('sk-not-the-key-at-all', via);
      for (const call of [() => sdk.messages.create(hi(SIM)), () => sdk.messages.stream(hi(SIM)).finalMessage(), () => sdk.messages.countTokens({ model: SIM, messages: hi(SIM).messages })]) {
        const before = sent.length;
        const result = await failure(call, (e) => ({ status: e.status, type: e.type, error: e.error }));
        expect(result).toMatchObject({ name: AuthenticationError.name, status: 401, type: 'authentication_error' });
        expect(result.error).toEqual({ type: 'error', error: { type: 'authentication_error', message: expect.any(String) } });
        expect(sent.length - before).toBe(1);
      }
    });
  });

  it('no key at all is a 401 authentication_error', async () => {
    const res = await postMessages(j.url, hi(SIM));
    expect(res.status).toBe(401);
    expect(JSON.parse(res.text)).toEqual({ type: 'error', error: { type: 'authentication_error', message: expect.any(String) } });
  });
});

describe('malformed requests are 400 invalid_request_error, never a 500', () => {
  // What an Anthropic upstream is left to judge (content of any shape goes to it as it came) comes back as it
  // answered, with its request_id; what Jarvis refuses itself has just these two members.
  const ANTHROPIC_400 = { type: 'error', error: { type: 'invalid_request_error', message: expect.any(String) } };
  const messages = [{ role: 'user', content: 'hi' }];
  const cases: Array<[string, (model: string) => unknown]> = [
    ['no max_tokens', (model) => ({ model, messages })],
    ['empty messages', (model) => ({ model, max_tokens: 64, messages: [] })],
    ['no messages', (model) => ({ model, max_tokens: 64 })],
    ['max_tokens 0', (model) => ({ model, max_tokens: 0, messages })],
    ['max_tokens a string', (model) => ({ model, max_tokens: '64', messages })],
    ['messages not a list', (model) => ({ model, max_tokens: 64, messages: { role: 'user', content: 'hi' } })],
    ['a message without a role', (model) => ({ model, max_tokens: 64, messages: [{ content: 'hi' }] })],
    ['a message that is not an object', (model) => ({ model, max_tokens: 64, messages: ['hi'] })],
    ['content a number', (model) => ({ model, max_tokens: 64, messages: [{ role: 'user', content: 42 }] })],
    ['a body that is not an object', () => [1, 2, 3]],
    ['a body that is not JSON', () => '{"model": '],
  ];

  // What the SDK can send (it writes the body as JSON): everything but the body that is not JSON.
  it.each(cases.filter(([name]) => name !== 'a body that is not JSON'))('%s, with the SDK: BadRequestError', async (_name, body) => {
    for (const model of [SIM, GPT, CLAUDE]) {
      const { sdk } = client(KEY, 'bearer');
      // The SDK's types would refuse these bodies; sent as they are, the server must refuse them.
      const result = await failure(
        () => sdk.post('/v1/messages', { body: body(model) }),
        (e) => ({ status: e.status, type: e.type, error: e.error }),
      );
      expect(result, model).toMatchObject({ name: BadRequestError.name, status: 400, type: 'invalid_request_error' });
      expect(result.error, model).toMatchObject(ANTHROPIC_400);
    }
  });

  it.each(cases)('%s, raw, streamed or not: a 400 in Anthropic shape (also for count_tokens)', async (_name, body) => {
    for (const model of [SIM, GPT, CLAUDE]) {
      for (const path of ['/v1/messages', '/v1/messages/count_tokens']) {
        for (const stream of [false, true]) {
          const b = body(model);
          const sentBody = typeof b === 'object' && b !== null && !Array.isArray(b) && stream ? { ...b, stream } : b;
          const res = await postMessages(j.url, sentBody, { 'x-api-key': KEY }, path);
          const what = `${model} ${path} stream ${stream}: ${res.text}`;
          // count_tokens takes no max_tokens: a request without one is counted.
          if (path.endsWith('count_tokens') && /max_tokens/.test(_name)) {
            expect(res.status, what).toBeLessThan(500);
            continue;
          }
          expect(res.status, what).toBe(400);
          expect(res.headers.get('content-type'), what).toMatch(/^application\/json/);
          expect(JSON.parse(res.text), what).toMatchObject(ANTHROPIC_400);
        }
      }
    }
  });
});
