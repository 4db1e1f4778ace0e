import { readFileSync } from 'node:fs';
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { ValueErrorType } from '@sinclair/typebox/errors';
import { Value } from '@sinclair/typebox/value';
import { parse as parseYaml } from 'yaml';
import { isLoopbackHost } from './access/bind.js';
import { KeyEntry, resolveKeys } from './access/keys.js';
import { readKeysFile } from './access/keys-file.js';

export const SESSION_POLICIES = ['cancel-previous', 'queue', 'reject', 'parallel'] as const;

/** The upstream APIs Jarvis speaks natively (`upstreams[].provider`). */
export const UPSTREAM_PROVIDERS = ['openai', 'anthropic', 'gemini'] as const;
export type UpstreamProvider = (typeof UPSTREAM_PROVIDERS)[number];
/** The anthropic-version an Anthropic upstream gets by default: what the current @anthropic-ai/sdk sends. */
export const ANTHROPIC_VERSION = '2026-10-21';
/** max_tokens for an Anthropic request that names none. */
export const ANTHROPIC_DEFAULT_MAX_TOKENS = 4096;
export type SessionPolicy = (typeof SESSION_POLICIES)[number];

/** Every object in the configuration refuses keys it does not know: a typo must stop Jarvis, not be ignored. */
const STRICT = { additionalProperties: false } as const;

const Upstream = Type.Object(
  {
    name: Type.String({ minLength: 1 }),
    baseUrl: Type.String({ pattern: '^https?://' }),
    apiKey: Type.Optional(Type.String()),
    /** Model ids routed to this upstream; "*" takes every model no other upstream names. None: it serves routes only. */
    models: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { minItems: 1 })),
    /** Skipped for `cooldownMs` after `failures` consecutive failures, then one probe decides (routes/). */
    circuit: Type.Optional(Type.Object({ failures: Type.Integer({ minimum: 1 }), cooldownMs: Type.Integer({ minimum: 100 }) }, STRICT)),
    /** How /v1/responses reaches it: translated to Chat Completions (any server), or relayed to its own /responses. */
    responses: Type.Optional(Type.Union([Type.Literal('translate'), Type.Literal('native')])),
    /** How /v1/realtime reaches it: in text over its chat API (any server), or relayed to its own /realtime WebSocket. */
    realtime: Type.Optional(Type.Union([Type.Literal('text'), Type.Literal('native')])),
    /** The API it speaks: OpenAI's (any OpenAI-compatible server, the default), Anthropic's Messages API or Google's Gemini API. */
    provider: Type.Optional(Type.Union(UPSTREAM_PROVIDERS.map((p) => Type.Literal(p)))),
    /** Anthropic: the anthropic-version header sent (default ANTHROPIC_VERSION, what the current SDK sends). */
    anthropicVersion: Type.Optional(Type.String({ pattern: '^\\d{4}-\\d{2}-\\d{2}$' })),
    /** Anthropic: max_tokens for a request that names none (Anthropic requires one). */
    maxTokens: Type.Optional(Type.Integer({ minimum: 1 })),
    /** Leave out parameters the upstream's API version refuses, instead of a 400 (named in x-jarvis-dropped-params). */
    dropParams: Type.Optional(Type.Boolean()),
  },
  STRICT,
);

/** US dollars per million tokens of a model that serves answers (`prices`, keyed by the model that served). */
const Price = Type.Object(
  {
    input: Type.Number({ minimum: 0 }),
    output: Type.Number({ minimum: 0 }),
    /** Input tokens read from a prompt cache (default: the input price). */
    cachedInput: Type.Optional(Type.Number({ minimum: 0 })),
    /** Input tokens written to a prompt cache (default: the input price). */
    cacheWrite: Type.Optional(Type.Number({ minimum: 0 })),
  },
  STRICT,
);

/** A model clients ask for, served by targets tried in order (priority), balanced by weight within a priority. */
const Route = Type.Object(
  {
    model: Type.String({ minLength: 1 }),
    targets: Type.Array(
      Type.Object(
        {
          upstream: Type.String({ minLength: 1 }),
          model: Type.String({ minLength: 1 }),
          weight: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
          priority: Type.Optional(Type.Integer({ minimum: 0 })),
        },
        STRICT,
      ),
      { minItems: 1 },
    ),
    /** Attempts again at the same target, only before anything reached the client. */
    retries: Type.Optional(Type.Integer({ minimum: 0, maximum: 10 })),
    /** No first token by then: the attempt is abandoned and the next target tried. */
    firstTokenTimeoutMs: Type.Optional(Type.Integer({ minimum: 1 })),
    /** No first token by then: the next target starts too, and the first token wins (0: off). */
    hedgeAfterMs: Type.Optional(Type.Integer({ minimum: 0 })),
  },
  STRICT,
);

