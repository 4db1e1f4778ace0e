import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { JarvisError } from '../../errors.js';
import type { Delta, Usage } from '../provider.js';

interface ChunkChoice {
  delta?: Record<string, unknown> & { content?: unknown; role?: unknown };
  finish_reason?: unknown;
}
interface Chunk {
  choices?: ChunkChoice[];
  usage?: Usage | null;
  error?: { message?: unknown; code?: unknown };
}

/** Turns an upstream's OpenAI SSE body into deltas; ends at `[DONE]` and fails on anything malformed or missing. */
export async function* parseUpstreamStream(body: AsyncIterable<Buffer>, signal: AbortSignal): AsyncGenerator<Delta> {
  const pending: Delta[] = [];
  let done = false;
  let failure: JarvisError | undefined;
  const parser = createParser({
    onEvent(event: EventSourceMessage) {
      if (done || failure) return;
      if (event.data === '[DONE]') {
        done = true;
        return;
      }
      let chunk: Chunk;
      try {
        chunk = JSON.parse(event.data) as Chunk;
      } catch {
        failure = new JarvisError('JARVIS_ERR_UPSTREAM_STREAM', 'upstream sent a malformed stream event');
        return;
      }
      collect(chunk, pending);
      if (chunk.error) {
        const msg = typeof chunk.error.message === 'string' ? chunk.error.message : 'upstream reported an error';
        failure = new JarvisError('JARVIS_ERR_UPSTREAM_STREAM', `upstream error: ${msg}`);
      }
    },
  });
  const decoder = new TextDecoder();
  for await (const buf of body) {
    parser.feed(decoder.decode(buf, { stream: true }));
    while (pending.length > 0) yield pending.shift()!;
    if (failure) throw failure;
    if (done) return;
    signal.throwIfAborted();
  }
  throw new JarvisError('JARVIS_ERR_UPSTREAM_STREAM', 'upstream closed the stream before [DONE]');
}

function collect(chunk: Chunk, out: Delta[]): void {
  const choice = chunk.choices?.[0];
  if (choice?.delta) {
    const { content, role: _role, ...rest } = choice.delta;
    if (typeof content === 'string' && content !== '') out.push({ type: 'text', text: content });
    for (const key in rest) {
      if (rest[key] !== null && rest[key] !== undefined) {
        out.push({ type: 'delta', delta: rest });
        break;
      }
    }
  }
  if (typeof choice?.finish_reason === 'string') out.push({ type: 'finish', reason: choice.finish_reason });
  if (chunk.usage && typeof chunk.usage.completion_tokens === 'number') out.push({ type: 'usage', usage: chunk.usage });
}
