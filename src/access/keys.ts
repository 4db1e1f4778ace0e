import { createHash } from 'node:crypto';
import { Type, type Static } from '@sinclair/typebox';
import { JarvisError } from '../errors.js';

/** What a key may do: `chat` (completions, models), `events` (/v1/events), `admin` (/metrics). */
export const SCOPES = ['chat', 'events', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

/**
 * A key's name is its tenant identity (sessions, events, quotas) and what logs show: never the key itself. It
 * starts with a letter or digit and never contains "/" or ":", because it becomes part of Redis keys.
 */
export const KEY_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
/** Unnamed keys are known by `key_` and a prefix of their digest; a name may not pose as one. */
const RESERVED_NAME = /^key_/;

/** Scopes a keys-file entry gets when it lists none: its own conversation, not the operator's view. */
const DEFAULT_FILE_SCOPES: Scope[] = ['chat', 'events'];

/** One entry of a keys file (JARVIS_KEYS_FILE) or of `access.keys` in a JARVIS_CONFIG file. */
export const KeyEntry = Type.Object(
  {
    name: Type.String({ pattern: KEY_NAME.source }),
    /** The key in plain text, or... */
    key: Type.Optional(Type.String({ minLength: 8 })),
    /** ...its SHA-256 (hex), so the file need not hold the key itself. */
    sha256: Type.Optional(Type.String({ pattern: '^[0-9a-fA-F]{64}$' })),
    scopes: Type.Optional(Type.Array(Type.Union(SCOPES.map((s) => Type.Literal(s))), { minItems: 1 })),
    /** The only models this key may use; absent: every model Jarvis routes. */
    models: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { minItems: 1 })),
    /** Requests per minute (0: unlimited); absent: JARVIS_KEY_RPM. */
    rpm: Type.Optional(Type.Integer({ minimum: 0 })),
    /** Concurrent streams (0: unlimited); absent: JARVIS_KEY_MAX_STREAMS. */
    maxStreams: Type.Optional(Type.Integer({ minimum: 0 })),
    /** Spend limits (any subset): US dollars per UTC day and month (by the ledger's prices), tokens per UTC day. */
    budget: Type.Optional(
      Type.Object(
        {
          costPerDay: Type.Optional(Type.Number({ minimum: 0 })),
          costPerMonth: Type.Optional(Type.Number({ minimum: 0 })),
          tokensPerDay: Type.Optional(Type.Integer({ minimum: 0 })),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);
export type KeyEntry = Static<typeof KeyEntry>;

/** A configured key as Jarvis uses it: found by the digest of what a client presents. */
export interface ResolvedKey {
  digest: string;
  identity: ApiKeyIdentity;
}

/** Who a request is, once its key is recognised. Nothing in it is secret. */
export interface ApiKeyIdentity {
  /**
   * The tenant: the key's name, or `key_<digest prefix>` for an unnamed key. Sessions, events and quotas are
   * keyed by it, so a named key can be rotated (a new key under the same name) without its sessions, event
   * subscriptions or quota counters noticing.
   */
  id: string;
  scopes: ReadonlySet<Scope>;
  /** null: every model. */
  models: ReadonlySet<string> | null;
  /** 0: unlimited. */
  rpm: number;
  maxStreams: number;
  /** Spend limits (keys file `budget`); absent: none. */
  budget?: KeyBudget | undefined;
}

export interface KeyBudget {
  costPerDay?: number | undefined;
  costPerMonth?: number | undefined;
  tokensPerDay?: number | undefined;
}

export const sha256Hex = (key: string) => createHash('sha256').update(key).digest('hex');

/** `name=key` or a bare key, as JARVIS_API_KEYS lists them. Split at the first "=". */
export function parseEnvKey(entry: string): { name: string | null; key: string } {
  const eq = entry.indexOf('=');
  if (eq < 0) return { name: null, key: entry };
  return { name: entry.slice(0, eq), key: entry.slice(eq + 1) };
}

export interface KeySources {
  /** JARVIS_API_KEYS entries: every scope, the default quotas. */
  apiKeys: string[];
  access: { keys: KeyEntry[]; rpm: number; maxStreams: number };
}

/**
 * Every configured key with what it may do. Throws an Error with a one-line message that names the entry (by
 * name or position), never the key, on anything ambiguous: a bad name, a key listed twice, `key` and `sha256`
 * both or neither.
 */
export function resolveKeys(sources: KeySources): ResolvedKey[] {
  const out: ResolvedKey[] = [];
  const seen = new Map<string, string>();
  const add = (where: string, digest: string, identity: ApiKeyIdentity) => {
    const other = seen.get(digest);
    if (other) throw new Error(`${where}: the same key is already configured as ${other}`);
    seen.set(digest, where);
    out.push({ digest, identity });
  };
  const checkName = (where: string, name: string) => {
    if (!KEY_NAME.test(name)) throw new Error(`${where}: a key name is 1-64 of A-Z, a-z, 0-9, ".", "_", "-", starting with a letter or digit`);
    if (RESERVED_NAME.test(name)) throw new Error(`${where}: names starting with "key_" are reserved for unnamed keys`);
  };
  const { rpm, maxStreams } = sources.access;

  sources.apiKeys.forEach((entry, i) => {
    const where = `JARVIS_API_KEYS entry ${i + 1}`;
    const { name, key } = parseEnvKey(entry);
    if (name !== null) checkName(where, name);
    if (key.length < 8) throw new Error(`${where}: a key must be at least 8 characters${name === null ? '' : ` (the part after "${name}=")`}`);
    const digest = sha256Hex(key);
    add(name === null ? where : `${where} (${name})`, digest, { id: name ?? unnamedId(digest), scopes: new Set(SCOPES), models: null, rpm, maxStreams });
  });

  sources.access.keys.forEach((entry, i) => {
    const where = `keys entry ${i + 1} (${entry.name})`;
    checkName(where, entry.name);
    if ((entry.key === undefined) === (entry.sha256 === undefined)) throw new Error(`${where}: give exactly one of "key" and "sha256"`);
    const digest = entry.key !== undefined ? sha256Hex(entry.key) : entry.sha256!.toLowerCase();
    add(where, digest, {
      id: entry.name,
      scopes: new Set(entry.scopes ?? DEFAULT_FILE_SCOPES),
      models: entry.models ? new Set(entry.models) : null,
      rpm: entry.rpm ?? rpm,
      maxStreams: entry.maxStreams ?? maxStreams,
      ...(entry.budget && Object.keys(entry.budget).length > 0 ? { budget: entry.budget } : {}),
    });
  });
  return out;
}

function unnamedId(digest: string): string {
  // 48 bits of a SHA-256: enough to tell a deployment's keys apart, and nothing an attacker can use.
  return `key_${digest.slice(0, 12)}`;
}

/** The error for a model a key may not use, word for word the one for a model that does not exist. */
export function checkModelAllowed(identity: ApiKeyIdentity | null, model: string): void {
  if (identity?.models && !identity.models.has(model)) {
    throw new JarvisError('JARVIS_ERR_MODEL_NOT_FOUND', `The model '${model}' does not exist or you do not have access to it.`, { param: 'model' });
  }
}
