import { describe, expect, it } from 'vitest';
import { eventFrame } from './sse-frames.js';

/** The events a client's SSE parser reads from `text`: each block's event name and its data lines joined. */
function parse(text: string): { event: string | undefined; data: string }[] {
  const out: { event: string | undefined; data: string }[] = [];
  for (const block of text.split('\n\n')) {
    if (block === '') continue;
    let event: string | undefined;
    const data: string[] = [];
    for (const line of block.split(/\r\n|\r|\n/)) {
      if (line.startsWith('event: ')) event = line.slice(7);
      else if (line.startsWith('data: ')) data.push(line.slice(6));
    }
    out.push({ event, data: data.join('\n') });
  }
  return out;
}

describe('eventFrame', () => {
  it('is one event whose data reads back as given, a line of data a data: line', () => {
    expect(eventFrame('response.created', '{"a":1}')).toBe('event: response.created\ndata: {"a":1}\n\n');
    const pretty = JSON.stringify({ type: 'response.created', response: { id: 'r', output: [] } }, null, 2);
    const frame = eventFrame('response.created', pretty);
    expect(frame.split('\n').filter((l) => l !== '').every((l) => l.startsWith('event: ') || l.startsWith('data: '))).toBe(true);
    expect(parse(frame)).toEqual([{ event: 'response.created', data: pretty }]);
  });

  it('keeps an event name with line breaks in it (an upstream\'s) from splitting the event or forging another', () => {
    const frame = eventFrame('x\n\ndata: {"forged":true}\n\nevent: y\rz', '{"a":1}');
    expect(parse(frame)).toEqual([{ event: expect.not.stringMatching(/[\r\n]/), data: '{"a":1}' }]);
  });
});
