import websocket from '@fastify/websocket';
import { loadTls, type TlsFiles } from './http/tls.js';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Cluster } from './cluster/index.js';
import type { Config } from './config.js';
import type { JarvisContext } from './context.js';
import type { EventBus } from './events/event-bus.js';
import { LocalEventBus } from './events/local-bus.js';
import { TokenBatcher } from './events/token-batcher.js';
import { ApiKeys, chooseProtocol, requireScope } from './http/auth.js';
import { realtimeRoute } from './http/routes/realtime.js';
import { acceptJsonForAnyContentType } from './http/body-parser.js';
import { clientErrorHandler, inFlightOf, refuseConnect } from './http/client-errors.js';
import { installCors } from './http/cors.js';
import { installErrorHandlers } from './http/errors.js';
import { Heartbeat } from './http/heartbeat.js';
import { chatCompletionsRoute } from './http/routes/chat-completions.js';
import { responsesRoutes } from './http/routes/responses.js';
import { messagesRoutes } from './http/routes/messages.js';
import { consoleRoutes } from './http/routes/console.js';
import { RedisResponseStore } from './responses/redis-store.js';
import { RedisSignedThinking } from './providers/redis-signed-thinking.js';
import { MemoryResponseStore } from './responses/response-store.js';
import { eventsRoute } from './http/routes/events.js';
import { healthRoutes, liveCounts, PROBES } from './http/routes/health.js';
import { metricsRoute } from './http/routes/metrics.js';
import { modelsRoute } from './http/routes/models.js';
import { relayRoutes } from './http/routes/relay.js';
import { JarvisError } from './errors.js';
import { RandomIds } from './ids.js';
import { EventLoopWatchdog } from './observability/event-loop-watchdog.js';
import { Metrics } from './observability/metrics.js';
import { ProviderRegistry } from './providers/registry.js';
import { LocalQuotaStore } from './quotas/local-store.js';
import { Quotas } from './quotas/quotas.js';
import { LocalSessionRegistry } from './sessions/local-registry.js';
import type { SessionRegistry } from './sessions/session-registry.js';
import { LiveStreams } from './streams/live-streams.js';
import { Budgets, LocalSpend, RedisSpend } from './ledger/budgets.js';
import { createLedger } from './ledger/index.js';
import { createTracing } from './observability/tracing.js';
import type { Tracing } from './observability/turn-trace.js';
import { usageRoutes } from './http/routes/usage.js';

export interface JarvisDeps {
  config: Config;
  log: Logger;
  /** Redis-backed sessions and events for several instances; without it, everything is in-process. */
  cluster?: Cluster | undefined;
  /** The certificate and key, when main.ts has read them already (else read here from config.tls). */
  tls?: TlsFiles | undefined;
  /** Tracing made already; else made here from the OTEL_* variables of `env` (main.ts passes process.env), else none. */
  tracing?: Tracing | undefined;
  env?: NodeJS.ProcessEnv | undefined;
  /** This process's slot among JARVIS_WORKERS workers (cluster/workers.ts): /healthz and /metrics name it. */
  worker?: number | undefined;
}

export interface Jarvis {
  app: FastifyInstance;
  ctx: JarvisContext;
  /** Listens on config.host:config.port and resolves with the bound address. */
  listen(): Promise<string>;
  /**
   * Drains: /readyz answers 503 and new requests 503 server_shutting_down at once, while the listener stays open and
   * streams get the grace period; then the listener closes, what still runs is cancelled and everything released.
   */
  shutdown(): Promise<void>;
}

