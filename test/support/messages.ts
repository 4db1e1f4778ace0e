// Helpers for the tests of Jarvis's Messages API (POST /v1/messages): raw requests read whole or event by event,
// Anthropic's SSE framing checked, and a subscriber to the event bus (/v1/events) to wait on what it publishes.
import type Anthropic from '@anthropic-ai/sdk';
import type { MessageStream } from '@anthropic-ai/sdk/lib/MessageStream';
import { expect } from 'vitest';
import { forEachSseBlock, parseSseBlock } from './sse.js';

export type Json = Record<string, unknown>;

/**
 * Aborts `stream` (made with `controller`'s signal) at its first text, and reads it to its end: what the SDK threw
 * and how many texts it had handed over (those that arrived in the same read as the first may still be).
 */
export async function abortAtFirstText(stream: MessageStream, controller: AbortController): Promise<{ error: unknown; texts: number }> {
  let texts = 0;
  stream.on('text', () => {
    texts++;
    controller.abort();
  });
  const error = await stream.finalMessage().then(
    () => undefined,
    (e: unknown) => e,
  );
  return { error, texts };
}
type Message = Anthropic.Message;
type MessageStreamEvent = Anthropic.MessageStreamEvent;

/** A raw POST to an Anthropic-shaped origin (Jarvis or the fake): status, headers and the body's exact text. */
export async function postMessages(origin: string, body: unknown, headers: Record<string, string> = {}, path = '/v1/messages'): Promise<{ status: number; headers: Headers; text: string }> {
  const res = await fetch(`${origin}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'anthropic-version': '2026-10-21', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

/** The events of a Messages stream's text, each checked for Anthropic's framing: `event:` names the data's type. */
export function eventsOf(text: string): Json[] {
  const frames = text.split('\n\n');
  expect(frames.pop(), 'the stream ends with a complete event').toBe('');
  return frames.map((frame) => {
    const m = /^event: ([a-z_]+)\ndata: (.*)$/.exec(frame);
    expect(m, frame).not.toBeNull();
    const data = JSON.parse(m![2]!) as Json;
    expect(data.type).toBe(m![1]);
    return data;
  });
}

/** Where two texts first differ, with a little of each around it: for a failure message that says what changed. */
export function firstDifference(a: string, b: string): string {
  if (a === b) return 'identical';
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  const around = (s: string) => JSON.stringify(s.slice(Math.max(0, i - 60), i + 60));
  return `differ at byte ${i} (lengths ${a.length} and ${b.length}):\n  ${around(a)}\n  ${around(b)}`;
}

export interface BusEvent {
  id: number;
  type: string;
  request_id: string;
  session_id: string;
  data: Json;
}

/** An SSE subscriber to one session's /v1/events, which a test waits on by condition, never by time. */
export class BusSubscriber {
  readonly events: BusEvent[] = [];
  readonly connected: Promise<void>;
  readonly #controller = new AbortController();
  readonly #done: Promise<void>;
  #waiters: Array<() => boolean> = [];
  #over = false;

  constructor(url: string, sessionId: string, headers: Record<string, string> = {}) {
    let connected!: () => void;
    this.connected = new Promise<void>((resolve) => (connected = resolve));
    this.#done = (async () => {
      try {
        const res = await fetch(`${url}/v1/events?session_id=${encodeURIComponent(sessionId)}`, { headers, signal: this.#controller.signal });
        if (res.status !== 200) throw new Error(`events answered ${res.status}`);
        await forEachSseBlock(res.body!, (block) => {
          const { comments, id, data } = parseSseBlock(block);
          // ": connected" comes once the subscription is in place: from then on nothing is missed.
          if (comments.includes(': connected')) connected();
          if (id !== undefined && data) this.events.push(JSON.parse(data) as BusEvent);
          this.#wake();
        });
      } catch (err) {
        if (!this.#controller.signal.aborted) throw err;
      } finally {
        this.#over = true;
        this.#wake();
      }
    })();
    this.#done.catch(() => {});
  }

  #wake(): void {
    this.#waiters = this.#waiters.filter((check) => !check());
  }

  /** Resolves with the first event that `pred` accepts, once it has arrived. */
  until(pred: (e: BusEvent) => boolean, what: string): Promise<BusEvent> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const found = this.events.find(pred);
        if (found) resolve(found);
        else if (this.#over) reject(new Error(`events ended before ${what}`));
        else return false;
        return true;
      };
      if (!check()) this.#waiters.push(check);
    });
  }

  async close(): Promise<void> {
    this.#controller.abort();
    await this.#done;
  }
}

export interface BargeIn {
  /** The first stream's events, the Message the SDK assembled from them, its text and its x-request-id. */
  a: { events: MessageStreamEvent[]; message: Message; text: string; requestId: string | null };
  /** The second: its Message and x-request-id. */
  b: { message: Message; requestId: string | null };
}

/**
 * Two streamed requests in one session, driven by the Anthropic SDK: A, and B sent in A's session once A has sent
 * an event `trigger` accepts (default: its first text), so B arrives while A is mid-answer. Resolves when both
 * are over; A's stream must end without an error, as an interrupted stream does.
 */
export async function bargeIn(
  sdk: Anthropic,
  session: string,
  a: Anthropic.MessageCreateParamsNonStreaming,
  b: Anthropic.MessageCreateParamsNonStreaming,
  trigger: (e: MessageStreamEvent) => boolean = (e) => e.type === 'content_block_delta' && e.delta.type === 'text_delta',
): Promise<BargeIn> {
  const headers = { 'X-Session-Id': session };
  const streamA = sdk.messages.stream(a, { headers });
  const events: MessageStreamEvent[] = [];
  let text = '';
  let second: Promise<BargeIn['b']> | undefined;
  streamA.on('text', (delta) => (text += delta));
  streamA.on('streamEvent', (e) => {
    events.push(e);
    if (second || !trigger(e)) return;
    second = (async () => {
      const streamB = sdk.messages.stream(b, { headers });
      const { response } = await streamB.withResponse();
      return { message: await streamB.finalMessage(), requestId: response.headers.get('x-request-id') };
    })();
    second.catch(() => {});
  });
  const { response } = await streamA.withResponse();
  const message = await streamA.finalMessage();
  if (!second) throw new Error('A ended before it sent the event that sends B');
  return { a: { events, message, text, requestId: response.headers.get('x-request-id') }, b: await second };
}

/** What every Messages stream must be: message_start with input usage, blocks opened and stopped in order, the end. */
export function expectWellFormed(events: MessageStreamEvent[]): void {
  const types = events.map((e) => e.type);
  expect(types[0]).toBe('message_start');
  expect(types.slice(-2)).toEqual(['message_delta', 'message_stop']);
  expect((events[0] as Anthropic.RawMessageStartEvent).message.usage.input_tokens).toBeGreaterThan(0);
  let open = -1;
  let next = 0;
  for (const e of events.slice(1, -2)) {
    if (e.type === 'content_block_start') {
      expect(open, 'a block starts only after the one before it stopped').toBe(-1);
      expect(e.index).toBe(next++);
      open = e.index;
    } else if (e.type === 'content_block_delta') expect(e.index).toBe(open);
    else if (e.type === 'content_block_stop') {
      expect(e.index).toBe(open);
      open = -1;
    }
  }
  expect(open, 'every block stopped before message_delta').toBe(-1);
}
