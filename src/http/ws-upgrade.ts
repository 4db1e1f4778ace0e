import type { FastifyInstance, FastifyRequest } from 'fastify';
import { JarvisError } from '../errors.js';
import type { SubscriberSlot, SubscriberSlots } from '../events/subscriber-slots.js';

/** What `ws` checks before it accepts an upgrade, checked first so a refusal is an OpenAI-shaped 400, not ws's text/html one. */
export function checkUpgrade(request: FastifyRequest): void {
  if (request.headers.upgrade?.toLowerCase() !== 'websocket') return;
  const key = request.headers['sec-websocket-key'];
  if (typeof key !== 'string' || !/^[+/0-9A-Za-z]{22}==$/.test(key)) {
    throw new JarvisError('JARVIS_ERR_INVALID_REQUEST', 'Sec-WebSocket-Key must be 16 random bytes in base64.', { param: 'Sec-WebSocket-Key' });
  }
  const version = request.headers['sec-websocket-version'];
  if (version !== '13' && version !== '8') {
    throw new JarvisError('JARVIS_ERR_INVALID_REQUEST', 'Sec-WebSocket-Version must be 13.', { param: 'Sec-WebSocket-Version', headers: { 'sec-websocket-version': '13' } });
  }
}

/**
 * A place taken for a long-lived connection before its upgrade (or its SSE answer), given back once: by the
 * connection's own close, or before that by whoever releases it; a connection that goes before it was served (a
 * failed upgrade) gives it back too.
 */
export function holdSlot(slots: SubscriberSlots, request: FastifyRequest): SubscriberSlot {
  const slot = slots.take(request.apiKey?.id ?? null);
  const socket = request.raw.socket;
  socket.once('close', slot.release);
  return {
    release: () => {
      socket.off('close', slot.release);
      slot.release();
    },
  };
}

/** A request's header as one string (the first, if it came more than once). */
export function headerOf(request: FastifyRequest): (name: string) => string | undefined {
  return (name) => {
    const v = request.headers[name];
    return Array.isArray(v) ? v[0] : v;
  };
}

/** A long-lived connection as shutdown sees it: told to drain, then waited for until it has closed. */
export interface Drainable {
  drain(): void;
  readonly closed: Promise<void>;
}

/**
 * The open connections of a WebSocket route, which shutdown drains (what is in flight gets the grace period,
 * app.ts) and waits for: shutdown is over when every connection has closed and logged it.
 */
export function drainOnClose<T extends Drainable>(app: FastifyInstance, drains: Set<() => void>): Set<T> {
  const open = new Set<T>();
  const drain = () => {
    for (const c of open) c.drain();
  };
  // A shutdown drains them as it begins (idempotent; closing the app drains them too).
  drains.add(drain);
  app.addHook('preClose', async () => drain());
  app.addHook('onClose', async () => {
    await Promise.all([...open].map((c) => c.closed));
  });
  return open;
}
