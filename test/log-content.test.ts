// Conversations stay out of the logs unless the operator opts in with JARVIS_LOG_CONTENT=1.
import { afterEach, expect, it } from 'vitest';
import { LOG_CONTENT_CHARS } from '../src/observability/content-excerpt.js';
import { chunksOf, postChat, textOf, user } from './support/chat.js';
import { startJarvis, type TestJarvis } from './support/jarvis.js';
import { readSse } from './support/sse.js';

// Distinctive words: the simulator builds its answer's topic from them, so the answer carries them too.
const PROMPT = 'Tell me about quixotic zephyrhounds';
const MARKER = /quixotic|zephyrhounds/i;

let jarvis: TestJarvis | undefined;
afterEach(async () => {
  await jarvis?.close();
  jarvis = undefined;
});

async function converse(j: TestJarvis, prompt: string, stream: boolean) {
  const res = await postChat(j.url, { messages: [{ role: 'system', content: 'Be brief.' }, ...user(prompt)], stream });
  expect(res.status).toBe(200);
  const answer = stream ? textOf(chunksOf(await readSse(res))) : ((await res.json()) as { choices: { message: { content: string } }[] }).choices[0]!.message.content;
  return { answer, requestId: res.headers.get('x-request-id')! };
}

it('by default, no log line holds the prompt or the answer', async () => {
  jarvis = await startJarvis({ simulator: { tokensPerSec: 2000, ttftMs: 0 } });
  const answers = [await converse(jarvis, PROMPT, true), await converse(jarvis, PROMPT, false)];
  for (const { answer } of answers) expect(answer).toMatch(MARKER);
  const log = await jarvis.waitForLog((l) => answers.every(({ requestId }) => new RegExp(`stream_end .*stream_id=${requestId}`).test(l)));
  expect(log).not.toMatch(MARKER);
  // Not even in pieces: no sentence of the answer appears either.
  for (const sentence of answers[0]!.answer.split('. ').filter((s) => s.trim())) expect(log).not.toContain(sentence.trim());
  expect(log).not.toMatch(/ (prompt|completion)=/);
});

it('with JARVIS_LOG_CONTENT=1, stream_start has the last user message and stream_end the answer, cut short', async () => {
  jarvis = await startJarvis({ simulator: { tokensPerSec: 5000, ttftMs: 0 }, logContent: true });
  const { answer, requestId } = await converse(jarvis, PROMPT, true);
  const log = await jarvis.waitForLog((l) => new RegExp(`stream_end .*stream_id=${requestId}`).test(l));
  const field = (event: string, name: string) => {
    const line = log.split('\n').find((l) => l.includes(` ${event} `) && l.includes(requestId))!;
    const m = new RegExp(` ${name}=("(?:[^"\\\\]|\\\\.)*"|\\S*)`).exec(line);
    return m ? (m[1]!.startsWith('"') ? (JSON.parse(m[1]!) as string) : m[1]!) : undefined;
  };
  expect(field('stream_start', 'prompt')).toBe(PROMPT);
  expect(field('stream_end', 'completion')).toBe(answer);

  // A long essay's answer and a long prompt are cut to LOG_CONTENT_CHARS, marked with "…".
  const longPrompt = `Long essay ${'about many things '.repeat(200)}`;
  const long = await converse(jarvis, longPrompt, true);
  expect(long.answer.length).toBeGreaterThan(LOG_CONTENT_CHARS);
  const longLog = await jarvis.waitForLog((l) => new RegExp(`stream_end .*stream_id=${long.requestId}`).test(l));
  const line = (event: string) => longLog.split('\n').find((l) => l.includes(` ${event} `) && l.includes(long.requestId))!;
  const value = (event: string, name: string) => JSON.parse(new RegExp(` ${name}=("(?:[^"\\\\]|\\\\.)*")`).exec(line(event))![1]!) as string;
  expect(value('stream_start', 'prompt')).toBe(`${longPrompt.slice(0, LOG_CONTENT_CHARS)}…`);
  expect(value('stream_end', 'completion')).toBe(`${long.answer.slice(0, LOG_CONTENT_CHARS)}…`);
});
