import { STATUS_CODES, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { JarvisError } from '../errors.js';

export interface ClientErrorOptions {
  log: Logger;
  requestTimeoutMs: number;
  maxHeaderBytes: number;
}

function errorFor(err: NodeJS.ErrnoException, opts: ClientErrorOptions): JarvisError {
  switch (err.code) {
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return new JarvisError('JARVIS_ERR_REQUEST_TIMEOUT', `The request was not received completely within ${opts.requestTimeoutMs} ms.`);
    case 'HPE_HEADER_OVERFLOW':
      return new JarvisError('JARVIS_ERR_HEADERS_TOO_LARGE', `The request headers are larger than ${opts.maxHeaderBytes} bytes.`);
    default:
      return new JarvisError('JARVIS_ERR_MALFORMED_HTTP', 'The request is not valid HTTP/1.1.');
  }
}

/**
 * Node's `clientError`: the connection failed before Fastify had a request (headers too large, a request not
 * received within the timeout, bytes that are not HTTP). There is no reply object, so the OpenAI-shaped answer is
 * written to the socket by hand, and the connection closed, as Node itself does.
 */
export function clientErrorHandler(opts: ClientErrorOptions): (err: NodeJS.ErrnoException, socket: Socket) => void {
  return (err, socket) => {
    // A reset connection is gone already, and one closed mid-request (EOF inside headers or body) has left: nobody
    // to answer. When Fastify had the request already, it logs request_aborted.
    if (err.code === 'ECONNRESET' || err.code === 'HPE_INVALID_EOF_STATE' || socket.destroyed) {
      socket.destroy();
      return;
    }
    const error = errorFor(err, opts);
    opts.log.info({ status: error.status, code: error.code, reason: err.code ?? 'unknown' }, 'client_error');
    // Node's own rule: answer only if no response on this connection has started, or its bytes would be corrupted
    // (a pipelined request failing while the previous response streams). `_httpMessage` is Node's in-flight response.
    const inFlight = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage;
    if (socket.writable && !inFlight?.headersSent) {
      const body = JSON.stringify(error.toJSON());
      socket.write(
        `HTTP/1.1 ${error.status} ${STATUS_CODES[error.status] ?? 'Error'}\r\ncontent-type: application/json; charset=utf-8\r\n` +
          `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
      );
    }
    socket.destroy();
  };
}
