import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { JarvisContext } from '../../context.js';
import { JarvisError } from '../../errors.js';
import type { ResponseStore, StoredResponse } from '../../responses/response-store.js';
import { conversationOf, cutMessage } from '../../responses/conversation.js';
import type { Item } from '../../responses/translate.js';
import { rejectEmptyBody } from '../errors.js';
import { jsonNativeOut, ResponsesJsonSink, ResponsesNativeSink, ResponsesSseSink, sseNativeOut } from '../responses-sinks.js';
import { responsesPlan, type TurnSettled } from '../responses-turn.js';
import { ResponsesSocket } from '../responses-socket.js';
import { ResponsesRequest } from '../responses-schema.js';
import { serveStream } from '../stream-request.js';
import { checkUpgrade, drainOnClose, headerOf, holdSlot } from '../ws-upgrade.js';
import { SubscriberSlots, type SubscriberSlot } from '../../events/subscriber-slots.js';
import { policyOf, sessionOf } from '../../streams/admission.js';
import type { Obj } from '../../json.js';

const ID = { type: 'object', properties: { id: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,128}$' } } } as const;

function notFound(id: string): JarvisError {
  return new JarvisError('JARVIS_ERR_RESPONSE_NOT_FOUND', `No response found with id '${id}'.`, { param: 'id' });
}

/**
 * POST /v1/responses, GET and DELETE /v1/responses/{id}: the Responses API, served through Chat Completions
 * (responses/translate.ts), on the same stream machinery as chat: sessions and barge-in, events, logs, metrics,
 * quotas. Stored responses belong to the tenant whose key made them.
 */
export function responsesRoutes(app: FastifyInstance, ctx: JarvisContext, store: ResponseStore): void {
  app.post<{ Body: Obj }>('/v1/responses', { schema: { body: ResponsesRequest }, preValidation: rejectEmptyBody }, async (request, reply) => {
    const arrivedAt = performance.timeOrigin + performance.now();
    const owner = request.apiKey?.id ?? null;
    const body = request.body;
    let history: Item[] = [];
    if (typeof body.previous_response_id === 'string') {
      const previous = await store.get(body.previous_response_id, owner);
      if (!previous) {
        throw new JarvisError('JARVIS_ERR_PREVIOUS_RESPONSE_NOT_FOUND', `Previous response with id '${body.previous_response_id}' not found.`, { param: 'previous_response_id' });
      }
      history = previous.conversation;
    }
    const keep: TurnSettled = (response, output, input) => {
      if (body.store === false) return;
      const stored: StoredResponse = { id: response.id as string, owner, requestId: request.id, response, conversation: conversationOf(history, input, response, output) };
      store.put(stored).catch((err: unknown) => ctx.log.warn({ request_id: request.id, err }, 'response_store_failed'));
    };
    const sse = (onStall: () => void) => ({ heartbeat: ctx.heartbeat, maxBufferedBytes: ctx.config.maxClientBufferBytes, stallMs: ctx.config.clientStallMs, onStall });
    const model = typeof body.model === 'string' ? body.model : undefined;
    const plan = responsesPlan(ctx, body, history, keep, {
      built: (opts, onStall) => (body.stream === true ? new ResponsesSseSink(reply, { ...opts, ...sse(onStall) }) : new ResponsesJsonSink(reply, opts)),
      native: (opts, onStall) => new ResponsesNativeSink(body.stream === true ? sseNativeOut(reply, { ...sse(onStall), requestId: opts.requestId }) : jsonNativeOut(reply), opts),
    });
    await serveStream(ctx, request, reply, { arrivedAt, model, ...plan });
    return reply;
  });

  responsesSocketRoute(app, ctx, store);

  const stored = async (request: FastifyRequest<{ Params: { id: string } }>): Promise<StoredResponse> => {
    const found = await store.get(request.params.id, request.apiKey?.id ?? null);
    if (!found) throw notFound(request.params.id);
    return found;
  };
  // A speech client says how much of an answer was actually heard: the stored answer, and what a chained request
  // sends the model, are cut there (never lengthened; the same cut twice changes nothing).
  app.post<{ Params: { id: string }; Body: { heard_chars: number } }>(
    '/v1/responses/:id/truncate',
    { schema: { params: ID, body: { type: 'object', required: ['heard_chars'], properties: { heard_chars: { type: 'integer', minimum: 0 } } } }, preValidation: rejectEmptyBody },
    async (request) => {
      const found = await stored(request);
      const output = cutMessage(found.response.output as Item[], request.body.heard_chars);
      if (!output.cut) return found.response;
      const conversation = cutMessage(found.conversation, request.body.heard_chars, { interrupted: true });
      const response = { ...found.response, output: output.items, status: 'incomplete', incomplete_details: { reason: 'interrupted' } };
      await store.put({ ...found, response, conversation: conversation.items });
      const requestId = found.requestId ?? (found.id.startsWith('resp_') ? `req_${found.id.slice(5)}` : undefined);
      if (requestId) ctx.ledger?.heard(requestId, request.body.heard_chars);
      return response;
    },
  );
  app.get<{ Params: { id: string } }>('/v1/responses/:id', { schema: { params: ID } }, async (request) => (await stored(request)).response);
  app.delete<{ Params: { id: string } }>('/v1/responses/:id', { schema: { params: ID } }, async (request, reply: FastifyReply) => {
    const owner = request.apiKey?.id ?? null;
    if (!(await store.delete(request.params.id, owner))) throw notFound(request.params.id);
    return reply.send({ id: request.params.id, object: 'response', deleted: true });
  });
}

/** The first problem ajv finds with a `response.create`'s body, as Fastify words it for POST /v1/responses. */
function validatorOf(request: FastifyRequest): (body: Obj) => JarvisError | undefined {
  const validate = request.compileValidationSchema(ResponsesRequest);
  return (body) => {
    if (validate(body)) return undefined;
    const first = validate.errors?.[0];
    const path = first?.instancePath ? first.instancePath.slice(1).replaceAll('/', '.') : '';
    const message = `${path === '' ? 'response.create' : path} ${first?.message ?? 'is invalid'}`;
    return new JarvisError('JARVIS_ERR_INVALID_REQUEST', message, { param: path === '' ? (first?.params as { missingProperty?: string } | undefined)?.missingProperty ?? null : path });
  };
}

/**
 * GET /v1/responses with an Upgrade: the Responses API's WebSocket mode (http/responses-socket.ts). Refused before
 * the upgrade, as HTTP errors: a bad upgrade, bad session headers, too many connections.
 */
function responsesSocketRoute(app: FastifyInstance, ctx: JarvisContext, store: ResponseStore): void {
  const { websocket } = ctx.config;
  const slots = new SubscriberSlots({ max: websocket.maxConnections, perKey: websocket.maxConnectionsPerKey, what: 'Responses WebSocket connections', perKeyCode: 'JARVIS_ERR_TOO_MANY_CONNECTIONS' });
  const held = new WeakMap<FastifyRequest, SubscriberSlot>();
  const open = drainOnClose<ResponsesSocket>(app, ctx.drains);
  const header = headerOf;
  app.route({
    method: 'GET',
    url: '/v1/responses',
    preHandler: async (request) => {
      if (request.headers.upgrade?.toLowerCase() !== 'websocket') {
        throw new JarvisError('JARVIS_ERR_METHOD_NOT_ALLOWED', 'GET /v1/responses is the Responses API\'s WebSocket mode: connect with a WebSocket (Upgrade: websocket), or POST a response.');
      }
      checkUpgrade(request);
      sessionOf({ header: header(request) });
      policyOf({ header: header(request) }, ctx.config.sessions.policy);
      held.set(request, holdSlot(slots, request));
    },
    handler: async () => {
      // Not reached: a request without an upgrade is refused before it.
      throw new JarvisError('JARVIS_ERR_METHOD_NOT_ALLOWED', 'Connect with a WebSocket.');
    },
    wsHandler: (socket, request) => {
      const get = header(request);
      const connection: ResponsesSocket = new ResponsesSocket(socket, {
        ctx,
        store,
        upgrade: request,
        slot: held.get(request) ?? { release: () => {} },
        policy: policyOf({ header: get }, ctx.config.sessions.policy),
        sessionId: sessionOf({ header: get }),
        validate: validatorOf(request),
        onClosed: () => open.delete(connection),
      });
      open.add(connection);
    },
  });
}
