import { once } from 'node:events';
import type { ServerResponse } from 'node:http';
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { JarvisContext } from '../../context.js';
import { JarvisError, StreamCancelled, cancelReasonOf, type CancelReason } from '../../errors.js';
import type { RelayEndpoint, RelayResponse } from '../../providers/provider.js';
import { watchClientGone } from '../client-gone.js';
import { DONE_FRAME, errorFrame } from '../chunk-frames.js';
import { rejectEmptyBody } from '../errors.js';
import { admitCall, type AdmittedCall } from '../../streams/admission.js';
import type { StreamEnding } from '../../streams/chat-stream.js';
import { relayedOutcome } from '../../ledger/record.js';
import { upstreamHeaders } from '../upstream-headers.js';
import { RelayMeter } from '../../ledger/relay-meter.js';

const RelayBody = Type.Object(
  {
    model: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
    stream: Type.Optional(Type.Union([Type.Boolean(), Type.Null()])),
  },
  { additionalProperties: true },
);
type RelayBodyT = Static<typeof RelayBody> & Record<string, unknown>;

/** Copies the answer to the client as it arrives, waiting for a client that is behind (so the upstream waits too). */
async function pump(source: RelayResponse['body'], res: ServerResponse, signal: AbortSignal, meter: RelayMeter): Promise<void> {
  for await (const chunk of source) {
    meter.observe(chunk);
    if (!res.write(chunk)) await once(res, 'drain', { signal });
  }
}

/**
 * POST /v1/completions and /v1/embeddings: relayed to the provider that serves the model, the answer passed back
 * as it comes (status, content type, bytes), streaming or not. No sessions or events: these are not
 * conversations. A client that leaves closes the upstream request; at shutdown a relay gets the streams' grace.
 */
export function relayRoutes(app: FastifyInstance, ctx: JarvisContext): void {
  for (const endpoint of ['completions', 'embeddings'] as const) {
    app.post<{ Body: RelayBodyT }>(`/v1/${endpoint}`, { schema: { body: RelayBody }, preValidation: rejectEmptyBody }, async (request, reply) => {
      const admitted = await admitCall(ctx, { apiKey: request.apiKey, requestId: request.id, model: request.body.model });
      try {
        return await relay(endpoint, request, reply, admitted);
      } finally {
        admitted.release();
      }
    });
  }

  async function relay(endpoint: RelayEndpoint, request: FastifyRequest<{ Body: RelayBodyT }>, reply: FastifyReply, { provider, model }: AdmittedCall): Promise<FastifyReply> {
    const controller = new AbortController();
    const cancel = (reason: CancelReason) => controller.abort(new StreamCancelled(reason));
    const live = { requestId: request.id, cancel };
    const started = performance.now();
    let status = 0;
    let outcome = 'end';
    let error: JarvisError | undefined;
    const meter = new RelayMeter(request.body);
    ctx.live.add(live);
    const unwatch = watchClientGone(request, reply, () => cancel('client_disconnected'));
    const headers = upstreamHeaders(request);
    const trace = ctx.tracing?.startTurn({
      requestId: request.id,
      api: endpoint,
      operation: endpoint === 'embeddings' ? 'embeddings' : 'text_completion',
      requestModel: model,
      sessionId: undefined,
      sessionKey: undefined,
      key: request.apiKey?.id ?? null,
      traceparent: headers.traceparent,
      tracestate: typeof request.headers.tracestate === 'string' ? request.headers.tracestate : undefined,
    });
    if (trace?.traceparent) headers.traceparent = trace.traceparent;
    try {
      const res = await provider.relay({ endpoint, model, body: request.body, headers }, { signal: controller.signal });
      status = res.status;
      reply.hijack();
      reply.raw.writeHead(res.status, { ...res.headers, 'x-request-id': request.id });
      try {
        await pump(res.body, reply.raw, controller.signal, meter);
        reply.raw.end();
      } catch (err) {
        outcome = cancelReasonOf(controller.signal) ?? 'error';
        if (outcome !== 'error') return reply;
        // Broken off mid-answer: a stream can still say so; a JSON body cut short cannot be mended.
        error = err instanceof JarvisError ? err : new JarvisError('JARVIS_ERR_UPSTREAM_STREAM', `upstream stream failed: ${(err as Error).message}`);
        if (/event-stream/.test(res.headers['content-type'] ?? '') && !reply.raw.destroyed) reply.raw.end(errorFrame(error) + DONE_FRAME);
        else reply.raw.destroy();
      }
      return reply;
    } catch (err) {
      const reason = cancelReasonOf(controller.signal);
      if (reason) {
        outcome = reason;
        if (!reply.raw.destroyed) reply.raw.destroy();
        return reply;
      }
      outcome = 'error';
      if (err instanceof JarvisError) {
        status = err.status;
        error = err;
      }
      throw err;
    } finally {
      unwatch();
      ctx.live.delete(live);
      const durationMs = performance.now() - started;
      ctx.log.info({ request_id: request.id, endpoint, model, status, outcome, duration_ms: Math.round(durationMs) }, 'relay_end');
      const usage = meter.usage();
      // An upstream's own error status is its answer, not a stream failure: billed as an error, nothing paid.
      const failed = outcome === 'error' || status >= 400;
      const kind = failed ? 'error' : outcome === 'end' ? 'end' : 'cancelled';
      const code = error?.code ?? 'JARVIS_ERR_UPSTREAM_STATUS';
      const ending: StreamEnding =
        kind === 'end'
          ? { kind, finishReason: 'stop' }
          : kind === 'cancelled'
            ? { kind, reason: outcome as CancelReason }
            : { kind, error: error ?? new JarvisError('JARVIS_ERR_UPSTREAM_STATUS', `upstream answered ${status}`) };
      const upstream = ctx.providers.describe(provider);
      if (status > 0 || meter.reached) {
        ctx.ledger?.turn({
          requestId: request.id,
          key: request.apiKey?.id ?? null,
          session: null,
          api: endpoint,
          model,
          upstream,
          inputEstimate: usage.input,
          attempts: [],
          outcome: relayedOutcome(ending, {
            usage: failed ? { input: 0, output: 0, estimated: usage.estimated } : usage,
            text: { tokens: usage.output, chars: 0 },
            durationMs,
            reached: !failed,
          }),
        });
      }
      trace?.end({ outcome: kind, reason: kind === 'end' ? undefined : kind === 'cancelled' ? outcome : code, status: status || undefined, responseModel: model, provider: upstream?.provider, upstream: upstream?.name, usage });
    }
  }
}
