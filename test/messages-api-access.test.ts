// The Messages API under a key's access rules, as the Anthropic SDK meets them: a model the key may not use is
// Anthropic's 404, a quota is Anthropic's 429 with its retry headers (the SDK's RateLimitError), and a key without
// the chat scope is Anthropic's 403, each in Anthropic's error shape.
import Anthropic, { NotFoundError, PermissionDeniedError, RateLimitError } from '@anthropic-ai/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAnthropicUpstream, type AnthropicUpstream } from '../fakes/anthropic/index.js';
import { startJarvis, type TestJarvis } from './support/jarvis.js';

const SLOW = 'sk-messages-rpm-1';
const NARROW = 'sk-messages-narrow';
const EVENTS = 'sk-messages-events';
const EVENTS_FREE = 'sk-messages-free-key';

let jarvis: TestJarvis;
let fake: AnthropicUpstream;
beforeAll(async () => {
  fake = await startAnthropicUpstream();
  jarvis = await startJarvis({
    upstreams: [{ name: 'claude', baseUrl: fake.url, provider: 'anthropic', models: ['claude-x'] }],
    access: {
      keys: [
        { name: 'slow', key: SLOW, rpm: 1 },
        { name: 'narrow', key: NARROW, models: ['jarvis-sim'] },
        { name: 'events', key: EVENTS, scopes: ['events'] },
        { name: 'free', key: EVENTS_FREE },
      ],
    },
    simulator: { tokensPerSec: 2000, ttftMs: 0 },
  });
});
afterAll(async () => {
  await jarvis?.close();
  await fake?.close();
});

const sdk = (apiKey: string) => new Anthropic({ apiKey, baseURL: jarvis.url, maxRetries: 0 });
const ask = (apiKey: string, model = 'jarvis-sim') => sdk(apiKey).messages.create({ model, max_tokens: 16, messages: [{ role: 'user', content: 'Hello' }] });

describe('/v1/messages under a key\'s access rules', () => {
  it('a quota spent is a RateLimitError (429 rate_limit_error) with retry-after, in Anthropic\'s shape', async () => {
    await ask(SLOW);
    const err = await ask(SLOW).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(RateLimitError);
    expect((err as RateLimitError).error).toMatchObject({ type: 'error', error: { type: 'rate_limit_error', message: expect.any(String) } });
    expect((err as RateLimitError).headers.get('retry-after')).toMatch(/^\d+$/);
  });

  it('a model the key may not use is a NotFoundError (404 not_found_error), as one that does not exist', async () => {
    await expect(ask(NARROW)).resolves.toMatchObject({ type: 'message' });
    // claude-x exists (another key gets it); this key may not name it, and nothing reaches the upstream.
    await expect(ask(EVENTS_FREE, 'claude-x')).resolves.toMatchObject({ type: 'message', model: 'claude-x' });
    const before = fake.requests.length;
    const err = await ask(NARROW, 'claude-x').then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(NotFoundError);
    expect((err as NotFoundError).error).toMatchObject({ type: 'error', error: { type: 'not_found_error' } });
    expect(fake.requests.length).toBe(before);
  });

  it('a key without the chat scope is a PermissionDeniedError (403 permission_error)', async () => {
    const err = await ask(EVENTS).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(PermissionDeniedError);
    expect((err as PermissionDeniedError).error).toMatchObject({ type: 'error', error: { type: 'permission_error' } });
  });
});