const ConfigSchema = Type.Object(
  {
    host: Type.String({ minLength: 1 }),
    port: Type.Integer({ minimum: 0, maximum: 65535 }),
    bodyLimit: Type.Integer({ minimum: 1024 }),
    /** Request limits past the body size (400 past them): messages per request, characters of content across them. */
    maxMessages: Type.Integer({ minimum: 1 }),
    maxContentChars: Type.Integer({ minimum: 1 }),
    /** Node's maxHeaderSize: all request headers together (431 past it). */
    maxHeaderBytes: Type.Integer({ minimum: 1024 }),
    /** Time to receive a whole request, headers and body (408 past it); never applies to a response. */
    requestTimeoutMs: Type.Integer({ minimum: 100 }),
    /** Concurrent chat streams in this process (503 overloaded past it). */
    maxStreams: Type.Integer({ minimum: 1 }),
    /** Puts the last user message and the answer (truncated) into stream_start and stream_end. Off: no content is logged. */
    logContent: Type.Boolean(),
    /** JARVIS_API_KEYS: `key` or `name=key` entries, each with every scope and the default quotas. */
    apiKeys: Type.Array(Type.String({ minLength: 8 })),
    access: Type.Object({
      /** Keys with scopes, model allow-lists and quotas: JARVIS_KEYS_FILE, or `access.keys` in a JARVIS_CONFIG file. */
      keys: Type.Array(KeyEntry),
      /** Serve without keys on an address others can reach (refused at start otherwise). */
      allowInsecure: Type.Boolean(),
      /** Browser origins allowed by CORS (and to open the events WebSocket); empty: none. Exact, no trailing slash. */
      corsOrigins: Type.Array(Type.String({ pattern: '^https?://[^/\\s*]+$' })),
      /** Default quotas of a key (0: unlimited): requests per minute and concurrent streams. */
      rpm: Type.Integer({ minimum: 0 }),
      maxStreams: Type.Integer({ minimum: 0 }),
    }, STRICT),
    log: Type.Object({
      level: Type.Union(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'].map((l) => Type.Literal(l))),
      format: Type.Union([Type.Literal('logfmt'), Type.Literal('json')]),
      file: Type.Union([Type.String({ minLength: 1 }), Type.Null()]),
      stdout: Type.Boolean(),
    }, STRICT),
    shutdownGraceMs: Type.Integer({ minimum: 0 }),
    /** Worker processes on one port (node:cluster), coordinated through Redis; `auto`: one per core. 1: one process, no primary. */
    workers: Type.Union([Type.Integer({ minimum: 1 }), Type.Literal('auto')]),
    heartbeatMs: Type.Integer({ minimum: 10 }),
    /** Unread bytes a chat client may hold before its stream stops reading the upstream until it catches up. */
    maxClientBufferBytes: Type.Integer({ minimum: 1024 }),
    /** A client that is behind and takes nothing for this long has stopped reading: cancelled (client_backpressure). */
    clientStallMs: Type.Integer({ minimum: 10 }),
    /** The most chunk bytes assembled into one non-streaming answer (502 response_too_large past it). */
    maxAnswerBytes: Type.Integer({ minimum: 1024 }),
    /** The watchdog logs event_loop_blocked past this lateness. */
    eventLoopBlockedMs: Type.Integer({ minimum: 1 }),
    /** Load shedding: 503 new chat requests while the loop is this late; 0 turns it off. */
    shedEventLoopDelayMs: Type.Integer({ minimum: 0 }),
    defaultModel: Type.String({ minLength: 1 }),
    simulator: Type.Object({
      tokensPerSec: Type.Number({ exclusiveMinimum: 0 }),
      ttftMs: Type.Integer({ minimum: 0 }),
    }, STRICT),
    upstreams: Type.Array(Upstream),
    routes: Type.Array(Route),
    upstreamTimeoutMs: Type.Integer({ minimum: 1 }),
    upstreamIdleMs: Type.Integer({ minimum: 1 }),
    sessions: Type.Object({
      policy: Type.Union(SESSION_POLICIES.map((p) => Type.Literal(p))),
      prevStreamWaitMs: Type.Integer({ minimum: 0 }),
    }, STRICT),
    redis: Type.Object({
      /** Unset (and no sentinels): in-process sessions and events (the embedded default). */
      url: Type.Union([Type.String({ pattern: '^rediss?://' }), Type.Null()]),
      /** Redis Sentinel instead of one server: the sentinels (`host:port`), followed through failovers. */
      sentinels: Type.Array(Type.String({ pattern: '^[^\\s:/]+:\\d{1,5}$' })),
      /** The master's name the sentinels monitor (REDIS_SENTINEL_NAME). */
      name: Type.Union([Type.String({ minLength: 1 }), Type.Null()]),
      /** Redis Cluster instead: some of its nodes (`host:port`, REDIS_CLUSTER_NODES); the rest are discovered. */
      cluster: Type.Array(Type.String({ pattern: '^[^\\s:/]+:\\d{1,5}$' })),
      /** The password of the master and its replicas (REDIS_PASSWORD), or of the cluster's nodes. */
      password: Type.Union([Type.String({ minLength: 1 }), Type.Null()]),
      /** Start even when Redis is unreachable, run local, and join when it comes. */
      optional: Type.Boolean(),
      prefix: Type.String({ minLength: 1 }),
      /** Lifetime of a session's ownership record; refreshed while its stream runs. */
      sessionTtlMs: Type.Integer({ minimum: 100 }),
    }, STRICT),
    responses: Type.Object({
      /** How long a stored response (`store`, the default) can be read or continued, and how many are kept. */
      storeTtlMs: Type.Integer({ minimum: 1000 }),
      maxStored: Type.Integer({ minimum: 1 }),
    }, STRICT),
    /** This instance's name in Redis; random per process when unset. */
    instanceId: Type.Union([Type.String({ pattern: '^[\\w.:-]{1,64}$' }), Type.Null()]),
    /** PEM files: with both, Jarvis serves HTTPS and WSS on its port (http/tls.ts reads and checks them at start). */
    tls: Type.Object({
      certFile: Type.Union([Type.String({ minLength: 1 }), Type.Null()]),
      keyFile: Type.Union([Type.String({ minLength: 1 }), Type.Null()]),
    }, STRICT),
    events: Type.Object({
      flushMs: Type.Integer({ minimum: 1 }),
      flushBytes: Type.Integer({ minimum: 1 }),
      replay: Type.Integer({ minimum: 0 }),
      maxSubscriberBufferBytes: Type.Integer({ minimum: 1024 }),
      /** Events subscribers (SSE and WebSocket) in this process, and for one API key (503 / 429 past them). */
      maxSubscribers: Type.Integer({ minimum: 1 }),
      maxSubscribersPerKey: Type.Integer({ minimum: 1 }),
    }, STRICT),
    /** The Realtime API in text mode (GET /v1/realtime in front of a model that does not speak it). */
    realtime: Type.Object({
      /** The speaking rate a truncate's audio_end_ms is read at: the characters of text a second of speech says. */
      charsPerSecond: Type.Number({ exclusiveMinimum: 0 }),
    }, STRICT),
    /** Where Jarvis keeps its files: the embedded usage ledger (ledger.sqlite). */
    dataDir: Type.String({ minLength: 1 }),
    /** PostgreSQL for the usage ledger, shared by every instance; null: the embedded file under dataDir. */
    databaseUrl: Type.Union([Type.String({ pattern: '^postgres(ql)?://' }), Type.Null()]),
    /** The usage ledger: a line per paid upstream attempt (docs/operations.md). */
    ledger: Type.Object({
      enabled: Type.Boolean(),
      /** Lines are written in batches this often, off the request path: what a crash can lose. */
      flushMs: Type.Integer({ minimum: 10, maximum: 60_000 }),
      /** Lines held while the store is down; the oldest are dropped past it (counted, logged). */
      maxQueued: Type.Integer({ minimum: 100 }),
    }, STRICT),
    /** Prices of the models that serve, in US dollars per million tokens: what the ledger's `cost` is. */
    prices: Type.Record(Type.String({ minLength: 1 }), Price),
    /** The API WebSockets (GET /v1/responses, GET /v1/realtime). */
    websocket: Type.Object({
      /** Connections in this process, and for one API key (503 / 429 before the upgrade past them). */
      maxConnections: Type.Integer({ minimum: 1 }),
      maxConnectionsPerKey: Type.Integer({ minimum: 1 }),
      /** Responses one connection may have generating or waiting in its lanes (an `error` event past it). */
      maxResponsesInFlight: Type.Integer({ minimum: 1 }),
      /** A connection with nothing in flight that sends nothing for this long is closed (1000). */
      idleTimeoutMs: Type.Integer({ minimum: 1000 }),
    }, STRICT),
  },
  STRICT,
);

export type Config = Static<typeof ConfigSchema>;
export type RouteConfig = Static<typeof Route>;
export type UpstreamConfig = Static<typeof Upstream>;

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

export const SIMULATED_MODEL = 'jarvis-sim';

/** The embedded defaults: `npm start` on a fresh machine serves the simulator on loopback. */
export function defaultConfig(): Config {
  return {
    host: '127.0.0.1',
    port: 8000,
    bodyLimit: 1024 * 1024,
    maxMessages: 1000,
    maxContentChars: 1_000_000,
    maxHeaderBytes: 16 * 1024,
    requestTimeoutMs: 30_000,
    maxStreams: 10_000,
    logContent: false,
    apiKeys: [],
    access: { keys: [], allowInsecure: false, corsOrigins: [], rpm: 0, maxStreams: 0 },
    log: { level: 'info', format: 'logfmt', file: 'logs/system.log', stdout: true },
    shutdownGraceMs: 10_000,
    workers: 1,
    heartbeatMs: 15_000,
    maxClientBufferBytes: 64 * 1024,
    clientStallMs: 2000,
    maxAnswerBytes: 8 * 1024 * 1024,
    eventLoopBlockedMs: 100,
    shedEventLoopDelayMs: 0,
    defaultModel: SIMULATED_MODEL,
    simulator: { tokensPerSec: 40, ttftMs: 250 },
    upstreams: [],
    routes: [],
    upstreamTimeoutMs: 30_000,
    upstreamIdleMs: 60_000,
    sessions: { policy: 'cancel-previous', prevStreamWaitMs: 2000 },
    events: { flushMs: 75, flushBytes: 1024, replay: 10_000, maxSubscriberBufferBytes: 1024 * 1024, maxSubscribers: 1000, maxSubscribersPerKey: 50 },
    realtime: { charsPerSecond: 15 },
    websocket: { maxConnections: 1000, maxConnectionsPerKey: 50, maxResponsesInFlight: 16, idleTimeoutMs: 600_000 },
    redis: { url: null, sentinels: [], cluster: [], name: null, password: null, optional: false, prefix: 'jarvis:', sessionTtlMs: 10_000 },
    responses: { storeTtlMs: 60 * 60 * 1000, maxStored: 10_000 },
    instanceId: null,
    tls: { certFile: null, keyFile: null },
    dataDir: 'data',
    databaseUrl: null,
    ledger: { enabled: true, flushMs: 1000, maxQueued: 100_000 },
    prices: {},
  };
}

type Env = Record<string, string | undefined>;

function int(env: Env, name: string): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  // Number(' ') is 0: a blank PORT would silently bind a random port.
  const n = raw.trim() === '' ? NaN : Number(raw);
  if (!Number.isFinite(n)) throw new ConfigError(`${name} must be a number, got ${JSON.stringify(raw)}`);
  return n;
}

