import { createHash } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { JarvisError } from '../errors.js';

export interface ApiKeyIdentity {
  /** Stable, non-secret identity of a key (a hash prefix): what logs and event ownership use. */
  id: string;
}

const digest = (key: string) => createHash('sha256').update(key).digest('hex');

/**
 * Bearer keys from configuration. Keys are looked up by their SHA-256, so comparing a presented key costs the
 * same whatever it is and the plain keys are not kept in memory.
 */
export class ApiKeys {
  readonly #byDigest = new Map<string, ApiKeyIdentity>();

  constructor(keys: string[]) {
    for (const k of keys) {
      const d = digest(k);
      this.#byDigest.set(d, { id: `key_${d.slice(0, 12)}` });
    }
  }

  get enabled(): boolean {
    return this.#byDigest.size > 0;
  }

  /** Throws 401 unless the request carries a configured key; returns null when no keys are configured. */
  authenticate(request: FastifyRequest): ApiKeyIdentity | null {
    if (!this.enabled) return null;
    const header = request.headers.authorization;
    const match = typeof header === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
    if (!match) throw new JarvisError('JARVIS_ERR_UNAUTHORIZED', 'Missing API key: send it as "Authorization: Bearer <key>".');
    const identity = this.#byDigest.get(digest(match[1]!));
    if (!identity) throw new JarvisError('JARVIS_ERR_UNAUTHORIZED', 'Incorrect API key provided.');
    return identity;
  }
}

declare module 'fastify' {
  interface FastifyRequest {
    apiKey: ApiKeyIdentity | null;
  }
}

export function authHook(keys: ApiKeys) {
  return async function authenticate(request: FastifyRequest, _reply: FastifyReply): Promise<void> {
    request.apiKey = keys.authenticate(request);
  };
}
