import type { FastifyInstance, FastifyRequest } from 'fastify';
import { checkModelAllowed } from '../../access/keys.js';
import type { JarvisContext } from '../../context.js';
import { JarvisError } from '../../errors.js';
import { SubscriberSlots, type SubscriberSlot } from '../../events/subscriber-slots.js';
import { policyOf, sessionOf } from '../../streams/admission.js';
import { openUpstream, RealtimeRelay, type OpenedUpstream } from '../realtime-relay.js';
import { RealtimeSocket } from '../realtime-socket.js';
import { checkUpgrade, drainOnClose, headerOf, holdSlot, type Drainable } from '../ws-upgrade.js';

interface RealtimeQuery {
  model?: string;
}

/** What the upgrade settled before the socket exists: the model, and for a relay the upstream's socket, open. */
interface Prepared {
  slot: SubscriberSlot;
  model: string;
  upstream: OpenedUpstream | undefined;
  /** The socket exists: from now on it owns the upstream's. */
  taken: boolean;
}

/**
 * GET /v1/realtime?model=NAME with an Upgrade: the Realtime API. Relayed to an upstream that speaks it
 * (`realtime: native`), in text over the core for every other model. Everything that can refuse a connection
 * does so before the upgrade, as an HTTP error: the key (a header, or a browser's subprotocol), the model, the
 * connection limits, and for a relay the upstream's own refusal.
 */
export function realtimeRoute(app: FastifyInstance, ctx: JarvisContext): void {
  const { websocket } = ctx.config;
  const slots = new SubscriberSlots({ max: websocket.maxConnections, perKey: websocket.maxConnectionsPerKey, what: 'Realtime connections', perKeyCode: 'JARVIS_ERR_TOO_MANY_CONNECTIONS' });
  const prepared = new WeakMap<FastifyRequest, Prepared>();
  const open = drainOnClose<Drainable>(app, ctx.drains);
  const header = headerOf;
  app.route<{ Querystring: RealtimeQuery }>({
    method: 'GET',
    url: '/v1/realtime',
    schema: { querystring: { type: 'object', properties: { model: { type: 'string', minLength: 1, maxLength: 256 } } } },
    preHandler: async (request) => {
      if (request.headers.upgrade?.toLowerCase() !== 'websocket') {
        throw new JarvisError('JARVIS_ERR_METHOD_NOT_ALLOWED', 'GET /v1/realtime is the Realtime API: connect with a WebSocket (Upgrade: websocket).');
      }
      checkUpgrade(request);
      sessionOf({ header: header(request) });
      policyOf({ header: header(request) }, ctx.config.sessions.policy);
      const { provider, model } = ctx.providers.resolve(request.query.model);
      checkModelAllowed(request.apiKey, model);
      const held = holdSlot(slots, request);
      let quota = () => {};
      let released = false;
      const slot = {
        release: () => {
          if (released) return;
          released = true;
          quota();
          held.release();
        },
      };
      // However the connection ends, before or after its upgrade, what it holds is given back.
      request.raw.socket.once('close', slot.release);
      try {
        // A relayed conversation is one request of the key's quota, holding one stream slot while it lasts (in
        // text mode each response is admitted as a chat request is).
        if (provider.realtime) {
          // A spent budget refuses before the upstream's socket is opened.
          await ctx.budgets.check(request.apiKey, request.id);
          quota = await ctx.quotas.admit(request.apiKey, request.id);
        }
        const offered = header(request)('sec-websocket-protocol');
        const upstream = provider.realtime ? await openUpstream(provider.realtime, model, offered, ctx.config.upstreamTimeoutMs) : undefined;
        const p: Prepared = { slot, model, upstream, taken: false };
        prepared.set(request, p);
        // An upgrade that fails after the upstream's socket opened must not leave that socket open.
        if (upstream) request.raw.socket.once('close', () => p.taken || upstream.socket.terminate());
      } catch (err) {
        slot.release();
        throw err;
      }
    },
    handler: async () => {
      throw new JarvisError('JARVIS_ERR_METHOD_NOT_ALLOWED', 'Connect with a WebSocket.');
    },
    wsHandler: (socket, request) => {
      const p = prepared.get(request)!;
      p.taken = true;
      const get = header(request);
      const sessionId = sessionOf({ header: get });
      let connection: Drainable;
      const onClosed = () => open.delete(connection);
      if (p.upstream) {
        connection = new RealtimeRelay(socket, { ctx, upgrade: request, slot: p.slot, model: p.model, sessionId, upstream: p.upstream, onClosed, served: ctx.providers.describe(ctx.providers.resolve(p.model).provider) });
      } else {
        connection = new RealtimeSocket(socket, { ctx, slot: p.slot, upgrade: request, model: p.model, policy: policyOf({ header: get }, ctx.config.sessions.policy), sessionId, onClosed });
      }
      open.add(connection);
    },
  });
}
