import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { WebSocket } from 'ws';
import type { JarvisContext } from '../../context.js';
import { JarvisError } from '../../errors.js';
import { SubscriberSlots, type SubscriberSlot } from '../../events/subscriber-slots.js';
import { SentenceTransport } from '../../events/sentence-batcher.js';
import { BoundedSubscriber, type SubscriberTransport } from '../../events/subscribers.js';
import type { EventFilter } from '../../events/types.js';
import { SESSION_ID } from '../chat-request.js';
import { watchClientGone } from '../client-gone.js';
import { commentFrame, eventFrame, PING_FRAME } from '../sse-frames.js';
import { SSE_HEADERS } from '../sse-writer.js';
import { CoalescedWrites } from '../coalesced-writes.js';
import { checkUpgrade, holdSlot } from '../ws-upgrade.js';

interface EventsQuery {
  session_id?: string;
  batch?: 'sentence' | 'default';
  since?: string;
  last_event_id?: string;
}

const querySchema = {
  type: 'object',
  properties: {
    session_id: { type: 'string', pattern: SESSION_ID.source },
    batch: { type: 'string', enum: ['sentence', 'default'] },
    since: { type: 'string', pattern: '^\\d{1,20}$' },
    last_event_id: { type: 'string', pattern: '^\\d{1,20}$' },
  },
} as const;

function filterOf(request: FastifyRequest<{ Querystring: EventsQuery }>): EventFilter {
  // With API keys, a key sees only the sessions it created; without keys, everything.
  return { sessionId: request.query.session_id, owner: request.apiKey ? request.apiKey.id : undefined };
}

function afterIdOf(...candidates: (string | string[] | undefined)[]): number | undefined {
  for (const c of candidates) {
    const v = Array.isArray(c) ? c[0] : c;
    if (v === undefined || v === '') continue;
    if (!/^\d{1,20}$/.test(v)) throw new JarvisError('JARVIS_ERR_INVALID_REQUEST', 'Last-Event-ID must be an event id.', { param: 'Last-Event-ID' });
    return Number(v);
  }
  return undefined;
}

/**
 * GET /v1/events: the conversation as events, over SSE or (same path, Upgrade) WebSocket, live and replayed
 * from `Last-Event-ID` / `since`.
 */
export function eventsRoute(app: FastifyInstance, ctx: JarvisContext): void {
  const open = new Set<BoundedSubscriber>();
  const slots = new SubscriberSlots({ max: ctx.config.events.maxSubscribers, perKey: ctx.config.events.maxSubscribersPerKey });
  const held = new WeakMap<FastifyRequest, SubscriberSlot>();
  const subscriber = (request: FastifyRequest<{ Querystring: EventsQuery }>, raw: SubscriberTransport) => {
    const slot = held.get(request);
    // A speech engine asks for whole sentences; everyone else gets the batches as they are published.
    const transport = request.query.batch === 'sentence' ? new SentenceTransport(raw) : raw;
    const sub: BoundedSubscriber = new BoundedSubscriber(filterOf(request), transport, {
      maxBufferedBytes: ctx.config.events.maxSubscriberBufferBytes,
      log: ctx.log,
      onDrop: (reason) => ctx.metrics.subscriberDropped(reason),
      onClose: () => {
        open.delete(sub);
        ctx.heartbeat.delete(sub);
        slot?.release();
      },
    });
    open.add(sub);
    ctx.heartbeat.add(sub);
    return sub;
  };
  // Subscribers never end on their own; shutdown has to end them or the server would wait for them forever.
  app.addHook('preClose', async () => {
    for (const sub of [...open]) sub.close('shutdown');
  });

  app.route<{ Querystring: EventsQuery }>({
    method: 'GET',
    url: '/v1/events',
    schema: { querystring: querySchema },
    // Before the handler, and so before a WebSocket upgrade: a refused subscriber gets an HTTP answer.
    preHandler: async (request) => {
      checkUpgrade(request);
      held.set(request, holdSlot(slots, request));
    },
    handler: async (request: FastifyRequest<{ Querystring: EventsQuery }>, reply: FastifyReply) => {
      const afterId = afterIdOf(request.headers['last-event-id'], request.query.last_event_id, request.query.since);
      const res = reply.raw;
      reply.hijack();
      res.writeHead(200, { ...SSE_HEADERS, 'x-request-id': request.id });
      res.write(commentFrame('connected'));
      const gone = () => sub.close('client_disconnected');
      // Set once watching starts; a client gone already is closed from within watchClientGone, before it returns.
      let unwatch = () => {};
      // A subscriber's events of one turn of the loop (every batch that fell due in it) go out as one write.
      const out = new CoalescedWrites(res, setImmediate);
      const sub = subscriber(request, {
        send: (p) => out.write(eventFrame(p.event.type, p.json, p.event.id)),
        get buffered() {
          return res.writableLength + out.pending;
        },
        ping: () => out.write(PING_FRAME),
        close: (reason) => {
          unwatch();
          out.end(eventFrame('close', JSON.stringify({ reason })));
          // A slow consumer may never read its goodbye; its socket is freed regardless.
          if (reason === 'slow_consumer') setTimeout(() => res.destroy(), 1000).unref();
        },
      });
      unwatch = watchClientGone(request, reply, gone);
      // Gone already (it left while an asynchronous hook ran): closed above, nothing to attach.
      if (request.raw.socket.destroyed) return unwatch();
      sub.attach(ctx.bus, afterId);
    },
    wsHandler: (socket: WebSocket, request: FastifyRequest<{ Querystring: EventsQuery }>) => {
      const afterId = afterIdOf(request.query.since, request.query.last_event_id);
      const sub = subscriber(request, {
        send: (p) => socket.send(p.json),
        get buffered() {
          return socket.bufferedAmount;
        },
        ping: () => socket.ping(),
        close: (reason) => {
          // 4008: application-defined "policy" close.
          socket.close(reason === 'slow_consumer' ? 4008 : reason === 'shutdown' ? 1001 : 1000, reason);
          // A slow consumer may never read the close frame, let alone answer it (ws would wait 30 s for that):
          // its connection and buffers are freed within a second, as an SSE one's are.
          if (reason === 'slow_consumer') setTimeout(() => socket.terminate(), 1000).unref();
        },
      });
      socket.once('close', () => sub.close('client_disconnected'));
      socket.on('error', () => sub.close('client_disconnected'));
      sub.attach(ctx.bus, afterId);
    },
  });
}
