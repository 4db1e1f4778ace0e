import OpenAI from 'openai';
import { OpenAIRealtimeWS } from 'openai/realtime/ws';
import { orFail } from './chat.js';

// Events as the client reads them; tests look at any field.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type RtEvent = Record<string, any>;

/**
 * The `openai` SDK's GA Realtime client (OpenAIRealtimeWS) on a Jarvis over TLS, trusting the test's certificate,
 * with every event kept in order so a test waits for what it expects rather than for time.
 */
export class RtClient {
  readonly rt: OpenAIRealtimeWS;
  readonly events: RtEvent[] = [];
  readonly opened: Promise<void>;
  readonly closed: Promise<{ code: number; reason: string }>;
  readonly #waiters = new Set<{ test: (e: RtEvent) => boolean; from: number; resolve: (e: RtEvent) => void }>();

  constructor(url: string, opts: { key?: string; model?: string; ca: string; headers?: Record<string, string> }) {
    const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: opts.key ?? 'none', maxRetries: 0 });
    this.rt = new OpenAIRealtimeWS({ model: opts.model ?? 'jarvis-sim', options: { ca: opts.ca, ...(opts.headers ? { headers: opts.headers } : {}) } }, client);
    this.rt.on('event', (e) => this.#push(e as RtEvent));
    // Error events are in `events` too; the SDK also raises them here.
    this.rt.on('error', () => {});
    this.opened = new Promise((resolve, reject) => {
      this.rt.socket.once('open', () => resolve());
      this.rt.socket.once('error', reject);
    });
    this.closed = new Promise((resolve) => this.rt.socket.once('close', (code: number, reason: Buffer) => resolve({ code, reason: reason.toString() })));
  }

  #push(e: RtEvent): void {
    this.events.push(e);
    const at = this.events.length - 1;
    for (const w of this.#waiters) {
      if (at >= w.from && w.test(e)) {
        this.#waiters.delete(w);
        w.resolve(e);
      }
    }
  }

  send(event: RtEvent): void {
    this.rt.send(event as Parameters<OpenAIRealtimeWS['send']>[0]);
  }

  waitFor(test: (e: RtEvent) => boolean, what: string, from = 0): Promise<RtEvent> {
    const found = this.events.slice(from).find(test);
    if (found) return Promise.resolve(found);
    return orFail(new Promise<RtEvent>((resolve) => this.#waiters.add({ test, from, resolve })), what, 20_000);
  }

  /** The next event of `type` from now on. */
  next(type: string): Promise<RtEvent> {
    return this.waitFor((e) => e.type === type, type, this.events.length);
  }

  /** Adds a user message to the conversation. */
  say(text: string): void {
    this.send({ type: 'conversation.item.create', item: { type: 'message', role: 'user', content: [{ type: 'input_text', text }] } });
  }

  /** Asks for a response and waits for its response.done. */
  async respond(response: RtEvent = {}): Promise<RtEvent> {
    const from = this.events.length;
    this.send({ type: 'response.create', response });
    const created = await this.waitFor((e) => e.type === 'response.created' || e.type === 'error', 'response.created', from);
    if (created.type === 'error') throw new Error(`error event: ${JSON.stringify(created.error)}`);
    const done = await this.waitFor((e) => e.type === 'response.done' && e.response.id === created.response.id, 'response.done', from);
    return done.response as RtEvent;
  }

  /** The text deltas of response `id`, joined. */
  textOf(id: string): string {
    return this.events
      .filter((e) => e.type === 'response.output_text.delta' && e.response_id === id)
      .map((e) => e.delta as string)
      .join('');
  }

  close(): void {
    this.rt.close({ code: 1000, reason: 'done' });
  }
}
