// Two ways to the same OpenAI-shaped upstream, for tests that hold a client library's behaviour through Jarvis to
// its behaviour talking to the upstream directly.
import { expect } from 'vitest';
import { orFail, waitForIdle } from './chat.js';
import { startJarvis, type TestJarvis } from './jarvis.js';
import { startOpenAIUpstream, type OpenAIUpstream } from '../../fakes/openai/index.js';

export interface Pair {
  up: OpenAIUpstream;
  jarvis: TestJarvis;
  /** Base URLs ending in /v1: the upstream itself, and Jarvis in front of it. */
  routes: { direct: string; through: string };
  close(): Promise<void>;
}

/**
 * Waits for the upstream request tagged `tag` to close, and checks that it was Jarvis that closed it (a client
 * abort reaching the upstream) and that Jarvis then released everything.
 */
export async function expectUpstreamClosed(pair: Pair, tag: string): Promise<void> {
  const rec = await orFail(
    (async () => {
      for (;;) {
        const found = pair.up.requestsFor(tag)[0];
        if (found) return found;
        await new Promise((res) => setTimeout(res, 5));
      }
    })(),
    `the upstream request ${tag}`,
  );
  await orFail(rec.closed, 'the upstream request closing');
  expect(rec.clientClosed).toBe(true);
  await waitForIdle(pair.jarvis.url);
}

export async function startPair(): Promise<Pair> {
  const up = await startOpenAIUpstream();
  const jarvis = await startJarvis({ upstreams: [{ name: 'openai', baseUrl: up.url, models: ['*'] }], defaultModel: 'gpt-4o-mini' });
  return {
    up,
    jarvis,
    routes: { direct: up.url, through: `${jarvis.url}/v1` },
    close: async () => {
      await jarvis.close();
      await up.close();
    },
  };
}

let tags = 0;
/** A tag unique to one call of one test, to count the upstream requests it caused (retries included). */
export const tag = () => `#t${++tags}-${process.pid}`;

/** Runs `fn` and returns how it failed: its error's class name and the fields a caller acts on. */
export async function failure(fn: () => Promise<unknown>, pick: (err: Record<string, unknown>) => Record<string, unknown>): Promise<{ name: string; [field: string]: unknown }> {
  try {
    await fn();
  } catch (err) {
    return { name: (err as Error).constructor.name, ...pick(err as Record<string, unknown>) };
  }
  return { name: 'no error' };
}

export const WEATHER_TOOL = {
  type: 'function' as const,
  function: {
    name: 'get_weather',
    description: 'The weather in a city',
    parameters: { type: 'object', properties: { location: { type: 'string' } }, required: ['location'] },
  },
};
