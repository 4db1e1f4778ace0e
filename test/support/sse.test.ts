// The shared SSE readers read what a client's SSE parser reads, so a test built on them holds Jarvis to that.
import { describe, expect, it } from 'vitest';
import { forEachSseBlock, parseSseBlock, readSse, sseData, sseEvents, SseReader } from './sse.js';

const body = (...pieces: string[]) => new Response(new ReadableStream<Uint8Array>({
  start(c) {
    for (const p of pieces) c.enqueue(new TextEncoder().encode(p));
    c.close();
  },
}));

describe('parseSseBlock', () => {
  it('reads the fields SSE defines, with or without the space, data lines joined, comments and stray lines apart', () => {
    expect(parseSseBlock('id: 7\nevent: chat.token\ndata: {"a":\ndata:1}\n: note\nretry: 5\nbogus line')).toEqual({
      id: '7', event: 'chat.token', data: '{"a":\n1}', retry: '5', comments: [': note'], other: ['bogus line'],
    });
    expect(parseSseBlock(': ping')).toEqual({ comments: [': ping'], other: [] });
    expect(parseSseBlock('data:  two spaces\r\nevent:x\rdata')).toMatchObject({ data: ' two spaces\n', event: 'x' });
  });
});

describe('whole texts', () => {
  it('split at blank lines (any line ending), keep a last unterminated event, and give data in order', () => {
    const text = ': connected\n\ndata: 1\n\r\n\r\nevent: e\ndata: 2\r\rdata: [DONE]';
    expect(sseEvents(text).map((e) => [e.event, e.data, e.comments])).toEqual([[undefined, undefined, [': connected']], [undefined, '1', []], ['e', '2', []], [undefined, '[DONE]', []]]);
    expect(sseData(text)).toEqual(['1', '2', '[DONE]']);
  });

  it('readSse gives the data payloads, with the comments in order when asked', async () => {
    expect(await readSse(body(': ping\n\ndata: {"x":1}\n\ndata: [DONE]\n\n'), { comments: true })).toEqual([': ping', '{"x":1}', '[DONE]']);
    expect(await readSse(body(': ping\n\ndata: {"x":1}\n\ndata: [DONE]\n\n'))).toEqual(['{"x":1}', '[DONE]']);
  });
});

describe('streamed bodies', () => {
  it('forEachSseBlock hands out blocks as they complete, across reads', async () => {
    const blocks: string[] = [];
    await forEachSseBlock(body('data: a\n', '\ndata: b\n\nda', 'ta: c').body!, (b) => blocks.push(b));
    expect(blocks).toEqual(['data: a', 'data: b', 'data: c']);
  });

  it('SseReader reads until a condition holds, then the rest; and says what never came', async () => {
    const reader = new SseReader(body('data: 1\n\n', 'data: 2\n\n', 'data: [DONE]\n\n').body!);
    expect(await reader.until((t) => t.includes('1'))).toBe('data: 1\n\n');
    expect(await reader.rest()).toBe('data: 1\n\ndata: 2\n\ndata: [DONE]\n\n');
    expect(reader.data).toEqual(['1', '2', '[DONE]']);
    await expect(new SseReader(body('data: 1\n\n').body!).until((t) => t.includes('9'), 'a nine')).rejects.toThrow(/ended before a nine/);
  });
});
