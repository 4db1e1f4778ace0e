import type { JarvisError } from '../errors.js';
import type { ChatChunk, Delta } from '../providers/provider.js';
import { dataFrame } from './sse-frames.js';

export const DONE_FRAME = 'data: [DONE]\n\n';

/** Every key named `usage`, at any depth: a bare `"usage"` followed by a colon can only be a key. */
const USAGE_KEY = /"usage"\s*:/g;
const USAGE_NULL = '"usage":null';

/**
 * A chunk's data without its top-level `usage`, or undefined for the usage chunk itself (no choices): what a
 * client that did not ask for usage gets, since Jarvis asks every upstream for it. `"usage":null`, which OpenAI
 * puts in every chunk once usage is asked for, is cut out of the text, so the rest stays byte for byte as sent;
 * only a chunk where that is not certain to be the top-level key is serialised anew. A token chunk recognised
 * without parsing (`parsed` undefined) can hold a usage key only at the top level, as null (token-chunk.ts), so
 * it takes exactly the path its parsed form would: both give the same bytes.
 */
export function withoutUsage(data: string, parsed: ChatChunk | undefined): string | undefined {
  if (parsed ? !Object.hasOwn(parsed, 'usage') : !data.includes(USAGE_NULL)) return data;
  const usage = parsed ? parsed.usage : null;
  if (usage === null) {
    const at = data.indexOf(USAGE_NULL);
    if (at > 0 && data.match(USAGE_KEY)?.length === 1) {
      if (data[at - 1] === ',') return data.slice(0, at - 1) + data.slice(at + USAGE_NULL.length);
      if (data[at + USAGE_NULL.length] === ',') return data.slice(0, at) + data.slice(at + USAGE_NULL.length + 1);
    }
  } else if (typeof usage === 'object') {
    const choices = (parsed as ChatChunk).choices;
    if (!Array.isArray(choices) || choices.length === 0) return undefined;
  }
  const { usage: _usage, ...rest } = parsed ?? (JSON.parse(data) as ChatChunk);
  return JSON.stringify(rest);
}

/** The frame a streaming client gets for a chunk, or undefined when it gets none (usage it did not ask for). */
export function relayFrame(d: Delta, includeUsage: boolean): string | undefined {
  // A token chunk recognised without parsing is compact JSON: never a newline in it. One that ends right after its
  // choices (`...]}`, as vLLM, llama.cpp and Ollama send them) has no usage key either: no need to look for one,
  // which cost 3.5% of a flood's CPU.
  if (includeUsage || (!d.chunk && d.data.charCodeAt(d.data.length - 2) === 0x5d)) return d.chunk ? dataFrame(d.data) : `data: ${d.data}\n\n`;
  const data = withoutUsage(d.data, d.chunk);
  if (data === undefined) return undefined;
  return d.chunk || data !== d.data ? dataFrame(data) : `data: ${data}\n\n`;
}

/** The members of the first chunk that Jarvis's own chunks repeat, so a client sees one answer: id, created, model. */
export interface ChunkHead {
  id: unknown;
  created: unknown;
  model: unknown;
}

/**
 * Jarvis's own last chunk for a stream it cancelled (superseded, shutdown): `finish_reason: "cancelled"` for every
 * choice still open, under the answer's own id, so an SDK's loop ends normally.
 */
export function cancelledFrame(head: ChunkHead, open: number[]): string {
  const choices = open.map((index) => `{"index":${index},"delta":{},"logprobs":null,"finish_reason":"cancelled"}`).join(',');
  return `data: {"id":${JSON.stringify(head.id)},"object":"chat.completion.chunk","created":${JSON.stringify(head.created)},"model":${JSON.stringify(head.model)},"choices":[${choices}]}\n\n`;
}

/** An error in the stream: an upstream's own error event as it sent it, or Jarvis's error object. */
export function errorFrame(error: JarvisError): string {
  return error.event !== undefined ? dataFrame(error.event) : `data: ${JSON.stringify(error.toJSON())}\n\n`;
}
