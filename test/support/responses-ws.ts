import OpenAI from 'openai';
import { ResponsesWS } from 'openai/resources/responses/ws';
import { orFail } from './chat.js';

// Events as the client reads them; tests look at any field.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type WsEvent = Record<string, any>;

const TERMINAL = new Set(['response.completed', 'response.incomplete', 'response.failed']);

/**
 * The `openai` SDK's ResponsesWS on a Jarvis, with every event it received kept in order, so a test waits for
 * what it expects (an event, a response's end) rather than for time.
 */
export class WsClient {
  readonly ws: ResponsesWS;
  readonly events: WsEvent[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  readonly #waiters = new Set<{ test: (e: WsEvent) => boolean; from: number; resolve: (e: WsEvent) => void }>();

  constructor(url: string, opts: { key?: string; headers?: Record<string, string> } = {}) {
    const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: opts.key ?? 'none', maxRetries: 0 });
    this.ws = new ResponsesWS(client, opts.headers ? { headers: opts.headers } : undefined);
    this.ws.on('event', (e) => {
      this.events.push(e as WsEvent);
      const at = this.events.length - 1;
      for (const w of this.#waiters) {
        if (at >= w.from && w.test(e as WsEvent)) {
          this.#waiters.delete(w);
          w.resolve(e as WsEvent);
        }
      }
    });
    // Error events are in `events` too; the SDK also raises them here, where a test need not listen.
    this.ws.on('error', () => {});
    this.closed = new Promise((resolve) => this.ws.on('close', (code: number, reason: string) => resolve({ code, reason })));
  }

  send(event: WsEvent): void {
    this.ws.send(event as Parameters<ResponsesWS['send']>[0]);
  }

  /** The first event, from index `from` on, for which `test` holds. */
  waitFor(test: (e: WsEvent) => boolean, what: string, from = 0): Promise<WsEvent> {
    const found = this.events.slice(from).find(test);
    if (found) return Promise.resolve(found);
    return orFail(new Promise<WsEvent>((resolve) => this.#waiters.add({ test, from, resolve })), what, 20_000);
  }

  /** The `n`-th event of `type` (0-based) on the lane `streamId` (undefined: the lane without one). */
  nth(type: string, n: number, streamId?: string): Promise<WsEvent> {
    let seen = 0;
    return this.waitFor((e) => e.type === type && e.stream_id === streamId && seen++ === n, `${type} #${n} on lane ${streamId ?? '(none)'}`);
  }

  /** The event that ends response `id`. */
  end(id: string): Promise<WsEvent> {
    return this.waitFor((e) => TERMINAL.has(e.type) && e.response?.id === id, `the end of ${id}`);
  }

  /** Sends a response.create and waits for the response it makes: its `response.created` and its end. */
  async create(body: WsEvent): Promise<{ created: WsEvent; end: WsEvent; response: WsEvent }> {
    const from = this.events.length;
    this.send({ type: 'response.create', ...body });
    const created = await this.waitFor((e) => (e.type === 'response.created' || e.type === 'error') && e.stream_id === body.stream_id, 'response.created', from);
    if (created.type === 'error') throw new Error(`error event: ${JSON.stringify(created)}`);
    const end = await this.end(created.response.id);
    return { created, end, response: end.response };
  }

  /** The text deltas of response `id` the client got, joined. */
  textOf(id: string): string {
    const items = new Set(this.events.filter((e) => e.type === 'response.output_item.added' && e.item?.id?.startsWith('msg_') && this.#owner(e) === id).map((e) => e.item.id));
    return this.events
      .filter((e) => e.type === 'response.output_text.delta' && items.has(e.item_id))
      .map((e) => e.delta as string)
      .join('');
  }

  /** The response an output event belongs to: the last response.created on its lane before it. */
  #owner(e: WsEvent): string | undefined {
    const at = this.events.indexOf(e);
    for (let i = at; i >= 0; i--) {
      const c = this.events[i]!;
      if (c.type === 'response.created' && c.stream_id === e.stream_id) return c.response.id as string;
    }
    return undefined;
  }

  close(): void {
    this.ws.close({ code: 1000, reason: 'done' });
  }
}
