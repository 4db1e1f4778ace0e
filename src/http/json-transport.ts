import type { FastifyReply } from 'fastify';
import type { JarvisError } from '../errors.js';
import { sendError } from './errors.js';

/**
 * The JSON transport of an answer (`stream: false`), whatever its API: one body once the answer is complete, or an
 * error in the route's API shape, to a client still there to take it. What each API's JSON sink would otherwise
 * check again: whether the client is gone, whether an answer went out already.
 */
export class JsonTransport {
  readonly #reply: FastifyReply;

  constructor(reply: FastifyReply) {
    this.#reply = reply;
  }

  /** The client left, or it has its answer already: nothing more can reach it. */
  get gone(): boolean {
    return this.#reply.sent || this.#reply.raw.destroyed;
  }

  /** Sends the body `answer` builds (built only for a client still there); false when it was gone. */
  send(answer: () => unknown): boolean {
    if (this.gone) return false;
    void this.#reply.send(answer());
    return true;
  }

  fail(error: JarvisError): void {
    if (!this.gone) sendError(this.#reply, error);
  }
}
