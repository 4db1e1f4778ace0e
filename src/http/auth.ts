import type { FastifyReply, FastifyRequest } from 'fastify';
import { resolveKeys, sha256Hex, type ApiKeyIdentity, type KeySources, type Scope } from '../access/keys.js';
import { JarvisError } from '../errors.js';
import { apiOf } from './errors.js';

export type { ApiKeyIdentity } from '../access/keys.js';

/**
 * Bearer keys from configuration, looked up by the SHA-256 of what the client presents. That is the constant-time
 * comparison: the work before the lookup is the same for every presented key, and what a lookup's timing could
 * reveal is how a digest of the attacker's own guess compares with a stored digest, which tells nothing about a
 * key (finding a key for a digest prefix is a preimage search). It also means plain keys are not kept in memory,
 * and a keys file may hold only digests.
 */
export class ApiKeys {
  readonly #byDigest = new Map<string, ApiKeyIdentity>();

  constructor(sources: KeySources) {
    for (const { digest, identity } of resolveKeys(sources)) this.#byDigest.set(digest, identity);
  }

  get enabled(): boolean {
    return this.#byDigest.size > 0;
  }

  /** Every configured key's identity (its name, scopes, limits, budget): never the key. */
  get identities(): ApiKeyIdentity[] {
    return [...this.#byDigest.values()];
  }

  /** Throws 401 unless the request carries a configured key; returns null when no keys are configured. */
  authenticate(request: FastifyRequest): ApiKeyIdentity | null {
    if (!this.enabled) return null;
    const header = request.headers.authorization;
    const match = typeof header === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
    // The Anthropic SDK sends its key as x-api-key (or as a bearer token): the Messages API takes either.
    const anthropicKey = !match && apiOf(request) === 'anthropic.messages' ? request.headers['x-api-key'] : undefined;
    const key = match?.[1] ?? (typeof anthropicKey === 'string' && anthropicKey !== '' ? anthropicKey.trim() : undefined) ?? (match ? undefined : browserKeyOf(request));
    if (key === undefined) throw new JarvisError('JARVIS_ERR_UNAUTHORIZED', apiOf(request) === 'anthropic.messages' ? 'Missing API key: send it as "x-api-key: <key>" or "Authorization: Bearer <key>".' : 'Missing API key: send it as "Authorization: Bearer <key>".');
    const identity = this.#byDigest.get(sha256Hex(key));
    if (!identity) throw new JarvisError('JARVIS_ERR_UNAUTHORIZED', 'Incorrect API key provided.');
    return identity;
  }
}

/** The subprotocol a browser's WebSocket carries its key in (it cannot set headers), as OpenAI's Realtime API takes it. */
export const BROWSER_KEY_PROTOCOL = 'openai-insecure-api-key.';

/** A key offered as a WebSocket subprotocol (`openai-insecure-api-key.<key>`), on an upgrade only. */
function browserKeyOf(request: FastifyRequest): string | undefined {
  if (request.headers.upgrade?.toLowerCase() !== 'websocket') return undefined;
  const offered = request.headers['sec-websocket-protocol'];
  if (typeof offered !== 'string') return undefined;
  for (const p of offered.split(',')) {
    const protocol = p.trim();
    if (protocol.startsWith(BROWSER_KEY_PROTOCOL) && protocol.length > BROWSER_KEY_PROTOCOL.length) return protocol.slice(BROWSER_KEY_PROTOCOL.length);
  }
  return undefined;
}

/**
 * The subprotocol Jarvis answers an upgrade with: `realtime` when offered (the Realtime API's), else the first one
 * offered, but never the one that carries a key (which would echo the key back).
 */
export function chooseProtocol(offered: Set<string>): string | false {
  if (offered.has('realtime')) return 'realtime';
  for (const p of offered) if (!p.startsWith(BROWSER_KEY_PROTOCOL)) return p;
  return false;
}

declare module 'fastify' {
  interface FastifyRequest {
    apiKey: ApiKeyIdentity | null;
  }
}

/** onRequest hook for routes that need `scope`: 401 without a valid key, 403 when the key lacks the scope. */
export function requireScope(keys: ApiKeys, scope: Scope | readonly Scope[]) {
  const any = typeof scope === 'string' ? [scope] : scope;
  return async function authorize(request: FastifyRequest, _reply: FastifyReply): Promise<void> {
    const identity = keys.authenticate(request);
    if (identity && !any.some((s) => identity.scopes.has(s))) {
      throw new JarvisError('JARVIS_ERR_FORBIDDEN', `This API key does not have the '${any.join("' or '")}' scope needed for ${request.method} ${request.url.split('?')[0]}.`);
    }
    request.apiKey = identity;
  };
}

export { checkModelAllowed } from '../access/keys.js';
