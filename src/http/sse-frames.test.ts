import { describe, expect, it } from 'vitest';
import { sseEvents } from '../../test/support/sse.js';
import { eventFrame } from './sse-frames.js';

/** The events a client's SSE parser reads from `text`: each block's event name and its data lines joined. */
const parse = (text: string) => sseEvents(text).map(({ event, data }) => ({ event, data: data ?? '' }));

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
