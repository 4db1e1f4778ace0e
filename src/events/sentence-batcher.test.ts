import fc from 'fast-check';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { SentenceTransport } from './sentence-batcher.js';
import type { SubscriberTransport } from './subscribers.js';
import type { ChatEvent, ChatEventType, PublishedEvent } from './types.js';

function sink(): SubscriberTransport & { events: ChatEvent[]; closed: boolean } {
  const events: ChatEvent[] = [];
  return { events, closed: false, buffered: 0, send: (p) => void events.push(p.event), ping: () => {}, close() { this.closed = true; } };
}

let id = 0;
function event(type: ChatEventType, data: Record<string, unknown>, request = 'r1'): PublishedEvent {
  const e: ChatEvent = { id: ++id, type, request_id: request, session_id: 's', trace: 't', ts: 0, data };
  return { event: e, owner: null, json: JSON.stringify(e) };
}
const token = (text: string, request = 'r1') => event('chat.token', { text, tokens: 1 }, request);
const texts = (events: ChatEvent[]) => events.filter((e) => e.type === 'chat.token').map((e) => e.data.text as string);

afterEach(() => {
  vi.useRealTimers();
});

describe('SentenceTransport', () => {
  it('sends whole sentences, keeps the unfinished rest, and sends it before the end', () => {
    const out = sink();
    const t = new SentenceTransport(out);
    for (const s of ['Hello', ' there. How', ' are you? I am', ' fine']) t.send(token(s));
    expect(texts(out.events)).toEqual(['Hello there. ', 'How are you? ']);
    t.send(event('chat.end', {}));
    expect(texts(out.events)).toEqual(['Hello there. ', 'How are you? ', 'I am fine']);
    expect(out.events.at(-1)!.type).toBe('chat.end');
    expect(t.held).toBe(0);
  });

  it('waits at a full stop with nothing after it (3.14 is one number)', () => {
    const out = sink();
    const t = new SentenceTransport(out);
    t.send(token('Pi is 3.'));
    t.send(token('14. Next'));
    expect(texts(out.events)).toEqual(['Pi is 3.14. ']);
  });

  it('sends what it holds after the maximum wait, and frees its timer when the subscriber goes', () => {
    vi.useFakeTimers();
    const out = sink();
    const t = new SentenceTransport(out, { maxWaitMs: 500 });
    t.send(token('A sentence that never'));
    vi.advanceTimersByTime(499);
    expect(texts(out.events)).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(texts(out.events)).toEqual(['A sentence that never']);
    t.send(token(' ends'));
    t.close('client_disconnected');
    expect(vi.getTimerCount()).toBe(0);
  });

  it('cuts a sentence past the length bound at a space, never inside a character', () => {
    const out = sink();
    const t = new SentenceTransport(out, { maxChars: 10 });
    t.send(token('aaaa bbbb cccc dddd'));
    expect(texts(out.events)).toEqual(['aaaa bbbb ']);
    const emoji = sink();
    const e = new SentenceTransport(emoji, { maxChars: 5 });
    e.send(token('abcd😀😀'));
    const sent = texts(emoji.events);
    expect(sent[0]).toBe('abcd');
    expect(sent.join('')).not.toMatch(/[\ud800-\udbff]$/);
  });

  it('keeps streams apart', () => {
    const out = sink();
    const t = new SentenceTransport(out);
    t.send(token('One', 'a'));
    t.send(token('Two. ', 'b'));
    t.send(token(' more.\n', 'a'));
    expect(out.events.filter((e) => e.type === 'chat.token').map((e) => [e.request_id, e.data.text])).toEqual([
      ['b', 'Two. '],
      ['a', 'One more.\n'],
    ]);
  });

  it('property: the sentences make the text, each ends a sentence unless the bound or the end forced it', () => {
    const piece = fc.constantFrom('Hello', ' world', '.', ' ', '!', '?', 'é', '😀', '\n', 'x', '3.', '14', '…', '"');
    fc.assert(
      fc.property(fc.array(fc.array(piece, { minLength: 1, maxLength: 4 }).map((p) => p.join('')), { maxLength: 60 }), fc.constantFrom('chat.end', 'chat.cancelled', 'chat.error'), (tokens, last) => {
        const out = sink();
        const t = new SentenceTransport(out, { maxChars: 40 });
        for (const s of tokens) t.send(token(s));
        t.send(event(last as ChatEventType, {}));
        const sent = texts(out.events);
        expect(sent.join('')).toBe(tokens.join(''));
        sent.slice(0, -1).forEach((s) => {
          const sentenceEnd = /(?:[.!?…。！？]+["'”’)\]]*\s+|\n+)$/.test(s);
          expect(sentenceEnd || s.length >= 40 - 1 || s.endsWith(' ')).toBe(true);
          expect(s).not.toMatch(/[\ud800-\udbff]$/);
        });
        expect(out.events.at(-1)!.type).toBe(last);
        expect(t.held).toBe(0);
      }),
      { seed: 20261201, numRuns: 300 },
    );
  });
});
