import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
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

/** The response a socket is writing or about to write: Node's `_httpMessage`, the one in-flight response. */
export const inFlightOf = (socket: Socket) => (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage ?? undefined;

/** An OpenAI-shaped error as a whole HTTP/1.1 response, written to the socket, which then closes. */
function answerAndClose(socket: Socket, error: JarvisError, extra = ''): void {
  if (socket.writable) {
    const body = JSON.stringify(error.toJSON());
    socket.write(
      `HTTP/1.1 ${error.status} ${STATUS_CODES[error.status] ?? 'Error'}\r\ncontent-type: application/json; charset=utf-8\r\n${extra}` +
        `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroySoon();
}

/**
 * Calls `then` once no response is in flight on the socket (those of requests pipelined before are written). A
 * response whose request is still incomplete belongs to the request whose bytes broke (a malformed chunk of its
 * body): it will never be answered, so it is not waited for.
 */
function whenResponsesDone(socket: Socket, then: () => void): void {
  const res = inFlightOf(socket);
  if (!res || res.writableFinished || socket.destroyed || !res.req.complete) return then();
  const next = () => {
    res.off('finish', next);
    res.off('close', next);
    // Node hands the socket to the next pipelined response as this one finishes.
    setImmediate(() => whenResponsesDone(socket, then));
  };
  res.once('finish', next);
  res.once('close', next);
}

/**
 * Node's `clientError`: the connection failed before Fastify had a request (headers too large, a request not
 * received within the timeout, bytes that are not HTTP). There is no reply object, so the OpenAI-shaped answer is
 * written to the socket by hand, and the connection closed, as Node itself does. Requests that came before the
 * bad bytes on the same connection (pipelining) are answered first: their responses are written, then this one.
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
    // A request that timed out has a response in flight only if it was answered; it is not waited for.
    if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
      if (!inFlightOf(socket)?.headersSent) answerAndClose(socket, error);
      else socket.destroy();
      return;
    }
    whenResponsesDone(socket, () => answerAndClose(socket, error));
  };
}

/**
 * A CONNECT request (Node hands it to the server's 'connect' event, and without a listener closes the
 * connection unanswered): Jarvis is not a proxy, and says so.
 */
export function refuseConnect(log: Logger): (req: IncomingMessage, socket: Socket) => void {
  return (req, socket) => {
    socket.on('error', () => {});
    const error = new JarvisError('JARVIS_ERR_METHOD_NOT_ALLOWED', `Jarvis is not a proxy: ${req.method} is not served here.`);
    log.info({ status: error.status, code: error.code, reason: 'CONNECT' }, 'client_error');
    answerAndClose(socket, error, 'allow: GET, POST, OPTIONS\r\n');
  };
}