function bool(env: Env, name: string): boolean | undefined {
  const raw = str(env, name);
  if (raw === undefined) return undefined;
  if (/^(1|true|yes|on)$/i.test(raw)) return true;
  if (/^(0|false|no|off)$/i.test(raw)) return false;
  throw new ConfigError(`${name} must be 1 or 0, got ${JSON.stringify(raw)}`);
}

/** JARVIS_WORKERS: a positive integer, or `auto` (one per core). */
function workers(env: Env): number | 'auto' | undefined {
  const raw = str(env, 'JARVIS_WORKERS')?.trim();
  if (raw === undefined) return undefined;
  if (raw.toLowerCase() === 'auto') return 'auto';
  if (!/^\d+$/.test(raw) || Number(raw) < 1) throw new ConfigError(`JARVIS_WORKERS must be a positive integer or auto, got ${JSON.stringify(raw)}`);
  return Number(raw);
}

function str(env: Env, name: string): string | undefined {
  const raw = env[name];
  return raw === undefined || raw === '' ? undefined : raw;
}

function readConfigFile(path: string): Partial<Config> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read JARVIS_CONFIG file ${path}: ${(err as Error).message}`);
  }
  const yaml = /\.ya?ml$/i.test(path);
  let parsed: unknown;
  try {
    parsed = yaml ? parseYaml(text) : JSON.parse(text);
  } catch (err) {
    // A parser's message may quote the text around the mistake, and the file may hold keys: only the position.
    const position = /line \d+(,? col(umn)? \d+)?|position \d+/i.exec((err as Error).message)?.[0];
    throw new ConfigError(`cannot parse JARVIS_CONFIG file ${path}: not valid ${yaml ? 'YAML' : 'JSON'}${position ? ` at ${position}` : ''}`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new ConfigError(`JARVIS_CONFIG file ${path}: the top level must be an object`);
  return parsed as Partial<Config>;
}

function merge<T>(base: T, over: unknown): T {
  if (over === undefined) return base;
  if (base === null || typeof base !== 'object' || Array.isArray(base) || over === null || typeof over !== 'object' || Array.isArray(over)) {
    return over as T;
  }
  const out: Record<string, unknown> = { ...(base as Record<string, unknown>) };
  for (const [k, v] of Object.entries(over)) out[k] = merge(out[k], v);
  return out as T;
}

function keysFile(path: string | undefined): unknown[] | undefined {
  if (path === undefined) return undefined;
  try {
    return readKeysFile(path);
  } catch (err) {
    throw new ConfigError((err as Error).message);
  }
}

/**
 * Settings whose values may be secrets: keys, key digests, and URLs (which may carry a password). An error about
 * one names where it is and what was expected, never what it holds.
 */
const SECRET_SETTING = /(^|\/)(apiKeys?|keys|key|sha256|url|baseUrl|databaseUrl|password)(\/|$)/;

/** What a wrong value was, as far as it can be shown: a short plain value, else only its kind. */
function shown(path: string, value: unknown): string {
  if (value === undefined || SECRET_SETTING.test(path)) return '';
  if (value === null || typeof value === 'number' || typeof value === 'boolean') return ` (got ${JSON.stringify(value)})`;
  if (typeof value === 'string') return value.length <= 80 ? ` (got ${JSON.stringify(value)})` : ' (got a long string)';
  return Array.isArray(value) ? ' (got a list)' : ' (got an object)';
}

/** The schema at a JSON pointer, to know which keys an object there takes. */
function schemaAt(path: string[]): TSchema | undefined {
  let schema: TSchema | undefined = ConfigSchema;
  for (const part of path) {
    if (!schema) return undefined;
    schema = schema.type === 'array' ? (schema.items as TSchema) : (schema.properties as Record<string, TSchema> | undefined)?.[part];
  }
  return schema;
}

/** Edits (insert, delete, replace, swap two neighbours) from a to b: "rmp" is one from "rpm". */
function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i]![j] = Math.min(d[i]![j]!, d[i - 2]![j - 2]! + 1);
    }
  }
  return d[a.length]![b.length]!;
}

/** The known key an unknown one was probably meant to be: another case, snake_case, or a typo or two away. */
export function closestKey(unknown: string, known: string[]): string | undefined {
  const norm = (k: string) => k.toLowerCase().replace(/[_-]/g, '');
  let best: { key: string; d: number } | undefined;
  for (const k of known) {
    const d = norm(k) === norm(unknown) ? 0 : editDistance(unknown.toLowerCase(), k.toLowerCase());
    if (d <= Math.max(1, Math.floor(k.length / 4)) && (!best || d < best.d)) best = { key: k, d };
  }
  return best?.key;
}

function firstError(value: unknown): string {
  const err = Value.Errors(ConfigSchema, value).First();
  if (!err) return 'invalid configuration';
  const parts = err.path.split('/').slice(1);
  const where = parts.length ? parts.join('.') : 'config';
  if (err.type === ValueErrorType.ObjectAdditionalProperties) {
    const key = parts.at(-1)!;
    const known = Object.keys((schemaAt(parts.slice(0, -1))?.properties as object | undefined) ?? {});
    const meant = closestKey(key, known);
    return `${where}: unknown setting${meant ? `; did you mean \`${meant}\`?` : `; known here: ${known.join(', ')}`}`;
  }
  return `${where}: ${err.message}${shown(err.path, err.value)}`;
}

/**
 * Builds the one validated config object from defaults, an optional JARVIS_CONFIG file (JSON or YAML) and the
 * environment, in that order of precedence. Throws ConfigError with a one-line message on the first bad value.
 */
export function loadConfig(env: Env): Config {
  const file = str(env, 'JARVIS_CONFIG');
  let config = merge(defaultConfig(), file ? readConfigFile(file) : undefined);

  const baseUrl = str(env, 'JARVIS_UPSTREAM_BASE_URL');
  const defaultModel = str(env, 'JARVIS_DEFAULT_MODEL');
  const envOverrides = {
    host: str(env, 'HOST'),
    port: int(env, 'PORT'),
    bodyLimit: int(env, 'JARVIS_BODY_LIMIT'),
    maxMessages: int(env, 'JARVIS_MAX_MESSAGES'),
    maxContentChars: int(env, 'JARVIS_MAX_CONTENT_CHARS'),
    maxHeaderBytes: int(env, 'JARVIS_MAX_HEADER_BYTES'),
    requestTimeoutMs: int(env, 'JARVIS_REQUEST_TIMEOUT_MS'),
    maxStreams: int(env, 'JARVIS_MAX_STREAMS'),
    logContent: bool(env, 'JARVIS_LOG_CONTENT'),
    apiKeys: str(env, 'JARVIS_API_KEYS')?.split(',').map((k) => k.trim()).filter(Boolean),
    access: {
      keys: keysFile(str(env, 'JARVIS_KEYS_FILE')),
      allowInsecure: bool(env, 'JARVIS_ALLOW_INSECURE'),
      corsOrigins: str(env, 'JARVIS_CORS_ORIGINS')?.split(',').map((o) => o.trim()).filter(Boolean),
      rpm: int(env, 'JARVIS_KEY_RPM'),
      maxStreams: int(env, 'JARVIS_KEY_MAX_STREAMS'),
    },
    log: { level: str(env, 'JARVIS_LOG_LEVEL'), format: str(env, 'JARVIS_LOG_FORMAT'), file: str(env, 'JARVIS_LOG_FILE') },
    shutdownGraceMs: int(env, 'JARVIS_SHUTDOWN_GRACE_MS'),
    workers: workers(env),
    heartbeatMs: int(env, 'JARVIS_HEARTBEAT_MS'),
    maxClientBufferBytes: int(env, 'JARVIS_MAX_CLIENT_BUFFER_BYTES'),
    clientStallMs: int(env, 'JARVIS_CLIENT_STALL_MS'),
    maxAnswerBytes: int(env, 'JARVIS_MAX_ANSWER_BYTES'),
    eventLoopBlockedMs: int(env, 'JARVIS_EVENT_LOOP_BLOCKED_MS'),
    shedEventLoopDelayMs: int(env, 'JARVIS_SHED_EVENT_LOOP_MS'),
    defaultModel,
    simulator: { tokensPerSec: int(env, 'JARVIS_SIM_TOKENS_PER_SEC'), ttftMs: int(env, 'JARVIS_SIM_TTFT_MS') },
    upstreamTimeoutMs: int(env, 'JARVIS_UPSTREAM_TIMEOUT_MS'),
    upstreamIdleMs: int(env, 'JARVIS_UPSTREAM_IDLE_MS'),
    sessions: { policy: str(env, 'JARVIS_SESSION_POLICY'), prevStreamWaitMs: int(env, 'JARVIS_PREV_STREAM_WAIT_MS') },
    redis: {
      url: str(env, 'REDIS_URL'),
      sentinels: str(env, 'REDIS_SENTINELS')?.split(',').map((s) => s.trim()).filter(Boolean),
      cluster: str(env, 'REDIS_CLUSTER_NODES')?.split(',').map((s) => s.trim()).filter(Boolean),
      name: str(env, 'REDIS_SENTINEL_NAME'),
      password: str(env, 'REDIS_PASSWORD'),
      optional: bool(env, 'JARVIS_REDIS_OPTIONAL'),
      prefix: str(env, 'JARVIS_REDIS_PREFIX'),
      sessionTtlMs: int(env, 'JARVIS_SESSION_TTL_MS'),
    },
    responses: { storeTtlMs: int(env, 'JARVIS_RESPONSES_TTL_MS'), maxStored: int(env, 'JARVIS_RESPONSES_MAX') },
    instanceId: str(env, 'JARVIS_INSTANCE_ID'),
    tls: { certFile: str(env, 'JARVIS_TLS_CERT_FILE'), keyFile: str(env, 'JARVIS_TLS_KEY_FILE') },
    dataDir: str(env, 'JARVIS_DATA_DIR'),
    databaseUrl: str(env, 'JARVIS_DATABASE_URL'),
    ledger: { enabled: bool(env, 'JARVIS_LEDGER'), flushMs: int(env, 'JARVIS_LEDGER_FLUSH_MS'), maxQueued: int(env, 'JARVIS_LEDGER_MAX_QUEUED') },
    events: {
      flushMs: int(env, 'JARVIS_FLUSH_MS'),
      flushBytes: int(env, 'JARVIS_FLUSH_BYTES'),
      replay: int(env, 'JARVIS_EVENT_REPLAY'),
      maxSubscriberBufferBytes: int(env, 'JARVIS_MAX_SUBSCRIBER_BUFFER_BYTES'),
      maxSubscribers: int(env, 'JARVIS_MAX_SUBSCRIBERS'),
      maxSubscribersPerKey: int(env, 'JARVIS_MAX_SUBSCRIBERS_PER_KEY'),
    },
    realtime: { charsPerSecond: int(env, 'JARVIS_REALTIME_CHARS_PER_SECOND') },
    websocket: {
      maxConnections: int(env, 'JARVIS_WS_MAX_CONNECTIONS'),
      maxConnectionsPerKey: int(env, 'JARVIS_WS_MAX_CONNECTIONS_PER_KEY'),
      maxResponsesInFlight: int(env, 'JARVIS_WS_MAX_IN_FLIGHT'),
      idleTimeoutMs: int(env, 'JARVIS_WS_IDLE_TIMEOUT_MS'),
    },
  };
  config = merge(config, JSON.parse(JSON.stringify(envOverrides)) as unknown);
  if (!baseUrl && str(env, 'JARVIS_UPSTREAM_PROVIDER')) throw new ConfigError('JARVIS_UPSTREAM_PROVIDER needs JARVIS_UPSTREAM_BASE_URL (the upstream it describes)');
  if (baseUrl) {
    // The simple case: one upstream takes every model that is not the simulator's.
    const upstream: UpstreamConfig = { name: 'default', baseUrl: baseUrl.replace(/\/+$/, ''), models: ['*'] };
    const key = str(env, 'JARVIS_UPSTREAM_API_KEY');
    if (key) upstream.apiKey = key;
    const responses = str(env, 'JARVIS_UPSTREAM_RESPONSES');
    if (responses) upstream.responses = responses as UpstreamConfig['responses'];
    const realtime = str(env, 'JARVIS_UPSTREAM_REALTIME');
    if (realtime) upstream.realtime = realtime as UpstreamConfig['realtime'];
    const provider = str(env, 'JARVIS_UPSTREAM_PROVIDER');
    if (provider) {
      if (!(UPSTREAM_PROVIDERS as readonly string[]).includes(provider)) throw new ConfigError(`JARVIS_UPSTREAM_PROVIDER: expected one of ${UPSTREAM_PROVIDERS.join(', ')}`);
      upstream.provider = provider as UpstreamProvider;
    }
    config.upstreams = [...config.upstreams, upstream];
    if (!defaultModel && !file) throw new ConfigError('JARVIS_DEFAULT_MODEL is required with JARVIS_UPSTREAM_BASE_URL (the model the upstream serves)');
  }
  return validateConfig(config);
}

export function validateConfig(config: unknown): Config {
  if (!Value.Check(ConfigSchema, config)) throw new ConfigError(firstError(config));
  const names = new Set<string>();
  for (const u of config.upstreams) {
    if (names.has(u.name)) throw new ConfigError(`upstreams: duplicate upstream name ${JSON.stringify(u.name)}`);
    names.add(u.name);
    try {
      new URL(u.baseUrl);
    } catch {
      throw new ConfigError(`upstreams.${u.name}.baseUrl: not a URL (expected http(s)://host[:port]/path)`);
    }
    if (u.provider !== undefined && u.provider !== 'openai' && u.responses === 'native') {
      throw new ConfigError(`upstreams.${u.name}.responses: native is for OpenAI upstreams; an upstream of provider ${u.provider} has its /v1/responses translated`);
    }
    if (u.provider !== undefined && u.provider !== 'openai' && u.realtime === 'native') {
      throw new ConfigError(`upstreams.${u.name}.realtime: native is for OpenAI upstreams; an upstream of provider ${u.provider} is served in text`);
    }
    if (u.provider !== 'anthropic' && (u.anthropicVersion !== undefined || u.maxTokens !== undefined)) {
      throw new ConfigError(`upstreams.${u.name}: anthropicVersion and maxTokens are for provider: anthropic`);
    }
  }
  const routed = new Set<string>();
  config.routes.forEach((r, i) => {
    if (routed.has(r.model)) throw new ConfigError(`routes.${i}.model: ${JSON.stringify(r.model)} has two routes`);
    routed.add(r.model);
    r.targets.forEach((t, j) => {
      if (!names.has(t.upstream)) throw new ConfigError(`routes.${i}.targets.${j}.upstream: no upstream is named ${JSON.stringify(t.upstream)}`);
    });
  });
  if (config.workers !== 1 && !redisConfigured(config)) {
    // Each worker is an instance of its own: without Redis, a barge-in landing on another worker would not cancel anything.
    throw new ConfigError(`workers: JARVIS_WORKERS=${config.workers} runs several processes whose sessions must be coordinated, which needs Redis: set REDIS_URL, REDIS_SENTINELS or REDIS_CLUSTER_NODES (or JARVIS_WORKERS=1)`);
  }
  const { sentinels, name, cluster } = config.redis;
  const given = [config.redis.url !== null && 'REDIS_URL', sentinels.length > 0 && 'REDIS_SENTINELS', cluster.length > 0 && 'REDIS_CLUSTER_NODES'].filter(Boolean);
  if (given.length > 1) {
    throw new ConfigError(`redis: ${given.join(' and ')} are set together: give one, a Redis server, the sentinels that watch one, or a cluster's nodes`);
  }
  if (sentinels.length > 0 && name === null) throw new ConfigError('redis.name: REDIS_SENTINEL_NAME is required with REDIS_SENTINELS (the master name the sentinels monitor)');
  if (name !== null && sentinels.length === 0) throw new ConfigError('redis.sentinels: REDIS_SENTINEL_NAME names a master, but no REDIS_SENTINELS are set');
  if (config.redis.password !== null && sentinels.length === 0 && cluster.length === 0) {
    throw new ConfigError('redis.password: REDIS_PASSWORD is for a Sentinel set or a cluster; put a single server\'s password in REDIS_URL');
  }
  if (config.redis.url !== null && !URL.canParse(config.redis.url)) {
    throw new ConfigError('redis.url: not a URL (expected redis[s]://[user:password@]host[:port][/db])');
  }
  let keys;
  try {
    keys = resolveKeys(config);
  } catch (err) {
    throw new ConfigError((err as Error).message);
  }
  if (keys.length === 0 && !config.access.allowInsecure && !isLoopbackHost(config.host)) {
    throw new ConfigError(
      `refusing to serve ${config.host} without API keys: anyone who can reach it could use your upstreams. Set JARVIS_API_KEYS or JARVIS_KEYS_FILE, or JARVIS_ALLOW_INSECURE=1 to serve it open`,
    );
  }
  return config;
}

/** Whether instances coordinate through Redis (a server, a Sentinel set or a Redis Cluster): cluster mode. */
export function redisConfigured(config: Config): boolean {
  return config.redis.url !== null || config.redis.sentinels.length > 0 || config.redis.cluster.length > 0;
}

/** Test and embedding helper: defaults with a few values changed, validated like the real thing. */
export function makeConfig(overrides: DeepPartial<Config> = {}): Config {
  return validateConfig(merge(defaultConfig(), overrides));
}

export type DeepPartial<T> = { [K in keyof T]?: T[K] extends (infer U)[] ? U[] : T[K] extends object ? DeepPartial<T[K]> : T[K] };
