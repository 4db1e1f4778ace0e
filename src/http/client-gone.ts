import type { FastifyReply, FastifyRequest } from 'fastify';

/**
 * Calls `gone` once the client of `request` has left before its answer was complete, and returns the function
 * that stops watching (call it in a `finally`). The response alone can miss it: one queued behind another on the
 * same connection (HTTP pipelining) gets no 'close' until its turn comes, and a connection that went away while
 * an asynchronous hook ran closed before anyone listened; a client that half-closes has left too (Node keeps no
 * half-open HTTP connections), which 'end' says before 'close'. Every route that holds a client watches this way.
 */
export function watchClientGone(request: FastifyRequest, reply: FastifyReply, gone: () => void): () => void {
  const socket = request.raw.socket;
  const res = reply.raw;
  const onClose = () => {
    if (!res.writableFinished) gone();
  };
  res.once('close', onClose);
  socket.once('close', onClose);
  socket.once('end', onClose);
  if (socket.destroyed) onClose();
  return () => {
    res.removeListener('close', onClose);
    socket.removeListener('close', onClose);
    socket.removeListener('end', onClose);
  };
}
