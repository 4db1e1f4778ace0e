// What every fake writes on the wire the same way, whatever API it speaks: a JSON answer, paced frames, and the
// deterministic hash its ids come from (the same prompt gets the same ids, so an answer direct and an answer
// through a gateway can be compared whole).
import type * as http from 'node:http';

/** FNV-1a, 32 bits: the same text always gets the same number. */
export function hash32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

export function sendJson(res: http.ServerResponse, status: number, payload: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(payload);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)), ...headers });
  res.end(text);
}

/**
 * Writes `frames`, then ends the response (or, with `end` false, half-closes the socket without ending the
 * chunked body: a stream cut short). One write per timer tick when paced (`delayMs` > 0), else batches of up to
 * 64 KiB per turn of the loop: a flood at line rate, not one syscall per token. Honours the reader's backpressure.
 */
export function writePaced(res: http.ServerResponse, frames: string[], delayMs: number, end = true): void {
  let i = 0;
  const next = () => {
    if (res.destroyed) return;
    if (i >= frames.length) {
      if (end) res.end();
      else res.socket?.end();
      return;
    }
    let out = '';
    do out += frames[i++]; while (delayMs === 0 && i < frames.length && out.length < 64 * 1024);
    const again = () => (delayMs > 0 ? setTimeout(next, delayMs) : setImmediate(next));
    if (res.write(out)) again();
    else res.once('drain', again);
  };
  next();
}
