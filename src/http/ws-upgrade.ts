import type { FastifyRequest } from 'fastify';
import { JarvisError } from '../errors.js';

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
