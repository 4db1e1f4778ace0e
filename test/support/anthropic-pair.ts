// Jarvis in front of the Anthropic fake (fakes/anthropic), for tests that hold what an OpenAI client sees when
// its model is served by Anthropic's Messages API: the same helpers as faithful.ts, for the other upstream.
import { expect } from 'vitest';
import type { DeepPartial, Config } from '../../src/config.js';
import { startAnthropicUpstream, type AnthropicRequestRecord, type AnthropicUpstream } from '../../fakes/anthropic/index.js';
import { orFail, waitForIdle } from './chat.js';
import { startJarvis, type TestJarvis } from './jarvis.js';

/** The model the tests ask for: one the fake lists, so `models: ['*']` and GET /v1/models agree. */
export const CLAUDE = 'claude-sonnet-5-5';
/** The key Jarvis holds for the fake, which refuses any other. */
export const ANTHROPIC_KEY = 'sk-ant-api03-jarvis';

export interface AnthropicPair {
  fake: AnthropicUpstream;
  jarvis: TestJarvis;
  /** Jarvis's base URL, ending in /v1. */
  through: string;
  close(): Promise<void>;
}

/** The Anthropic fake and a Jarvis whose `claude` upstream (provider anthropic, every model) is that fake. */
export async function startAnthropicPair(upstream: Record<string, unknown> = {}, overrides: DeepPartial<Config> = {}): Promise<AnthropicPair> {
  const fake = await startAnthropicUpstream({ apiKey: ANTHROPIC_KEY });
  const jarvis = await startJarvis({
    upstreams: [{ name: 'claude', baseUrl: fake.url, provider: 'anthropic', apiKey: ANTHROPIC_KEY, models: ['*'], ...upstream }],
    defaultModel: CLAUDE,
    ...overrides,
  });
  return {
    fake,
    jarvis,
    through: `${jarvis.url}/v1`,
    close: async () => {
      await jarvis.close();
      await fake.close();
    },
  };
}

/** The fake's first request whose prompt holds `tag`, once it has arrived: waited for, not slept on. */
export function requestFor(fake: AnthropicUpstream, tag: string): Promise<AnthropicRequestRecord> {
  return orFail(
    (async () => {
      for (;;) {
        const found = fake.requestsFor(tag)[0];
        if (found) return found;
        await new Promise((res) => setTimeout(res, 5));
      }
    })(),
    `the upstream request ${tag}`,
  );
}

/** Waits for the upstream request tagged `tag` to close, checks Jarvis closed it, and that Jarvis then let go of everything. */
export async function expectAnthropicClosed(pair: AnthropicPair, tag: string): Promise<void> {
  const rec = await requestFor(pair.fake, tag);
  await orFail(rec.closed, 'the upstream request closing');
  expect(rec.clientClosed).toBe(true);
  await waitForIdle(pair.jarvis.url);
}
