import { describe, expect, it } from 'vitest';
import { JarvisError } from '../../errors.js';
import type { Delta } from '../provider.js';
import { readDeltas } from '../../../test/support/delta-reads.js';

const chunk = (choice: object | null, extra: object = {}) =>
  `data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', choices: choice ? [{ index: 0, ...choice }] : [], ...extra })}\n\n`;
const token = (content: string) => chunk({ delta: { content }, finish_reason: null });
const ROLE = chunk({ delta: { role: 'assistant', content: '' }, finish_reason: null });
const STOP = chunk({ delta: {}, finish_reason: 'stop' });
const USAGE = chunk(null, { usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 } });
const DONE = 'data: [DONE]\n\n';

const body = (...parts: (string | Buffer)[]): Buffer[] => parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : p));

const streamError = expect.objectContaining({ name: 'JarvisError', code: 'upstream_stream_error', status: 502 });
/** Choice 0's text of each delta that has some. */
const texts = (deltas: Delta[]) => deltas.filter((d) => d.text !== '').map((d) => d.text);
/** What a client would get: each chunk's data as it was sent. */
const data = (...frames: string[]) => frames.map((f) => f.slice(6, -2));

describe('DeltaReader', () => {
  it('turns a well-formed stream into one delta per chunk, each with its data as sent, its text and its finish_reason', () => {
    const { deltas, error } = readDeltas(body(ROLE, token('Hel'), token('lo'), STOP, USAGE, DONE));
    expect(error).toBeUndefined();
    expect(deltas.map((d) => d.data)).toEqual(data(ROLE, token('Hel'), token('lo'), STOP, USAGE));
    expect(deltas.map((d) => d.text)).toEqual(['', 'Hel', 'lo', '', '']);
    expect(deltas.map((d) => d.finish)).toEqual([undefined, undefined, undefined, 'stop', undefined]);
    expect(deltas[4]!.chunk).toMatchObject({ usage: { total_tokens: 5 } });
  });

  it('follows choice 0 only: other choices are relayed, not counted', () => {
    const other = `data: ${JSON.stringify({ choices: [{ index: 1, delta: { content: 'B' }, finish_reason: 'stop' }] })}\n\n`;
    const { deltas } = readDeltas(body(token('A'), other, DONE));
    expect(deltas.map((d) => [d.text, d.finish])).toEqual([['A', undefined], ['', undefined]]);
  });

  it('reassembles events and UTF-8 characters split across network reads', () => {
    const wire = Buffer.from(ROLE + token('héllo ✓') + token('🙂') + STOP + DONE);
    const bytes = [...wire].map((b) => Buffer.from([b]));
    const { deltas, error } = readDeltas(body(...bytes));
    expect(error).toBeUndefined();
    expect(texts(deltas)).toEqual(['héllo ✓', '🙂']);
  });

  it('ignores a byte order mark at the start of the stream, even split across reads, and only there', () => {
    const bom = Buffer.from([0xef, 0xbb, 0xbf]);
    const first = Buffer.from(token('a'));
    const { deltas, error } = readDeltas(body(bom.subarray(0, 1), Buffer.concat([bom.subarray(1), first.subarray(0, 5)]), first.subarray(5), token('\ufeffb'), STOP, DONE));
    expect(error).toBeUndefined();
    expect(texts(deltas)).toEqual(['a', '\ufeffb']);
  });

  it('accepts CRLF line endings and comment lines', () => {
    const { deltas, error } = readDeltas(body(': keep-alive\r\n\r\n', token('a').replaceAll('\n', '\r\n'), STOP, DONE));
    expect(error).toBeUndefined();
    expect(texts(deltas)).toEqual(['a']);
  });

  it('relays non-text chunks (tool calls) as they are', () => {
    const toolCall = { tool_calls: [{ index: 0, id: 'call_1', type: 'function', function: { name: 'f', arguments: '{}' } }] };
    const frames = [chunk({ delta: { role: 'assistant', content: null, ...toolCall }, finish_reason: null }), chunk({ delta: {}, finish_reason: 'tool_calls' })];
    const { deltas } = readDeltas(body(...frames, DONE));
    expect(deltas.map((d) => d.data)).toEqual(data(...frames));
    expect(deltas.map((d) => d.finish)).toEqual([undefined, 'tool_calls']);
  });

  it('ends at [DONE] and ignores anything after it', () => {
    const { deltas, error } = readDeltas(body(token('a') + DONE + token('late') + 'data: {broken\n\n'));
    expect(error).toBeUndefined();
    expect(texts(deltas)).toEqual(['a']);
    expect(deltas).toHaveLength(1);
  });

  it('fails on a malformed event, after the deltas before it', () => {
    const { deltas, error } = readDeltas(body(token('a'), 'data: {not json\n\n', token('b'), DONE));
    expect(texts(deltas)).toEqual(['a']);
    expect(error).toBeInstanceOf(JarvisError);
    expect(error).toEqual(streamError);
  });

  it("fails on an error event with the upstream's own error, carrying the event as it was sent", () => {
    const event = '{"error":{"message":"overloaded","type":"server_error","code":"busy"}}';
    const { deltas, error } = readDeltas(body(token('a'), `data: ${event}\n\n`, DONE));
    expect(texts(deltas)).toEqual(['a']);
    expect(error).toMatchObject({ jarvisCode: 'JARVIS_ERR_UPSTREAM_REPORTED', status: 500, type: 'server_error', code: 'busy', message: 'overloaded', event });
  });

  it('fails when the body ends without [DONE], even after a finish_reason', () => {
    const { deltas, error } = readDeltas(body(token('a'), STOP));
    expect(deltas.map((d) => [d.text, d.finish])).toEqual([['a', undefined], ['', 'stop']]);
    expect(error).toEqual(streamError);
    expect((error as Error).message).toMatch(/\[DONE\]/);
  });

  it('fails on an empty body', () => {
    expect(readDeltas(body()).error).toEqual(streamError);
  });
});