export async function createJarvis(deps: JarvisDeps): Promise<Jarvis> {
  const { config, log } = deps;
  const { cluster } = deps;
  const bus: EventBus = cluster?.bus ?? new LocalEventBus({ replay: config.events.replay });
  const sessions: SessionRegistry = cluster?.sessions ?? new LocalSessionRegistry({ prevStreamWaitMs: config.sessions.prevStreamWaitMs, seqMemoryMs: config.redis.sessionTtlMs });
  // Metrics read the live counts at scrape time; the context they read is completed just below.
  const metrics = new Metrics(() => liveCounts(ctx), { worker: deps.worker });
  const ids = new RandomIds();
  const budgets = new Budgets({ counter: cluster ? new RedisSpend(cluster.link) : new LocalSpend(), log, onExceeded: () => metrics.budgetExceeded() });
  const keys = new ApiKeys(config);
  const ledger = createLedger(config, { log, ids, observer: metrics.ledger(), budgets, keys: keys.identities });
  const tracing = deps.tracing ?? (deps.env ? await createTracing(deps.env, { logContent: config.logContent, log }) : undefined);
  const ctx: JarvisContext = {
    config,
    log,
    providers: new ProviderRegistry(config, {
      log,
      liveStreams: () => ctx.live.size,
      observer: metrics,
      signatures: cluster ? (kind) => new RedisSignedThinking(cluster.link, kind) : undefined,
    }),
    sessions,
    bus,
    batcher: new TokenBatcher({
      flushMs: config.events.flushMs,
      flushBytes: config.events.flushBytes,
      log,
      publish: (meta, text, tokens) => bus.publish(meta, 'chat.token', { text, tokens }),
      onFlush: (kind, tokens) => metrics.flushed(kind, tokens),
    }),
    live: new LiveStreams(),
    heartbeat: new Heartbeat(config.heartbeatMs),
    keys,
    drains: new Set(),
    // Shared by every instance with Redis, this instance's own counts without it.
    quotas: new Quotas({ store: cluster?.quotas ?? new LocalQuotaStore(), log, onExceeded: (quota) => metrics.quotaExceeded(quota) }),
    metrics,
    ids,
    ledger,
    budgets,
    tracing,
    watchdog: new EventLoopWatchdog({ thresholdMs: config.eventLoopBlockedMs, log, onDelay: (ms) => metrics.loopDelay(ms) }),
    cluster,
  };
  if (cluster) {
    metrics.trackRedis(() => cluster.link.available);
    cluster.onControlLatency((ms) => metrics.controlLatency(ms));
    cluster.onDegraded((reason) => metrics.bargeInDegraded(reason));
    cluster.onEventReadFailure(() => metrics.eventReadFailed());
  }

  const tls = deps.tls ?? loadTls(config);
  // With a certificate, the same port serves HTTPS and WSS (the openai SDK's Realtime clients connect only over wss:).
  const app = Fastify({
    ...(tls ? { https: { cert: tls.cert, key: tls.key } } : {}),
    // Fastify's own info lines ("Server listening at ...") are outside the vocabulary; its warnings and errors are not.
    loggerInstance: frameworkLogger(log) as FastifyBaseLogger,
    // Jarvis logs its own vocabulary (stream_start, stream_end, request_rejected...), not a line per request.
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: 'request_id' }),
    bodyLimit: config.bodyLimit,
    genReqId: () => `req_${ctx.ids.hex(12)}`,
    // Strict types, as OpenAI's API has: "5" is not a valid max_tokens.
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false } },
    // Jarvis answers its own OpenAI-shaped 503 while closing (below).
    return503OnClosing: false,
    forceCloseConnections: 'idle',
    // Receiving a request (headers and body) is bounded; sending a response, however long it streams, is not:
    // Node stops timing a request once it is complete. Headers get the same bound as the whole request. Node checks
    // these every connectionsCheckingInterval (30 s by default), which would let a timeout overrun by that much.
    requestTimeout: config.requestTimeoutMs,
    http: {
      maxHeaderSize: config.maxHeaderBytes,
      requestTimeout: config.requestTimeoutMs,
      headersTimeout: config.requestTimeoutMs,
      connectionsCheckingInterval: Math.min(1000, Math.max(10, Math.floor(config.requestTimeoutMs / 10))),
    },
    clientErrorHandler: clientErrorHandler({ log, requestTimeoutMs: config.requestTimeoutMs, maxHeaderBytes: config.maxHeaderBytes }),
  });
  app.server.on('connect', refuseConnect(log));
  const storeOpts = { ttlMs: config.responses.storeTtlMs, maxEntries: config.responses.maxStored };
  const responses = cluster ? new RedisResponseStore({ link: cluster.link, ...storeOpts }) : new MemoryResponseStore(storeOpts);
  let closing = false;
  app.decorateRequest('apiKey', null);
  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id);
    // One listener per request, on the raw response, so hijacked SSE responses are counted too.
    reply.raw.once('close', () => {
      metrics.request(request.routeOptions.url ?? 'unmatched', request.method, reply.raw.statusCode);
      // While closing, a keep-alive connection closes once its last answer is out: not before, since a request
      // pipelined behind this one has its answer (503 server_shutting_down) queued, and Node writes it next.
      // Closing it only when idle keeps shutdown from waiting for the client's own keep-alive timeout.
      if (closing && !inFlightOf(request.raw.socket)) request.raw.socket.destroySoon();
    });
  });
  acceptJsonForAnyContentType(app);
  installErrorHandlers(app, log);

  await app.register(websocket, {
    // A message may be as large as a request body (a response.create carries the same input a POST does).
    options: { maxPayload: config.bodyLimit, handleProtocols: chooseProtocol },
    // The plugin's default closes every socket without a code before the events route can say why (1001).
    preClose(this: FastifyInstance, done: () => void) {
      this.websocketServer.close();
      done();
    },
  });
  // After the WebSocket plugin: its own onRequest hook must have run for a refused upgrade's socket to be closed.
  installCors(app, config.access.corsOrigins);
  app.addHook('onRequest', async (request, reply) => {
    if (!closing) return;
    // The probes answer while draining: liveness 200 (the process is fine, do not kill it), readiness 503.
    if (PROBES.has(request.routeOptions.url ?? '')) {
      void reply.header('connection', 'close');
      return;
    }
    throw new JarvisError('JARVIS_ERR_SHUTTING_DOWN', 'Jarvis is shutting down; retry on another instance.', { headers: { 'retry-after': '1', connection: 'close' } });
  });
  // Which scope each route needs, in one place. /healthz and /readyz stay open (load balancers, orchestrators).
  await app.register(async (chat) => {
    chat.addHook('onRequest', requireScope(ctx.keys, 'chat'));
    chatCompletionsRoute(chat, ctx);
    responsesRoutes(chat, ctx, responses);
    realtimeRoute(chat, ctx);
    messagesRoutes(chat, ctx);
    relayRoutes(chat, ctx);
    modelsRoute(chat, ctx);
  });
  // A key reads its own usage; an admin key everyone's.
  await app.register(async (usage) => {
    usage.addHook('onRequest', requireScope(ctx.keys, ['chat', 'admin']));
    usageRoutes(usage, ctx);
  });
  await app.register(async (events) => {
    events.addHook('onRequest', requireScope(ctx.keys, 'events'));
    eventsRoute(events, ctx);
  });
  await app.register(async (admin) => {
    admin.addHook('onRequest', requireScope(ctx.keys, 'admin'));
    metricsRoute(admin, ctx);
  });
  healthRoutes(app, ctx, { worker: deps.worker, draining: () => closing });
  consoleRoutes(app, ctx);

  let shuttingDown: Promise<void> | undefined;
  const shutdown = async () => {
    // From now on /readyz answers 503 and every new request 503 server_shutting_down (above), and WebSocket
    // connections start nothing new. The listener stays open: a load balancer learns of the drain only at its next
    // probe, and a connection it opens meanwhile gets an answer, not a refusal.
    closing = true;
    log.info({ live_streams: ctx.live.size, grace_ms: config.shutdownGraceMs, worker: deps.worker }, 'shutdown_start');
    for (const drain of ctx.drains) drain();
    let grace: NodeJS.Timeout | undefined;
    const graceOver = new Promise<void>((resolve) => (grace = setTimeout(resolve, config.shutdownGraceMs)));
    await Promise.race([ctx.live.idle(), graceOver]);
    clearTimeout(grace);
    // Streams done or the grace over: the listener closes (events subscribers end, WebSockets close with 1001).
    const closed = app.close();
    ctx.live.cancelAll('shutdown');
    await ctx.live.idle();
    // Connections idle when close() began were closed by it, and each one since closes after its last answer
    // (above); one whose client does not take its last bytes is not waited for long.
    const force = setTimeout(() => app.server.closeAllConnections(), 1000);
    await closed;
    clearTimeout(force);
    ctx.heartbeat.close();
    ctx.watchdog.close();
    // Streams ended above: every line is queued, and written now (or kept, for a store that is down, and lost).
    await Promise.all([ctx.providers.close(), ctx.sessions.close(), ctx.bus.close(), ctx.quotas.close(), ctx.ledger?.close(), ctx.tracing?.shutdown()]);
    await cluster?.close();
    log.info({ worker: deps.worker }, 'shutdown_done');
  };

  return {
    app,
    ctx,
    listen: async () => {
      const address = await app.listen({ host: config.host, port: config.port });
      // Only now: loading and registering (synchronous work, hundreds of ms) would read as a blocked loop.
      ctx.watchdog.start();
      return address;
    },
    shutdown: () => (shuttingDown ??= shutdown()),
  };
}

/** The logger Fastify gets: Jarvis's, at warn or above (never below the operator's level). */
function frameworkLogger(log: Logger): Logger {
  return log.levelVal >= log.levels.values.warn! ? log : log.child({}, { level: 'warn' });
}
