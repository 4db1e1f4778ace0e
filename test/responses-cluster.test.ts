// Stored responses in cluster mode live in Redis: a chain started on one instance is read, continued, truncated
// and deleted on another, and the store keeps no more than its limit.
import OpenAI from 'openai';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { as, deletePrefix, startClusteredJarvis, testPrefix } from './support/access.js';
import type { TestJarvis } from './support/jarvis.js';
import { startOpenAIUpstream, type OpenAIUpstream } from '../fakes/openai/index.js';

const KEY = 'sk-cluster-responses-1';
const prefix = testPrefix();
let up: OpenAIUpstream;
let i1: TestJarvis;
let i2: TestJarvis;

beforeAll(async () => {
  up = await startOpenAIUpstream();
  const opts = { apiKeys: [`ada=${KEY}`], upstreams: [{ name: 'openai', baseUrl: up.url, models: ['gpt-4o-mini'] }], responses: { storeTtlMs: 60_000, maxStored: 3 } };
  [i1, i2] = await Promise.all([startClusteredJarvis(prefix, opts), startClusteredJarvis(prefix, opts)]);
});
afterAll(async () => {
  await Promise.all([i1?.close(), i2?.close()]);
  await up?.close();
  await deletePrefix(prefix);
});

const sdk = (j: TestJarvis) => new OpenAI({ baseURL: `${j.url}/v1`, apiKey: KEY, maxRetries: 0 });

it('a chain started on one instance continues on another', async () => {
  const first = await sdk(i1).responses.create({ model: 'gpt-4o-mini', input: 'My name is Ada.' });
  expect(await sdk(i2).responses.retrieve(first.id)).toEqual(first);
  await sdk(i2).responses.create({ model: 'gpt-4o-mini', input: 'What is my name?', previous_response_id: first.id });
  expect(up.requests.at(-1)!.body.messages).toEqual([
    { role: 'user', content: 'My name is Ada.' },
    { role: 'assistant', content: 'The answer is 42.' },
    { role: 'user', content: 'What is my name?' },
  ]);
  const cut = await fetch(`${i2.url}/v1/responses/${first.id}/truncate`, { method: 'POST', headers: { ...as(KEY), 'content-type': 'application/json' }, body: '{"heard_chars":3}' });
  expect(cut.status).toBe(200);
  expect((await sdk(i1).responses.retrieve(first.id)).output_text).toBe('The');
  await sdk(i1).responses.delete(first.id);
  await expect(sdk(i2).responses.retrieve(first.id)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
});

it('keeps at most responses.maxStored, dropping the oldest', async () => {
  const ids = [];
  for (let i = 0; i < 5; i++) ids.push((await sdk(i1).responses.create({ model: 'gpt-4o-mini', input: `n${i}` })).id);
  const kept = await Promise.all(ids.map((id) => sdk(i2).responses.retrieve(id).then(() => true, () => false)));
  expect(kept).toEqual([false, false, true, true, true]);
});
