import { isIP } from 'node:net';

/**
 * True when `host` can only be reached from this machine. Anything else (0.0.0.0, ::, a LAN address, a host
 * name other than localhost, which may resolve anywhere) counts as reachable by others.
 */
export function isLoopbackHost(host: string): boolean {
  const h = host.trim().toLowerCase().replace(/^\[(.*)\]$/, '$1');
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) return h === '::1' || /^::ffff:127\./.test(h) || /^(0{1,4}:){7}0{0,3}1$/.test(h);
  return false;
}
