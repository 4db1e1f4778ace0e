import { expect, it } from 'vitest';
import { CHAT_STREAM, MESSAGES_STREAM, RESPONSES_STREAM, StreamScanner, type WirePatterns } from './sse-scan.js';

const frame = (event: string, data: object) => `event: ${event}\ndata: ${JSON.stringify({ type: event, ...data })}\n\n`;

/** A Responses stream as Jarvis writes it: two tokens, then the terminal event (whose Response repeats the text). */
const RESPONSES =
  frame('response.created', { sequence_number: 0, response: { status: 'in_progress', output: [] } }) +
  frame('response.in_progress', { sequence_number: 1, response: { status: 'in_progress', output: [] } }) +
  frame('response.output_item.added', { sequence_number: 2, output_index: 0, item: { type: 'message', status: 'in_progress', content: [] } }) +
  frame('response.content_part.added', { sequence_number: 3, part: { type: 'output_text', text: '' } }) +
  frame('response.output_text.delta', { sequence_number: 4, delta: 'tok0 ', logprobs: [] }) +
  frame('response.output_text.delta', { sequence_number: 5, delta: 'tok1 ', logprobs: [] }) +
  frame('response.output_text.done', { sequence_number: 6, text: 'tok0 tok1 ' }) +
  frame('response.content_part.done', { sequence_number: 7, part: { type: 'output_text', text: 'tok0 tok1 ' } }) +
  frame('response.output_item.done', { sequence_number: 8, item: { type: 'message', status: 'completed' } }) +
  frame('response.completed', { sequence_number: 9, response: { status: 'completed', output: [{ content: [{ type: 'output_text', text: 'tok0 tok1 ' }] }] } });

/** Feeds `text` in pieces cut at `cuts`, as network chunks arrive. */
function scan(patterns: WirePatterns, text: string, cuts: number[]): StreamScanner {
  const s = new StreamScanner(patterns);
  let at = 0;
  for (const cut of [...cuts, text.length]) {
    s.feed(Buffer.from(text.slice(at, cut), 'latin1'));
    at = cut;
  }
  return s;
}

it('counts a Responses stream’s output_text.delta events as its tokens and ends at response.completed, however it is cut', () => {
  for (let cut = 0; cut <= RESPONSES.length; cut++) {
    const s = scan(RESPONSES_STREAM, RESPONSES, [cut]);
    expect([s.tokens, s.frames, s.done, s.error, s.finishReason], `cut at ${cut}`).toEqual([2, 10, true, false, 'completed']);
  }
  const cutShort = scan(RESPONSES_STREAM, RESPONSES.slice(0, RESPONSES.indexOf('event: response.completed')), []);
  expect([cutShort.tokens, cutShort.done]).toEqual([2, false]);
});

it('takes a max_output_tokens cut as a whole stream, and a failed response as an error', () => {
  const incomplete = scan(RESPONSES_STREAM, RESPONSES.replace(/response\.completed/g, 'response.incomplete'), []);
  expect([incomplete.done, incomplete.finishReason, incomplete.error]).toEqual([true, 'incomplete', false]);
  const failed = scan(RESPONSES_STREAM, RESPONSES.replace(/response\.completed/g, 'response.failed'), []);
  expect([failed.done, failed.error]).toEqual([false, true]);
  expect(scan(RESPONSES_STREAM, `${frame('error', { code: 'x' })}`, []).error).toBe(true);
});

it('counts no Responses token in a chat or Messages stream, nor theirs in a Responses stream', () => {
  expect(scan(CHAT_STREAM, RESPONSES, []).tokens).toBe(0);
  expect(scan(MESSAGES_STREAM, RESPONSES, []).tokens).toBe(0);
  const chat = 'data: {"choices":[{"delta":{"content":"tok0 "}}]}\n\ndata: [DONE]\n\n';
  expect(scan(RESPONSES_STREAM, chat, []).tokens).toBe(0);
});
